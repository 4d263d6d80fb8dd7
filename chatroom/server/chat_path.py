"""How what a member says reaches its room or its recipient: one path for every door.

A door (framed, IRC, WebSocket) hands room messages (:class:`ToSay`) and private ones
to the server's :class:`ChatPath`; the path applies the room rules (resend
recognised, member of the room, not muted, text cleaned, stamped with the room's next
number) and queues the message for its recipients.  What the door gets back is one
:data:`SayResult` per item -- the message as stamped, a resend recognised, or why it
was refused -- and it answers in its own wire (an ``ack`` or an ``error`` frame; an
IRC numeric).

Two strategies implement it, and the composition root (``chatroom/app.py``) picks
one: :class:`LocalChat` for a server alone (everything under the hub lock, in one
step), and the cluster's (``chatroom.cluster``) which checks under the lock, appends
to Redis outside it and applies the log's order under it again.  Doors never ask
which one they have.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager as ContextManager
from typing import TYPE_CHECKING, NamedTuple, Protocol

from chatroom.errors import Refused
from chatroom.protocol import Chat, Private, encode_plain
from chatroom.server.members import Delivery
from chatroom.server.wire import Outgoing
from chatroom.text import fold, nick_key, without_hash

if TYPE_CHECKING:
    from chatroom.server.hub import Batch, Hub
    from chatroom.server.members import Member
    from chatroom.server.room import ChatState

__all__ = ["ToSay", "SayItem", "Resent", "SayResult", "Answer", "ChatPath", "LocalChat", "claimed"]


class ToSay(Protocol):
    """One room message as a door hands it in: the framed ``say`` and ``action``
    themselves, or a :class:`SayItem`.  ``room`` None: the member's only room."""

    @property
    def text(self) -> str: ...
    @property
    def action(self) -> bool: ...
    @property
    def id(self) -> str | None: ...
    @property
    def room(self) -> str | None: ...
    @property
    def tags(self) -> dict[str, str] | None: ...
    @property
    def notice(self) -> bool: ...


class SayItem(NamedTuple):
    """A :class:`ToSay` built by a door whose wire has no such message (IRC)."""

    text: str
    action: bool
    id: str | None
    room: str | None
    tags: dict[str, str] | None = None  # client-only tags (IRCv3 ``+name=value``)
    notice: bool = False  # sent as an IRC NOTICE


class Resent(NamedTuple):
    """A resend of a message already sent (its first answer was lost): that message,
    to acknowledge again; nothing is sent twice."""

    msg: Chat | Private


#: What became of one item: said now (the ``Chat`` as stamped), a resend recognised,
#: refused (tell the sender why), or a bug in the server (another Exception: log it,
#: tell the sender it failed; the connection goes on).  No wrapper for the usual case:
#: the hot path makes nothing per message that it does not send.
SayResult = Chat | Resent | Refused | Exception
#: Called with the results under the hub lock, as the last step of ``say_many``: the
#: door queues its answers (acks, errors) there, so that they follow the messages
#: they answer and join the same fan-out.  It only queues on the batch.
Answer = Callable[[Sequence[SayResult]], None]


class ChatPath(Protocol):
    """The one way messages enter rooms and reach members (see the module's doc), and
    what else a door or the handler must ask the other servers of a cluster, if any."""

    #: Whether a stopping server keeps its members' sessions (in a cluster they resume
    #: on another server, which takes them over) instead of ending them.
    keeps_sessions_on_stop: bool

    def run(self, batch: Batch) -> ContextManager[object]:
        """Around a run of one member's messages read at once (``with path.run(batch):``):
        alone, the hub lock held across them, so each member's outbox gets the run as
        one entry; in a cluster, nothing (the path must not hold the lock over Redis)."""
        ...

    def say_many(self, batch: Batch, member: Member, items: Sequence[ToSay], now: float,
                 answer: Answer | None = None) -> list[SayResult]:
        """``member`` says each of ``items``, in order; one result each."""
        ...

    def direct(self, batch: Batch, member: Member, to: str, text: str, now: float,
               msg_id: str | None, tags: dict[str, str] | None = None, notice: bool = False
               ) -> tuple[Private | Resent, str | None]:
        """``member`` sends ``text`` to the member called ``to``: the message as sent
        (or ``Resent``), and that member's away text if it has one.  ``Refused`` if it
        was not sent."""
        ...

    def claim(self, nick: str, owner: str) -> None:
        """Hold ``nick`` for ``owner`` wherever else it could be taken (a cluster's other
        servers), *before* the hub lock is taken to admit or rename: ``Refused`` if it
        is taken there, or cannot be asked (``unavailable``).  Alone: nothing to do."""
        ...

    def release(self, nick: str, owner: str) -> None:
        """Let go of what ``claim`` held (the step failed, or the nick was given up)."""
        ...

    def adopt(self, token: str, conn_key: int, address: str, batch: Batch) -> bool:
        """A client resumes a session this server does not have: take it over from the
        server that had it, if another one did (outside the hub lock).  Alone: False."""
        ...

    def floors(self, batch: Batch, seen: dict[str, int]) -> list[tuple[str, int, int]]:
        """A resuming client says which messages it has seen (room -> number), before
        the hub lock: a room whose numbering went backwards (its store lost its newest
        messages) goes on after them, never giving a number shown to another message.
        Returns (room, number, how many numbers were skipped) for each that did."""
        ...

    def look_ahead(self, *, room: str | None = None, nick: str | None = None, rooms: bool = False) -> None:
        """Before the hub lock: fetch what the rules are about to ask the other servers
        -- a room to start following, a member of theirs, the list of every room -- so
        that under the lock they find it in memory.  Alone: nothing to fetch.  May
        raise ``Refused`` (``unavailable``)."""
        ...


