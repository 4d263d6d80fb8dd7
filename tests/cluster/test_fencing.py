"""Fencing: a server whose lease in the cluster lapsed writes nothing more, drops its
connections and joins again as a new server; no nick is ever held twice."""

from __future__ import annotations

import json
import signal
import time

import pytest
import redis

from chatroom.client.connection import ChatClient, ConnState
from chatroom.cluster.store import Fenced, RedisStore
from chatroom.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Chat,
    Error,
    ErrorCode,
    Hello,
    Presence,
    PresenceEvent,
    Say,
    Welcome,
)
from chatroom.text import nick_key
from tests.polling import Events, wait_until
from tests.wire import WireClient


def test_no_write_without_a_lease(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    store = RedisStore(client)
    store.lease = "chatroom:lease:gone"  # never taken, or lapsed
    with pytest.raises(Fenced):
        store.append_chats([("lobby", {"t": "chat", "room": "lobby", "nick": "ann", "text": "hi", "ts": 1.0}, 0)])
    with pytest.raises(Fenced):
        store.claim_key("chatroom:nick:ann", b'{"owner": "t"}', "t", 60)
    with pytest.raises(Fenced):
        store.transact(lambda pipe: pipe.hset("chatroom:rooms", "lobby", "lobby"))
    assert client.get("chatroom:nick:ann") is None and not client.exists("chatroom:rooms")
    assert not client.exists("chatroom:log:lobby")
    client.set(store.lease, "1", ex=60)  # with one, the same writes go through
    assert store.claim_key("chatroom:nick:ann", b'{"owner": "t"}', "t", 60)
    ((seq, _, resent, _),) = store.append_chats(
        [("lobby", {"t": "chat", "room": "lobby", "nick": "ann", "text": "hi", "ts": 1.0}, 0)])
    assert (seq, resent) == (1, False)
    client.close()


def test_a_server_that_lost_its_lease_drops_its_clients_and_joins_again(cluster, redis_server):
    fenced, other = cluster(resume_grace=5.0), cluster(resume_grace=5.0)
    watcher, bob = WireClient(fenced.port), WireClient(other.port)
    watcher.hello("watcher")
    bob.hello("bob")
    events = Events()
    ann = ChatClient("127.0.0.1", fenced.port, "ann", on_event=events, alternates=[("127.0.0.1", other.port)])
    ann.connect()
    old_id = fenced.cluster.server
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.exists(f"chatroom:lease:{old_id}")
        client.delete(f"chatroom:lease:{old_id}")  # as the others do when they retire a silent server
        error = watcher.expect(Error, timeout=10)
        assert error.code == ErrorCode.UNAVAILABLE.value and error.fatal and "another server" in error.message
        watcher.wait_closed()
        # The stock client goes to the other server of its list and resumes there.
        wait_until(lambda: ann.port == other.port and ann.state is ConnState.CONNECTED,
                   what="ann's client on the other server")
        ann.say("still here")
        assert bob.expect(Chat, text="still here").nick == "ann"
        wait_until(lambda: fenced.cluster.server != old_id and not fenced.cluster.fenced,
                   what="the fenced server to join again")
        assert client.exists(f"chatroom:lease:{fenced.cluster.server}")
        assert fenced.cluster.server in other.cluster.servers()
        cy = WireClient(fenced.port)  # it serves again, as a new server of the cluster
        assert isinstance(cy.hello("cy"), Welcome)
        cy.send(Say(text="hello from the server that came back", id="c1"))
        assert bob.expect(Chat, text="hello from the server that came back").nick == "cy"
        cy.close()
    finally:
        ann.close()
        watcher.close()
        bob.close()
        client.close()


def test_a_paused_server_is_retired_and_on_waking_holds_no_nick_the_others_gave_away(cluster_process, redis_server):
    # A server silent for the grace plus three beats (1 + 3 x 0.3 s) is retired by the others.
    paused = cluster_process("--resume-grace", "1", "--cluster-beat", "0.3", "--no-announce")
    awake = cluster_process("--resume-grace", "1", "--cluster-beat", "0.3", "--no-announce")
    ann, bob = WireClient(paused.port), WireClient(awake.port)
    ann.hello("ann")
    bob.hello("bob")
    client = redis.Redis.from_url(redis_server.url)
    wait_until(lambda: client.hlen("chatroom:members:lobby") == 2, what="both in the cluster's lobby")
    new_ann = None
    paused.proc.send_signal(signal.SIGSTOP)
    try:
        # The others take it for dead: ann leaves, and her nick is free for someone else.
        bob.expect(Presence, event=PresenceEvent.LEAVE.value, nick="ann", timeout=15)
        new_ann = WireClient(awake.port)
        assert isinstance(new_ann.hello("ann"), Welcome)
        paused.proc.send_signal(signal.SIGCONT)
        # Awake again, it finds its lease gone: the old ann is sent away, not served on.
        error = ann.expect(Error, timeout=15)
        assert error.code == ErrorCode.UNAVAILABLE.value and error.fatal
        ann.wait_closed()
        holder = json.loads(client.get(f"chatroom:nick:{nick_key('ann')}"))
        servers = {k.decode(): json.loads(v) for k, v in client.hgetall("chatroom:servers").items()}
        # The one ann is the new one, on the awake server; the woken server holds nobody.
        awake_ids = [sid for sid, rec in servers.items() if rec["address"].endswith(f":{awake.port}")]
        assert holder["server"] in awake_ids
        members = {k.decode(): json.loads(v) for k, v in client.hgetall("chatroom:members:lobby").items()}
        assert sorted(m["nick"] for m in members.values()) == ["ann", "bob"]
        assert all(m["server"] in awake_ids for m in members.values())
        # And it serves again, as a new member of the cluster.
        deadline = time.monotonic() + 15
        while True:  # (refused with unavailable while it is joining again)
            cy = WireClient(paused.port)
            cy.send(Hello(version=PROTOCOL_VERSION, nick="cy"))
            reply = cy.wait_for(lambda m: isinstance(m, Welcome | Error))
            if isinstance(reply, Welcome) or time.monotonic() > deadline:
                break
            assert isinstance(reply, Error) and reply.code == ErrorCode.UNAVAILABLE.value
            cy.close()
        assert isinstance(reply, Welcome)
        cy.send(Say(text="back", id="b1"))
        assert bob.expect(Chat, text="back").nick == "cy"
        cy.close()
    finally:
        if paused.proc.poll() is None:
            paused.proc.send_signal(signal.SIGCONT)
        for c in (ann, bob, new_ann):
            if c is not None:
                c.close()
        client.close()


def test_a_log_that_lost_its_tail_while_every_server_restarted_never_reuses_a_number(cluster, redis_server):
    """Redis lost its newest entries (appendfsync everysec and a crash) and no server
    that saw them is left: a resuming client's word raises the room's counter."""
    first = cluster()
    ann = WireClient(first.port)
    token = ann.hello("ann").resume_token
    for n in range(1, 11):
        ann.send(Say(id=f"m{n}", text=f"message {n}"))
    assert [a.seq for a in ann.collect(Ack, 10)] == list(range(1, 11))
    ann.close()
    first.stop()  # (its members are held for a resume on another server)
    client = redis.Redis.from_url(redis_server.url)
    try:
        kept = [(i, f) for i, f in client.xrange("chatroom:log:lobby") if int(i.split(b"-")[0]) < 6]
        client.delete("chatroom:log:lobby")  # the lost second: the log as it was after message five
        for entry_id, fields in kept:
            client.xadd("chatroom:log:lobby", fields, id=entry_id)
        client.set("chatroom:seq:lobby", 5)
        second = cluster()  # a new server, that never saw messages six to ten
        ann = WireClient(second.port)
        ann.send(Hello(version=PROTOCOL_VERSION, nick="ann", resume=token, seen={"lobby": 10}))
        welcome = ann.expect(Welcome)
        assert welcome.resumed
        ann.send(Say(id="after", text="after the crash"))
        assert ann.expect(Ack, id="after").seq == 11  # not 6: six to ten were shown to people
        assert int(client.get("chatroom:seq:lobby")) == 11
        ann.close()
    finally:
        client.close()


def test_a_read_of_several_rooms_messages_is_appended_in_order_with_each_ones_checks(redis_server):
    """One append of a read's messages (one script per run of one room's): each gets
    the room's next number and the id of the entry before it (so a server can apply
    the run at once), a resend in the same read is recognised, a message without an id
    is appended, and a floor above the counter raises it."""
    client = redis.Redis.from_url(redis_server.url)
    store = RedisStore(client)
    client.set(store.lease, "1", ex=60)

    def chat(room: str, text: str, msg_id: str | None) -> dict[str, object]:
        body: dict[str, object] = {"t": "chat", "room": room, "nick": "ann", "text": text, "ts": 1.0}
        return body if msg_id is None else {**body, "id": msg_id}

    placed = store.append_chats([("lobby", chat("lobby", "one", "1"), 0), ("lobby", chat("lobby", "two", None), 0),
                                 ("dev", chat("dev", "three", "3"), 0), ("lobby", chat("lobby", "one", "1"), 0),
                                 ("lobby", chat("lobby", "four", "4"), 0)])
    assert placed == [(1, (0, 0), False, 0), (2, (1, 0), False, 0), (1, (0, 0), False, 0), (1, (0, 0), True, 0),
                      (3, (2, 0), False, 0)]
    ((seq, before, resent, lost),) = store.append_chats([("lobby", chat("lobby", "five", "5"), 9)])
    assert (seq, before, resent, lost) == (10, (3, 0), False, 6)  # numbers 4..9 were shown: never reused
    assert [int(i.split(b"-")[0]) for i, _ in client.xrange("chatroom:log:lobby")] == [1, 2, 3, 10]
    client.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_following_the_logs_reads_each_entry_as_it_was_appended_in_either_reply_format(redis_server, protocol):
    """``follow`` reads XREAD's reply as Redis sends it -- a map in RESP3, pairs in RESP2
    (a Redis too old for RESP3) -- and an entry with other fields besides its message;
    so do the reads of a log's range."""
    client = redis.Redis.from_url(redis_server.url, protocol=protocol)
    store = RedisStore(client)
    client.set(store.lease, "1", ex=60)
    store.append_chats([("lobby", {"t": "chat", "room": "lobby", "nick": "ann", "text": "hi", "ts": 1.0, "id": "1"}, 0),
                        ("dev", {"t": "chat", "room": "dev", "nick": "bob", "text": "yo", "ts": 2.0}, 0)])
    client.xadd("chatroom:log:dev", {"by": b"hand", "m": b'{"t": "topic"}'}, id="1-1")
    got = store.follow({"chatroom:log:lobby": "0-0", "chatroom:log:dev": "0-0", "chatroom:log:none": "0-0"}, 10, 10)
    assert {name: [(i, json.loads(m)) for i, m in entries] for name, entries in got} == {
        "chatroom:log:lobby": [(b"1-0", {"t": "chat", "room": "lobby", "nick": "ann", "text": "hi", "ts": 1.0,
                                         "id": "1"})],
        "chatroom:log:dev": [(b"1-0", {"t": "chat", "room": "dev", "nick": "bob", "text": "yo", "ts": 2.0}),
                             (b"1-1", {"t": "topic"})]}
    assert store.follow({"chatroom:log:lobby": "1-0"}, 10, 10) == []  # nothing new within 10 ms
    assert store.entries("dev", (1, 0), (1, 1)) == [((1, 1), {"t": "topic"})]  # (XRANGE, read the same way)
    assert [chat.text for chat in store.recent("dev", 5)] == ["yo"]  # (XREVRANGE; the topic is no message)
    client.close()
