"""Garbage collector settings for a long-running process (process-wide: `scangate serve`
applies them once its app is built, and the benchmark applies them to its own process, where
the floor runs, so that neither side of the comparison has them alone)."""

from __future__ import annotations

import gc
from typing import Final

# Collections of the youngest generation after this many net allocations (CPython's default:
# 700). Requests allocate many short-lived objects, almost none in reference cycles.
FIRST_GENERATION_THRESHOLD: Final = 50_000


def tune_garbage_collector() -> None:
    """Make Python's cycle collector cheap for a long-running server.

    Everything imported and built at start-up (the Kubernetes client's thousands of model
    classes, FastAPI's and pydantic's schemas, SQLAlchemy's metadata) lives as long as the
    process, yet every full collection walked all of it, and each one stalled the event loop.
    `gc.freeze()` moves those objects out of the collector's view; a larger first
    generation threshold makes collections rarer (requests allocate many short-lived objects,
    almost none of them in reference cycles). The measured effect: docs/bench/RESULTS.md."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(FIRST_GENERATION_THRESHOLD, 20, 100)
