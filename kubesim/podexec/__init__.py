"""pods/exec and pods/attach: the streaming subresources, over WebSocket.

`open_stream` validates an authorized request and returns the `StreamSession` that the ASGI
app runs once it accepts the upgrade; `channels` is the wire protocol. Commands run in the
simulated userland (`kubesim.userland`).
"""

from kubesim.podexec.session import StreamSession, container_name, open_stream

CONNECT_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})

__all__ = ["CONNECT_SUBRESOURCES", "StreamSession", "container_name", "open_stream"]
