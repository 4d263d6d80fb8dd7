"""The server over real sockets on 127.0.0.1: ordering, isolation, keepalive, rules."""

from __future__ import annotations

import logging
import socket
import threading
import time

from chatroom.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Action,
    Away,
    Bye,
    Chat,
    Direct,
    Error,
    ErrorCode,
    Hello,
    Join,
    Joined,
    ListRooms,
    Members,
    Nick,
    Ping,
    Pong,
    Presence,
    PresenceEvent,
    Private,
    Rooms,
    Say,
    SetTopic,
    Topic,
    Who,
    encode_message,
)
from tests.polling import wait_until
from tests.threads import os_threads
from tests.wire import WireClient


def test_hello_gets_welcome_with_members_history_and_limits(connect):
    ann = connect("ann")
    ann.send(Say(id="1", text="first"))
    ann.expect(Ack, id="1")
    bob = connect()
    welcome = bob.hello("bob")
    assert welcome.nick == "bob" and welcome.room == "lobby" and welcome.version == PROTOCOL_VERSION
    assert [m.nick for m in welcome.members] == ["ann", "bob"]
    assert [c.text for c in welcome.history] == ["first"]
    assert welcome.limits["max_text"] == 4000
    assert ann.expect(Presence, event=PresenceEvent.JOIN).nick == "bob"


def test_fifty_clients_sending_at_once_all_see_every_message_in_the_same_order(make_server):
    server = make_server(rate=0, max_per_address=0)  # fifty people, all on this machine
    clients = [WireClient(server.port) for _ in range(50)]
    try:
        for i, c in enumerate(clients):
            c.hello(f"user{i}")
        per_client = 20
        total = per_client * len(clients)
        start = threading.Barrier(len(clients))
        received: dict[int, list[tuple[int, str]]] = {}
        errors: list[BaseException] = []

        def run(i: int, c: WireClient) -> None:
            try:
                start.wait()
                for n in range(per_client):
                    c.send(Say(id=f"{i}-{n}", text=f"message {n} from {i}"))
                chats = c.collect(Chat, total, timeout=60)
                received[i] = [(m.seq, m.text) for m in chats]
                acks = c.collect(Ack, per_client, timeout=30)
                assert sorted(a.id for a in acks) == sorted(f"{i}-{n}" for n in range(per_client))
            # any failure in a thread, reported in the main one; report in the main thread
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        assert not errors, errors[0]
        reference = received[0]
        assert [seq for seq, _ in reference] == list(range(1, total + 1))
        assert all(received[i] == reference for i in received)
        assert len(received) == 50
    finally:
        for c in clients:
            c.close()


def test_a_client_that_never_reads_is_dropped_as_too_slow_while_others_get_everything(make_server):
    server = make_server(rate=0, outbox_limit=256 * 1024, max_per_address=0)
    sender = WireClient(server.port)
    sender.hello("sender")
    readers = [WireClient(server.port) for _ in range(20)]
    for i, r in enumerate(readers):
        r.hello(f"reader{i}")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    stalled.connect(("127.0.0.1", server.port))
    stalled.sendall(encode_message(Hello(version=PROTOCOL_VERSION, nick="stalled")))
    wait_until(lambda: "stalled" in server.hub.state.nicks, what="stalled to join")

    # ~5 MB to each member: more than the stalled socket's kernel buffers and outbox hold
    count = 5000
    results: dict[int, int] = {}
    errors: list[BaseException] = []
    step = 50

    def read_all(i: int, c: WireClient) -> None:
        try:
            results[i] = 0
            while results[i] < count:
                results[i] += len(c.collect(Chat, step, timeout=30))
        except BaseException as exc:  # noqa: BLE001 -- any failure in a thread, reported in the main one
            errors.append(exc)

    threads = [threading.Thread(target=read_all, args=(i, r)) for i, r in enumerate(readers)]
    threads.append(threading.Thread(target=read_all, args=(-1, sender)))
    for t in threads:
        t.start()
    payload = "x" * 1000
    for n in range(count):
        sender.send(Say(id=str(n), text=payload))
        if n % step == step - 1:
            # Stay at most a few hundred messages ahead of the slowest *reading* member:
            # the test clients share the GIL with the server, a real room does not.
            wait_until(lambda n=n: errors or (len(results) == 21 and min(results.values()) >= n - 2 * step),
                       what="readers")
    for t in threads:
        t.join(90)
    try:
        assert not errors, errors[0]
        assert all(results[i] == count for i in range(20))
        # Everyone who stayed saw the stalled member leave for the right reason.
        leave = readers[0].expect(Presence, event=PresenceEvent.LEAVE, nick="stalled")
        assert leave.reason == "too slow"
        assert "stalled" not in server.hub.state.nicks
    finally:
        stalled.close()
        for c in [sender, *readers]:
            c.close()


