"""Servers and Redis dying under a conversation: real processes, SIGKILL."""

from __future__ import annotations

import signal
import threading

from chatroom.client.connection import ChatClient, ConnState, OutgoingChanged, StateChanged
from chatroom.protocol import Ack, Chat, Error, FetchHistory, Hello, History, Presence, PresenceEvent, Say, Welcome
from tests.polling import Events, wait_until
from tests.wire import WireClient


def test_clients_of_a_killed_server_resume_on_another_with_nothing_lost_or_doubled(cluster_process):
    doomed, spare = cluster_process(), cluster_process()
    events = Events()
    ann = ChatClient("127.0.0.1", doomed.port, "ann", on_event=events, alternates=[("127.0.0.1", spare.port)])
    first = ann.connect()
    bob = WireClient(spare.port)
    bob.hello("bob")
    ann.say("before the crash")
    events.wait(lambda e: isinstance(e, OutgoingChanged) and e.outgoing.status == "acked")
    bob.expect(Chat)
    doomed.proc.send_signal(signal.SIGKILL)
    doomed.proc.wait(10)
    events.wait(lambda e: isinstance(e, StateChanged) and e.state is ConnState.DISCONNECTED)
    bob.send(Say(id="gap", text="said while ann was away"))
    bob.expect(Ack)
    ann.say("typed while away")  # queued, sent once on the spare server
    welcome = events.wait(lambda e: isinstance(e, Welcome) and e is not first, timeout=20)
    assert welcome.resumed and welcome.nick == "ann"
    events.wait(lambda e: isinstance(e, History) and e.replay  # what it missed, replayed
                and [c.text for c in e.messages] == ["said while ann was away"])
    events.wait(lambda e: isinstance(e, OutgoingChanged) and e.outgoing.status == "acked"
                and e.outgoing.message.text == "typed while away")
    bob.expect(Chat, text="typed while away")
    bob.expect(Presence, event=PresenceEvent.RECONNECTED, nick="ann")
    bob.send(FetchHistory(room="lobby", before=100, limit=50))
    texts = [c.text for c in bob.expect(History).messages]
    assert texts == ["before the crash", "said while ann was away", "typed while away"]
    ann.close()


def test_a_server_that_never_comes_back_has_its_members_leave_after_the_grace(cluster_process):
    doomed = cluster_process("--resume-grace", "1")
    spare = cluster_process("--resume-grace", "1")
    zed = WireClient(doomed.port)
    zed.hello("zed")
    bob = WireClient(spare.port)
    bob.hello("bob")
    doomed.proc.send_signal(signal.SIGKILL)
    doomed.proc.wait(10)
    left = bob.expect(Presence, event=PresenceEvent.LEAVE, nick="zed", timeout=30)
    assert left.reason == "connection lost"
    again = WireClient(spare.port)  # and the nick is free again
    assert again.hello("zed").nick == "zed"


def test_redis_killed_under_load_loses_no_acknowledged_message(cluster, redis_server):
    one, two = cluster(), cluster()
    watcher = WireClient(two.port)
    watcher.hello("watcher")
    sender = WireClient(one.port)
    sender.hello("sender")
    acked: dict[str, int] = {}
    refusals: list[str] = []
    done = threading.Event()

    def send_all() -> None:  # each message until it is acknowledged: a refusal means "not sent"
        for n in range(150):
            msg_id = f"m{n}"
            while msg_id not in acked:
                sender.send(Say(id=msg_id, text=f"load {n}"))
                reply = sender.wait_for(lambda m, i=msg_id: isinstance(m, (Ack, Error)) and m.id == i, timeout=20)
                if isinstance(reply, Ack):
                    acked[msg_id] = reply.seq
                else:
                    assert reply.code in ("unavailable", "unconfirmed"), reply
                    refusals.append(msg_id)
                    threading.Event().wait(0.05)  # a client's back-off before resending
        done.set()

    thread = threading.Thread(target=send_all)
    thread.start()
    wait_until(lambda: len(acked) >= 40, what="traffic before the crash")
    redis_server.kill()  # SIGKILL: no chance to finish anything
    wait_until(lambda: refusals, what="a message refused while Redis is down")
    redis_server.start()
    assert done.wait(60)
    thread.join()
    assert sorted(acked.values()) == list(range(1, 151))  # one place each, none lost, none doubled
    seen = watcher.collect(Chat, 150, timeout=20)
    assert [c.text for c in seen] == [f"load {n}" for n in range(150)]
    late = WireClient(cluster(history_size=200).port)
    history = late.hello("late").history
    assert [c.text for c in history] == [f"load {n}" for n in range(150)]
    watcher.send(Hello(version="1.3", nick="x"))  # the servers took up their work again
    assert watcher.expect(Error).code == "already_hello"


