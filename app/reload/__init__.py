"""Reloading the configuration without a restart (README "Reloading the configuration").

`live` holds the configuration in force as one swappable generation and pins it per request;
`reloader` loads, validates, builds and swaps (SIGHUP and file changes start it: app/serving.py,
app/cli.py); `changes` says what differs and what needs a restart; `watch` notices a changed
file. docs/ARCHITECTURE.md, "Reloading the configuration", walks through it.
"""

from app.reload.live import (
    ConfigGeneration,
    ConfigSubscriber,
    LiveConfig,
    PinConfigMiddleware,
    build_generation,
)
from app.reload.reloader import ConfigReloader, ReloadReport
from app.reload.watch import ConfigFileWatcher

__all__ = [
    "ConfigFileWatcher",
    "ConfigGeneration",
    "ConfigReloader",
    "ConfigSubscriber",
    "LiveConfig",
    "PinConfigMiddleware",
    "ReloadReport",
    "build_generation",
]
