"""What every message shares (no I/O): the limits, the error and presence codes,
protocol versions, the ``Message`` base class, records and field checks."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any, ClassVar

import msgspec

from chatroom.errors import LocalProtocolError

__all__ = [
    "PROTOCOL_VERSION",
    "DEFAULT_PORT",
    "MAX_LISTED_MEMBERS",
    "MAX_ID_LENGTH",
    "MAX_CHUNK",
    "ErrorCode",
    "PresenceEvent",
    "Message",
    "MemberInfo",
    "RoomInfo",
    "MESSAGE_TYPES",
    "major_version",
    "speaks",
    "LARGE_ROOM",
    "SEVERAL_ROOMS",
    "TYPING",
    "ROLES",
    "TypingState",
    "MAX_ROOMS",
    "MAX_SEARCH_TEXT",
    "MAX_CROWD_NAMES",
    "Int",
    "Seq",
]


#: The TCP port a server listens on unless told otherwise.
DEFAULT_PORT = 7373

#: "MAJOR.MINOR".  Peers with another major version cannot talk; a newer minor only adds.
PROTOCOL_VERSION = "1.5"

#: Rooms with at least this many members (besides whoever joins or leaves) sum their
#: joins and leaves up in one ``crowd`` frame per tick instead of one ``presence`` each:
#: a room of thousands would otherwise turn every arrival into thousands of frames.
LARGE_ROOM = 200

#: The protocol minor version that lets a member be in several rooms at once (``join``
#: adds a room, ``part`` leaves one).  Older clients are in one room: ``join`` moves them.
SEVERAL_ROOMS = 3

#: The minor version that added ``typing`` (1.4): only such clients are sent it.
TYPING = 4

#: The minor version that added rooms run by their operators (1.5): roles, modes,
#: invitations, keys; only such clients are sent ``modes`` and ``invited``.
ROLES = 5

#: Rooms one member may be in at once (server default; ``welcome.limits.max_rooms``).
MAX_ROOMS = 20

#: A ``search`` looks for at most this many characters.
MAX_SEARCH_TEXT = 200

#: A ``crowd`` frame names at most this many of those who came or went (it counts all).
MAX_CROWD_NAMES = 50

#: Member lists (welcome, joined, members) name at most this many members, so that a
#: room of thousands still fits in one header; ``member_count`` says how many there are.
MAX_LISTED_MEMBERS = 200

#: File data travels in chunks of at most this many bytes (a frame body).
MAX_CHUNK = 64 * 1024

#: Client message ids are chosen by the client to match acknowledgements and to make
#: resending idempotent; 64 characters is room for a UUID with a prefix.
MAX_ID_LENGTH = 64


class ErrorCode(enum.StrEnum):
    """The ``code`` of an :class:`Error` frame.  Clients switch on these, never on text."""

    # the stream (fatal: the connection is closed after the error)
    BAD_FRAME = "bad_frame"
    FRAME_TOO_LARGE = "frame_too_large"
    TRUNCATED_FRAME = "truncated_frame"
    MALFORMED_HEADER = "malformed_header"
    # one message (the connection stays open)
    BAD_MESSAGE = "bad_message"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_FIELD = "invalid_field"
    NOT_READY = "not_ready"  # anything but hello before the handshake
    ALREADY_HELLO = "already_hello"
    TEXT_TOO_LONG = "text_too_long"
    NO_SUCH_NICK = "no_such_nick"
    NO_SUCH_ROOM = "no_such_room"
    INVALID_ROOM = "invalid_room"
    NOT_IN_ROOM = "not_in_room"  # 1.3: a room message for a room you are not in
    TOO_MANY_ROOMS = "too_many_rooms"  # 1.3: over the server's max_rooms
    RATE_LIMITED = "rate_limited"  # "slow down": the message was not sent
    NOT_OPERATOR = "not_operator"  # that needs operator rights
    MUTED = "muted"  # an operator muted you: the message was not sent
    # running a room (1.5)
    NOT_ROOM_OPERATOR = "not_room_operator"  # that needs the room's operator (or a server operator)
    MODERATED = "moderated"  # the room is moderated and you are not voiced: the message was not sent
    BANNED_FROM_ROOM = "banned_from_room"  # a ban of the room matches you
    INVITE_ONLY = "invite_only"  # the room is invite-only and you were not invited
    ROOM_FULL = "room_full"  # the room is at its member limit
    KEY_NEEDED = "key_needed"  # the room has a key: a challenge follows (or the proof was wrong)
    # file sharing
    FILES_DISABLED = "files_disabled"  # this server does not relay files
    FILE_TOO_LARGE = "file_too_large"  # over the server's max_file limit
    NO_RECIPIENTS = "no_recipients"  # nobody else is in the room
    NO_SUCH_TRANSFER = "no_such_transfer"  # unknown, expired, cancelled, or not offered to you
    TOO_MANY_TRANSFERS = "too_many_transfers"
    BAD_TRANSFER = "bad_transfer"  # a chunk out of order or beyond its credit: the transfer is cancelled
    # handshake
    VERSION_MISMATCH = "version_mismatch"
    INVALID_NICK = "invalid_nick"
    NICK_TAKEN = "nick_taken"
    SERVER_FULL = "server_full"
    TOO_MANY_CONNECTIONS = "too_many_connections"  # over the server's limit per address
    RESUME_REFUSED = "resume_refused"
    AUTH_REQUIRED = "auth_required"
    AUTH_FAILED = "auth_failed"
    TLS_REQUIRED = "tls_required"  # a plaintext hello on a TLS server
    # the server ends the connection
    TIMED_OUT = "timed_out"
    TOO_SLOW = "too_slow"
    FLOODING = "flooding"
    KICKED = "kicked"
    BANNED = "banned"
    SHUTTING_DOWN = "shutting_down"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"  # a cluster's shared store cannot be reached: not done, try again
    UNCONFIRMED = "unconfirmed"  # the store stopped answering mid-way: maybe done; send again, same id


class TypingState(enum.StrEnum):
    """What a ``typing`` notice says (IRCv3's ``+typing`` values)."""

    ACTIVE = "active"  # typing now (said again at most every few seconds while it lasts)
    PAUSED = "paused"  # stopped typing, with text still in the box
    DONE = "done"  # the box is empty again (or the message was sent)


class PresenceEvent(enum.StrEnum):
    JOIN = "join"
    LEAVE = "leave"
    NICK = "nick"
    AWAY = "away"
    BACK = "back"
    RECONNECTED = "reconnected"


_VERSION = re.compile(r"([0-9]{1,6})\.[0-9]{1,6}")


def major_version(version: str) -> int | None:
    """The major number of a ``"MAJOR.MINOR"`` string (ASCII digits, nothing else), or
    None if it is not one."""
    match = _VERSION.fullmatch(version)
    return int(match.group(1)) if match else None


def speaks(version: str, minor: int) -> bool:
    """Does a peer that said ``version`` (1.x) understand what 1.``minor`` added?"""
    match = _VERSION.fullmatch(version)
    return match is not None and int(version.split(".")[1]) >= minor


# --------------------------------------------------------------------------- machinery

#: Integers on the wire are 64-bit signed: what every language's JSON library can hold.
Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
#: A sequence number: checked in msgspec's C pass when decoded, so a chat the server
#: stamps (by the thousand) runs no Python check when built.
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]

