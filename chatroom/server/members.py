"""What the chat rules act on (no I/O): members, rooms, what to send to whom, a
sanction and a shared room's snapshot.  The rules themselves are ``room.py``'s."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chatroom.protocol import (
    LARGE_ROOM,
    MAX_LISTED_MEMBERS,
    Chat,
    ErrorCode,
    MemberInfo,
    Message,
    RoomInfo,
)
from chatroom.server.bans import Ban
from chatroom.server.room_modes import RoomModes
from chatroom.text import (
    fold,
)

__all__ = ["DEFAULT_ROOM", "MAX_REASON", "address_ip", "owner_of", "Member", "Room", "Delivery", "Sanction",
           "RoomSnapshot"]


DEFAULT_ROOM = "lobby"

#: How stale the idle times in a member list may be (see ``Room.member_infos``).
LISTED_TTL = 1.0

#: A part's reason is shown to the room; a line, not an essay.
MAX_REASON = 100


@dataclass(eq=False, slots=True)
class Member:
    """A connected, named member.  ``key`` identifies the connection; ``sink`` is the
    server's handle for delivering to it (the room only passes it along)."""

    key: int
    nick: str
    address: str
    joined_at: float
    last_active: float
    #: fold(name) -> room, in the order they were joined: one room for a client of
    #: protocol 1.0-1.2; any number up to the server's limit (even none) for 1.3
    rooms: dict[str, Room] = field(default_factory=dict)
    away: str | None = None
    op: bool = False
    sink: Any = None  # None while the member is held for a reconnect (a counted property: see below)
    token: str = ""  # the resume token of this member's session
    muted_until: float = 0.0  # an operator muted this member until then
    held_until: float | None = None  # set while waiting for a reconnect
    held_reason: str = ""
    crowd: bool = False  # speaks protocol 1.2: large rooms send it crowd summaries
    several: bool = False  # speaks protocol 1.3: join adds a room, part leaves one
    realname: str = ""  # an IRC client's "real name" and user name (USER), shown by WHOIS
    ident: str = ""
    invisible: bool = False  # (IRC's user mode +i: counted apart by LUSERS, found by WHO only in a shared room)
    bot: bool = False  # says it is a bot (IRC's user mode +B: a ``bot`` tag on its lines, 335 in WHOIS)
    echo: bool = True  # sees its own messages (an IRC client without echo-message does not)
    hears_typing: bool = False  # understands typing notices (protocol 1.4; IRC with message-tags)
    hears_tags: bool = False  # reads client-only tags: messages of tags alone (IRC with message-tags)
    hears_roles: bool = False  # understands modes and invitations (protocol 1.5; IRC)
    hears_own_leave: bool = False  # is told its own leave when kicked out of a room (IRC: a KICK line)
    hears_setname: bool = False  # is told when someone in its rooms changes their real name (IRC's setname)
    once_per_person: bool = False  # hears a person's nick or away change once, not once per shared room (IRC)
    hears_invites: bool = False  # is told of invitations into the rooms it runs (1.5; not IRC: no invite-notify)
    #: fold(room) -> the server's nonce of a key challenge for that room (one proof each)
    key_nonces: dict[str, bytes] = field(default_factory=dict, repr=False)
    #: nick_key -> the nick as given: the people it watches (IRC's MONITOR; ``watch.py``)
    watching: dict[str, str] = field(default_factory=dict, repr=False)
    #: fold(room) -> (state, when) of the last typing notice relayed for this member
    typing_said: dict[str, tuple[str, float]] = field(default_factory=dict, repr=False)
    #: In a cluster (chatroom.cluster): the id of the server that has this member's
    #: connection, when it is not this one (a *remote* member: listed, never sent to).
    server: str | None = None
    #: (``others``: the last recipient tuple asked about, and it without this member)
    _without_me: tuple[tuple[Member, ...], tuple[Member, ...]] | None = field(default=None, repr=False)
    _sink: Any = field(init=False, repr=False)  # (what ``sink`` reads and writes: set by __init__ through it)
    #: How many times any member's ``sink`` (or a connection's wire format) has changed:
    #: the hub flattens a room's recipients once (their outboxes) and checks this count
    #: instead of walking every member for every message (see ``hub._Plan``).
    sink_changes: ClassVar[int] = 0

    @property
    def room(self) -> Room | None:
        """The first of this member's rooms (its only one, before protocol 1.3)."""
        for room in self.rooms.values():
            return room
        return None

    def others(self, recipients: tuple[Member, ...]) -> tuple[Member, ...]:
        """``recipients`` without this member (one who does not see its own messages:
        ``echo``) -- the same tuple for the same room as long as its membership holds,
        so that a run of messages to one room is still one outbox entry per member
        (the batch joins entries for the *same* recipient tuple)."""
        cached = self._without_me
        if cached is not None and cached[0] is recipients:
            return cached[1]
        others = tuple(m for m in recipients if m is not self)
        self._without_me = (recipients, others)
        return others

    def info(self, now: float, *, show_address: bool = False, role: str | None = None) -> MemberInfo:
        return MemberInfo(
            nick=self.nick,
            idle=round(max(0.0, now - self.last_active), 1),
            away=self.away,
            op=self.op,
            address=self.address if show_address else None,
            role=role,
        )


