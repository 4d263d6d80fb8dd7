"""Typed messages: what a frame header means.  No I/O here.

Every message is a small frozen dataclass named as a noun; its wire form is a JSON
object whose ``"type"`` is the class's :attr:`Message.TYPE` and whose other keys are
the dataclass fields.  Fields that are ``None`` are left out on the wire, and absent
optional fields decode to their defaults.  Unknown keys are ignored, so a later minor
version may add fields without breaking older peers.  A field named ``data`` of type
``bytes`` travels as the frame's raw body, not in the JSON.

:func:`decode_message` validates every field against its annotation: a missing,
mistyped or out-of-range field raises :class:`~chatroom.errors.InvalidField`, an
unknown type :class:`~chatroom.errors.UnknownMessageType` -- never a bare
``KeyError``/``TypeError``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from chatroom.errors import InvalidField, LocalProtocolError, UnknownMessageType
from chatroom.protocol.framing import BODY_KEY, MAX_BODY_SIZE, MAX_HEADER_SIZE, Frame, encode_frame
from chatroom.text import unencodable

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
    # client -> server
    "Hello",
    "Say",
    "Action",
    "Direct",
    "Join",
    "ListRooms",
    "SetTopic",
    "Nick",
    "Away",
    "Who",
    "FetchHistory",
    # server -> client
    "Welcome",
    "Ack",
    "Chat",
    "Private",
    "Presence",
    "Members",
    "Rooms",
    "Joined",
    "Topic",
    "History",
    "Error",
    # both ways
    "Challenge",
    "Auth",
    "ModAction",
    "Op",
    "Moderate",
    "Notice",
    "Ping",
    "Pong",
    "Bye",
    # file sharing
    "FileEvent",
    "OfferFile",
    "AcceptFile",
    "RejectFile",
    "CancelFile",
    "FileChunk",
    "FileAck",
    "FileDone",
    "FileOffer",
    "FileSend",
    "FileCredit",
    "FileData",
    "FileUpdate",
    "MESSAGE_TYPES",
    "encode_message",
    "decode_message",
    "message_from_header",
    "major_version",
]

#: The TCP port a server listens on unless told otherwise.
DEFAULT_PORT = 7373

#: "MAJOR.MINOR".  Peers with another major version cannot talk; a newer minor only adds.
PROTOCOL_VERSION = "1.1"

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
    RATE_LIMITED = "rate_limited"  # "slow down": the message was not sent
    NOT_OPERATOR = "not_operator"  # that needs operator rights
    MUTED = "muted"  # an operator muted you: the message was not sent
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


# --------------------------------------------------------------------------- machinery

M = TypeVar("M", bound="Message")

#: type name -> message class
MESSAGE_TYPES: dict[str, type[Message]] = {}


class Message:
    """Base of every message.  Subclasses are made with :func:`_message`."""

    TYPE: ClassVar[str] = ""
    _FIELDS: ClassVar[tuple[tuple[str, Callable[[Any], Any], bool], ...]] = ()

    __slots__ = ()

    def to_header(self) -> dict[str, Any]:
        """The JSON-ready header (without the body) for this message."""
        header: dict[str, Any] = {"type": self.TYPE}
        for name, _, _ in self._FIELDS:
            value = getattr(self, name)
            if value is None or name == "data":
                continue
            # Plain values (the vast majority, on the broadcast path) go in as they are.
            header[name] = value if type(value) in _PLAIN else _to_json(value)
        return header

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise :class:`LocalProtocolError` if a value is out of range (per class)."""


_PLAIN = frozenset({str, int, float, bool})


def _to_json(value: Any) -> Any:
    if isinstance(value, Message | _Record):
        return {k: v for k, v in _record_items(value) if v is not None}
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _record_items(value: Any) -> list[tuple[str, Any]]:
    items = [(f.name, _to_json(getattr(value, f.name))) for f in dataclasses.fields(value)]
    if isinstance(value, Message):
        items.insert(0, ("type", value.TYPE))
    return items