def test_keepalive_pings_a_silent_client_and_drops_it_when_no_pong_comes(make_server):
    server = make_server(ping_interval=0.3, pong_timeout=0.4, resume_grace=0.5)
    watcher, silent = WireClient(server.port), WireClient(server.port)
    try:
        watcher.hello("watcher")
        silent.hello("silent")
        silent.expect(Ping, timeout=5)
        # the watcher answers its pings and stays
        deadline = time.monotonic() + 10
        leave = None
        while leave is None and time.monotonic() < deadline:
            msg = watcher.wait_for(lambda m: isinstance(m, Ping | Presence), timeout=5)
            if isinstance(msg, Ping):
                watcher.send(Pong(token=msg.token))
            elif msg.event is PresenceEvent.LEAVE:
                leave = msg
        assert leave is not None and leave.nick == "silent" and leave.reason == "timed out"
        silent.wait_for(lambda m: isinstance(m, Error) and m.code == ErrorCode.TIMED_OUT.value)
        silent.wait_closed()
        assert "watcher" in server.hub.state.nicks
    finally:
        watcher.close()
        silent.close()


def test_a_peer_that_never_says_hello_is_dropped_after_the_handshake_timeout(make_server):
    server = make_server(handshake_timeout=0.5)
    lurker = WireClient(server.port)
    try:
        start = time.monotonic()
        err = lurker.expect(Error, timeout=5)
        assert err.code == ErrorCode.TIMED_OUT.value and err.fatal
        lurker.wait_closed()
        assert 0.4 < time.monotonic() - start < 5
    finally:
        lurker.close()


def test_a_taken_nick_is_refused_with_a_suggestion_and_the_client_may_try_again(connect):
    connect("ann")
    other = connect()
    other.send(Hello(version=PROTOCOL_VERSION, nick="ANN"))
    err = other.expect(Error)
    assert err.code == ErrorCode.NICK_TAKEN.value and "ANN2" in err.message and not err.fatal
    assert other.hello("ANN2").nick == "ANN2"


def test_another_major_version_is_refused_clearly_and_closed(connect):
    c = connect()
    c.send(Hello(version="2.0", nick="future"))
    err = c.expect(Error)
    assert err.code == ErrorCode.VERSION_MISMATCH.value and err.fatal and PROTOCOL_VERSION in err.message
    c.wait_closed()


def test_room_switching_topics_presence_and_listing(connect):
    """Protocol 1.0-1.2: a member is in one room, and join moves it."""
    ann, bob = connect("ann", version="1.2"), connect("bob", version="1.2")
    ann.expect(Presence, nick="bob")
    bob.send(Join(room="dev"))
    joined = bob.expect(Joined)
    assert joined.room == "dev" and [m.nick for m in joined.members] == ["bob"]
    assert ann.expect(Presence, event=PresenceEvent.LEAVE).reason == "went to dev"
    bob.send(SetTopic(topic="ship it"))
    assert bob.expect(Topic).topic == "ship it"
    ann.send(ListRooms())
    rooms = ann.expect(Rooms).rooms
    assert [(r.name, r.members, r.topic) for r in rooms] == [("dev", 1, "ship it"), ("lobby", 1, "")]
    ann.send(Join(room="dev"))
    assert ann.expect(Joined).topic == "ship it"
    assert bob.expect(Presence, event=PresenceEvent.JOIN).nick == "ann"
    # messages stay in their room
    ann.send(Say(id="1", text="in dev"))
    assert bob.expect(Chat).room == "dev"


