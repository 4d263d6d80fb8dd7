"""Typed messages: what a frame header means.  No I/O here.

Every message is a frozen ``msgspec.Struct`` named as a noun, tagged by its wire
``"type"`` (:attr:`Message.TYPE`); its other keys are the struct's fields.  Fields that
are ``None`` are left out on the wire, and absent optional fields decode to their
defaults.  Unknown keys are ignored, so a later minor version may add fields without
breaking older peers.  A field named ``data`` of type ``bytes`` travels as the frame's
raw body, not in the JSON.

Decoding and validating a header is one C pass (msgspec), straight from the header's
bytes: types, integer ranges and the per-message rules (``check``) together.  A bad
field raises :class:`~chatroom.errors.InvalidField` naming it, an unknown type
:class:`~chatroom.errors.UnknownMessageType` -- never a bare ``KeyError``/``TypeError``
or a msgspec exception.
"""

from __future__ import annotations

import enum
import json
import math
import re
from typing import Annotated, Any, ClassVar

import msgspec

from chatroom.errors import InvalidField, LocalProtocolError, MalformedHeader, UnknownMessageType
from chatroom.protocol.framing import BODY_KEY, MAX_BODY_SIZE, MAX_HEADER_SIZE, PREFIX, Frame, pack_frame, parse_header
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
    "Crowd",
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
    "encode_plain",
    "decode_message",
    "message_from_header",
    "claimed_id",
    "major_version",
    "speaks",
    "LARGE_ROOM",
    "SEVERAL_ROOMS",
    "MAX_ROOMS",
    "Part",
    "Parted",
    "Whois",
    "User",
    "Search",
    "Found",
    "MAX_SEARCH_TEXT",
    "MAX_CROWD_NAMES",
]

#: The TCP port a server listens on unless told otherwise.
DEFAULT_PORT = 7373

#: "MAJOR.MINOR".  Peers with another major version cannot talk; a newer minor only adds.
PROTOCOL_VERSION = "1.3"

#: Rooms with at least this many members (besides whoever joins or leaves) sum their
#: joins and leaves up in one ``crowd`` frame per tick instead of one ``presence`` each:
#: a room of thousands would otherwise turn every arrival into thousands of frames.
LARGE_ROOM = 200

#: The protocol minor version that lets a member be in several rooms at once (``join``
#: adds a room, ``part`` leaves one).  Older clients are in one room: ``join`` moves them.
SEVERAL_ROOMS = 3

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
    raw = msgspec.Raw(_ENCODER.encode([_record(v) for v in values]))
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


class RoomInfo(_Record, frozen=True):
    name: str
    members: Int = 0
    topic: str = ""


# --------------------------------------------------------------------------- messages


class Chat(Message, tag="chat", frozen=True):
    """A room message as the server relays it: stamped with time and sequence number."""

    room: str
    seq: Seq
    ts: float
    nick: str
    text: str
    action: bool = False
    id: str | None = None  # the sender's client message id


class Hello(Message, tag="hello", frozen=True):
    """First message of a client.  ``resume`` and ``last_seq`` reclaim a session."""

    version: str
    nick: str
    client: str = ""
    room: str | None = None
    resume: str | None = None
    last_seq: Int | None = None
    nonce: str | None = None  # 64 hex digits: the client's half of a password exchange
    #: 1.3, resuming: room name -> the newest sequence number seen there (every room of
    #: the session; ``last_seq`` stands for the welcome's room when it is not named)
    seen: dict[str, Int] | None = None

    def check(self) -> None:
        _require(major_version(self.version) is not None, "version", "must be MAJOR.MINOR")
        _check_hex(self.nonce, "nonce", 64)