#: type name -> message class
MESSAGE_TYPES: dict[str, type[Message]] = {}


class Message(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    """Base of every message.  A subclass is declared ``class Chat(Message, tag="chat")``.

    ``gc=False``: frozen, holding only strings, numbers, bytes, plain dicts of those and
    records, a message can never be part of a reference cycle, so the cycle collector
    need not track the thousands a busy room builds each second."""

    TYPE: ClassVar[str] = ""
    #: Fields holding records (member lists, history): encoded with their None fields dropped too.
    _NESTED: ClassVar[frozenset[str]] = frozenset()
    _HAS_BODY: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Only a type with rules gets a ``__post_init__`` (msgspec runs it on every
        # construction and decode): an ack or a presence the server builds by the
        # thousand skips an empty call.
        super().__init_subclass__(**kwargs)
        if cls.check is not Message.check and "__post_init__" not in cls.__dict__:
            cls.__post_init__ = cls.check  # type: ignore[attr-defined]

    def check(self) -> None:
        """Raise :class:`LocalProtocolError` (via ``_require``) if a value is out of range."""

    def to_header(self) -> dict[str, Any]:
        """The JSON-ready header (without the body) for this message: ``None`` fields left out."""
        header: dict[str, Any] = {"type": self.TYPE}
        nested = self._NESTED
        for name, value in msgspec.structs.asdict(self).items():
            if value is None:
                continue
            if nested and name in nested:
                value = _records(value)
            header[name] = value
        if self._HAS_BODY:
            del header["data"]
        return header


class _Record(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Base of nested records (not messages): member and room descriptions (untracked
    by the cycle collector, as messages are)."""


_asdict = msgspec.structs.asdict

#: The one JSON encoder of messages and records (codec.py uses it too).
ENCODER = msgspec.json.Encoder()

#: id(tuple of records) -> (that tuple, its JSON): a room shares one member list and
#: one history tuple among the welcomes of a wave of arrivals, so each is encoded once.
_ENCODED: dict[int, tuple[tuple[Any, ...], msgspec.Raw]] = {}
_ENCODED_MAX = 64


def _records(values: tuple[Any, ...]) -> Any:
    """A tuple of flat records, JSON-ready: encoded once per tuple object (the entry
    holds the tuple, so its id cannot be reused while cached)."""
    if len(values) < 8:
        return [_record(v) for v in values]
    hit = _ENCODED.get(id(values))
    if hit is not None and hit[0] is values:
        return hit[1]
    raw = msgspec.Raw(ENCODER.encode([_record(v) for v in values]))
    if len(_ENCODED) >= _ENCODED_MAX:
        _ENCODED.clear()
    _ENCODED[id(values)] = (values, raw)
    return raw


def _record(value: msgspec.Struct) -> dict[str, Any]:
    """A flat record (a member, a room, a chat in a history list) without its None
    fields; a message keeps its type."""
    fields = {k: v for k, v in _asdict(value).items() if v is not None}
    return {"type": value.TYPE, **fields} if isinstance(value, Message) else fields


class _FieldProblem(LocalProtocolError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _require(ok: bool, field: str, problem: str) -> None:
    if not ok:
        raise _FieldProblem(field, problem)


def _check_hex(value: str | None, field: str, length: int) -> None:
    if value is not None:
        ok = len(value) == length and all(c in "0123456789abcdef" for c in value)
        _require(ok, field, f"must be {length} lowercase hex digits")


def _check_text_and_id(msg_id: str, text: str) -> None:
    """Say which rule of a chat message failed (id, then text)."""
    _check_id(msg_id)
    _require(bool(text), "text", "must not be empty")


def _check_id(value: str | None, field: str = "id") -> None:
    if value is not None:
        _require(0 < len(value) <= MAX_ID_LENGTH, field, f"must be 1-{MAX_ID_LENGTH} characters")


# --------------------------------------------------------------------------- records


class MemberInfo(_Record, frozen=True):
    """One member as shown by /who: ``idle`` in seconds since their last message."""

    nick: str
    idle: float = 0.0
    away: str | None = None
    op: bool = False
    address: str | None = None  # only shown to operators
    role: str | None = None  # 1.5: "@" an operator of this room, "+" voiced in it


class RoomInfo(_Record, frozen=True):
    name: str
    members: Int = 0
    topic: str = ""