class _Record:
    """Base of nested records (not messages): member and room descriptions."""

    __slots__ = ()

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        pass


def _converter(tp: Any, owner: str, name: str) -> Callable[[Any], Any]:
    """Build a function that validates a JSON value against annotation ``tp``."""

    def bad(problem: str) -> InvalidField:
        return InvalidField(owner, name, problem)

    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        conv = _converter(inner, owner, name)
        return lambda v: None if v is None else conv(v)
    if origin is tuple:
        return _tuple_of(_converter(typing.get_args(tp)[0], owner, name), bad)
    if origin is dict:
        return _dict_of(_converter(typing.get_args(tp)[1], owner, name), bad)
    if tp in _SCALARS:
        return _SCALARS[tp](bad)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_of(tp, bad)
    if isinstance(tp, type) and issubclass(tp, _Record | Message):
        return lambda v: _build(tp, v)
    raise TypeError(f"no converter for {tp!r}")  # a bug in a message definition


Bad = Callable[[str], InvalidField]


def _tuple_of(item: Callable[[Any], Any], bad: Bad) -> Callable[[Any], tuple[Any, ...]]:
    def to_tuple(v: Any) -> tuple[Any, ...]:
        if not isinstance(v, list):
            raise bad(f"expected a list, got {_json_type(v)}")
        return tuple(item(x) for x in v)

    return to_tuple


def _dict_of(val: Callable[[Any], Any], bad: Bad) -> Callable[[Any], dict[str, Any]]:
    def to_dict(v: Any) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise bad(f"expected an object, got {_json_type(v)}")
        for k in v:
            _check_encodable(k, bad)
        return {str(k): val(x) for k, x in v.items()}

    return to_dict


def _enum_of(tp: type[enum.Enum], bad: Bad) -> Callable[[Any], enum.Enum]:
    def to_enum(v: Any) -> enum.Enum:
        try:
            return tp(v)
        except ValueError:
            raise bad(f"{v!r} is not one of {[m.value for m in tp]}") from None

    return to_enum


def _str_of(bad: Bad) -> Callable[[Any], str]:
    def to_str(v: Any) -> str:
        if not isinstance(v, str):
            raise bad(f"expected a string, got {_json_type(v)}")
        _check_encodable(v, bad)
        return v

    return to_str


def _bool_of(bad: Bad) -> Callable[[Any], bool]:
    def to_bool(v: Any) -> bool:
        if not isinstance(v, bool):
            raise bad(f"expected true or false, got {_json_type(v)}")
        return v

    return to_bool


def _int_of(bad: Bad) -> Callable[[Any], int]:
    def to_int(v: Any) -> int:
        if type(v) is not int:
            raise bad(f"expected an integer, got {_json_type(v)}")
        if not -(2**63) <= v < 2**63:
            raise bad("integer out of range")
        return v

    return to_int


def _float_of(bad: Bad) -> Callable[[Any], float]:
    def to_float(v: Any) -> float:
        if type(v) not in (int, float) or not math.isfinite(v):
            raise bad(f"expected a number, got {_json_type(v)}")
        return float(v)

    return to_float


#: Plain JSON values: annotation -> converter factory.  ``bytes`` is a frame body, checked by the framing.
_SCALARS: dict[Any, Callable[[Bad], Callable[[Any], Any]]] = {
    str: _str_of, bool: _bool_of, int: _int_of, float: _float_of, bytes: lambda bad: lambda v: v,
}


def _check_encodable(v: str, bad: Callable[[str], InvalidField]) -> None:
    """Refuse what UTF-8 cannot encode: JSON lets a peer send a lone surrogate
    (``"\\ud83d"``), which would break every later attempt to store or relay it."""
    at = unencodable(v)
    if at is not None:
        raise bad(f"not valid Unicode: a lone surrogate U+{ord(v[at]):04X} at character {at}")


def _json_type(v: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "number"
    )