def test_nick_change_away_who_action_and_direct_message(connect):
    ann, bob = connect("ann"), connect("bob")
    ann.expect(Presence, nick="bob")
    bob.send(Nick(nick="robert"))
    assert ann.expect(Presence, event=PresenceEvent.NICK).new_nick == "robert"
    bob.send(Away(message="lunch"))
    assert ann.expect(Presence, event=PresenceEvent.AWAY).message == "lunch"
    ann.send(Who())
    members = {m.nick: m for m in ann.expect(Members).members}
    assert members["robert"].away == "lunch" and members["ann"].away is None
    bob.send(Away())
    assert ann.expect(Presence, event=PresenceEvent.BACK).nick == "robert"
    ann.send(Action(id="a", text="waves"))
    assert bob.expect(Chat).action
    ann.send(Direct(id="d", to="robert", text="psst"))
    assert bob.expect(Private).text == "psst"
    assert ann.expect(Private).to == "robert"
    ann.send(Direct(id="e", to="nobody", text="?"))
    assert ann.expect(Error, id="e").code == ErrorCode.NO_SUCH_NICK.value


def test_a_burst_passes_a_sustained_flood_is_slowed_then_disconnected(make_server):
    server = make_server(rate=2, burst=10, max_strikes=5)
    flooder, witness = WireClient(server.port), WireClient(server.port)
    try:
        flooder.hello("flooder")
        witness.hello("witness")
        # a burst (the hello took one token; then 9 quick lines) all get through
        for n in range(9):
            flooder.send(Say(id=f"b{n}", text="quick line"))
        assert len(flooder.collect(Ack, 9)) == 9
        # then a flood: refused with "slow down", then disconnected for flooding
        for n in range(30):
            try:
                flooder.send(Say(id=f"f{n}", text="spam"))
            except OSError:
                break
        slow = flooder.expect(Error, code=ErrorCode.RATE_LIMITED.value)
        assert slow.id is not None and "slow down" in slow.message
        flooder.expect(Error, code=ErrorCode.FLOODING.value)
        flooder.wait_closed()
        leave = witness.expect(Presence, event=PresenceEvent.LEAVE, nick="flooder")
        assert leave.reason == "flooding"
        # nothing refused was broadcast
        texts = [m.text for m in witness.inbox if isinstance(m, Chat)]
        assert texts.count("quick line") == 9 and texts.count("spam") < 30
    finally:
        flooder.close()
        witness.close()


def test_a_multiline_paste_is_one_message(connect):
    ann, bob = connect("ann"), connect("bob")
    paste = "\n".join(f"line {i}" for i in range(20))
    ann.send(Say(id="p", text=paste))
    assert bob.expect(Chat).text == paste


def test_the_server_refuses_clients_when_full(make_server):
    server = make_server(max_clients=2)
    a, b, c = WireClient(server.port), WireClient(server.port), WireClient(server.port)
    try:
        a.hello("a")
        b.hello("b")
        err = c.expect(Error)
        assert err.code == ErrorCode.SERVER_FULL.value and err.fatal
        c.wait_closed()
        a.close()
        wait_until(lambda: len(server.connections()) == 1, what="a slot to free")
        d = WireClient(server.port)
        assert d.hello("d").nick == "d"
        d.close()
    finally:
        for x in (a, b, c):
            x.close()


def test_too_long_messages_are_refused_and_not_broadcast(make_server):
    server = make_server(max_text=10)
    a, b = WireClient(server.port), WireClient(server.port)
    try:
        a.hello("a")
        b.hello("b")
        a.send(Say(id="long", text="x" * 11))
        assert a.expect(Error, id="long").code == ErrorCode.TEXT_TOO_LONG.value
        a.send(Say(id="ok", text="short"))
        assert b.expect(Chat).text == "short"
    finally:
        a.close()
        b.close()


def test_bye_leaves_with_its_reason_for_everyone_to_see(connect):
    ann, bob, cat = connect("ann"), connect("bob"), connect("cat")
    ann.expect(Presence, nick="cat")
    bob.send(Bye(reason="lunch \x1b[31m" + "x" * 300))
    reason = ann.expect(Presence, event=PresenceEvent.LEAVE).reason
    assert reason.startswith("quit: lunch") and "\x1b" not in reason and len(reason) <= 6 + 100
    cat.send(Bye(reason="quit"))  # what clients say by default: just "quit"
    assert ann.expect(Presence, event=PresenceEvent.LEAVE, nick="cat").reason == "quit"