class Welcome(Message, tag="welcome", frozen=True):
    """The server's answer to a good hello: who we are, where we are, what we missed."""

    version: str
    server: str
    nick: str
    room: str
    topic: str = ""
    members: tuple[MemberInfo, ...] = ()
    member_count: Int = 0  # everyone in the room; `members` lists at most MAX_LISTED_MEMBERS
    history: tuple[Chat, ...] = ()
    last_seq: Int = 0  # the room's newest sequence number now: where "missed" starts from
    limits: dict[str, Int] = msgspec.field(default_factory=dict)
    resume_token: str | None = None
    resumed: bool = False
    proof: str | None = None  # password rooms: the server's proof that it knows the password
    #: resumed: how many room messages after hello.last_seq follow in ``history`` frames
    #: marked ``replay`` (if fewer than ``last_seq - hello.last_seq``, fetch the rest)
    missed: Int | None = None


class Say(Message, tag="say", frozen=True):
    """Chat text to a room.  May span several lines (a paste is one message).  ``room``:
    1.3, which of your rooms (needed when you are in several)."""

    id: str
    text: str
    room: str | None = None

    def check(self) -> None:
        if not (self.text and 0 < len(self.id) <= MAX_ID_LENGTH):  # one test on the hot path
            _check_text_and_id(self.id, self.text)


class Action(Message, tag="action", frozen=True):
    """An action ("/me waves") to a room (``room`` as in :class:`Say`)."""

    id: str
    text: str
    room: str | None = None

    def check(self) -> None:
        if not (self.text and 0 < len(self.id) <= MAX_ID_LENGTH):  # one test on the hot path
            _check_text_and_id(self.id, self.text)


class Direct(Message, tag="direct", frozen=True):
    """A private message to one nick, wherever they are."""

    id: str
    to: str
    text: str

    def check(self) -> None:
        if not (self.text and 0 < len(self.id) <= MAX_ID_LENGTH):  # one test on the hot path
            _check_text_and_id(self.id, self.text)


class Join(Message, tag="join", frozen=True):
    """Go into ``room``, creating it if it does not exist: in addition to your other
    rooms (1.3), or instead of your room (1.0-1.2)."""

    room: str


class Part(Message, tag="part", frozen=True):
    """1.3: leave ``room`` (the others see ``left`` or ``left: REASON``)."""

    room: str
    reason: str = ""


class Parted(Message, tag="parted", frozen=True):
    """1.3: the answer to ``part``: you are no longer in ``room``."""

    room: str


class Whois(Message, tag="whois", frozen=True):
    """1.3: who is ``nick``?  Answered with ``user``."""

    nick: str


class User(Message, tag="user", frozen=True):
    """1.3: one member: its rooms, idle time, away message; ``held``: its connection
    dropped and the server keeps its session for a resume."""

    nick: str
    rooms: tuple[str, ...] = ()
    idle: float = 0.0
    away: str | None = None
    op: bool = False
    held: bool = False
    address: str | None = None  # only shown to operators


class Search(Message, tag="search", frozen=True):
    """1.3: the newest messages of ``room`` containing ``text`` (ignoring case)."""

    room: str
    text: str
    limit: Int = 50

    def check(self) -> None:
        _require(0 < len(self.text) <= MAX_SEARCH_TEXT, "text", f"must be 1-{MAX_SEARCH_TEXT} characters")
        _require(self.limit > 0, "limit", "must be positive")


class Found(Message, tag="found", frozen=True):
    """1.3: the answer to ``search``: matching messages, oldest first; ``complete``:
    every match the server searched is here (none was cut by the limit)."""

    room: str
    text: str
    messages: tuple[Chat, ...] = ()
    complete: bool = True


class ListRooms(Message, tag="list_rooms", frozen=True):
    pass


class SetTopic(Message, tag="set_topic", frozen=True):
    topic: str
    room: str | None = None  # 1.3: which of your rooms


class Nick(Message, tag="nick", frozen=True):
    nick: str


class Away(Message, tag="away", frozen=True):
    """Mark oneself away with ``message``; without a message, back again."""

    message: str | None = None


class Who(Message, tag="who", frozen=True):
    room: str | None = None