def _build(cls: Any, data: Any) -> Any:
    owner = cls.TYPE if issubclass(cls, Message) else cls.__name__
    if not isinstance(data, dict):
        raise InvalidField(owner, "", f"expected an object, got {_json_type(data)}")
    kwargs: dict[str, Any] = {}
    for name, conv, required in cls._FIELDS:
        if name in data:
            kwargs[name] = conv(data[name])
        elif required:
            raise InvalidField(owner, name, "missing")
    try:
        return cls(**kwargs)
    except LocalProtocolError as exc:
        raise InvalidField(owner, getattr(exc, "field", ""), str(exc)) from None


class _FieldProblem(LocalProtocolError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field


def _require(ok: bool, field: str, problem: str) -> None:
    if not ok:
        raise _FieldProblem(field, problem)


T = TypeVar("T")


def _finish(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen dataclass and precompute its field converters."""
    dc = dataclasses.dataclass(frozen=True, slots=True, kw_only=True)(cls)
    hints = typing.get_type_hints(dc)
    owner = getattr(dc, "TYPE", "") or dc.__name__
    dc._FIELDS = tuple(  # type: ignore[attr-defined]
        (
            f.name,
            _converter(hints[f.name], owner, f.name),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(dc)
    )
    return dc


def _message(type_name: str) -> Callable[[type[M]], type[M]]:
    def register(cls: type[M]) -> type[M]:
        cls.TYPE = type_name
        dc = _finish(cls)
        MESSAGE_TYPES[type_name] = dc
        return dc

    return register


def _check_hex(value: str | None, field: str, length: int) -> None:
    if value is not None:
        ok = len(value) == length and all(c in "0123456789abcdef" for c in value)
        _require(ok, field, f"must be {length} lowercase hex digits")


def _check_id(value: str | None, field: str = "id") -> None:
    if value is not None:
        _require(0 < len(value) <= MAX_ID_LENGTH, field, f"must be 1-{MAX_ID_LENGTH} characters")


# --------------------------------------------------------------------------- records


@_finish
class MemberInfo(_Record):
    """One member as shown by /who: ``idle`` in seconds since their last message."""

    nick: str
    idle: float = 0.0
    away: str | None = None
    op: bool = False
    address: str | None = None  # only shown to operators


@_finish
class RoomInfo(_Record):
    name: str
    members: int = 0
    topic: str = ""


# --------------------------------------------------------------------------- messages


@_message("chat")
class Chat(Message):
    """A room message as the server relays it: stamped with time and sequence number."""

    room: str
    seq: int
    ts: float
    nick: str
    text: str
    action: bool = False
    id: str | None = None  # the sender's client message id

    def check(self) -> None:
        _require(self.seq >= 0, "seq", "must not be negative")


@_message("hello")
class Hello(Message):
    """First message of a client.  ``resume`` and ``last_seq`` reclaim a session."""

    version: str
    nick: str
    client: str = ""
    room: str | None = None
    resume: str | None = None
    last_seq: int | None = None
    nonce: str | None = None  # 64 hex digits: the client's half of a password exchange

    def check(self) -> None:
        _require(major_version(self.version) is not None, "version", "must be MAJOR.MINOR")
        _check_hex(self.nonce, "nonce", 64)


@_message("welcome")
class Welcome(Message):
    """The server's answer to a good hello: who we are, where we are, what we missed."""

    version: str
    server: str
    nick: str
    room: str
    topic: str = ""
    members: tuple[MemberInfo, ...] = ()
    member_count: int = 0  # everyone in the room; `members` lists at most MAX_LISTED_MEMBERS
    history: tuple[Chat, ...] = ()
    last_seq: int = 0  # the room's newest sequence number now: where "missed" starts from
    limits: dict[str, int] = dataclasses.field(default_factory=dict)
    resume_token: str | None = None
    resumed: bool = False
    proof: str | None = None  # password rooms: the server's proof that it knows the password
    #: resumed: how many room messages after hello.last_seq follow in ``history`` frames
    #: marked ``replay`` (if fewer than ``last_seq - hello.last_seq``, fetch the rest)
    missed: int | None = None


@_message("say")
class Say(Message):
    """Chat text to the current room.  May span several lines (a paste is one message)."""

    id: str
    text: str

    def check(self) -> None:
        _check_id(self.id)
        _require(bool(self.text), "text", "must not be empty")


@_message("action")
class Action(Message):
    """An action ("/me waves") to the current room."""

    id: str
    text: str

    def check(self) -> None:
        _check_id(self.id)
        _require(bool(self.text), "text", "must not be empty")


@_message("direct")
class Direct(Message):
    """A private message to one nick, wherever they are."""

    id: str
    to: str
    text: str

    def check(self) -> None:
        _check_id(self.id)
        _require(bool(self.text), "text", "must not be empty")


@_message("join")
class Join(Message):
    """Move to ``room``, creating it if it does not exist."""

    room: str


@_message("list_rooms")
class ListRooms(Message):
    pass


@_message("set_topic")
class SetTopic(Message):
    topic: str


@_message("nick")
class Nick(Message):
    nick: str


@_message("away")
class Away(Message):
    """Mark oneself away with ``message``; without a message, back again."""

    message: str | None = None


@_message("who")
class Who(Message):
    room: str | None = None


@_message("fetch_history")
class FetchHistory(Message):
    """Ask for up to ``limit`` room messages with a sequence number below ``before``
    (the newest of those), or, with ``after`` instead, above ``after`` (the oldest of
    those: filling a hole going forward).  Both bounds are exclusive."""

    room: str
    before: int | None = None
    limit: int = 50
    after: int | None = None

    def check(self) -> None:
        _require(self.limit > 0, "limit", "must be positive")
        _require((self.before is None) != (self.after is None), "before", "give exactly one of before and after")


@_message("ack")
class Ack(Message):
    """The server accepted the client's message ``id``; ``seq`` is its place in the room."""

    id: str
    ts: float
    seq: int | None = None
    room: str | None = None
    duplicate: bool = False  # a resend of an id already accepted: nothing was re-broadcast


@_message("private")
class Private(Message):
    """A direct message, delivered to its recipient and echoed to its sender."""

    nick: str
    to: str
    text: str
    ts: float
    id: str | None = None


@_message("presence")
class Presence(Message):
    """Someone joined, left, changed nick, went away or came back."""

    room: str
    event: PresenceEvent
    nick: str
    ts: float
    reason: str | None = None  # leave: quit, timed out, too slow, kicked...
    new_nick: str | None = None  # nick
    message: str | None = None  # away


@_message("members")
class Members(Message):
    room: str
    members: tuple[MemberInfo, ...] = ()
    member_count: int = 0


@_message("rooms")
class Rooms(Message):
    rooms: tuple[RoomInfo, ...] = ()


@_message("joined")
class Joined(Message):
    """We are now in ``room``: its topic, members and recent history."""

    room: str
    topic: str = ""
    members: tuple[MemberInfo, ...] = ()
    member_count: int = 0
    history: tuple[Chat, ...] = ()
    last_seq: int = 0


@_message("topic")
class Topic(Message):
    room: str
    topic: str
    nick: str
    ts: float


@_message("history")
class History(Message):
    """Older room messages, oldest first.  ``complete`` means nothing older exists."""

    room: str
    messages: tuple[Chat, ...] = ()
    complete: bool = False
    replay: bool = False  # part of the replay after a resumed welcome (see Welcome.missed)


@_message("error")
class Error(Message):
    """Something went wrong.  ``id`` names the client message it answers, if any;
    ``fatal`` says the server closes the connection after this frame."""

    code: str
    message: str
    id: str | None = None
    fatal: bool = False
    suggestion: str | None = None  # nick_taken: a free nick close to the one asked for


@_message("challenge")
class Challenge(Message):
    """The room needs a password: the server's nonce and the KDF salt.  The server
    proves its own knowledge only after the client has (in ``welcome.proof``), so
    connecting gives nobody anything to guess the password against offline."""

    nonce: str
    salt: str

    def check(self) -> None:
        _check_hex(self.nonce, "nonce", 64)
        _require(0 < len(self.salt) <= 128, "salt", "must be 1-128 hex digits")


@_message("auth")
class Auth(Message):
    """The client's proof that it knows the room password."""

    proof: str

    def check(self) -> None:
        _check_hex(self.proof, "proof", 64)


class ModAction(enum.StrEnum):
    KICK = "kick"
    BAN = "ban"
    UNBAN = "unban"
    MUTE = "mute"
    UNMUTE = "unmute"
    LOCK = "lock"  # only operators may change this room's topic
    UNLOCK = "unlock"
    BANS = "bans"  # list the bans in force (answered with a notice)


@_message("op")
class Op(Message):
    """Become an operator with the server's operator token."""

    token: str


@_message("moderate")
class Moderate(Message):
    """An operator's action.  ``target``: a nick, or an address for ban/unban;
    ``duration`` in seconds (absent: until lifted)."""

    action: ModAction
    target: str = ""
    reason: str = ""
    duration: float | None = None

    def check(self) -> None:
        _require(self.duration is None or self.duration > 0, "duration", "must be positive")


@_message("notice")
class Notice(Message):
    """Information for one client from the server (not from a peer)."""

    text: str


@_message("ping")
class Ping(Message):
    token: str = ""


@_message("pong")
class Pong(Message):
    token: str = ""


@_message("bye")
class Bye(Message):
    """A clean goodbye; the sender closes the connection after it."""

    reason: str = ""


# --------------------------------------------------------------------------- file sharing
#
# A file travels from its sender through the server to each receiver in chunks that
# are raw frame bodies (``file_chunk`` in, ``file_data`` out), interleaved with chat.
# The server stores nothing: it passes each chunk on as it arrives, and the sender may
# only run ``credit`` bytes ahead of the slowest receiver's ``file_ack``, so what is in
# flight for one transfer is bounded whatever the speeds.  Every receiver gets the whole
# file from byte 0: the sender sends it once per *round* (``file_send``) to everyone
# who accepted before that round started.


class FileEvent(enum.StrEnum):
    """What a :class:`FileUpdate` reports."""

    ACCEPTED = "accepted"  # to the sender: ``nick`` accepted
    REJECTED = "rejected"  # to the sender: ``nick`` declined
    QUEUED = "queued"  # to a receiver: the file is being sent to others; yours follows
    RECEIVED = "received"  # to the sender: ``nick`` has the file, checksum verified
    FAILED = "failed"  # to either side: a reception failed (``nick``: whose; ``reason``: why)
    CANCELLED = "cancelled"  # to either side: ``nick`` cancelled
    EXPIRED = "expired"  # to who never answered: the offer timed out
    STOPPED = "stopped"  # to the sender: nobody is receiving this round any more: stop sending
    CLOSED = "closed"  # to the sender: the offer is over (expired, or everyone answered and was served)


def _check_sha256(value: str) -> None:
    _check_hex(value, "sha256", 64)


@_message("offer_file")
class OfferFile(Message):
    """Offer a file to the current room, or to one nick with ``to``."""

    id: str
    name: str
    size: int
    sha256: str  # of the whole file, 64 lowercase hex digits
    to: str | None = None

    def check(self) -> None:
        _check_id(self.id)
        _require(0 < len(self.name) <= 1024, "name", "must be 1-1024 characters")
        _require(self.size >= 0, "size", "must not be negative")
        _check_sha256(self.sha256)


@_message("file_offer")
class FileOffer(Message):
    """A file on offer, to each recipient -- and to its sender with the sender's ``id``,
    which is how the sender learns the ``transfer`` number."""

    transfer: int
    name: str  # as the sender named it, control characters removed; receivers sanitise it again
    size: int
    sha256: str
    nick: str  # who offers it
    ts: float
    expires_in: float  # seconds the offer stays open to /accept
    room: str | None = None  # offered to this room ...
    to: str | None = None  # ... or to this one nick
    recipients: int = 0  # how many it was offered to
    id: str | None = None  # the sender's offer_file id (only in the sender's copy)

    def check(self) -> None:
        _require(self.size >= 0, "size", "must not be negative")
        _check_sha256(self.sha256)


@_message("accept_file")
class AcceptFile(Message):
    """Take an offer.  A refusal (expired, too many at once) names ``id``, if given."""

    transfer: int
    id: str | None = None

    def check(self) -> None:
        _check_id(self.id)


@_message("reject_file")
class RejectFile(Message):
    transfer: int


@_message("cancel_file")
class CancelFile(Message):
    """Stop a transfer: the sender stops it for everyone, a receiver only for itself."""

    transfer: int
    reason: str = ""


@_message("file_send")
class FileSend(Message):
    """To the sender: send the file from byte 0 (round ``round``) to ``receivers``; you
    may send the bytes before offset ``credit`` now."""

    transfer: int
    round: int
    credit: int
    receivers: tuple[str, ...] = ()


@_message("file_credit")
class FileCredit(Message):
    """To the sender: you may now send the bytes before offset ``credit``."""

    transfer: int
    round: int
    credit: int


@_message("file_chunk")
class FileChunk(Message):
    """From the sender: the bytes at ``offset`` (the body).  Offsets follow each other
    exactly and stay within the credit; a zero-byte file is one empty chunk."""

    transfer: int
    round: int
    offset: int
    data: bytes = b""

    def check(self) -> None:
        _require(self.offset >= 0, "offset", "must not be negative")
        _require(len(self.data) <= MAX_CHUNK, "body", f"a chunk is at most {MAX_CHUNK} bytes")


@_message("file_data")
class FileData(Message):
    """To a receiver: the bytes at ``offset`` (the body), in order, from 0 to the size."""

    transfer: int
    offset: int
    data: bytes = b""

    def check(self) -> None:
        _require(self.offset >= 0, "offset", "must not be negative")


@_message("file_ack")
class FileAck(Message):
    """From a receiver: I have stored every byte before ``offset``."""

    transfer: int
    offset: int


@_message("file_done")
class FileDone(Message):
    """From a receiver, after the last byte: whether the SHA-256 matched and the file was kept."""

    transfer: int
    ok: bool
    reason: str = ""


@_message("file_update")
class FileUpdate(Message):
    """Something happened to a transfer: ``nick`` (who) did ``event``, maybe with a ``reason``."""

    transfer: int
    event: FileEvent
    nick: str = ""
    reason: str = ""
    over: bool = False  # the transfer is over for whoever gets this update


# --------------------------------------------------------------------------- encode / decode


def encode_message(
    msg: Message, *, max_header: int = MAX_HEADER_SIZE, max_body: int = MAX_BODY_SIZE
) -> bytes:
    """The complete wire frame for ``msg``."""
    body = getattr(msg, "data", b"") if any(n == "data" for n, _, _ in msg._FIELDS) else b""
    return encode_frame(msg.to_header(), body, max_header=max_header, max_body=max_body)


def message_from_header(header: dict[str, Any], body: bytes = b"") -> Message:
    """Validate a decoded header (and body) and build its typed message."""
    type_name = header.get("type")
    cls = MESSAGE_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise UnknownMessageType(type_name)
    if body or BODY_KEY in header:
        if not any(name == "data" for name, _, _ in cls._FIELDS):
            raise InvalidField(type_name, BODY_KEY, "this message carries no body")
        header = {k: v for k, v in header.items() if k != BODY_KEY}
        header["data"] = body
    msg: Message = _build(cls, header)
    return msg


def decode_message(frame: Frame) -> Message:
    """The typed message carried by ``frame``."""
    return message_from_header(frame.header, frame.body)
