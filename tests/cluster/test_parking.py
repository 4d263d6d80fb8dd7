"""Runs of messages that come back from Redis out of the log's order: parked and
applied after the entry before them, by whichever thread applies it -- not read back."""

from __future__ import annotations

import threading

import pytest

from chatroom.cluster import parking
from chatroom.cluster.parking import Parking
from chatroom.cluster.store import parse_id
from chatroom.protocol import Chat
from chatroom.server.hub import Batch
from tests.wire import WireClient


def test_parked_entries_are_taken_in_the_logs_order_and_stale_ones_dropped():
    park = Parking()
    park.park("lobby", [((2, 0), (3, 0), {"n": 3}), ((3, 0), (4, 0), {"n": 4})], last=(1, 0))
    assert park.next_after("lobby", (1, 0)) is None  # entry 2 is nobody's yet
    assert park.next_after("lobby", (2, 0)) == ((3, 0), {"n": 3})
    park.applied("lobby", (4, 0))  # a read back applied 4: it is dropped, never applied twice
    assert park.parked("lobby") == 0 and park.next_after("lobby", (3, 0)) is None
    park.park("lobby", [((5, 0), (6, 0), {"n": 6})], last=(6, 0))  # applied already: not parked
    assert park.parked("lobby") == 0


def test_a_wait_ends_when_no_append_is_in_flight_or_it_is_done():
    park = Parking()
    assert park.wait("lobby", lambda: False, timeout=5) is False  # nothing in flight: no wait at all
    park.begin(["lobby"])
    done = threading.Event()
    waiter = threading.Thread(target=lambda: done.set() if park.wait("lobby", lambda: False, timeout=30) is False
                              else None)
    waiter.start()
    park.end(["lobby"])
    waiter.join(10)
    assert done.is_set() and not waiter.is_alive()


def test_a_run_that_came_back_first_waits_for_the_one_before_it_instead_of_reading_the_log(
        cluster, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(parking, "WAIT", 30.0)  # (on a loaded machine too: the test decides the order)
    server = cluster()
    node = server.chat
    reads: list[tuple[int, int]] = []
    real_entries = node.store.entries
    monkeypatch.setattr(node.store, "entries", lambda room, after, upto: reads.append(after) or
                        real_entries(room, after, upto))
    ann = WireClient(server.port)
    ann.hello("ann")
    # The cluster's reader follows the logs too (XREAD): held for this test, so that the
    # runs reach this server only through the threads that appended them.
    held, release = threading.Event(), threading.Event()
    monkeypatch.setattr(node, "_read_once", lambda batch: (held.set(), release.wait(30)))
    assert held.wait(10)
    node.hub.publish_pending()
    # What the log holds already (ann's arrival, which the reader may not have applied
    # before it was held) is applied first; only what follows is counted.
    (newest, _), = node.redis.xrevrange("chatroom:log:lobby", count=1)
    node.catch_up("lobby", parse_id(newest), Batch())
    reads.clear()
    last = node.hub.state.rooms["lobby"].last_id

    def body(text: str) -> dict[str, object]:
        return {"t": "chat", "room": "lobby", "nick": "ann", "text": text, "ts": 1.0, "server": node.server}

    first = node.store.append_chats([("lobby", body("one"), 0), ("lobby", body("two"), 0)])
    second = node.store.append_chats([("lobby", body("three"), 0), ("lobby", body("four"), 0)])

    def known(placed: list[tuple[int, tuple[int, int], bool, int]], texts: list[str]):
        return [(before, (seq, 0), body(text)) for (seq, before, _, _), text in zip(placed, texts, strict=True)]

    node.parking.begin(["lobby"])  # the first run is on its way back; the second came back first
    node.parking.begin(["lobby"])
    behind = threading.Thread(target=node.catch_up, args=("lobby", (second[-1][0], 0), Batch(),
                                                           known(second, ["three", "four"]), {"lobby"}))
    behind.start()
    wait_until_parked = [node.parking.parked("lobby")]
    for _ in range(2000):
        if wait_until_parked[-1] == 2:
            break
        behind.join(0.005)
        wait_until_parked.append(node.parking.parked("lobby"))
    assert node.parking.parked("lobby") == 2 and behind.is_alive()  # parked, and waiting
    node.catch_up("lobby", (first[-1][0], 0), Batch(), known(first, ["one", "two"]), {"lobby"})
    behind.join(10)
    assert not behind.is_alive() and reads == []  # applied after the first run: nothing read back
    assert node.hub.state.rooms["lobby"].last_id == (second[-1][0], 0) > last
    texts = [ann.expect(Chat, text=t).seq for t in ("one", "two", "three", "four")]
    assert texts == sorted(texts) and len(set(texts)) == 4
    release.set()
    ann.close()
