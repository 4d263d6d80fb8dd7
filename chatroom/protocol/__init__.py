"""The chatroom wire protocol, with no I/O: frames (bytes) and messages (meaning).

``framing`` cuts bytes into frames; ``base`` holds what every message shares (limits,
codes, the ``Message`` class); ``messages`` the chat's messages, ``files`` the file
sharing's; ``codec`` turns messages into frames and back.  See PROTOCOL.md at the top
of the repository for the specification.
"""

from __future__ import annotations

from chatroom.protocol.base import *  # noqa: F403
from chatroom.protocol.base import __all__ as _base_all
from chatroom.protocol.codec import *  # noqa: F403
from chatroom.protocol.codec import __all__ as _codec_all
from chatroom.protocol.files import *  # noqa: F403
from chatroom.protocol.files import __all__ as _files_all
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
from chatroom.protocol.roles import *  # noqa: F403
from chatroom.protocol.roles import __all__ as _roles_all

__all__ = [  # noqa: PLE0604 -- the modules' own __all__, spliced in
    "MAX_BODY_SIZE",
    "MAX_HEADER_SIZE",
    "PREFIX_SIZE",
    "Frame",
    "FrameDecoder",
    "encode_frame",
    "parse_header",
    *_base_all,
    *_messages_all,
    *_roles_all,
    *_files_all,
    *_codec_all,
]