class FetchHistory(Message, tag="fetch_history", frozen=True):
    """Ask for up to ``limit`` room messages with a sequence number below ``before``
    (the newest of those), or, with ``after`` instead, above ``after`` (the oldest of
    those: filling a hole going forward).  Both bounds are exclusive."""

    room: str
    before: Int | None = None
    limit: Int = 50
    after: Int | None = None

    def check(self) -> None:
        _require(self.limit > 0, "limit", "must be positive")
        _require((self.before is None) != (self.after is None), "before", "give exactly one of before and after")


class Ack(Message, tag="ack", frozen=True):
    """The server accepted the client's message ``id``; ``seq`` is its place in the room."""

    id: str
    ts: float
    seq: Int | None = None
    room: str | None = None
    duplicate: bool = False  # a resend of an id already accepted: nothing was re-broadcast


class Private(Message, tag="private", frozen=True):
    """A direct message, delivered to its recipient and echoed to its sender."""

    nick: str
    to: str
    text: str
    ts: float
    id: str | None = None


class Presence(Message, tag="presence", frozen=True):
    """Someone joined, left, changed nick, went away or came back."""

    room: str
    event: PresenceEvent
    nick: str
    ts: float
    reason: str | None = None  # leave: quit, timed out, too slow, kicked...
    new_nick: str | None = None  # nick
    message: str | None = None  # away


class Crowd(Message, tag="crowd", frozen=True):
    """Protocol 1.2: in a large room (``LARGE_ROOM``), who joined and who left since the
    last tick (about half a second), in place of a ``presence`` each.  ``joined`` and
    ``left`` name at most ``MAX_CROWD_NAMES``; the counts count everyone."""

    room: str
    ts: float
    joined: tuple[str, ...] = ()
    left: tuple[str, ...] = ()
    joined_count: Int = 0
    left_count: Int = 0
    member_count: Int = 0


class Members(Message, tag="members", frozen=True):
    room: str
    members: tuple[MemberInfo, ...] = ()
    member_count: Int = 0


class Rooms(Message, tag="rooms", frozen=True):
    rooms: tuple[RoomInfo, ...] = ()


class Joined(Message, tag="joined", frozen=True):
    """We are now in ``room``: its topic, members and recent history."""

    room: str
    topic: str = ""
    members: tuple[MemberInfo, ...] = ()
    member_count: Int = 0
    history: tuple[Chat, ...] = ()
    last_seq: Int = 0
    #: 1.3, after a resumed welcome: this room of the session, with how many of its
    #: messages after ``hello.seen[room]`` follow in ``replay`` history frames (``history``
    #: is then empty)
    resumed: bool = False
    missed: Int | None = None


class Topic(Message, tag="topic", frozen=True):
    room: str
    topic: str
    nick: str
    ts: float


class History(Message, tag="history", frozen=True):
    """Older room messages, oldest first.  ``complete`` means nothing older exists."""

    room: str
    messages: tuple[Chat, ...] = ()
    complete: bool = False
    replay: bool = False  # part of the replay after a resumed welcome (see Welcome.missed)


class Error(Message, tag="error", frozen=True):
    """Something went wrong.  ``id`` names the client message it answers, if any;
    ``fatal`` says the server closes the connection after this frame."""

    code: str
    message: str
    id: str | None = None
    fatal: bool = False
    suggestion: str | None = None  # nick_taken: a free nick close to the one asked for


class Challenge(Message, tag="challenge", frozen=True):
    """The room needs a password: the server's nonce and the KDF salt.  The server
    proves its own knowledge only after the client has (in ``welcome.proof``), so
    connecting gives nobody anything to guess the password against offline."""

    nonce: str
    salt: str

    def check(self) -> None:
        _check_hex(self.nonce, "nonce", 64)
        _require(0 < len(self.salt) <= 128, "salt", "must be 1-128 hex digits")


class Auth(Message, tag="auth", frozen=True):
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


