"""The hub's fan-out alone: a room's messages reach every recipient in one order,
encoded once per wire format in use -- not once per recipient.  Recipients here are
plain objects with an outbox that records; no sockets, no threads."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from chatroom.protocol import FrameDecoder, Notice, decode_message
from chatroom.server.hub import MAX_PLANNED, MAX_PLANS, Batch, Hub
from chatroom.server.members import Member
from chatroom.server.outbox import REFUSED, SENT
from chatroom.server.room import ChatState
from chatroom.server.store import HistoryStore
from chatroom.server.wire import FRAMED, Outgoing


class Recorder:
    """An outbox that keeps what it is given (and refuses past ``limit`` puts)."""

    def __init__(self, limit: int = 1_000) -> None:
        self.data: list[bytes] = []
        self.queued: list[bytes] = []
        self.limit = limit
        self.owner = None

    def put_or_send(self, data: bytes) -> int:
        if len(self.data) >= self.limit:
            return REFUSED
        self.data.append(data)
        return SENT

    def put(self, data: bytes) -> bool:  # (queued: sent by flush)
        self.queued.append(data)
        return True

    def flush(self) -> None:
        self.data += self.queued
        self.queued.clear()


class Sink:
    def __init__(self, wire, limit: int = 1_000) -> None:
        self.outbox = Recorder(limit)
        self.outbox.owner = self
        self.wire = wire
        self.closing = False
        self.me = (self,)
        self.sink = self


class Lines:
    """A second wire format, as a door for another kind of client would be: one text
    line per chat, nothing for anything else; counts its encodings."""

    name = "lines"

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, parts: Sequence[Outgoing]) -> bytes:
        self.calls += 1
        out = [f"<{p.message.nick}> {p.message.text}\n" for p in parts if p.message.TYPE == "chat"]
        return "".join(out).encode()


def room_of(formats: list) -> tuple[Hub, ChatState, list, list[Sink]]:
    store = HistoryStore(None)
    state = ChatState(store=store)
    hub = Hub(state, store, 65536)
    members, sinks = [], []
    for i, wire in enumerate(formats):
        member, _, _ = state.admit(i + 1, f"user{i}", f"127.0.0.1:{1000 + i}", 0.0)
        sink = Sink(wire)
        member.sink = sink
        members.append(member)
        sinks.append(sink)
    return hub, state, members, sinks


def frames(data: bytes) -> list:
    return [decode_message(f) for f in FrameDecoder().feed(data)]


def test_a_chat_is_encoded_once_per_format_and_each_recipient_gets_its_own():
    lines = Lines()
    hub, state, members, sinks = room_of([FRAMED, lines, FRAMED, lines, lines])
    batch = Batch()
    with hub.locked(batch) as st:
        for text in ("one", "two", "three"):
            hub.deliver(st.say(members[0], text, 1.0)[1], batch)
    assert lines.calls == 1  # three chats, three line recipients: one encoding
    for sink in sinks:
        (data,) = sink.outbox.data  # one outbox entry per recipient for the whole batch
        if sink.wire is FRAMED:
            assert [m.text for m in frames(data)] == ["one", "two", "three"]
            assert [m.seq for m in frames(data)] == [1, 2, 3]
        else:
            assert data == b"<user0> one\n<user0> two\n<user0> three\n"
    assert sinks[0].outbox.data[0] is sinks[2].outbox.data[0]  # the very same bytes object


def test_a_format_that_shows_nothing_of_an_entry_gets_no_empty_put():
    lines = Lines()
    hub, state, members, sinks = room_of([FRAMED, lines])
    batch = Batch()
    with hub.locked(batch) as st:
        hub.deliver(st.set_topic(members[0], "plans", 1.0), batch)
    assert sinks[1].outbox.data == []  # a topic is not a line in that format
    assert [m.TYPE for m in frames(sinks[0].outbox.data[0])] == ["topic"]


def test_a_full_outbox_is_reported_for_dropping_not_skipped_silently():
    hub, state, members, sinks = room_of([FRAMED, FRAMED])
    sinks[1].outbox.limit = 0
    batch = Batch()
    with hub.locked(batch) as st:
        hub.deliver(st.say(members[0], "hi", 1.0)[1], batch)
    assert batch.overflowed == [sinks[1]]
    assert [m.text for m in frames(sinks[0].outbox.data[0])] == ["hi"]  # the others still get it


def test_a_held_member_is_skipped_and_gets_the_message_on_resume():
    hub, state, members, sinks = room_of([FRAMED, FRAMED])
    members[1].sink = None  # held for a reconnect
    batch = Batch()
    with hub.locked(batch) as st:
        chat, deliveries = st.say(members[0], "while you were away", 1.0)
        hub.deliver(deliveries, batch)
    assert sinks[1].outbox.data == []
    assert state.rooms["lobby"].next_seq - 1 == chat.seq  # it is in the room's history to replay


def test_a_big_room_flattened_for_the_fan_out_still_follows_holds_resumes_and_overflows():
    """A room's member tuple seen twice is flattened once (its outboxes) for the fan-out;
    whatever changes where a member's frames go must reach the next message."""
    hub, state, members, sinks = room_of([FRAMED] * 10)

    def say(text: str) -> None:
        batch = Batch()
        with hub.locked(batch) as st:
            hub.deliver(st.say(members[0], text, 1.0)[1], batch)
        assert batch.overflowed == overflowed
        overflowed.clear()

    def texts(sink: Sink) -> list[str]:
        return [m.text for data in sink.outbox.data for m in frames(data)]

    overflowed: list[Sink] = []
    say("one")
    say("two")  # the same member tuple again: now flattened
    say("three")
    assert all(texts(sink) == ["one", "two", "three"] for sink in sinks)

    before = Member.sink_changes
    members[3].sink = None  # held for a reconnect
    assert Member.sink_changes > before
    say("four")
    assert texts(sinks[3]) == ["one", "two", "three"]

    back = Sink(FRAMED)
    members[3].sink = back  # resumed on a new connection
    say("five")
    assert texts(back) == ["five"] and texts(sinks[3]) == ["one", "two", "three"]

    sinks[5].outbox.limit = len(sinks[5].outbox.data)  # full from now on
    overflowed.append(sinks[5])
    say("six")
    assert texts(sinks[9])[-1] == "six" and texts(back) == ["five", "six"]