#: No room looked up yet (a name never equals it; ``None`` is a name: "my only room").
_NO_ROOM = object()


class LocalChat:
    """The path of a server alone: every step under the hub lock, at once."""

    keeps_sessions_on_stop = False

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def run(self, batch: Batch) -> ContextManager[object]:
        return self.hub.locked(batch)

    def claim(self, nick: str, owner: str) -> None:
        pass  # a server alone: the room rules (under the lock) are the only claim

    def release(self, nick: str, owner: str) -> None:
        pass

    def adopt(self, token: str, conn_key: int, address: str, batch: Batch) -> bool:
        return False  # no other server had it

    def look_ahead(self, *, room: str | None = None, nick: str | None = None, rooms: bool = False) -> None:
        if room is not None:  # a room about to be made: what the store has of it (members are all here)
            self.hub.state.look_ahead(without_hash(room))

    def floors(self, batch: Batch, seen: dict[str, int]) -> list[tuple[str, int, int]]:
        with self.hub.locked(batch) as state:
            raised = [(name, seq, state.seen_by_client(name, seq)) for name, seq in seen.items()]
        return [r for r in raised if r[2]]

    def say_many(self, batch: Batch, member: Member, items: Sequence[ToSay], now: float,
                 answer: Answer | None = None) -> list[SayResult]:
        with self.hub.locked(batch) as state:
            results = self._say(state, batch, member, items, now)
            if answer is not None:
                answer(results)
        return results

    def _say(self, state: ChatState, batch: Batch, member: Member, items: Sequence[ToSay],
             now: float) -> list[SayResult]:
        """The hot path of a busy room: one pass, no dispatch per message; a room's
        chats are queued together (one outbox entry per member for the run)."""
        max_header = self.hub.max_header
        sender = fold(member.nick)  # nobody renames during the run: it holds the lock
        conn = member.sink  # (the sender's connection: acks are refused with it if the commit fails)
        room = None  # the room of the previous message, and its name
        room_name: object = _NO_ROOM
        targets: tuple[Member, ...] = ()
        chats: list[Outgoing] = []  # for ``targets``, not queued yet
        results: list[SayResult] = []
        acked = batch.acks
        echo = member.echo
        for item in items:
            text, action, msg_id, name = item.text, item.action, item.id, item.room
            try:
                if msg_id is not None:
                    earlier = state.already_sent(member, msg_id, text, action=action, room_name=name, sender=sender)
                    if earlier is not None:  # a resend of something we have: acknowledge, don't repeat
                        results.append(Resent(earlier))
                        continue
                if name != room_name:
                    room_name = _NO_ROOM  # (stays so if the lookup is refused)
                    room = state.room_of(member, name)
                    room_name = name
                chat, recipients = state.say_to(member, text, now, action=action, msg_id=msg_id,
                                                room_name=name, room=room, sender=sender, tags=item.tags,
                                                notice=item.notice)
                out = Outgoing(chat, encode_plain(chat, max_header))  # every field set: encode_plain
            except Exception as exc:  # noqa: BLE001 -- Refused, or a bug: either costs one message
                results.append(exc)
                continue
            if not echo:
                recipients = member.others(recipients)
            if recipients is not targets:
                if chats:
                    batch.queue_all(targets, chats)
                    chats = []
                targets = recipients
            chats.append(out)
            if msg_id is not None and conn is not None:
                acked.append((conn, msg_id))
            results.append(chat)
        if chats:
            batch.queue_all(targets, chats)
        return results

    def direct(self, batch: Batch, member: Member, to: str, text: str, now: float,
               msg_id: str | None, tags: dict[str, str] | None = None, notice: bool = False
               ) -> tuple[Private | Resent, str | None]:
        with self.hub.locked(batch) as state:
            if msg_id is not None:
                earlier = state.already_sent(member, msg_id, text, private=True)
                if earlier is not None:
                    return Resent(earlier), None
            private, deliveries = state.direct(member, to, text, now, msg_id=msg_id, tags=tags, notice=notice)
            if not member.echo:
                deliveries = [Delivery(member.others(d.recipients), d.message) for d in deliveries]
            self.hub.deliver([d for d in deliveries if d.recipients], batch)
            target = state.nicks.get(nick_key(private.to))
            return private, target.away if target is not None else None


@contextlib.contextmanager
def claimed(path: ChatPath, nick: str, owner: str, *, replacing: str | None = None) -> Iterator[None]:
    """``with claimed(path, nick, owner):`` around the locked step that takes ``nick``
    here: claimed first (outside the hub lock: in a cluster it is a Redis round trip),
    released if the step raises.  ``replacing``: the nick given up when it succeeds
    (a rename; nothing is claimed if only its spelling changes)."""
    if replacing is not None and nick_key(nick) == nick_key(replacing):
        yield
        return
    path.claim(nick, owner)
    try:
        yield
    except BaseException:
        path.release(nick, owner)
        raise
    if replacing is not None:
        path.release(replacing, owner)


def no_run() -> ContextManager[object]:
    """The ``run`` of a path that must not hold the lock across a run."""
    return contextlib.nullcontext()