def _said_once(texts: list[str], text: str) -> bool:
    return texts.count(text) == 1


def test_the_stock_client_keeps_what_was_refused_unavailable_and_sends_it_once_redis_is_back(cluster, redis_server):
    one = cluster()
    watcher = WireClient(one.port)
    watcher.hello("watcher")
    events = Events()
    ann = ChatClient("127.0.0.1", one.port, "ann", on_event=events)
    ann.connect()
    redis_server.kill()
    out = ann.say("said while the store is down")
    wait_until(lambda: ann.pending() and not one.cluster.healthy, what="the cluster sees Redis gone")
    redis_server.start()
    acked = events.wait(lambda e: isinstance(e, OutgoingChanged) and e.outgoing.id == out.id
                        and e.outgoing.status != "pending", timeout=60)
    refused = [e for e in events.seen if isinstance(e, OutgoingChanged) and e.outgoing.status == "refused"]
    assert acked.outgoing.status == "acked" and not refused  # never shown as refused: it was kept
    assert ann.pending() == []
    chat = watcher.expect(Chat, text="said while the store is down", timeout=10)
    watcher.send(FetchHistory(room="lobby", before=chat.seq + 1, limit=50))
    texts = [c.text for c in watcher.expect(History).messages]
    assert _said_once(texts, "said while the store is down")
    ann.close()


def test_a_client_moves_to_another_server_when_its_own_answers_unavailable(cluster, redis_server):
    one, two = cluster(), cluster()
    events = Events()
    ann = ChatClient("127.0.0.1", one.port, "ann", on_event=events, alternates=[("127.0.0.1", two.port)])
    ann.connect()
    redis_server.kill()
    ann.say("typed while the cluster's store is down")
    moved = events.wait(lambda e: isinstance(e, StateChanged) and e.state is ConnState.DISCONNECTED
                        and "trying another server" in e.detail, timeout=30)
    assert "unavailable" in moved.detail or "cannot" in moved.detail
    redis_server.start()
    events.wait(lambda e: isinstance(e, OutgoingChanged) and e.outgoing.status == "acked", timeout=60)
    assert not [e for e in events.seen if isinstance(e, OutgoingChanged) and e.outgoing.status == "refused"]
    watcher = WireClient(ann.port)  # the server that acknowledged it (the other catches up on its own time)
    texts = [c.text for c in watcher.hello("watcher").history]
    assert _said_once(texts, "typed while the cluster's store is down")
    ann.close()