def test_a_connection_changing_its_wire_format_is_counted():
    """The flattened fan-out lists hold framed outboxes apart from other formats: an IRC
    client that turns on a capability changes its wire format, and that must count."""
    import socket

    from chatroom.server.outbox import Flusher
    from chatroom.server.tcp import Connection, ServerConfig

    a, b = socket.socketpair()
    flusher = Flusher()
    flusher.start()
    try:
        hub, _, _, _ = room_of([])
        conn = Connection(a, "127.0.0.1:1", hub, flusher, ServerConfig())
        assert conn.wire is FRAMED and conn.outbox.owner is conn
        before = Member.sink_changes
        conn.wire = Lines()
        assert Member.sink_changes > before
    finally:
        flusher.stop()
        a.close()
        b.close()


def test_a_wave_of_arrivals_leaves_few_old_member_tuples_behind():
    """Every join makes a room a new member tuple; the fan-out's flattened plans keep
    tuples alive by identity, so they must be bounded -- in tuples and in references --
    or 5,000 arrivals would pin hundreds of 5,000-member tuples."""
    hub, _, _, _ = room_of([])
    crowd = [Sink(FRAMED) for _ in range(2100)]
    out = Outgoing.of(Notice(text="hello"))
    for i in range(40):
        targets = tuple(crowd[: 2000 + i])  # a new tuple, as after a join
        for _ in range(2):  # the second time through its plan
            batch = Batch()
            with hub.locked(batch):
                batch.queue(targets, out)
    assert len(hub._plans) <= MAX_PLANS and hub._plans.kept <= MAX_PLANNED
    assert len(crowd[0].outbox.data) == 80 and len(crowd[2010].outbox.data) == 2 * 29
    assert crowd[2099].outbox.data == []


def test_nobody_sees_what_the_cluster_is_still_being_told():
    """In a cluster, what a batch decided (a join) is told to the other servers before
    anyone sees it.  When another thread has taken the batch's records off the queue and
    is telling them, the queue looks empty -- yet the batch must wait for that thread,
    not go out.  (Seen beside two CPU-bound processes: a room's maker got its ``joined``
    before the cluster had it, and a member of another server then made the room anew.)"""
    hub, state, members, sinks = room_of([FRAMED, FRAMED])
    telling, release, told = threading.Event(), threading.Event(), threading.Event()

    class Publisher:
        def prepare(self, events, state):
            return list(events)

        def publish(self, records):
            telling.set()
            release.wait(10)
            told.set()

    hub.publisher = Publisher()
    state.published = []
    batch = Batch()
    with hub.locked(batch) as st:
        st.published.append({"t": "join", "nick": "user0"})
        hub.deliver(st.say(members[0], "I made this room", 1.0)[1], batch)
    other = threading.Thread(target=hub.publish_pending)  # (the cluster's reader, flushing its own batch)
    other.start()
    assert telling.wait(10)  # it holds the records; the queue is empty
    flushing = threading.Thread(target=hub.flush, args=(batch,))
    flushing.start()
    flushing.join(0.2)
    assert flushing.is_alive() and not any(sink.outbox.data for sink in sinks)  # waits: nobody has it yet
    release.set()
    flushing.join(10)
    other.join(10)
    assert told.is_set() and [m.text for m in frames(sinks[1].outbox.data[0])] == ["I made this room"]