def _get_sink(member: Member) -> Any:
    return member._sink


def _set_sink(member: Member, sink: Any) -> None:
    member._sink = sink
    Member.sink_changes += 1


# A property over the dataclass field (its __init__ assigns through it): every change
# of where a member's frames go is counted, however it is made.  (Members have slots:
# a member is some 1.2 KB smaller than with a dict, which a room of 10,000 feels.)
setattr(Member, "sink", property(_get_sink, _set_sink, doc="Where this member's frames go; None while held."))  # noqa: B010 -- (mypy: a slot's name)


@dataclass(eq=False)
class Room:
    name: str
    history_size: int
    topic: str = ""
    topic_locked: bool = False  # only operators may change the topic
    topic_by: str = ""  # who set the topic, and when (unknown for a topic from before a restart)
    topic_at: float = 0.0
    #: connection key -> member, in joining order
    members: dict[int, Member] = field(default_factory=dict)
    next_seq: int = 1
    history: deque[Chat] = field(init=False)
    #: Large rooms: who came and went since the last crowd summary.
    crowd_joined: list[str] = field(default_factory=list)
    crowd_left: list[str] = field(default_factory=list)
    _everyone: tuple[Member, ...] | None = field(init=False, default=None)
    _listeners: tuple[Member, ...] | None = field(init=False, default=None)
    #: (when made, the listed members' keys, their infos): what every welcome and
    #: joined lists, rebuilt when one of them changes or it is LISTED_TTL old -- so a
    #: wave of arrivals in a big room shares one list (and its encoding, see
    #: ``protocol.messages``) instead of building 200 records per arrival.
    _listed: tuple[float, frozenset[int], tuple[MemberInfo, ...]] | None = field(init=False, default=None)
    _recent: tuple[Chat, ...] | None = field(init=False, default=None)
    #: Members connected to this server (not remote ones of a cluster).
    local: int = field(init=False, default=0)
    #: In a cluster: the id of the last entry of the room's shared log applied here.
    last_id: tuple[int, int] = field(init=False, default=(0, 0))
    #: fold(name): the room's key in ``ChatState.rooms`` (a later spelling folds the same)
    key: str = field(init=False, default="")
    #: When the room got its first member here (IRC's 329 tells it).
    created: float = field(init=False, default=0.0)
    #: Its roles and modes (``room_modes.py``), and who is invited (nick keys; until they come).
    modes: RoomModes = field(default_factory=RoomModes)
    invited: set[str] = field(default_factory=set)
    #: Moderated, or with bans: whoever speaks is asked about (one flag on the chat path;
    #: ``modes_changed`` keeps it).
    guarded: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.history = deque(maxlen=self.history_size)
        self.key = fold(self.name)

    def everyone(self) -> tuple[Member, ...]:
        """Every member, in joining order.  Cached: a busy room broadcasts far more
        often than its membership changes."""
        if self._everyone is None:
            self._everyone = tuple(self.members.values())
        return self._everyone

    def crowd_listeners(self) -> tuple[Member, ...]:
        """The members who understand crowd summaries (protocol 1.2).  Cached."""
        if self._listeners is None:
            self._listeners = tuple(m for m in self.members.values() if m.crowd)
        return self._listeners

    @property
    def large(self) -> bool:
        return len(self.members) >= LARGE_ROOM

    def add(self, member: Member) -> None:
        if member.key not in self.members and member.server is None:
            self.local += 1
        self.members[member.key] = member
        self._everyone = self._listeners = None
        if len(self.members) <= MAX_LISTED_MEMBERS:
            self._listed = None  # it is one of the listed

    def discard(self, member: Member) -> bool:
        self._everyone = self._listeners = None
        if self._listed is not None and member.key in self._listed[1]:
            self._listed = None
        gone = self.members.pop(member.key, None)
        if gone is not None and gone.server is None:
            self.local -= 1
        return gone is not None

    def modes_changed(self) -> None:
        """Its modes were changed or replaced: the chat path's flag follows."""
        self.guarded = self.modes.moderated or bool(self.modes.bans)

    def roster_changed(self) -> None:
        """A member's nick, away message or operator flag changed."""
        self._listed = None

    def remember(self, chat: Chat) -> None:
        self.history.append(chat)
        self._recent = None

    def history_changed(self) -> None:
        self._recent = None

    def recent(self) -> tuple[Chat, ...]:
        """The history a join replays.  Cached until the next message."""
        if self._recent is None:
            self._recent = tuple(self.history)
        return self._recent

    def info(self) -> RoomInfo:
        return RoomInfo(name=self.name, members=len(self.members), topic=self.topic)

    def role(self, member: Member) -> str | None:
        """``@`` for an operator of this room (a server operator is one in every room),
        ``+`` for a voiced member, else None."""
        key = fold(member.nick)
        modes = self.modes
        if member.op or key in modes.operators:
            return "@"
        return "+" if key in modes.voiced else None

    def member_infos(self, now: float, *, show_addresses: bool = False) -> tuple[MemberInfo, ...]:
        """The first MAX_LISTED_MEMBERS members, in joining order (idle times at most
        LISTED_TTL old; operators get a fresh list, with addresses)."""
        cached = self._listed
        if not show_addresses and cached is not None and 0 <= now - cached[0] < LISTED_TTL:
            return cached[2]
        listed = list(itertools.islice(self.members.values(), MAX_LISTED_MEMBERS))
        infos = tuple(m.info(now, show_address=show_addresses, role=self.role(m)) for m in listed)
        if not show_addresses:
            self._listed = (now, frozenset(m.key for m in listed), infos)
        return infos