class Op(Message, tag="op", frozen=True):
    """Become an operator with the server's operator token."""

    token: str


class Moderate(Message, tag="moderate", frozen=True):
    """An operator's action.  ``target``: a nick, or an address for ban/unban;
    ``duration`` in seconds (absent: until lifted)."""

    action: ModAction
    target: str = ""
    reason: str = ""
    duration: float | None = None
    room: str | None = None  # 1.3, lock/unlock: which of your rooms

    def check(self) -> None:
        _require(self.duration is None or self.duration > 0, "duration", "must be positive")


class Notice(Message, tag="notice", frozen=True):
    """Information for one client from the server (not from a peer)."""

    text: str


class Ping(Message, tag="ping", frozen=True):
    token: str = ""


class Pong(Message, tag="pong", frozen=True):
    token: str = ""


class Bye(Message, tag="bye", frozen=True):
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


class OfferFile(Message, tag="offer_file", frozen=True):
    """Offer a file to the current room, or to one nick with ``to``."""

    id: str
    name: str
    size: Int
    sha256: str  # of the whole file, 64 lowercase hex digits
    to: str | None = None
    room: str | None = None  # 1.3: which of your rooms (without ``to``)

    def check(self) -> None:
        _check_id(self.id)
        _require(0 < len(self.name) <= 1024, "name", "must be 1-1024 characters")
        _require(self.size >= 0, "size", "must not be negative")
        _check_sha256(self.sha256)


class FileOffer(Message, tag="file_offer", frozen=True):
    """A file on offer, to each recipient -- and to its sender with the sender's ``id``,
    which is how the sender learns the ``transfer`` number."""

    transfer: Int
    name: str  # as the sender named it, control characters removed; receivers sanitise it again
    size: Int
    sha256: str
    nick: str  # who offers it
    ts: float
    expires_in: float  # seconds the offer stays open to /accept
    room: str | None = None  # offered to this room ...
    to: str | None = None  # ... or to this one nick
    recipients: Int = 0  # how many it was offered to
    id: str | None = None  # the sender's offer_file id (only in the sender's copy)

    def check(self) -> None:
        _require(self.size >= 0, "size", "must not be negative")
        _check_sha256(self.sha256)


class AcceptFile(Message, tag="accept_file", frozen=True):
    """Take an offer.  A refusal (expired, too many at once) names ``id``, if given."""

    transfer: Int
    id: str | None = None

    def check(self) -> None:
        _check_id(self.id)


class RejectFile(Message, tag="reject_file", frozen=True):
    transfer: Int


class CancelFile(Message, tag="cancel_file", frozen=True):
    """Stop a transfer: the sender stops it for everyone, a receiver only for itself."""

    transfer: Int
    reason: str = ""


class FileSend(Message, tag="file_send", frozen=True):
    """To the sender: send the file from byte 0 (round ``round``) to ``receivers``; you
    may send the bytes before offset ``credit`` now."""

    transfer: Int
    round: Int
    credit: Int
    receivers: tuple[str, ...] = ()


class FileCredit(Message, tag="file_credit", frozen=True):
    """To the sender: you may now send the bytes before offset ``credit``."""

    transfer: Int
    round: Int
    credit: Int


class FileChunk(Message, tag="file_chunk", frozen=True):
    """From the sender: the bytes at ``offset`` (the body).  Offsets follow each other
    exactly and stay within the credit; a zero-byte file is one empty chunk."""

    transfer: Int
    round: Int
    offset: Int
    data: bytes = b""

    def check(self) -> None:
        _require(self.offset >= 0, "offset", "must not be negative")
        _require(len(self.data) <= MAX_CHUNK, "body", f"a chunk is at most {MAX_CHUNK} bytes")


class FileData(Message, tag="file_data", frozen=True):
    """To a receiver: the bytes at ``offset`` (the body), in order, from 0 to the size."""

    transfer: Int
    offset: Int
    data: bytes = b""

    def check(self) -> None:
        _require(self.offset >= 0, "offset", "must not be negative")