def test_a_message_redis_may_have_stored_is_answered_unconfirmed_and_its_resend_is_a_duplicate(cluster, redis_server):
    one = cluster()
    watcher = WireClient(one.port)
    watcher.hello("watcher")
    sender = WireClient(one.port)
    sender.hello("sender")
    sender.send(Say(id="first", text="before the pause"))  # (acked: what the hello published is in Redis too)
    sender.wait_for(lambda m: isinstance(m, Ack) and m.id == "first")
    watcher.expect(Chat, text="before the pause")
    assert redis_server.proc is not None
    redis_server.proc.send_signal(signal.SIGSTOP)  # it takes the command and does not answer
    try:
        sender.send(Say(id="maybe", text="sent to a paused store"))
        refused = sender.expect(Error, timeout=40)
        assert (refused.id, refused.code) == ("maybe", "unconfirmed")  # not "unavailable": it may be stored
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    # Now a known-down store refuses at once, "unavailable" (nothing sent), until it is back.
    answers: list[object] = []

    def resent() -> bool:
        sender.send(Say(id="maybe", text="sent to a paused store"))
        answers.append(sender.wait_for(lambda m: isinstance(m, (Ack, Error)) and m.id == "maybe", timeout=20))
        return isinstance(answers[-1], Ack)

    wait_until(resent, timeout=40, what="the resend acknowledged once Redis answers again", interval=0.3)
    assert all(a.code in ("unavailable", "unconfirmed") for a in answers[:-1] if isinstance(a, Error))
    assert answers[-1].duplicate  # it had been stored: acknowledged as such, not said again
    seen = watcher.collect(Chat, 1, timeout=10)
    assert [c.text for c in seen] == ["sent to a paused store"]
    watcher.send(FetchHistory(room="lobby", before=seen[0].seq + 1, limit=50))
    assert [c.text for c in watcher.expect(History).messages].count("sent to a paused store") == 1


def test_a_log_that_lost_its_tail_never_gives_a_shown_number_to_another_message(cluster, redis_server):
    """``appendfsync everysec`` and a crash can lose Redis's last second: the room's
    counter and log go back (simulated here exactly as the AOF would leave them).  The
    numbers already shown are never given to other messages; everyone sees the next."""
    import redis as redis_py

    from chatroom.cluster.store import key

    one, two = cluster(), cluster()
    ann, bob = WireClient(one.port), WireClient(two.port)
    ann.hello("ann")
    bob.hello("bob")
    for n in range(1, 6):
        ann.send(Say(id=f"s{n}", text=f"said {n}"))
        assert ann.wait_for(lambda m, n=n: isinstance(m, Ack) and m.id == f"s{n}").seq == n
    assert [c.seq for c in bob.collect(Chat, 5)] == [1, 2, 3, 4, 5]
    bob.inbox.clear()
    r = redis_py.Redis.from_url(redis_server.url)
    kept = r.xrange(key("log", "lobby"), max="3-0")  # the counter and the log as of message 3: 4 and 5 lost
    r.delete(key("log", "lobby"))
    for entry_id, fields in kept:
        r.xadd(key("log", "lobby"), fields, id=entry_id)
    r.set(key("seq", "lobby"), 3)
    r.close()
    bob.send(Say(id="b1", text="after the loss"))
    ack = bob.wait_for(lambda m: isinstance(m, Ack) and m.id == "b1")
    assert ack.seq == 6  # not 4: numbers 4 and 5 were shown to everyone
    assert ann.expect(Chat, text="after the loss").seq == 6  # the other server did not skip it as seen
    assert bob.expect(Chat, text="after the loss").seq == 6
    ann.send(Say(id="s6", text="and on"))
    assert ann.wait_for(lambda m: isinstance(m, Ack) and m.id == "s6").seq == 7
    assert bob.expect(Chat, text="and on").seq == 7


def test_healthz_says_503_while_the_clusters_redis_is_down_and_200_when_it_is_back(cluster, redis_server):
    from tests.server.test_metrics import http_get, samples, value

    server = cluster(metrics_from=("127.0.0.0/8",))
    assert http_get(server.port, "/healthz")[:3:2] == (200, b"ok\n")
    page = samples(http_get(server.port, "/metrics")[2])
    assert value(page, "chatroom_cluster_servers") == 1 and value(page, "chatroom_store_up") == 1
    redis_server.stop()
    status, _, body = http_get(server.port, "/healthz")
    assert status == 503 and b"the cluster's Redis does not answer" in body
    assert value(samples(http_get(server.port, "/metrics")[2]), "chatroom_store_up") == 0
    redis_server.start()
    wait_until(lambda: http_get(server.port, "/healthz")[0] == 200, what="healthy again with Redis back")
