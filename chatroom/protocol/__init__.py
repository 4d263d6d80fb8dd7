"""The chatroom wire protocol, with no I/O: frames (bytes) and messages (meaning).

See PROTOCOL.md at the top of the repository for the specification.
"""

from __future__ import annotations

from chatroom.protocol.framing import (
    MAX_BODY_SIZE,
    MAX_HEADER_SIZE,
    PREFIX_SIZE,
    Frame,
    FrameDecoder,
    encode_frame,
    parse_header,
)
from chatroom.protocol.messages import *  # noqa: F403
from chatroom.protocol.messages import __all__ as _messages_all

__all__ = [  # noqa: PLE0604 -- the messages module's own __all__, spliced in
    "MAX_BODY_SIZE",
    "MAX_HEADER_SIZE",
    "PREFIX_SIZE",
    "Frame",
    "FrameDecoder",
    "encode_frame",
    "parse_header",
    *_messages_all,
]
