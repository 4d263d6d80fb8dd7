"""The one exception tree of chatroom.

::

    ChatroomError                  root: catch this to catch everything of ours
    ├── LocalProtocolError         we misused the protocol (a bug on our side)
    └── RemoteProtocolError        the peer sent something we cannot accept
        ├── FrameError             the byte stream itself is broken: stop reading it
        │   ├── FrameTooLarge      a declared header or body size is over the limit
        │   ├── TruncatedFrame     EOF arrived in the middle of a frame
        │   └── MalformedHeader    the header is not UTF-8 JSON holding an object
        └── MessageError           the frame is sound but its content is not a valid message
            ├── UnknownMessageType "type" names no message we know
            └── InvalidField       a field is missing, of the wrong type or out of range
    Refused                        a well-formed request the rules do not allow
                                   (nick taken, no such nick, text too long...)
    ConnectionFailed               (client side) could not connect or lost the connection
    HandshakeRefused               (client side) the server said no: nick taken, full...

A ``FrameError`` means the stream can no longer be trusted (we do not know where the
next frame starts), so the connection must be closed.  A ``MessageError`` leaves the
stream in sync: the server answers with an error frame and keeps reading.

Every remote error carries an :class:`~chatroom.protocol.ErrorCode`-compatible
``code`` string, so the server can tell the peer exactly what it did wrong.
"""

from __future__ import annotations

__all__ = [
    "ChatroomError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "FrameError",
    "FrameTooLarge",
    "TruncatedFrame",
    "MalformedHeader",
    "MessageError",
    "UnknownMessageType",
    "InvalidField",
    "Refused",
    "ConnectionFailed",
    "HandshakeRefused",
]


class ChatroomError(Exception):
    """Root of every exception chatroom raises on purpose."""


class LocalProtocolError(ChatroomError):
    """We tried to build or send something the protocol does not allow."""


class RemoteProtocolError(ChatroomError):
    """The peer broke the protocol.  ``code`` is the wire error code to answer with."""

    code = "bad_message"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class FrameError(RemoteProtocolError):
    """The framing is broken; the stream is out of sync and must be closed."""

    code = "bad_frame"


class FrameTooLarge(FrameError):
    """A declared size is over its limit (checked before anything is buffered)."""

    code = "frame_too_large"

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} of {size} bytes is over the limit of {limit} bytes")
        self.what = what
        self.size = size
        self.limit = limit


class TruncatedFrame(FrameError):
    """The stream ended in the middle of a frame."""

    code = "truncated_frame"

    def __init__(self, have: int, need: int) -> None:
        super().__init__(f"connection closed mid-frame: got {have} of {need} bytes")
        self.have = have
        self.need = need


class MalformedHeader(FrameError):
    """The header bytes are not a UTF-8 encoded JSON object."""

    code = "malformed_header"


class MessageError(RemoteProtocolError):
    """A well-framed header that is not a valid message; the stream is still in sync."""

    code = "bad_message"


class UnknownMessageType(MessageError):
    code = "unknown_type"

    def __init__(self, type_name: object) -> None:
        super().__init__(f"unknown message type {type_name!r}")
        self.type_name = type_name


class InvalidField(MessageError):
    code = "invalid_field"

    def __init__(self, type_name: str, field: str, problem: str) -> None:
        super().__init__(f"{type_name}.{field}: {problem}")
        self.type_name = type_name
        self.field = field
        self.problem = problem


class Refused(ChatroomError):
    """A valid request that the room's rules refuse; ``code`` goes into the error frame
    (with ``suggestion``, for nick_taken)."""

    def __init__(self, code: str, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.suggestion = suggestion

    def __str__(self) -> str:
        return self.message


class ConnectionFailed(ChatroomError):
    """The client could not reach the server, or lost it."""


class HandshakeRefused(ChatroomError):
    """The server refused our hello; ``code`` says why (nick_taken, server_full, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message
