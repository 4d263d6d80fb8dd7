"""Rooms, members, nicknames and recent history: the rules of the chat.  No I/O.

:class:`ChatState` is a plain object, not thread-safe by itself: the server holds one
lock around every call (see ``chatroom.server.hub.Hub``).  Every operation takes ``now``
(seconds since the epoch) instead of reading a clock, and returns what must be sent
to whom as :class:`Delivery` values instead of sending anything, so it is tested with
no sockets, threads or clocks at all.

An optional *store* (``chatroom.server.store.HistoryStore``, or anything with its reading
methods) is consulted when a room is created, to continue its sequence numbers and
history, and when someone pages back past what is in memory.  New messages and topic
changes collect in :attr:`ChatState.unsaved` until the server commits them.

Sessions: a member whose connection drops without a goodbye is *held* for a grace
period (:meth:`ChatState.hold`); :meth:`ChatState.resume` gives it, nick and room,
to a new connection presenting its token, with the messages it missed.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import msgspec

from chatroom.errors import Refused
from chatroom.protocol import (
    LARGE_ROOM,
    MAX_CROWD_NAMES,
    MAX_LISTED_MEMBERS,
    MAX_ROOMS,
    Chat,
    Crowd,
    ErrorCode,
    Found,
    History,
    Joined,
    MemberInfo,
    Members,
    Message,
    ModAction,
    Parted,
    Presence,
    PresenceEvent,
    Private,
    RoomInfo,
    Rooms,
    Topic,
    User,
)
from chatroom.server.bans import Ban, BanList, looks_like_address, person_key
from chatroom.server.nicks import NickIndex
from chatroom.server.search import search_in
from chatroom.text import (
    MAX_NICK_LENGTH,
    MAX_TOPIC_LENGTH,
    clean_line,
    clean_text,
    fold,
    nick_key,
    nick_problem,
    room_problem,
    without_hash,
)

__all__ = ["DEFAULT_ROOM", "Member", "Room", "Delivery", "Sanction", "ChatState", "Peers", "RoomSnapshot"]

DEFAULT_ROOM = "lobby"

#: How stale the idle times in a member list may be (see ``Room.member_infos``).
LISTED_TTL = 1.0

#: Recently sent (nick, client id) pairs remembered to make resending idempotent.
#: A client resends only what was unacknowledged when its connection dropped.
#: Kept in two generations of this many (see ``ChatState._remember_id``): the last
#: RECENT_IDS are always known, at most twice as many.
RECENT_IDS = 50_000

#: A part's reason is shown to the room; a line, not an essay.
MAX_REASON = 100


@dataclass(eq=False)
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
    echo: bool = True  # sees its own messages (an IRC client without echo-message does not)
    #: In a cluster (chatroom.cluster): the id of the server that has this member's
    #: connection, when it is not this one (a *remote* member: listed, never sent to).
    server: str | None = None
    #: (``others``: the last recipient tuple asked about, and it without this member)
    _without_me: tuple[tuple[Member, ...], tuple[Member, ...]] | None = field(default=None, repr=False)
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

    def info(self, now: float, *, show_address: bool = False) -> MemberInfo:
        return MemberInfo(
            nick=self.nick,
            idle=round(max(0.0, now - self.last_active), 1),
            away=self.away,
            op=self.op,
            address=self.address if show_address else None,
        )


def _get_sink(member: Member) -> Any:
    return member._sink  # type: ignore[attr-defined]


def _set_sink(member: Member, sink: Any) -> None:
    member._sink = sink  # type: ignore[attr-defined]
    Member.sink_changes += 1


# A property over the dataclass field (its __init__ assigns through it): every change
# of where a member's frames go is counted, however it is made.
Member.sink = property(_get_sink, _set_sink, doc="Where this member's frames go; None while held.")


@dataclass(eq=False)
class Room:
    name: str
    history_size: int
    topic: str = ""
    topic_locked: bool = False  # only operators may change the topic
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

    def member_infos(self, now: float, *, show_addresses: bool = False) -> tuple[MemberInfo, ...]:
        """The first MAX_LISTED_MEMBERS members, in joining order (idle times at most
        LISTED_TTL old; operators get a fresh list, with addresses)."""
        cached = self._listed
        if not show_addresses and cached is not None and 0 <= now - cached[0] < LISTED_TTL:
            return cached[2]
        listed = list(itertools.islice(self.members.values(), MAX_LISTED_MEMBERS))
        infos = tuple(m.info(now, show_address=show_addresses) for m in listed)
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


class Peers(Protocol):
    """The other servers of a cluster, as the room rules need them (``chatroom.cluster``;
    None on a server of its own).  Each call may raise ``Refused``: a nick taken
    elsewhere, or ``unavailable`` when the cluster's store cannot be reached."""

    server: str  # this server's id in the cluster

    def claim(self, nick: str, owner: str) -> None: ...
    def release(self, nick: str, owner: str) -> None: ...
    def load(self, name: str) -> RoomSnapshot: ...
    def rooms(self) -> list[RoomInfo]: ...
    def whois(self, nick: str) -> User | None: ...


@dataclass(slots=True)
class Delivery:
    """Send ``message`` to each of ``recipients``, in this order relative to others."""

    recipients: tuple[Member, ...]
    message: Message