def test_shutdown_with_clients_connected_some_not_reading_is_quick_and_leaks_no_thread(make_server):
    before = os_threads()
    server = make_server(rate=0, outbox_limit=256 * 1024)
    readers = [WireClient(server.port) for _ in range(5)]
    for i, r in enumerate(readers):
        r.hello(f"r{i}")
    stalled = []
    for i in range(5):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(encode_message(Hello(version=PROTOCOL_VERSION, nick=f"stall{i}")))
        stalled.append(s)
    wait_until(lambda: len(server.hub.state.nicks) == 10, what="all to join")
    for n in range(300):
        readers[0].send(Say(id=str(n), text="y" * 200))
    start = time.monotonic()
    server.stop()
    elapsed = time.monotonic() - start
    assert elapsed < 2.0
    for r in readers:
        r.wait_for(lambda m: isinstance(m, Bye))
        r.wait_closed()
    wait_until(lambda: os_threads() <= before, 2.0, "every thread of the server to end")
    for x in [*readers]:
        x.close()
    for s in stalled:
        s.close()


def test_handler_threads_end_when_clients_leave_and_leave_nothing_in_threading(make_server, caplog):
    """A connection's thread ends with it; and, started without ``threading``
    (``server/threads.py``), it leaves no "dummy" Thread behind in threading's registry
    -- which any ``threading.current_thread()`` on it would (logging's thread name
    did, for every line a connection logged: INFO here, as a server logs)."""
    caplog.set_level(logging.DEBUG, logger="chatroom")
    server = make_server(resume_grace=0)  # no session hold: members go at once
    base, registered = os_threads(), threading.active_count()
    clients = [WireClient(server.port) for _ in range(10)]
    for i, c in enumerate(clients):
        c.hello(f"c{i}")
        c.send(Say(id="1", text=f"hello from c{i}"))
        c.expect(Ack)
    assert len(os_threads() - base) >= 10
    for c in clients:
        c.close()
    wait_until(lambda: os_threads() <= base, what="handler threads to end")
    wait_until(lambda: not server.hub.state.nicks, what="members to be removed")
    assert any("joined" in r.getMessage() for r in caplog.records)  # (they logged)
    assert threading.active_count() == registered


def test_welcome_trims_the_oldest_history_to_fit_the_header_limit(make_server):
    server = make_server(rate=0, max_text=4000)
    ann = WireClient(server.port)
    try:
        ann.hello("ann")
        for n in range(100):
            ann.send(Say(id=str(n), text=f"{n:03d}" + "z" * 3990))
        ann.collect(Ack, 100)
        late = WireClient(server.port)
        welcome = late.hello("late")
        seqs = [c.seq for c in welcome.history]
        assert 0 < len(seqs) < 100 and seqs[-1] == 100  # the newest are kept, in order
        assert seqs == list(range(seqs[0], 101))
        late.close()
    finally:
        ann.close()


def test_members_long_away_texts_never_stop_a_newcomer_from_joining(make_server):
    """One member's state must not make another member's welcome fail: with many long
    away texts the member list no longer fits a header, so the welcome lists fewer
    members (member_count still says how many) instead of failing."""
    from chatroom.protocol import Away, Members, Who

    server = make_server(max_header=8192, rate=0)
    away = "\U0001f600" * 300  # 1,200 bytes of UTF-8 each
    members = []
    for n in range(12):
        c = WireClient(server.port)
        c.hello(f"m{n}")
        c.send(Away(message=away))
        members.append(c)
    members[-1].expect(Presence, nick="m11", event="away")
    newcomer = WireClient(server.port)
    welcome = newcomer.hello("newcomer")
    assert welcome.member_count == 13 and 0 < len(welcome.members) < 13
    newcomer.send(Who())
    listed = newcomer.expect(Members)
    assert listed.member_count == 13 and len(listed.members) < 13
    for c in [*members, newcomer]:
        c.close()
