"""The hub: the chat state behind the server's one lock, and the fan-out of what it
decides into the recipients' outboxes.

Every thread that changes the chat does ``with hub.locked(batch) as state:``; the
frames it queues on its :class:`Batch` are committed (new messages to SQLite first)
and handed to every recipient's outbox as the outermost block ends, still under the
lock -- that is what gives every member a room's messages in the same order.  An idle
outbox sends at once (non-blocking); the others are flushed by the caller afterwards,
outside the lock.  In a cluster, what the state decided for the other servers (a join,
a session) is published by that flush, before the outboxes are: while any is waiting,
nothing is sent at once, so nobody sees a welcome or a join the cluster was not told of.

Recipients are anything with a ``sink`` (room members); a sink is a connection with
``outbox``, ``closing``, ``me`` (its one-element recipient tuple) and ``wire`` (its
:class:`~chatroom.server.wire.WireFormat`), or None while a member is held for a
reconnect.  A message is encoded once per wire format in use among its recipients.
A recipient tuple that comes back (a room's member tuple) is flattened once into its
outboxes (:class:`_Plan`), so whatever changes a member's sink or a connection's wire
must count the change in ``Member.sink_changes`` -- both attributes are properties
that do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from chatroom.protocol import Error, ErrorCode
from chatroom.server.members import Delivery, Member
from chatroom.server.outbox import QUEUED, REFUSED, Outbox
from chatroom.server.room import ChatState
from chatroom.server.store import Store
from chatroom.server.wire import FRAMED, Outgoing
from chatroom.trace import Tracer

__all__ = ["Batch", "Hub", "append_entry"]

log = logging.getLogger("chatroom.server")


class Batch:
    """What one thread queues under the hub lock; fanned out as the lock is released.

    Consecutive frames for the *same* recipients (the room's cached member tuple, so an
    identity check) are joined and put once per recipient: a sender's burst of k
    messages costs each member one outbox entry, not k.  ``deferred`` frames (the
    sender's acknowledgements) go after the rest, so acks do not split a burst.
    Then ``touched`` outboxes are flushed once each, outside the lock.
    """

    __slots__ = ("entries", "deferred", "acks", "touched", "overflowed", "tracer", "pace", "behind", "room", "own",
                 "spoke_to")

    def __init__(self, tracer: Tracer | None = None, *, pace: bool = False) -> None:
        self.tracer = tracer
        #: A connection's batch (``pace``): the outboxes it left behind are noted in
        #: ``behind``, for its sender to wait on (``pace.py``).
        self.pace = pace
        self.behind: list[Outbox] = []
        #: The most recipients of one of its frames: the room it spoke to (``pace.py``).
        self.room: tuple[Any, ...] = ()
        self.own: Outbox | None = None  # the sender's own outbox: waited for whenever behind (pace.py)
        #: ``room`` of the last flush that had one: where a sender's next burst goes, most likely.
        self.spoke_to: tuple[Any, ...] = ()
        self.entries: list[tuple[tuple[Any, ...], list[Outgoing]]] = []
        self.deferred: list[tuple[tuple[Any, ...], list[Outgoing]]] = []
        self.acks: list[tuple[Any, str]] = []  # whose acks are deferred, for errors
        self.touched: set[Outbox] = set()
        self.overflowed: list[Any] = []  # connections whose outbox overflowed: drop them as too slow

    def queue(self, targets: tuple[Any, ...], out: Outgoing) -> None:
        if self.tracer is not None:
            self.tracer.frame_out(_describe_targets(targets), out.framed)
        append_entry(self.entries, targets, out)

    def queue_all(self, targets: tuple[Any, ...], outs: list[Outgoing]) -> None:
        """``queue`` each of ``outs`` (a list the batch may keep), in order."""
        self._extend(self.entries, targets, outs)

    def defer(self, targets: tuple[Any, ...], out: Outgoing) -> None:
        if self.tracer is not None:
            self.tracer.frame_out(_describe_targets(targets), out.framed)
        append_entry(self.deferred, targets, out)

    def defer_all(self, targets: tuple[Any, ...], outs: list[Outgoing]) -> None:
        """``defer`` each of ``outs`` (a list the batch may keep), in order."""
        self._extend(self.deferred, targets, outs)

    def _extend(self, entries: list[tuple[tuple[Any, ...], list[Outgoing]]], targets: tuple[Any, ...],
                outs: list[Outgoing]) -> None:
        if self.tracer is not None:
            for out in outs:
                self.tracer.frame_out(_describe_targets(targets), out.framed)
        if entries and entries[-1][0] is targets:
            entries[-1][1].extend(outs)
        else:
            entries.append((targets, outs))


def _describe_targets(targets: tuple[Any, ...]) -> str:
    if len(targets) == 1:
        conn = targets[0].sink
        return f"-> {conn.address} {conn.member.nick if conn and conn.member else ''}" if conn else "-> (held)"
    return f"-> {len(targets)} members"


def append_entry(entries: list[tuple[tuple[Any, ...], list[Outgoing]]], targets: tuple[Any, ...],
                 out: Outgoing) -> None:
    if entries and entries[-1][0] is targets:
        entries[-1][1].append(out)
    else:
        entries.append((targets, [out]))


class Hub:
    """The chat state behind its one lock, and the fan-out of what it decides.

    Use ``with hub.locked(batch) as state:``; what is queued on ``batch`` inside is put
    into the recipients' outboxes as the block ends, still under the lock, so every
    member's outbox receives the room's frames in one global order.  The lock is
    re-entrant and is every outbox's producer lock (see ``Outbox``).
    """

    def __init__(self, state: ChatState, store: Store, max_header: int) -> None:
        self.state = state
        self.store = store
        self.max_header = max_header
        # The one lock of the server.  It protects the ChatState, the file Relay, the
        # ban list and the producer side of every Outbox (so that each member's outbox
        # gets the room's frames in one order).  What runs under it: room decisions,
        # encoding each message once per wire format, appending to outboxes -- or, for
        # an outbox with nothing queued, one non-blocking send() (MSG_DONTWAIT: it
        # cannot wait; what the kernel does not take is queued for the flusher) --
        # and the commit of the batch's new messages to SQLite (the one disk write:
        # "on disk before anyone sees it"; a failure logs one line).  Never a call that
        # can block on a peer, a sleep, a ban write, a retention prune (the store has a
        # lock of its own for those), or a callback into the UI.  Re-entrant.
        self.lock = threading.RLock()
        self._depth = 0
        self._plans = _Plans()  # (under the lock)
        #: In a cluster: tells the other servers what ``state.published`` holds.  What
        #: the state decided is *prepared* under the lock (plain records, no I/O) and
        #: queued; it is *published* outside it, by whichever thread flushes next, in
        #: the order it was decided (``_publishing`` is held while the queue drains).
        self.publisher: Any = None
        self._unpublished: deque[object] = deque()
        self._publishing = threading.Lock()  # (never taken under the hub lock)
        #: Told (outside the lock, by ``flush``) of each connection whose outbox overflowed:
        #: the server drops it as too slow.
        self.overflow: Callable[[Any], None] = lambda conn: None
        #: What the metrics read (under the lock): messages queued to their recipients,
        #: and whether the last commit to the store failed; the store's commit times go
        #: to ``store_timer`` (seconds).
        self.deliveries = 0
        self.save_failed = False
        self.store_timer: Callable[[float], None] = lambda seconds: None

    def locked(self, batch: Batch) -> _Locked:
        """``with hub.locked(batch) as state:`` -- see the class docstring.  (A small
        class, not a generator context manager: it runs once per message.)"""
        return _Locked(self, batch)

    def flush(self, batch: Batch) -> None:
        """How every batch ends, outside the lock, whoever made it (a reader, the
        housekeeping, the cluster's reader): each touched outbox is flushed once, and
        each connection whose outbox overflowed is dropped as too slow (``overflow``).
        One place, so that no path can forget the drop: one once did, and a member too
        slow for another server's traffic stayed connected, its frames discarded."""
        self.publish_pending()
        if batch.room:  # (also when every outbox took its part at once: nothing touched)
            batch.spoke_to, batch.room = batch.room, ()
        touched = batch.touched
        if touched:
            if batch.pace:
                behind = batch.behind
                for outbox in touched:
                    outbox.flush()
                    if outbox.behind():
                        behind.append(outbox)  # (its own too: it waits for its own reading)
            else:
                for outbox in touched:
                    outbox.flush()
            touched.clear()
        if batch.overflowed:
            overflowed, batch.overflowed = batch.overflowed, []
            for conn in overflowed:
                self.overflow(conn)

    def publish_pending(self) -> None:
        """Tell the other servers of a cluster what this one decided, in the order it
        was decided (outside the hub lock: a Redis round trip).  The cluster's chat
        path calls it before a message goes to a room's log, so that the log has a
        member's join before what it said."""
        if not self._unpublished and not self._publishing.locked():
            return  # nothing to tell, and nobody telling it
        # (Locked: another thread may have taken *our* records off the queue and be
        # telling them now -- the queue looks empty, but they are not told yet: wait.)
        with self._publishing:
            while self._unpublished:
                self.publisher.publish(self._unpublished.popleft())

    def forget_unpublished(self) -> None:
        """Drop what was decided and not yet told to the cluster (this server was fenced:
        the cluster is not to hear it).  Not under the hub lock."""
        with self._publishing:
            self._unpublished.clear()

    def _refuse_unstored(self, batch: Batch) -> None:
        """A commit failed: nothing of this batch goes out; its senders hear why."""
        batch.entries.clear()
        batch.deferred.clear()
        for conn, msg_id in batch.acks:
            error = Error(code=ErrorCode.INTERNAL.value, id=msg_id,
                          message="the server could not store this message; it was not sent")
            append_entry(batch.entries, conn.me, Outgoing.of(error))

    def deliver(self, deliveries: Iterable[Delivery], batch: Batch) -> None:
        """Queue each message for its recipients (inside ``locked``), framed once."""
        for d in deliveries:
            batch.queue(d.recipients, Outgoing.of(d.message, self.max_header))

    def _fan_out(self, batch: Batch) -> None:
        self._commit(batch)
        entries = batch.entries
        for targets, parts in batch.deferred:
            if entries and entries[-1][0] is targets:
                entries[-1][1].extend(parts)
            else:
                entries.append((targets, parts))
        batch.deferred.clear()
        batch.acks.clear()
        plans = self._plans
        # The cluster is told before anyone sees it: queued, sent by flush -- also when
        # another thread is telling the cluster now (it may hold this batch's records).
        queue_only = bool(self._unpublished) or self._publishing.locked()
        delivered, room = 0, batch.room  # (for the metrics; the room for pace.py)
        for targets, parts in entries:
            width = len(targets)
            delivered += width * len(parts)
            if width > len(room):
                room = targets
            if queue_only:
                framed = parts[0].framed if len(parts) == 1 else b"".join([p.framed for p in parts])
                _append_each(targets, parts, framed, batch, send=False)
            else:
                _append(targets, parts, batch, plans)
        self.deliveries += delivered
        batch.room = room
        entries.clear()

    def _commit(self, batch: Batch) -> None:
        """Commit before anyone sees a message or its acknowledgement (see store.py)."""
        if self.state.published:
            events, self.state.published = self.state.published, []
            self._unpublished.append(self.publisher.prepare(events, self.state))
        if self.state.unsaved or self.state.dirty:
            chats, rooms = self.state.take_unsaved()
            started = time.perf_counter()
            try:
                self.store.save(chats, rooms)
            except Exception as exc:  # noqa: BLE001 -- sqlite3.Error, or a bug: either way, refuse, never half-send
                log.error("could not store %d message(s): %s; they were not sent", len(chats), exc)
                self.state.rollback(chats)
                self._refuse_unstored(batch)
                self.save_failed = True
            else:
                self.save_failed = False
                self.store_timer(time.perf_counter() - started)


class _Locked:
    __slots__ = ("hub", "batch")

    def __init__(self, hub: Hub, batch: Batch) -> None:
        self.hub, self.batch = hub, batch

    def __enter__(self) -> ChatState:
        hub = self.hub
        hub.lock.acquire()
        hub._depth += 1  # only the lock's owner touches it
        return hub.state

    def __exit__(self, *exc: object) -> None:
        hub = self.hub
        try:
            hub._depth -= 1
            if not hub._depth:  # the outermost block: now the batch is complete
                if hub.state.nicks.news:  # (a watched nick came or went: its watchers are told)
                    for watcher, news in hub.state.watch_news():
                        if watcher.sink is not None:
                            self.batch.queue(watcher.sink.me, Outgoing(news, b""))
                hub._fan_out(self.batch)
        finally:
            hub.lock.release()


#: Recipient tuples this long or longer are flattened into a _Plan when seen twice.
PLAN_FROM = 8
#: What the plans may keep alive: this many tuples, and this many references in all (a
#: room's member tuple is replaced at every join: a wave of 5,000 arrivals must not
#: leave hundreds of 5,000-member tuples behind).
MAX_PLANS = 64
MAX_PLANNED = 32_768


class _Plan:
    """A recipient tuple, flattened once for the fan-out: the outboxes of its members
    that take frames, and those of its members that want another wire format, by format.

    Walking member -> connection -> wire, outbox -> socket for every recipient of every
    message touched five objects each, and each ``send()`` in between makes the kernel
    evict them from the CPU cache: at 500 members and chat rates that cost about 1 us
    per delivery, more than the loop's own code (measured: a bare ``send`` loop that
    still walked the members cost 6.0 us per delivery, one over a tuple of the sockets
    5.1, the tutorial server 4.4; README, Performance).  A plan is valid
    while its tuple is the same object (rooms make a new one when membership changes)
    and no member's sink or connection's wire has changed since (``Member.sink_changes``).
    """

    __slots__ = ("targets", "generation", "outboxes", "others", "size")

    def __init__(self, targets: tuple[Any, ...]) -> None:
        self.targets = targets
        self.generation = -1  # not flattened yet: seen once
        self.outboxes: tuple[Outbox, ...] = ()
        self.others: tuple[tuple[Any, tuple[Outbox, ...]], ...] = ()  # (wire format, its outboxes)
        self.size = 0  # references kept: outboxes of every format

    def flatten(self) -> None:
        self.generation = Member.sink_changes  # read before looking
        by_wire: dict[Any, list[Outbox]] = {FRAMED: []}
        for target in self.targets:
            conn = target.sink
            if conn is None:  # held for a reconnect: it will get what it missed then
                continue
            by_wire.setdefault(conn.wire, []).append(conn.outbox)
        self.outboxes = tuple(by_wire.pop(FRAMED))
        self.others = tuple((wire, tuple(outboxes)) for wire, outboxes in by_wire.items())
        self.size = len(self.outboxes) + sum(len(outboxes) for _, outboxes in self.others)


class _Plans:
    """The recipient tuples seen lately, by identity, and their plans: the oldest go
    first past ``MAX_PLANS`` tuples or ``MAX_PLANNED`` references kept alive."""

    __slots__ = ("_by_id", "_kept")

    def __init__(self) -> None:
        self._by_id: dict[int, _Plan] = {}
        self._kept = 0

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def kept(self) -> int:
        return self._kept

    def get(self, targets: tuple[Any, ...]) -> _Plan | None:
        """The current plan of ``targets``, or None the first time it is seen."""
        plan = self._by_id.get(id(targets))
        if plan is not None and plan.targets is targets:  # (kept alive by the plan: the id is its own)
            if plan.generation != Member.sink_changes:
                self._kept -= plan.size
                plan.flatten()
                self._kept += plan.size
            return plan
        by_id = self._by_id
        while by_id and (len(by_id) >= MAX_PLANS or self._kept + len(targets) > MAX_PLANNED):
            old = by_id.pop(next(iter(by_id)))
            self._kept -= len(old.targets) + old.size
        by_id[id(targets)] = _Plan(targets)
        self._kept += len(targets)
        return None


def _append(targets: tuple[Any, ...], parts: list[Outgoing], batch: Batch, plans: _Plans) -> None:
    """Append one entry to each recipient's outbox: once per recipient per batch, so
    keep it lean.  Encoded once per wire format among them (framed: frames joined).
    A tuple seen before goes through its flattened _Plan."""
    framed = parts[0].framed if len(parts) == 1 else b"".join([p.framed for p in parts])
    plan = plans.get(targets) if len(targets) >= PLAN_FROM else None
    if plan is None:
        _append_each(targets, parts, framed, batch)
        return
    _put_all(plan.outboxes, framed, batch)
    for wire, outboxes in plan.others:  # (browsers, IRC clients: encoded once for all of them)
        data = wire.encode(parts)
        if data:  # (b"": nothing of this is shown in that format)
            _put_all(outboxes, data, batch)


def _put_all(outboxes: tuple[Outbox, ...], data: bytes, batch: Batch) -> None:
    """``data`` into each outbox: sent at once if it is idle, else queued."""
    touched = batch.touched
    for outbox in outboxes:
        done = outbox.put_or_send(data)
        if done:  # not SENT
            if done == QUEUED:
                touched.add(outbox)
            else:
                owner = outbox.owner  # (None once its connection has ended)
                if owner is not None and not owner.closing:
                    batch.overflowed.append(owner)


def _append_each(targets: tuple[Any, ...], parts: list[Outgoing], framed: bytes, batch: Batch,
                 send: bool = True) -> None:
    """``_append`` recipient by recipient (short tuples, ones seen once, other formats).
    ``send`` False: only queue, even to an idle outbox (``flush`` sends)."""
    others: dict[Any, bytes] | None = None
    touched = batch.touched
    for target in targets:
        conn = target.sink
        if conn is None:  # held for a reconnect: it will get what it missed then
            continue
        wire = conn.wire
        if wire is FRAMED:
            data = framed
        else:
            if others is None:
                others = {}
            cached = others.get(wire)
            if cached is None:
                cached = others[wire] = wire.encode(parts)
            data = cached
            if not data:
                continue  # nothing of this in that format
        outbox = conn.outbox
        done = outbox.put_or_send(data) if send else (QUEUED if outbox.put(data) else REFUSED)
        if done == QUEUED:
            touched.add(outbox)
        elif done == REFUSED and not conn.closing:
            batch.overflowed.append(conn)