class ChatState:
    """Every room, member and nick of one server."""

    def __init__(self, *, history_size: int = 100, max_text: int = 4000, store: Any = None,
                 bans: Iterable[Ban] = (), max_rooms: int = MAX_ROOMS, peers: Peers | None = None) -> None:
        self.history_size = history_size
        #: In a cluster: the other servers (nick claims, shared rooms), and what this
        #: server's members did that they must hear of -- plain records the server
        #: publishes as the hub lock is released (see ``chatroom.cluster``).
        self.peers = peers
        self.published: list[dict[str, Any]] | None = [] if peers is not None else None
        self.max_text = max_text
        self.max_rooms = max_rooms
        self.store = store
        self.bans = BanList(bans)
        self.rooms: dict[str, Room] = {}  # fold(name) -> room
        self.nicks = NickIndex()  # nick_key(nick) -> member, and look-alikes by their other key (see nicks.py)
        self.sessions: dict[str, Member] = {}  # resume token -> member
        # (fold(nick), id) -> message: the newer generation, and the one before it
        self.sent: dict[tuple[str, str], Chat | Private] = {}
        self._sent_before: dict[tuple[str, str], Chat | Private] = {}
        self.unsaved: list[Chat] = []  # accepted, not yet committed by the server
        self.dirty: dict[str, Room] = {}  # rooms whose sequence or topic changed
        if store is not None:
            for key, msg_id, chat in store.recent_ids(RECENT_IDS):
                self.sent[(key, msg_id)] = chat
        self._room(DEFAULT_ROOM)

    # ------------------------------------------------------------------ membership

    def admit(
        self, key: int, nick: str, address: str, now: float, room: str | None = None, token: str = "",
        crowd: bool = False, several: bool = False,
    ) -> tuple[Member, Joined, list[Delivery]]:
        """Add a new member named ``nick`` to ``room`` (the lobby by default); ``crowd``:
        it speaks protocol 1.2 (large rooms send it crowd summaries); ``several``: 1.3
        (it may be in several rooms)."""
        self._check_nick_free(nick)
        target = self._room_for_join(room or DEFAULT_ROOM)
        member = self.admit_roomless(key, nick, address, now, token=token, crowd=crowd, several=several)
        return member, *self._enter(member, target, now)

    def admit_roomless(self, key: int, nick: str, address: str, now: float, *, token: str = "",
                       crowd: bool = True, several: bool = True) -> Member:
        """Add a new member in no room yet (an IRC client joins channels after it
        registers)."""
        self._check_nick_free(nick)
        member = Member(key=key, nick=nick, address=address, joined_at=now, last_active=now, token=token,
                        crowd=crowd, several=several)
        if self.peers is not None:
            self.peers.claim(nick, _owner(member))
            self._publish_session(member)
        self.nicks[nick_key(nick)] = member
        if token:
            self.sessions[token] = member
        return member

    def remove(self, member: Member, reason: str, now: float) -> list[Delivery]:
        """``member`` is gone (``reason``: quit, timed out, too slow, kicked...)."""
        if self.nicks.get(nick_key(member.nick)) is member:
            del self.nicks[nick_key(member.nick)]
        if member.token and self.sessions.get(member.token) is member:
            del self.sessions[member.token]
        member.held_until = None
        deliveries: list[Delivery] = []
        for room in list(member.rooms.values()):
            deliveries += self.depart(member, room, reason, now)
        if self.peers is not None and member.server is None:
            self.peers.release(member.nick, _owner(member))
            if self.published is not None and member.token:
                self.published.append({"t": "session_end", "token": member.token})
        return deliveries

    def hold(self, member: Member, reason: str, now: float, grace: float, sink: Any = None) -> list[Delivery]:
        """The connection dropped without a goodbye: keep nick and room for ``grace``
        seconds, silently, in case it comes back.  No grace: remove at once.

        ``sink``: the connection that ended.  If the member no longer belongs to it (a
        resume handed the session to a new connection meanwhile), nothing happens: the
        new connection must not be silenced, and nobody is told anything."""
        if sink is not None and member.sink is not sink:
            return []
        if grace <= 0 or not member.token:
            return self.remove(member, reason, now)
        member.sink = None
        member.held_until = now + grace
        member.held_reason = reason
        return []

    def crowd_news(self, now: float) -> list[Delivery]:
        """The tick of large rooms: one crowd summary each of who came and went since
        the last tick, to the members who speak protocol 1.2 (others hear of neither)."""
        out: list[Delivery] = []
        for room in self.rooms.values():
            if not (room.crowd_joined or room.crowd_left):
                continue
            joined, left = room.crowd_joined, room.crowd_left
            room.crowd_joined, room.crowd_left = [], []
            listeners = room.crowd_listeners()
            if listeners:
                out.append(Delivery(listeners, Crowd(
                    room=room.name, ts=now, joined=tuple(joined[:MAX_CROWD_NAMES]), left=tuple(left[:MAX_CROWD_NAMES]),
                    joined_count=len(joined), left_count=len(left), member_count=len(room.members))))
        return out

    def expire(self, now: float) -> list[Delivery]:
        """Remove the held members whose grace period has passed."""
        deliveries: list[Delivery] = []
        for member in [m for m in self.sessions.values() if m.held_until is not None and m.held_until <= now]:
            deliveries += self.remove(member, member.held_reason or "connection lost", now)
        return deliveries

    def resume(
        self, token: str, key: int, address: str, now: float, *, crowd: bool = False, several: bool = False,
    ) -> tuple[Member, Any, list[Delivery]]:
        """Give the session of ``token`` to connection ``key``, in every room it holds.

        Returns the member, the sink of the connection it had (a ghost to close
        silently, or None), and one "reconnected" event per room for the others (see
        :meth:`missed` for what the member missed there).  A client older than 1.3
        taking over a session in several rooms keeps the first and leaves the others.
        """
        member = self.sessions.get(token)
        if member is None:
            raise Refused(ErrorCode.RESUME_REFUSED, "that session is unknown or has expired: join normally")
        old_sink = member.sink
        rooms = list(member.rooms.values())
        for room in rooms:
            room.discard(member)  # under its old connection key ...
        member.key, member.address, member.held_until = key, address, None
        member.crowd, member.several = crowd, several  # what the new connection's client speaks
        deliveries: list[Delivery] = []
        for room in rooms:
            room.add(member)  # ... and back under the new one
            if not several and room is not rooms[0]:
                deliveries += self.depart(member, room, f"went to {rooms[0].name}", now)
                continue
            self._publish(member, room, "reconnected")
            if not room.large:  # nothing changed for the others in a large one: it was still listed
                event = Presence(room=room.name, event=PresenceEvent.RECONNECTED, nick=member.nick, ts=now)
                others = tuple(m for m in room.everyone() if m is not member)
                if others:
                    deliveries.append(Delivery(others, event))
        return member, old_sink, deliveries

    def missed(self, room: Room, last_seq: int | None, limit: int | None = None) -> list[Chat]:
        """The room's messages after ``last_seq`` (at most ``limit``), oldest first."""
        if last_seq is None:
            return []
        oldest = room.history[0].seq if room.history else room.next_seq
        out: list[Chat] = []
        if last_seq + 1 < oldest and self.store is not None:
            wanted = oldest - last_seq - 1 if limit is None else min(limit, oldest - last_seq - 1)
            out = [c for c in self.store.after(room.name, last_seq, wanted) if c.seq < oldest]
        room_left = None if limit is None else limit - len(out)
        if room_left is None or room_left > 0:
            out += [c for c in room.history if c.seq > last_seq][:room_left]
        return out

    def join(self, member: Member, room: str, now: float) -> tuple[Joined, list[Delivery]]:
        """Put ``member`` in ``room``, creating it if needed: in addition to its other
        rooms (protocol 1.3), or instead of its room (older clients: they move)."""
        name = self._room_name(room)
        if fold(name) in member.rooms:
            raise Refused(ErrorCode.INVALID_ROOM, f"you are already in {member.rooms[fold(name)].name}")
        if member.several and len(member.rooms) >= self.max_rooms:
            raise Refused(ErrorCode.TOO_MANY_ROOMS, f"you are in {len(member.rooms)} rooms, the most this server "
                                                    "allows: part one first")
        target = self._room(name)
        deliveries: list[Delivery] = []
        if not member.several:
            for old in list(member.rooms.values()):
                deliveries += self.depart(member, old, f"went to {target.name}", now)
        joined, more = self._enter(member, target, now)
        return joined, deliveries + more

    def part(self, member: Member, room: str, reason: str, now: float) -> tuple[Parted, list[Delivery]]:
        """Protocol 1.3: ``member`` leaves one of its rooms (maybe its last)."""
        if not member.several:
            raise Refused(ErrorCode.BAD_MESSAGE, "part needs protocol 1.3: before it, you are always in one room "
                                                 "(join moves you)")
        target = self.room_of(member, room)
        reason = clean_line(reason).strip()[:MAX_REASON]
        return Parted(room=target.name), self.depart(member, target, f"left: {reason}" if reason else "left", now)

    def rename(self, member: Member, new_nick: str, now: float) -> list[Delivery]:
        if nick_key(new_nick) != nick_key(member.nick):
            self._check_nick_free(new_nick, member)
        elif new_nick == member.nick:
            raise Refused(ErrorCode.INVALID_NICK, f"you are already {new_nick}")
        else:  # the same key: only its spelling changes; it must still be a valid nick
            problem = nick_problem(new_nick)
            if problem:
                raise Refused(ErrorCode.INVALID_NICK, problem)
        old = member.nick
        if self.peers is not None and nick_key(new_nick) != nick_key(old):
            self.peers.claim(new_nick, _owner(member))
            self.peers.release(old, _owner(member))
        del self.nicks[nick_key(old)]
        member.nick = new_nick
        self.nicks[nick_key(new_nick)] = member
        self._publish_session(member)
        for room in member.rooms.values():
            self._publish(member, room, "nick", nick=old, new_nick=new_nick)
        return self._tell_rooms(member, lambda name: Presence(
            room=name, event=PresenceEvent.NICK, nick=old, new_nick=new_nick, ts=now))

    # ------------------------------------------------------------------ messages

    def say(
        self, member: Member, text: str, now: float, *, action: bool = False, msg_id: str | None = None,
        room_name: str | None = None,
    ) -> tuple[Chat, list[Delivery]]:
        """Stamp ``text`` with the next sequence number of ``room_name`` (one of the
        member's rooms; None: its only one) and broadcast it."""
        chat, recipients = self.say_to(member, text, now, action=action, msg_id=msg_id, room_name=room_name)
        return chat, [Delivery(recipients, chat)]

    def say_to(
        self, member: Member, text: str, now: float, *, action: bool = False, msg_id: str | None = None,
        room_name: str | None = None, room: Room | None = None, sender: str | None = None,
    ) -> tuple[Chat, tuple[Member, ...]]:
        """:meth:`say`, returning the chat and its recipients (the hot path's form).
        A run of messages may pass what it already looked up: ``room`` (the member's
        room called ``room_name``) and ``sender`` (``fold(member.nick)``)."""
        room, text = self.check_say(member, text, now, room_name, room)
        chat = Chat(
            room=room.name, seq=room.next_seq, ts=now, nick=member.nick, text=text, action=action, id=msg_id
        )
        room.next_seq += 1
        room.history.append(chat)
        room._recent = None
        member.last_active = now
        self.unsaved.append(chat)
        self.dirty[room.key] = room
        if msg_id is not None:
            self._remember(member, msg_id, chat, sender)
        return chat, room.everyone()

    def check_say(self, member: Member, text: str, now: float, room_name: str | None,
                  room: Room | None = None) -> tuple[Room, str]:
        """Whether ``member`` may say ``text`` in ``room_name`` (``room``, if looked up
        already) now: the room and the cleaned text, or ``Refused``."""
        if room is None:
            room = self.room_of(member, room_name)
        if member.muted_until > now:
            self._check_not_muted(member, now)
        return room, self._clean_message(text)

    def apply_chat(self, room: Room, chat: Chat) -> list[Delivery]:
        """A message a cluster put in ``room``'s shared log, in log order: remember and
        broadcast it here.  Already applied (its ``seq`` is below ``next_seq``): nothing."""
        if chat.seq < room.next_seq:
            return []
        room.next_seq = chat.seq + 1
        room.remember(chat)
        if chat.id is not None:
            self._remember_id((fold(chat.nick), chat.id), chat)
        author = self.nicks.get(nick_key(chat.nick))
        recipients = room.everyone()
        if author is not None:
            author.last_active = max(author.last_active, chat.ts)
            if not author.echo:
                recipients = author.others(recipients)
        return [Delivery(recipients, chat)]

    def already_sent(self, member: Member, msg_id: str, text: str, *, action: bool = False,
                     private: bool = False, room_name: str | None = None,
                     sender: str | None = None) -> Chat | Private | None:
        """The message this member already sent with ``msg_id``, if this is a resend of
        it: the same nick, id, kind and text (and room, for room messages).  An id
        reused for anything else -- another program under the same nick, a counter
        that restarted -- is a new message, never silently swallowed.  ``sender``:
        ``fold(member.nick)``, if a run of messages computed it once."""
        key = (sender or fold(member.nick), msg_id)
        earlier = self.sent.get(key)
        if earlier is None:
            earlier = self._sent_before.get(key)
        if earlier is None or earlier.text != clean_text(text):
            return None
        if private != isinstance(earlier, Private):
            return None
        if isinstance(earlier, Chat):
            if earlier.action != action:
                return None
            try:
                room = self.room_of(member, room_name)
            except Refused:  # not a room of the member's: say() explains why
                return None
            if fold(earlier.room) != fold(room.name):
                return None
        return earlier

    def take_unsaved(self) -> tuple[list[Chat], list[tuple[str, int, str]]]:
        """What the server must commit now: new messages and changed rooms."""
        chats, self.unsaved = self.unsaved, []
        rooms = [(r.name, r.next_seq, r.topic) for r in self.dirty.values()]
        self.dirty = {}
        return chats, rooms

    def rollback(self, chats: list[Chat]) -> None:
        """Committing ``chats`` failed: forget them as if never sent."""
        for chat in chats:
            room = self.rooms.get(fold(chat.room))
            if room is not None:
                try:
                    room.history.remove(chat)
                    room.history_changed()
                except ValueError:
                    pass
                room.next_seq = min(room.next_seq, chat.seq)
            if chat.id is not None:
                key = (fold(chat.nick), chat.id)
                for ids in (self.sent, self._sent_before):
                    if ids.get(key) is chat:
                        del ids[key]

    def _remember(self, member: Member, msg_id: str, msg: Chat | Private, sender: str | None = None) -> None:
        self._remember_id((sender or fold(member.nick), msg_id), msg)

    def first_time(self, msg: Private) -> bool:
        """A private message from another server's member: True the first time its
        (sender, id) is seen here (then remembered), False for a resend of it (its
        sender could not be told it arrived: ``unconfirmed``).  No id: always new."""
        if msg.id is None:
            return True
        key = (fold(msg.nick), msg.id)
        earlier = self.sent.get(key) or self._sent_before.get(key)
        if earlier is not None and earlier.text == msg.text:
            return False
        self._remember_id(key, msg)
        return True

    def _remember_id(self, key: tuple[str, str], msg: Chat | Private) -> None:
        """Two generations: a full one becomes the older and the oldest is dropped
        whole -- O(1) a message, where trimming one ordered map cost a pop (or a
        rebuild) per message at 50,000 ids."""
        sent = self.sent
        sent[key] = msg
        if len(sent) >= RECENT_IDS:
            self._sent_before, self.sent = sent, {}

    @property
    def remembered_ids(self) -> int:
        """How many (nick, id) pairs a resend is recognised by now (RECENT_IDS to twice that)."""
        return len(self.sent) + len(self._sent_before)

    def direct(
        self, member: Member, to: str, text: str, now: float, *, msg_id: str | None = None
    ) -> tuple[Private, list[Delivery]]:
        self._check_not_muted(member, now)
        text = self._clean_message(text)
        target = self.nicks.get(nick_key(to))
        if target is None:
            raise Refused(ErrorCode.NO_SUCH_NICK, f"nobody is called {clean_line(to)[:MAX_NICK_LENGTH]}")
        msg = Private(nick=member.nick, to=target.nick, text=text, ts=now, id=msg_id)
        member.last_active = now
        if msg_id is not None:
            self._remember(member, msg_id, msg)
        recipients = (target,) if target is member else (target, member)
        return msg, [Delivery(recipients, msg)]

    def set_topic(self, member: Member, topic: str, now: float, room_name: str | None = None) -> list[Delivery]:
        room = self.room_of(member, room_name)
        topic = clean_line(topic).strip()
        if len(topic) > MAX_TOPIC_LENGTH:
            raise Refused(ErrorCode.TEXT_TOO_LONG, f"a topic is at most {MAX_TOPIC_LENGTH} characters")
        if room.topic_locked and not member.op:
            raise Refused(ErrorCode.NOT_OPERATOR, f"the topic of {room.name} is locked: only operators may change it")
        room.topic = topic
        self.dirty[room.key] = room
        self._publish(member, room, "topic", topic=topic)
        msg = Topic(room=room.name, topic=topic, nick=member.nick, ts=now)
        return [Delivery(room.everyone(), msg)]

    def set_away(self, member: Member, message: str | None, now: float) -> list[Delivery]:
        """Away with ``message``, or back when it is None or blank."""
        message = clean_line(message).strip()[:MAX_TOPIC_LENGTH] if message else None
        if not message and member.away is None:
            raise Refused(ErrorCode.BAD_MESSAGE, "you are not away")
        member.away = message or None
        for room in member.rooms.values():
            self._publish(member, room, "away", message=member.away)
        return self._tell_rooms(member, lambda name: Presence(
            room=name, event=PresenceEvent.AWAY if message else PresenceEvent.BACK, nick=member.nick,
            message=message, ts=now))

    def _tell_rooms(self, member: Member, event: Callable[[str], Presence]) -> list[Delivery]:
        """A change of ``member`` itself (nick, away): ``event(room name)`` to each of its
        rooms -- or, in no room (1.3), to the member alone, with room ``""``."""
        if not member.rooms:
            return [Delivery((member,), event(""))]
        out: list[Delivery] = []
        for room in member.rooms.values():
            room.roster_changed()
            out.append(Delivery(room.everyone(), event(room.name)))
        return out

    # ------------------------------------------------------------------ moderation

    def make_operator(self, member: Member) -> None:
        member.op = True
        for room in member.rooms.values():
            room.roster_changed()
            self._publish(member, room, "op")

    def moderate(self, op: Member, action: ModAction, target: str, reason: str, duration: float | None,
                 now: float, handshaking: Callable[[str], int] = lambda address: 0,
                 room_name: str | None = None) -> Sanction:
        """Carry out an operator's ``action`` on ``target`` (a nick, or an address for a
        ban).  ``handshaking(ip)``: connections from that address that have no member
        yet (the server knows them; they count as sharing an address)."""
        if not op.op:
            raise Refused(ErrorCode.NOT_OPERATOR, "only operators can do that (see /op)")
        target, reason = clean_line(target).strip(), clean_line(reason).strip()
        if action is ModAction.BANS:
            bans = self.bans.all(now)
            return Sanction("bans:\n" + "\n".join(f"  {b.describe(now)}" for b in bans) if bans else "nobody is banned")
        if action in (ModAction.LOCK, ModAction.UNLOCK):
            room = self.room_of(op, room_name)
            room.topic_locked = action is ModAction.LOCK
            self._publish(op, room, "lock", locked=room.topic_locked)
            return Sanction(f"the topic of {room.name} is now {'locked' if room.topic_locked else 'open'}")
        if action is ModAction.UNBAN:
            lifted = self.bans.matching(target)
            for ban in lifted:
                self.bans.remove(ban.target)
            return Sanction(f"unbanned {', '.join(b.describe(now) for b in lifted)}" if lifted
                            else f"no ban matches {target}", lifted=lifted)
        member = self.nicks.get(nick_key(target)) if target else None
        if action is ModAction.BAN:
            return self._ban(op, member, target, reason, duration, now, handshaking)
        if member is None:
            return Sanction(f"nobody is called {target}")
        if action is ModAction.KICK:
            why = f"kicked by {op.nick}" + (f": {reason}" if reason else "")
            return Sanction(f"kicked {member.nick}", [member], code=ErrorCode.KICKED.value, why=why, ended=[member])
        mute = action is ModAction.MUTE
        member.muted_until = (now + duration if duration else float("inf")) if mute else 0.0
        verb = "muted" if mute else "unmuted"
        how = f" for {duration:g} s" if mute and duration else ""
        return Sanction(f"{verb} {member.nick}",
                        notice=(member, f"{op.nick} {verb} you{how}" + (f": {reason}" if reason else "")))

    def _ban(self, op: Member, member: Member | None, target: str, reason: str, duration: float | None,
             now: float, handshaking: Callable[[str], int]) -> Sanction:
        """Ban ``member``'s address -- or the person, when others share that address --
        or an address given as ``target``.  An operator is never banned."""
        until = now + duration if duration else None
        why = "banned by " + op.nick + (f": {reason}" if reason else "")
        if member is not None:
            if member.op:
                return Sanction(f"{member.nick} is an operator: operators cannot be banned")
            address = _ip(member.address)
            sharing = sum(1 for m in self.members() if m is not member and _ip(m.address) == address)
            sharing += handshaking(address)
            if sharing:  # banning the address would ban them too: ban the person
                ban = Ban(person_key(member.nick), until, member.nick, reason, op.nick)
                self.bans.add(ban)
                return Sanction(f"banned {member.nick} (the person, not the address {address}: {sharing} other "
                                "connection(s) share it)", [member], code=ErrorCode.BANNED.value, why=why,
                                added=ban, ended=[member])
            ban = Ban(address, until, member.nick, reason, op.nick)
        elif looks_like_address(target):
            if any(m.op and _ip(m.address) == target for m in self.members()):
                return Sanction(f"an operator is connected from {target}: not banned")
            ban = Ban(target, until, "", reason, op.nick)
        else:
            return Sanction(f"nobody is called {target}, and it is not an address")
        self.bans.add(ban)
        held = [m for m in self.members() if _ip(m.address) == ban.target]
        how = f" for {duration:g} s" if duration else ""
        return Sanction(f"banned {ban.target}{how}", address=ban.target, code=ErrorCode.BANNED.value, why=why,
                        added=ban, ended=held)

    # ------------------------------------------------------------------ queries

    def who(self, member: Member, now: float, room: str | None = None) -> Members:
        target = self.room_of(member, None) if room is None else self.rooms.get(fold(without_hash(room)))
        if target is None:
            raise Refused(ErrorCode.NO_SUCH_ROOM, f"there is no room called {clean_line(room or '')}")
        return Members(
            room=target.name,
            members=target.member_infos(now, show_addresses=member.op),
            member_count=len(target.members),
        )

    def whois(self, asker: Member, nick: str, now: float) -> User:
        """Who is ``nick``: rooms, idle time, away; the address for operators."""
        member = self.nicks.get(nick_key(nick))
        if member is None and self.peers is not None:  # someone on another server, in no room of ours
            found = self.peers.whois(nick)
            if found is not None:
                return found if asker.op else msgspec.structs.replace(found, address=None)
        if member is None:
            raise Refused(ErrorCode.NO_SUCH_NICK, f"nobody is called {clean_line(nick)[:MAX_NICK_LENGTH]}")
        return User(nick=member.nick, rooms=tuple(r.name for r in member.rooms.values()),
                    idle=round(max(0.0, now - member.last_active), 1), away=member.away, op=member.op,
                    held=member.held_until is not None, address=member.address if asker.op else None)

    def search(self, room: str, text: str, limit: int) -> Found:
        """The room's newest messages containing ``text`` (ignoring case), oldest first:
        from the store when there is one, else from what is in memory.  The store has its
        own lock: the caller may (and should) call this outside the hub lock."""
        target = self.rooms.get(fold(without_hash(room)))
        if target is None:
            raise Refused(ErrorCode.NO_SUCH_ROOM, f"there is no room called {clean_line(room)}")
        if self.store is not None:
            found, complete = self.store.search(target.name, text, limit)
        else:
            found, complete = search_in(list(target.history), text, limit)
        return Found(room=target.name, text=text, messages=tuple(found), complete=complete)

    def list_rooms(self) -> Rooms:
        if self.peers is not None:  # every room of the cluster, and everyone in it
            return Rooms(rooms=tuple(sorted(self.peers.rooms(), key=lambda r: fold(r.name))))
        return Rooms(rooms=tuple(sorted((r.info() for r in self.rooms.values()), key=lambda r: fold(r.name))))

    def history(self, room: str, before: int | None, limit: int, after: int | None = None) -> History:
        """A page of ``room``'s messages: the newest ``limit`` below ``before``, or the
        oldest ``limit`` above ``after`` (bounds exclusive), oldest first.  ``complete``:
        going back, nothing older exists; going forward, the page reaches the newest."""
        target = self.rooms.get(fold(without_hash(room)))
        if target is None:
            raise Refused(ErrorCode.NO_SUCH_ROOM, f"there is no room called {clean_line(room)}")
        if after is not None:
            page = self.missed(target, after, limit)
            newest = target.next_seq - 1
            return History(room=target.name, messages=tuple(page),
                           complete=(page[-1].seq if page else after) >= newest)
        assert before is not None
        page = [c for c in target.history if c.seq < before][-limit:]
        oldest_kept = target.history[0].seq if target.history else target.next_seq
        if len(page) < limit and self.store is not None:
            page = self.store.before(target.name, min(before, oldest_kept), limit - len(page)) + page
        if self.store is not None:
            first = self.store.oldest_seq(target.name)
        else:
            first = target.history[0].seq if target.history else None
        complete = first is None or (page[0].seq if page else before) <= first
        return History(room=target.name, messages=tuple(page), complete=complete)

    def members(self) -> Iterable[Member]:
        return self.nicks.values()

    # ------------------------------------------------------------------ a cluster's other servers

    def remote(self, info: dict[str, Any]) -> Member | None:
        """The member another server of the cluster has (``info``: nick, server, op,
        away, since, address), made or updated here; None if one of ours has that nick."""
        nick = info["nick"]
        member = self.nicks.get(nick_key(nick))
        if member is not None and member.server is None:
            return None  # ours (the cluster's nick claims keep this from happening)
        if member is None:
            since = float(info.get("since") or 0.0)
            member = Member(key=next(_remote_keys), nick=nick, address=info.get("address", ""), joined_at=since,
                            last_active=since, server=info["server"], several=True)
            self.nicks[nick_key(nick)] = member
        member.server = info["server"]
        if "op" in info:
            member.op = bool(info["op"])
        if "away" in info:
            member.away = info["away"]
        if info.get("address"):
            member.address = info["address"]
        for room in member.rooms.values():
            room.roster_changed()
        return member

    def forget_remote(self, member: Member) -> None:
        """A remote member is in none of the rooms this server follows: drop it."""
        if not member.rooms and member.server is not None and self.nicks.get(nick_key(member.nick)) is member:
            del self.nicks[nick_key(member.nick)]

    def check_direct(self, member: Member, text: str, now: float) -> str:
        """Whether ``member`` may send a private message now: its cleaned text."""
        self._check_not_muted(member, now)
        return self._clean_message(text)

    def sent_elsewhere(self, member: Member, msg: Private) -> list[Delivery]:
        """``member`` sent ``msg`` to a member of another server (it is on its way
        there): remember it, and echo it to the sender."""
        member.last_active = msg.ts
        if msg.id is not None:
            self._remember(member, msg.id, msg)
        return [Delivery((member,), msg)] if member.echo else []

    def take_over(self, token: str, nick: str, rooms: Iterable[str], key: int, address: str, now: float,
                  grace: float) -> Member:
        """Another server's session, resumed here: ``nick`` in ``rooms``, held for
        ``resume`` to hand to the new connection (no one is told yet)."""
        old = self.nicks.get(nick_key(nick))
        if old is not None and old.server is None:
            raise Refused(ErrorCode.RESUME_REFUSED, "that session is unknown or has expired: join normally")
        member = Member(key=key, nick=nick, address=address, joined_at=now, last_active=now, token=token,
                        several=True, held_until=now + grace, held_reason="connection lost")
        if old is not None:  # it was listed here as a member of another server
            member.op, member.away, member.joined_at = old.op, old.away, old.joined_at
            for room in list(old.rooms.values()):
                room.discard(old)
            old.rooms.clear()
            del self.nicks[nick_key(nick)]
        self.nicks[nick_key(nick)] = member
        self.sessions[token] = member
        for name in rooms:
            try:
                room = self._room_for_join(name)
            except Refused:
                continue
            room.add(member)
            member.rooms[fold(room.name)] = room
        return member

    def let_go(self, token: str, server: str) -> Any:
        """Another server took over the session of ``token``: its member is that
        server's now.  Returns the connection it had here (close it quietly), if any."""
        member = self.sessions.pop(token, None)
        if member is None or member.server is not None:
            return None
        sink = member.sink
        rooms = list(member.rooms.values())
        for room in rooms:
            room.discard(member)
        member.server, member.sink, member.held_until = server, None, None
        for room in rooms:
            room.add(member)
            room.roster_changed()
        for room in rooms:
            if not room.local and fold(room.name) != fold(DEFAULT_ROOM):
                self._forget_room(room)
        return sink

    def _load(self, name: str) -> Room:
        """A room this server starts following: its shared state (Refused if the cluster
        is unreachable)."""
        assert self.peers is not None
        snap = self.peers.load(name)
        room = Room(name=snap.name, history_size=self.history_size, topic=snap.topic, topic_locked=snap.locked,
                    next_seq=snap.next_seq)
        room.last_id = snap.last_id
        room.history.extend(snap.recent[-self.history_size:])
        for chat in snap.recent:  # a resend of one of these (after a move between servers) is recognised
            if chat.id is not None:
                self.sent[(fold(chat.nick), chat.id)] = chat
        self.rooms[fold(room.name)] = room
        for info in snap.members:
            if info.get("server") == self.peers.server:
                continue  # a stale record of ours: the members here are the truth
            member = self.remote(info)
            if member is not None:
                room.add(member)
                member.rooms[fold(room.name)] = room
        return room

    def _forget_room(self, room: Room) -> None:
        """Nobody of this server is in ``room`` any more: stop keeping it (a cluster's
        remote members of it are forgotten too)."""
        key = fold(room.name)
        if self.rooms.get(key) is room:
            del self.rooms[key]
        for member in list(room.members.values()):
            member.rooms.pop(key, None)
            self.forget_remote(member)
        room.members.clear()

    def _publish(self, member: Member, room: Room, kind: str, **fields: Any) -> None:
        """In a cluster: tell the other servers what ``member`` (one of ours) did."""
        if self.published is not None and member.server is None:
            self.published.append({"t": kind, "room": room.name, "nick": member.nick, **fields})

    def _publish_session(self, member: Member) -> None:
        """In a cluster: the session record another server needs to take it over."""
        if self.published is not None and member.server is None and member.token:
            self.published.append({"t": "session", "token": member.token, "nick": member.nick,
                                   "rooms": [r.name for r in member.rooms.values()]})

    # ------------------------------------------------------------------ helpers

    def suggest_nick(self, nick: str) -> str:
        """A free nick close to ``nick``: ann -> ann2, ann3, ..."""
        for n in range(2, 1000):
            suffix = str(n)
            candidate = nick[: MAX_NICK_LENGTH - len(suffix)] + suffix
            if nick_problem(candidate) is None and self.nicks.holder(candidate) is None:
                return candidate
        return nick[: MAX_NICK_LENGTH - 1] + "_"

    def _check_not_muted(self, member: Member, now: float) -> None:
        if member.muted_until > now:
            left = member.muted_until - now
            until = "until an operator lifts it" if left > 1e9 else f"for {int(left) + 1} more seconds"
            raise Refused(ErrorCode.MUTED, f"you are muted {until}: that message was not sent")

    def _check_nick_free(self, nick: str, me: Member | None = None) -> None:
        """Refuse ``nick`` if it is not a valid nick, or someone else (not ``me``, who
        may respell its own) holds it or a look-alike of it."""
        problem = nick_problem(nick)
        if problem:
            raise Refused(ErrorCode.INVALID_NICK, problem)
        holder = self.nicks.holder(nick)
        if holder is not None and holder is not me:
            alike = "" if fold(holder.nick) == fold(nick) else f" (it looks like {holder.nick}, who is here)"
            suggestion = self.suggest_nick(nick)
            raise Refused(ErrorCode.NICK_TAKEN, f"the nick {nick} is taken{alike}; try {suggestion}", suggestion)

    def _clean_message(self, text: str) -> str:
        if not text.isprintable():  # (clean_text's own first test, without the call)
            text = clean_text(text)
        if len(text) > self.max_text:
            raise Refused(
                ErrorCode.TEXT_TOO_LONG, f"a message is at most {self.max_text} characters ({len(text)} given)"
            )
        if not text or text.isspace():  # (as "not text.strip()", without copying the text)
            raise Refused(ErrorCode.BAD_MESSAGE, "the message is empty")
        return text

    def _room(self, name: str) -> Room:
        key = fold(name)
        room = self.rooms.get(key)
        if room is None and self.peers is not None:
            room = self._load(name)
        if room is None:
            room = self.rooms[key] = Room(name=name, history_size=self.history_size)
            record = self.store.room(name) if self.store is not None else None
            if record is not None:  # it existed before: continue where it stopped
                room.name, room.next_seq, room.topic = record.name, record.next_seq, record.topic
                room.history.extend(self.store.recent(name, self.history_size))
                room.history_changed()
        return room

    def _room_for_join(self, name: str) -> Room:
        return self._room(self._room_name(name))

    @staticmethod
    def _room_name(name: str) -> str:
        name = without_hash(name)
        problem = room_problem(name)
        if problem:
            raise Refused(ErrorCode.INVALID_ROOM, problem)
        return name

    def room_of(self, member: Member, name: str | None) -> Room:
        """The member's room called ``name``; None: its only room."""
        if name is None:
            if len(member.rooms) == 1:
                return next(iter(member.rooms.values()))
            if not member.rooms:
                raise Refused(ErrorCode.NOT_IN_ROOM, "you are in no room: join one first")
            raise Refused(ErrorCode.INVALID_ROOM, f"you are in {len(member.rooms)} rooms: say which one in \"room\"")
        room = member.rooms.get(fold(without_hash(name)))
        if room is None:
            raise Refused(ErrorCode.NOT_IN_ROOM, f"you are not in {clean_line(name)[:MAX_NICK_LENGTH]}: join it first")
        return room

    def _enter(self, member: Member, room: Room, now: float) -> tuple[Joined, list[Delivery]]:
        deliveries = self.arrive(member, room, now)
        joined = Joined(
            room=room.name,
            topic=room.topic,
            members=room.member_infos(now, show_addresses=member.op),
            member_count=len(room.members),
            history=room.recent(),
            last_seq=room.next_seq - 1,
        )
        return joined, deliveries

    def arrive(self, member: Member, room: Room, now: float) -> list[Delivery]:
        """``member`` comes into ``room``: what the others are told."""
        others = room.everyone()
        room.add(member)
        member.rooms[fold(room.name)] = room
        self._publish(member, room, "join", op=member.op, away=member.away, address=member.address)
        self._publish_session(member)
        if len(others) >= LARGE_ROOM:  # summed up at the next tick (see crowd_news)
            room.crowd_joined.append(member.nick)
            return []
        event = Presence(room=room.name, event=PresenceEvent.JOIN, nick=member.nick, ts=now)
        return [Delivery(others, event)] if others else []

    def depart(self, member: Member, room: Room, reason: str, now: float) -> list[Delivery]:
        member.rooms.pop(fold(room.name), None)
        if not room.discard(member):
            return []
        self._publish(member, room, "leave", reason=reason)
        self._publish_session(member)
        if not room.local and fold(room.name) != fold(DEFAULT_ROOM):
            self._forget_room(room)  # nobody here is in it: stop following it
            return []
        if room.large:  # summed up at the next tick (see crowd_news)
            room.crowd_left.append(member.nick)
            return []
        event = Presence(room=room.name, event=PresenceEvent.LEAVE, nick=member.nick, reason=reason, ts=now)
        return [Delivery(room.everyone(), event)]


#: Keys of remote members: negative, so never a connection's.
_remote_keys = itertools.count(-1, -1)


def _owner(member: Member) -> str:
    """Who holds a nick, as the cluster records it: the session's resume token (so that
    another server can take the session over), or the connection for IRC members."""
    return member.token or f"conn{member.key}"


def _ip(address: str) -> str:
    """``host:port`` -> host."""
    return address.rsplit(":", 1)[0]
