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
from typing import ClassVar

import msgspec

from chatroom.protocol.base import (
    MAX_ID_LENGTH,
    MAX_SEARCH_TEXT,
    Int,
    MemberInfo,
    Message,
    PresenceEvent,
    RoomInfo,
    Seq,
    TypingState,
    _check_hex,
    _check_text_and_id,
    _require,
    major_version,
)
from chatroom.protocol.roles import ModeChange

__all__ = [
    "Hello",
    "Say",
    "Action",
    "Direct",
    "Join",
    "ListRooms",
    "SetTopic",
    "Nick",
    "Away",
    "Typing",
    "Who",
    "FetchHistory",
    "Welcome",
    "Ack",
    "Chat",
    "TaggedChat",
    "Private",
    "Presence",
    "Crowd",
    "Members",
    "Rooms",
    "Joined",
    "Topic",
    "History",
    "Error",
    "Challenge",
    "Auth",
    "ModAction",
    "Op",
    "Moderate",
    "Notice",
    "Ping",
    "Pong",
    "Bye",
    "Part",
    "Parted",
    "Whois",
    "User",
    "Search",
    "Found",
]


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


class TaggedChat(Chat, tag="chat", frozen=True):
    """A chat with what only some doors say: the client-only tags its sender attached
    (IRCv3's ``+name=value``: a reply marker, a reaction...), or that it was sent as an
    IRC NOTICE.  A ``chat`` on the wire with two fields more.  Not a type of its own
    (decoded as a :class:`Chat`); a class apart so that the plain chats -- nearly all --
    carry no empty field on the hot path."""

    tags: dict[str, str] = msgspec.field(default_factory=dict)
    notice: bool = False
    ALIAS: ClassVar[bool] = True  # (not registered: "chat" is Chat's)


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
    action: ClassVar[bool] = False  # (not on the wire: the chat path's view of a message)
    tags: ClassVar[None] = None  # (nor client tags: only IRC clients attach them)
    notice: ClassVar[bool] = False

    def check(self) -> None:
        if not (self.text and 0 < len(self.id) <= MAX_ID_LENGTH):  # one test on the hot path
            _check_text_and_id(self.id, self.text)


class Action(Message, tag="action", frozen=True):
    """An action ("/me waves") to a room (``room`` as in :class:`Say`)."""

    id: str
    text: str
    room: str | None = None
    action: ClassVar[bool] = True
    tags: ClassVar[None] = None
    notice: ClassVar[bool] = False

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
    rooms (1.3), or instead of your room (1.0-1.2).  1.5, a room with a key: after the
    server's ``challenge``, again with your ``nonce`` and ``proof`` (as for the room
    password, with the room's key)."""

    room: str
    nonce: str | None = None
    proof: str | None = None

    def check(self) -> None:
        if self.nonce is not None or self.proof is not None:
            _check_hex(self.nonce or "", "nonce", 64)
            _check_hex(self.proof or "", "proof", 64)


class Part(Message, tag="part", frozen=True):
    """1.3: leave ``room`` (the others see ``left`` or ``left: REASON``)."""

    room: str
    reason: str = ""


class Parted(Message, tag="parted", frozen=True):
    """1.3: the answer to ``part``: you are no longer in ``room``.  1.5: also sent
    when a room's operator kicks you out of it (``reason``: ``kicked by NICK[: why]``)."""

    room: str
    reason: str | None = None


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
    """1.3: the newest messages of ``room`` containing ``text`` (ignoring case); 1.4:
    with ``before``, only those numbered below it (the next page of older matches)."""

    room: str
    text: str
    limit: Int = 50
    before: Int | None = None

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


class Typing(Message, tag="typing", frozen=True):
    """Protocol 1.4: someone is typing in ``room`` (``active``), stopped (``paused``) or
    cleared the box (``done``).  From a client: ``nick`` is ignored (the server puts
    the sender's); from the server: to the others in the room who speak 1.4."""

    state: TypingState
    room: str | None = None
    nick: str | None = None


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
    tags: dict[str, str] | None = None  # 1.5: client-only tags its sender attached (see TaggedChat)
    notice: bool | None = None  # 1.5: sent as an IRC NOTICE (None: not)


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
    proof: str | None = None  # 1.5, a room with a key: the server's proof that it knows it
    modes: tuple[ModeChange, ...] = ()  # 1.5: the room's modes that are on


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
    room: str | None = None  # 1.5: the key of this room, not the server's password

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
    """Information for one client from the server (not from a peer); ``to``: its nick
    when it has one (IRC addresses a NOTICE to it)."""

    text: str
    to: str | None = None


class Ping(Message, tag="ping", frozen=True):
    token: str = ""


class Pong(Message, tag="pong", frozen=True):
    token: str = ""


class Bye(Message, tag="bye", frozen=True):
    """A clean goodbye; the sender closes the connection after it."""

    reason: str = ""
