"""Durable rooms: history on disk, exactly-once sending, sessions that survive a drop."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from chatroom.client.connection import ChatClient, ConnState, StateChanged
from chatroom.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Chat,
    Error,
    ErrorCode,
    FetchHistory,
    Hello,
    History,
    Presence,
    PresenceEvent,
    Say,
    Welcome,
)
from chatroom.server.room import ChatState
from chatroom.server.store import DB_NAME, HistoryStore
from chatroom.server.tcp import CloseReason
from tests.polling import wait_until
from tests.terminal import ROOT, ServerProcess, chatroom_env
from tests.wire import WireClient


def chat(room: str, seq: int, text: str = "x", nick: str = "ann", msg_id: str | None = None) -> Chat:
    return Chat(room=room, seq=seq, ts=1000.0 + seq, nick=nick, text=text, id=msg_id)


# ----------------------------------------------------------------------------- the store


def test_store_keeps_messages_and_sequence_numbers_across_reopening(tmp_path):
    path = tmp_path / DB_NAME
    store = HistoryStore(path)
    store.save([chat("Lobby", 1, "one"), chat("Lobby", 2, "two")], [("Lobby", 3, "the topic")])
    store.close()
    store = HistoryStore(path)
    assert store.room("lobby").next_seq == 3 and store.room("LOBBY").topic == "the topic"
    assert [c.text for c in store.recent("lobby", 10)] == ["one", "two"]
    assert [c.seq for c in store.before("lobby", 2, 10)] == [1]
    assert [c.seq for c in store.after("lobby", 1, 10)] == [2]


def test_a_failed_save_writes_nothing(tmp_path):
    store = HistoryStore(tmp_path / DB_NAME)
    store.save([chat("lobby", 1)], [("lobby", 2, "")])
    with pytest.raises(sqlite3.IntegrityError):
        store.save([chat("lobby", 2), chat("lobby", 2)], [("lobby", 3, "")])  # duplicate key
    assert [c.seq for c in store.recent("lobby", 10)] == [1]
    assert store.room("lobby").next_seq == 2


def test_retention_by_count_and_by_age(tmp_path):
    store = HistoryStore(tmp_path / DB_NAME)
    messages = [chat("a", i) for i in range(1, 11)] + [chat("b", i) for i in range(1, 4)]
    store.save(messages, [("a", 11, ""), ("b", 4, "")])
    assert store.prune(keep=5) == 5
    assert [c.seq for c in store.recent("a", 100)] == [6, 7, 8, 9, 10]
    assert [c.seq for c in store.recent("b", 100)] == [1, 2, 3]
    # cutoff 1003.5: all of b (ts 1001-1003) is older; a's survivors (1006-1010) are not
    assert store.prune(max_age=100, now=1103.5) == 3
    assert store.recent("b", 100) == [] and len(store.recent("a", 100)) == 5
    assert store.room("a").next_seq == 11  # sequence numbers never go back


def test_rooms_continue_their_sequence_and_history_from_the_store(tmp_path):
    store = HistoryStore(tmp_path / DB_NAME)
    store.save([chat("dev", i, f"m{i}") for i in range(1, 8)], [("dev", 8, "old topic")])
    state = ChatState(history_size=3, store=store)
    ann, _, _ = state.admit(1, "ann", "a", 2000.0)
    joined, _ = state.join(ann, "dev", 2000.0)
    assert [c.seq for c in joined.history] == [5, 6, 7] and joined.topic == "old topic"
    new, _ = state.say(ann, "hello", 2001.0)
    assert new.seq == 8
    page = state.history("dev", before=5, limit=10)  # beyond memory: from the store
    assert [c.seq for c in page.messages] == [1, 2, 3, 4] and page.complete


# ----------------------------------------------------------------------------- a live server


def test_history_survives_a_restart_and_sequence_numbers_continue(make_server, tmp_path):
    first = make_server(data_dir=str(tmp_path))
    ann = WireClient(first.port)
    ann.hello("ann")
    for n in range(5):
        ann.send(Say(id=f"a{n}", text=f"before restart {n}"))
    ann.collect(Ack, 5)
    ann.close()
    first.stop()
    second = make_server(data_dir=str(tmp_path))
    bob = WireClient(second.port)
    welcome = bob.hello("bob")
    assert [(c.seq, c.text) for c in welcome.history] == [(n + 1, f"before restart {n}") for n in range(5)]
    bob.send(Say(id="b", text="after"))
    assert bob.expect(Ack).seq == 6
    bob.close()


def test_paging_back_past_memory_reads_the_database(make_server, tmp_path):
    server = make_server(data_dir=str(tmp_path), history_size=5, rate=0)
    ann = WireClient(server.port)
    ann.hello("ann")
    for n in range(30):
        ann.send(Say(id=str(n), text=f"m{n + 1}"))
    ann.collect(Ack, 30)
    ann.send(FetchHistory(room="lobby", before=11, limit=4))
    page = ann.expect(History)
    assert [c.seq for c in page.messages] == [7, 8, 9, 10] and not page.complete
    ann.send(FetchHistory(room="lobby", before=3, limit=50))
    page = ann.expect(History)
    assert [c.seq for c in page.messages] == [1, 2] and page.complete
    ann.close()


def test_a_resent_message_id_is_acknowledged_again_but_broadcast_once(connect):
    ann, bob = connect("ann"), connect("bob")
    ann.send(Say(id="same", text="only once"))
    first = ann.expect(Ack, id="same")
    ann.send(Say(id="same", text="only once"))
    second = ann.expect(Ack, id="same")
    assert second.duplicate and second.seq == first.seq and not first.duplicate
    ann.send(Say(id="next", text="marker"))
    bob.expect(Chat, text="marker")  # everything sent before it has arrived by now
    assert [m.text for m in bob.inbox if isinstance(m, Chat)] == ["only once"]


def test_forged_and_stale_resume_tokens_are_refused_and_a_normal_join_still_works(make_server):
    server = make_server(resume_grace=0.3)
    c = WireClient(server.port)
    c.send(Hello(version=PROTOCOL_VERSION, nick="ann", resume="forged-token", last_seq=0))
    err = c.expect(Error)
    assert err.code == ErrorCode.RESUME_REFUSED.value and not err.fatal and "join normally" in err.message
    assert c.hello("ann").resumed is False
    c.close()
    # A real token, once its grace period is over, is stale.
    d = WireClient(server.port)
    token = d.hello("dora").resume_token
    d.close()
    wait_until(lambda: "dora" not in server.hub.state.nicks, 10, "dora's grace period to end")
    e = WireClient(server.port)
    e.send(Hello(version=PROTOCOL_VERSION, nick="dora", resume=token, last_seq=0))
    assert e.expect(Error).code == ErrorCode.RESUME_REFUSED.value
    assert e.hello("dora").nick == "dora"
    e.close()


def test_a_ghost_connection_is_replaced_silently_by_its_resume(connect, server):
    watcher = connect("watcher")
    ghost = connect()
    welcome = ghost.hello("ann")
    watcher.expect(Presence, event=PresenceEvent.JOIN, nick="ann")
    watcher.send(Say(id="w1", text="while ann is a ghost"))
    ghost_seen = ghost.expect(Chat).seq
    watcher.send(Say(id="w2", text="missed by the ghost"))
    ghost.expect(Chat, text="missed by the ghost")  # the server has it; say it was lost in flight
    fresh = connect()
    fresh.send(Hello(version=PROTOCOL_VERSION, nick="whatever", resume=welcome.resume_token, last_seq=ghost_seen))
    back = fresh.expect(Welcome)
    assert back.resumed and back.nick == "ann" and back.resume_token == welcome.resume_token
    missed = fresh.expect(History)
    assert [c.text for c in missed.messages] == ["missed by the ghost"]
    ghost.wait_closed()
    event = watcher.expect(Presence, nick="ann")
    assert event.event is PresenceEvent.RECONNECTED  # no leave, no join: one event
    watcher.send(Say(id="w3", text="after"))
    assert fresh.expect(Chat, text="after").seq == missed.messages[-1].seq + 1
    assert [m for m in watcher.inbox if isinstance(m, Presence)] == []


def test_a_dropped_client_resumes_keeps_its_nick_and_sees_exactly_what_an_undropped_one_saw(make_server):
    server = make_server(rate=0)
    seen: dict[str, list[tuple[int, str]]] = {"steady": [], "flaky": []}
    locks = threading.Lock()

    def recorder(name: str):
        def on_event(event: object) -> None:
            chats = [event] if isinstance(event, Chat) else list(event.messages) if isinstance(event, History) else []
            with locks:
                seen[name].extend((c.seq, c.text) for c in chats if c.room == "lobby")
        return on_event

    steady = ChatClient("127.0.0.1", server.port, "steady", on_event=recorder("steady"))
    flaky = ChatClient("127.0.0.1", server.port, "flaky", on_event=recorder("flaky"))
    flaky.BACKOFF_START = 0.1
    talker = WireClient(server.port)
    try:
        steady.connect()
        flaky.connect()
        talker.hello("talker")
        states: list[StateChanged] = []
        previous = flaky.on_event

        def watch(event: object) -> None:
            if isinstance(event, StateChanged):
                states.append(event)
            previous(event)

        flaky.on_event = watch
        for n in range(100):
            talker.send(Say(id=str(n), text=f"line {n}"))
            if n == 30:  # cut flaky's connection under it, mid-conversation
                conn = next(c for c in server.connections() if c.member and c.member.nick == "flaky")
                conn.close(CloseReason.LOST)
            if n == 35:
                flaky.say("typed by flaky around the drop")
        talker.send(Say(id="end", text="the end"))
        def caught_up() -> bool:
            with locks:  # 100 lines, "the end" and flaky's own: 102 messages for each
                return all(len(set(v)) >= 102 for v in seen.values()) and flaky.wait_acked(0)

        wait_until(caught_up, 20, "both clients to see all 102 messages")
        with locks:
            assert seen["flaky"] == seen["steady"]
            texts = [t for _, t in seen["steady"]]
        assert texts.count("typed by flaky around the drop") == 1
        assert [s for _, s in seen["steady"]] and len(set(seen["steady"])) == len(seen["steady"])
        assert any(s.state is ConnState.DISCONNECTED for s in states)
        assert flaky.nick == "flaky" and flaky.resumed
    finally:
        talker.close()
        steady.close()
        flaky.close()


# ----------------------------------------------------------------------------- SIGKILL


def test_every_acknowledged_message_survives_sigkill_in_order_exactly_once(tmp_path):
    server = ServerProcess("--rate", "0", "--data-dir", str(tmp_path))
    acked: dict[str, list[tuple[str, int]]] = {}
    stop = threading.Event()

    def talk(name: str) -> None:
        c = WireClient(server.port)
        try:
            c.hello(name)
            acked[name] = []
            n = 0
            while not stop.is_set() and n < 100_000:
                c.send(Say(id=f"{name}-{n}", text=f"{name} says {n}"))
                n += 1
                if n % 20 == 0:  # read acks as we go (a real client does)
                    while c._pump(time.monotonic() + 0.001):
                        pass
                    for m in [m for m in c.inbox if isinstance(m, Ack)]:
                        acked[name].append((m.id, m.seq))
                    c.inbox.clear()
        except OSError:
            pass
        finally:
            for m in [m for m in c.inbox if isinstance(m, Ack)]:
                acked[name].append((m.id, m.seq))
            c.close()

    threads = [threading.Thread(target=talk, args=(f"t{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    wait_until(lambda: sum(len(v) for v in acked.values()) >= 600, 20, "a busy conversation")
    os.kill(server.proc.pid, signal.SIGKILL)  # mid-conversation, no warning
    server.proc.wait()
    stop.set()
    for t in threads:
        t.join(10)
    total = sum(len(v) for v in acked.values())
    assert total >= 600, "the conversation was not busy enough to prove anything"

    restarted = ServerProcess("--rate", "0", "--data-dir", str(tmp_path))
    try:
        store = HistoryStore(tmp_path / DB_NAME, read_only=True)
        rows = list(store.transcript("lobby"))
        store.close()
        by_id = {}
        for c in rows:
            assert c.id not in by_id, f"{c.id} stored twice"
            by_id[c.id] = c
        for acks in acked.values():
            for msg_id, seq in acks:
                assert msg_id in by_id, f"acknowledged {msg_id} is lost"
                assert by_id[msg_id].seq == seq
            seqs = [by_id[i].seq for i, _ in acks]
            assert seqs == sorted(seqs)  # each sender's messages in the order sent
        assert [c.seq for c in rows] == list(range(1, len(rows) + 1))  # no gaps, no repeats
        late = WireClient(restarted.port)
        late.hello("late")
        late.send(Say(id="x", text="after the crash"))
        assert late.expect(Ack).seq == len(rows) + 1  # numbering continues
        late.close()
    finally:
        restarted.stop()


# ----------------------------------------------------------------------------- chatroom log


def test_chatroom_log_prints_text_json_and_markdown(tmp_path):
    store = HistoryStore(tmp_path / DB_NAME)
    store.save(
        [Chat(room="dev", seq=1, ts=1_700_000_000.0, nick="ann", text="hello\x1b[31m"),
         Chat(room="dev", seq=2, ts=1_700_000_060.0, nick="bob", text="waves", action=True),
         Chat(room="dev", seq=3, ts=1_700_000_120.0, nick="ann", text="two\nlines")],
        [("dev", 4, "release day")],
    )
    store.close()

    def log(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "chatroom", "log", "dev", "--data-dir", str(tmp_path), *args],
                              capture_output=True, text=True, env=chatroom_env(), cwd=str(ROOT), timeout=30)

    text = log()
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].endswith("<ann> hello") and "\x1b" not in text.stdout
    assert lines[1].endswith("* bob waves") and lines[2].endswith("<ann> two") and lines[3].strip() == "lines"
    as_json = [json.loads(line) for line in log("--format", "json").stdout.splitlines()]
    assert [(m["seq"], m["nick"], m["action"]) for m in as_json] == [(1, "ann", False), (2, "bob", True),
                                                                     (3, "ann", False)]
    markdown = log("--format", "markdown").stdout
    assert markdown.startswith("# dev\n") and "*release day*" in markdown and "**ann**: hello" in markdown
    assert "*bob waves*" in markdown
    since = log("--since", "2023-11-14T22:14:00+00:00", "--format", "json").stdout.splitlines()
    assert [json.loads(x)["seq"] for x in since] == [2, 3]
    missing = log("--data-dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "no history database" in missing.stderr


def test_a_store_that_lost_its_newest_messages_never_gives_their_numbers_again(make_server, tmp_path):
    """A power cut with --sync normal may lose the last commits; a client that saw them
    says so when it comes back, and the room's numbering goes on after them."""
    first = make_server(data_dir=str(tmp_path), rate=0)
    ann = WireClient(first.port)
    token = ann.hello("ann").resume_token
    for n in range(1, 11):
        ann.send(Say(id=f"m{n}", text=f"message {n}"))
    assert [a.seq for a in ann.collect(Ack, 10)] == list(range(1, 11))
    ann.close()
    first.stop()
    db = sqlite3.connect(tmp_path / DB_NAME)  # the last five commits never reached the disk
    with db:
        db.execute("DELETE FROM messages WHERE seq > 5")
        db.execute("UPDATE rooms SET next_seq = 6")
    db.close()
    second = make_server(data_dir=str(tmp_path), rate=0)
    ann = WireClient(second.port)  # its session went with the server: the resume is refused, the word counts
    ann.send(Hello(version=PROTOCOL_VERSION, nick="ann", resume=token, seen={"lobby": 10}))
    assert ann.expect(Error).code == ErrorCode.RESUME_REFUSED.value
    ann.hello("ann")
    ann.send(Say(id="after", text="after the power cut"))
    assert ann.expect(Ack, id="after").seq == 11  # not 6: six to ten were shown to people
    ann.close()
    store = HistoryStore(tmp_path / DB_NAME, read_only=True)
    try:
        assert store.room("lobby").next_seq == 12  # and the store keeps the numbering
    finally:
        store.close()