class FileAck(Message, tag="file_ack", frozen=True):
    """From a receiver: I have stored every byte before ``offset``."""

    transfer: Int
    offset: Int


class FileDone(Message, tag="file_done", frozen=True):
    """From a receiver, after the last byte: whether the SHA-256 matched and the file was kept."""

    transfer: Int
    ok: bool
    reason: str = ""


class FileUpdate(Message, tag="file_update", frozen=True):
    """Something happened to a transfer: ``nick`` (who) did ``event``, maybe with a ``reason``."""

    transfer: Int
    event: FileEvent
    nick: str = ""
    reason: str = ""
    over: bool = False  # the transfer is over for whoever gets this update


# --------------------------------------------------------------------------- encode / decode


def _register() -> None:
    """Index every message class by its type, and note which fields need care."""
    pending = list(Message.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        tag = cls.__struct_config__.tag
        assert isinstance(tag, str)  # (every message names its type)
        cls.TYPE = tag
        fields = msgspec.structs.fields(cls)
        cls._NESTED = frozenset(f.name for f in fields if _holds_records(f.type))
        cls._HAS_BODY = any(f.name == "data" for f in fields)
        MESSAGE_TYPES[tag] = cls


def _holds_records(tp: Any) -> bool:
    text = repr(tp)
    return any(name in text for name in ("MemberInfo", "RoomInfo", "Chat"))


_register()

#: One decoder per message type: the frame's envelope already said which.
#: type name -> (class, its decoder, whether it carries a body): one lookup per frame.
_DECODING = {name: (cls, msgspec.json.Decoder(cls), cls._HAS_BODY) for name, cls in MESSAGE_TYPES.items()}
_ENCODER = msgspec.json.Encoder()


def encode_message(
    msg: Message, *, max_header: int = MAX_HEADER_SIZE, max_body: int = MAX_BODY_SIZE
) -> bytes:
    """The complete wire frame for ``msg``."""
    body = b""
    try:
        if not msg._NESTED and not msg._HAS_BODY and None not in msgspec.structs.astuple(msg):
            data = _ENCODER.encode(msg)  # nothing to leave out: the struct as it is (most chats, acks)
        else:
            header = msg.to_header()
            body = msg.data if msg._HAS_BODY else b""  # type: ignore[attr-defined]
            if body:
                header[BODY_KEY] = len(body)
            data = _ENCODER.encode(header)
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise LocalProtocolError(f"header cannot be encoded: {exc}") from None
    return pack_frame(data, body, max_header=max_header, max_body=max_body)


def encode_plain(msg: Message, max_header: int = MAX_HEADER_SIZE) -> bytes:
    """:func:`encode_message` for a message with every field set -- no None to leave
    out, no body, no records (a chat the server stamped, its ack): one C pass and the
    prefix, for the hot path.  The caller vouches for that; the result is the same."""
    data = _ENCODER.encode(msg)
    size = len(data)
    if size > max_header:
        raise LocalProtocolError(f"header of {size} bytes is over {max_header}")
    return (_PREFIXES[size] if size < _PREFIXED else PREFIX.pack(size)) + data


#: The length prefixes of short headers, made once (a chat is a few hundred bytes).
_PREFIXED = 4096
_PREFIXES = tuple(PREFIX.pack(size) for size in range(_PREFIXED))


def decode_message(frame: Frame) -> Message:
    """The typed message carried by ``frame``."""
    return _decode(frame.type, frame.raw_header, frame.body, frame.declares_body)


def message_from_header(header: dict[str, Any], body: bytes = b"") -> Message:
    """Validate a decoded header (and body) and build its typed message."""
    try:
        raw = json.dumps(header, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidField(str(header.get("type")), "", f"not JSON: {exc}") from None
    return _decode(header.get("type"), raw, body, BODY_KEY in header)


def _decode(type_name: object, raw: bytes, body: bytes, declares_body: bool) -> Message:
    entry = _DECODING.get(type_name) if isinstance(type_name, str) else None
    if entry is None:
        raise UnknownMessageType(type_name)
    cls, decoder, has_body = entry
    if (body or declares_body) and not has_body:
        raise InvalidField(cls.TYPE, BODY_KEY, "this message carries no body")
    try:
        msg = decoder.decode(raw)
        if has_body:
            msg = msgspec.structs.replace(msg, data=body)
    except _FieldProblem as exc:
        raise InvalidField(cls.TYPE, exc.field, exc.problem) from None
    except msgspec.ValidationError as exc:
        raise _invalid(cls.TYPE, str(exc)) from None
    except msgspec.DecodeError:
        raise _undecodable(cls.TYPE, raw) from None
    return msg


_AT = re.compile(r"(.*?)(?: - at `\$\.?(.*)`)?")


#: msgspec's wording -> ours (the range first: it begins like the type).
_PROBLEMS = (
    ("Expected `int` <= 9223372036854775807", "integer out of range"),
    ("Expected `int` >= -9223372036854775808", "integer out of range"),
    ("Expected `int` >= 0", "must not be negative"),
    ("Expected `str`", "expected a string"),
    ("Expected `int`", "expected an integer"),
    ("Expected `bool`", "expected true or false"),
    ("Expected `float`", "expected a number"),
    ("Expected `array`", "expected a list"),
    ("Expected `object`", "expected an object"),
    ("Invalid enum value", "not one of the allowed values:"),
    ("Integer value out of range", "integer out of range"),
)


def _invalid(type_name: str, text: str) -> InvalidField:
    """msgspec's "Expected `int`, got `str` - at `$.seq`" as an InvalidField."""
    match = _AT.fullmatch(text)
    problem, path = (match.group(1), match.group(2) or "") if match else (text, "")
    missing = re.fullmatch(r"Object missing required field `(\w+)`", problem)
    if missing:
        return InvalidField(type_name, f"{path}.{missing.group(1)}" if path else missing.group(1), "missing")
    for theirs, ours in _PROBLEMS:
        problem = problem.replace(theirs, ours)
    return InvalidField(type_name, path, problem)


def _undecodable(type_name: str, raw: bytes) -> InvalidField:
    """msgspec refused JSON that the framing accepted: a lone surrogate (``"\\ud83d"``)
    or a NaN/Infinity.  Find the field that holds it, to name it."""
    try:
        header = parse_header(raw)
    except MalformedHeader as exc:  # e.g. also a number too long for Python's own parser
        return InvalidField(type_name, "", str(exc))
    for name, value in header.items():
        problem = _unrepresentable(value)
        if problem is not None:
            return InvalidField(type_name, name, problem)
    return InvalidField(type_name, "", "cannot be decoded")


class _Claimed(msgspec.Struct):
    id: Any = None


_CLAIMED = msgspec.json.Decoder(_Claimed)


def claimed_id(frame: Frame) -> Any:
    """The ``id`` a frame's header holds, whatever it is, for echoing in an error about
    it (the caller checks that it is a sane id); None if it has none or is unreadable."""
    try:
        return _CLAIMED.decode(frame.raw_header).id
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        try:
            return parse_header(frame.raw_header).get("id")
        except MalformedHeader:
            return None


def _unrepresentable(value: Any) -> str | None:
    if isinstance(value, str):
        at = unencodable(value)
        if at is not None:
            return f"not valid Unicode: a lone surrogate U+{ord(value[at]):04X} at character {at}"
    elif isinstance(value, float) and not math.isfinite(value):
        return f"expected a number, got {value}"
    elif isinstance(value, dict):
        for k, v in value.items():
            problem = _unrepresentable(k) or _unrepresentable(v)
            if problem is not None:
                return problem
    elif isinstance(value, list):
        for v in value:
            problem = _unrepresentable(v)
            if problem is not None:
                return problem
    return None