@dataclass
class Sanction:
    """What an operator's action decided, for the server to carry out (the room does no
    I/O): tell the operator ``text``; disconnect ``victims`` -- and, for an address ban,
    every connection from ``address`` -- with ``code`` and ``why``; store ``added`` and
    delete ``lifted``; end the held sessions in ``ended``; ``notice``: (member, text) to
    tell someone."""

    text: str
    victims: list[Member] = field(default_factory=list)
    address: str | None = None
    code: str = ErrorCode.KICKED.value
    why: str = ""
    added: Ban | None = None
    lifted: list[Ban] = field(default_factory=list)
    ended: list[Member] = field(default_factory=list)
    notice: tuple[Member, str] | None = None


@dataclass
class RoomSnapshot:
    """A room as a cluster shares it (see ``Peers.load``): what a server that starts
    following it needs.  ``members``: the remote members' records (see ``ChatState.remote``);
    ``last_id``: the shared log's last entry, where following it starts."""

    name: str
    next_seq: int
    topic: str
    locked: bool
    last_id: tuple[int, int]
    recent: list[Chat]
    members: list[dict[str, Any]]
    modes: str = ""  # its roles and modes (``RoomModes.dump``)


@dataclass(slots=True)
class Delivery:
    """Send ``message`` to each of ``recipients``, in this order relative to others."""

    recipients: tuple[Member, ...]
    message: Message


def owner_of(key: int, token: str) -> str:
    """Who holds a nick, as a cluster records it: the session's resume token (so that
    another server can take the session over), or the connection (an IRC member)."""
    return token or f"conn{key}"


def address_ip(address: str) -> str:
    """``host:port`` -> host."""
    return address.rsplit(":", 1)[0]