def test_a_room_about_to_be_made_is_read_from_the_store_before_the_lock_and_not_under_it(tmp_path):
    """The store serialises reads with its commits (an fsync): a join reads what it has
    of the room first (``look_ahead``), so that making the room under the hub lock
    reads nothing -- unless a room was made or dropped meanwhile, when it reads again."""
    store = HistoryStore(tmp_path / DB_NAME)
    store.save([Chat(room="dev", seq=s, ts=1.0, nick="bob", text=f"m{s}") for s in (1, 2)], [("dev", 3, "plans")])

    class Watched:
        reads = 0

        def __getattr__(self, name: str) -> object:
            if name in ("room", "recent"):
                Watched.reads += 1
            return getattr(store, name)

    state = ChatState(store=Watched())
    ann, _, _ = state.admit(1, "ann", "127.0.0.1:1", 0.0, several=True)
    reads = Watched.reads
    state.look_ahead("dev")
    assert Watched.reads == reads + 2  # the record and its recent messages, before the lock ...
    joined, _ = state.join(ann, "dev", 1.0)
    assert Watched.reads == reads + 2  # ... and nothing under it
    assert joined.last_seq == 2 and joined.topic == "plans" and [c.text for c in joined.history] == ["m1", "m2"]

    state.part(ann, "dev", "", 2.0)  # nobody in it: dropped
    state.look_ahead("dev")
    state.join(ann, "ops", 2.5)  # a room made meanwhile: what was read may be stale
    reads = Watched.reads
    joined, _ = state.join(ann, "dev", 3.0)
    assert Watched.reads == reads + 2 and joined.last_seq == 2  # read again, under the lock
