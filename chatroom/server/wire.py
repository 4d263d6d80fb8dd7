"""Wire formats: how one decided message becomes bytes for each kind of client.

A room decides a message once; its recipients may speak different formats (the
framed protocol of PROTOCOL.md today; IRC lines and browser WebSockets are planned
doors into the same rooms).  Each connection names its :class:`WireFormat`, and the
hub's fan-out encodes a message **once per format in use**, not once per recipient:

    Outgoing(message, framed bytes)  --fan-out-->  format.encode(parts) per format,
                                                   cached for every recipient of it

The framed encoding is made eagerly, when the message is queued: it is what almost
every recipient needs, and its limits (the header size) are checked there, where the
caller can still shrink the message.  Other formats encode lazily, at most once per
batch entry.  No I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from chatroom.protocol import Message, encode_message

__all__ = ["Outgoing", "Verbatim", "WireFormat", "Framed", "FRAMED"]


class Verbatim:
    """Bytes a door wrote for its own connection (IRC numerics, the end of a WebSocket
    handshake): queued like a message, so they keep their place among the room's,
    and passed through by that door's format as they are (the framed format has no
    bytes for them)."""

    __slots__ = ("data",)
    TYPE = "verbatim"

    def __init__(self, data: bytes) -> None:
        self.data = data


class Outgoing(msgspec.Struct, gc=False):
    """One message on its way out: the message itself (for other formats) and its
    framed bytes.  A msgspec struct: built in C, and two are built for every chat
    message (the chat and its ack) -- a Python ``__init__`` was a tenth of the server's
    time per message under a flood.  Not tracked by the garbage collector: it refers to
    a message and bytes, never back to anything that could make a cycle."""

    message: Message | Verbatim
    framed: bytes

    @classmethod
    def of(cls, message: Message, max_header: int | None = None) -> Outgoing:
        """Encode ``message`` as a frame (raises ``LocalProtocolError`` if its header
        exceeds ``max_header``)."""
        if max_header is None:
            return cls(message, encode_message(message))
        return cls(message, encode_message(message, max_header=max_header))

    def __repr__(self) -> str:
        return f"<Outgoing {self.message.TYPE} {len(self.framed)} bytes>"


class WireFormat(Protocol):
    """How a kind of connection wants its messages.  ``encode`` turns consecutive
    messages (for the same recipients) into the bytes to append to each outbox; b""
    means none of them is shown in this format."""

    name: str

    def encode(self, parts: Sequence[Outgoing]) -> bytes: ...


class Framed:
    """PROTOCOL.md's frames: already encoded when queued, so only joined."""

    name = "framed"

    def encode(self, parts: Sequence[Outgoing]) -> bytes:
        if len(parts) == 1:
            return parts[0].framed
        return b"".join([p.framed for p in parts])

    def __repr__(self) -> str:
        return "FRAMED"


FRAMED = Framed()
