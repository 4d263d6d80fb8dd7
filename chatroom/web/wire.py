"""The framed protocol inside WebSocket messages: a wire format of the hub's fan-out.
No I/O.  Each frame of PROTOCOL.md is one binary WebSocket message; the server's
messages are not masked, so the same bytes go to every browser (encoded once per
batch entry, as for every format).  Each message's header is ``frames.py``'s (the
common case of RFC 6455, what ``websockets`` writes for it); websockets writes the rest."""

from __future__ import annotations

from collections.abc import Sequence

from chatroom.server.wire import Outgoing, Verbatim
from chatroom.web.frames import binary_header

__all__ = ["WebSocketFormat", "WEBSOCKET", "WsBytes"]


class WsBytes(Verbatim):
    """Bytes websockets' protocol object wrote for one connection (the handshake's end,
    a pong, a close): passed through in order with the rest."""

    __slots__ = ()
    TYPE = "ws"


class WebSocketFormat:
    name = "websocket"

    def encode(self, parts: Sequence[Outgoing]) -> bytes:
        out = []
        for p in parts:
            message = p.message
            if isinstance(message, WsBytes):
                out.append(message.data)
            elif p.framed:
                out.append(binary_header(len(p.framed)))
                out.append(p.framed)
        return b"".join(out)

    def __repr__(self) -> str:
        return "WEBSOCKET"


WEBSOCKET = WebSocketFormat()
