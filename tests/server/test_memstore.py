"""--memory's store alone: bounded per room, and paging through what it keeps behaves
exactly like the SQLite store (the same room rules run on either)."""

from __future__ import annotations

import pytest

from chatroom.protocol import Chat
from chatroom.server.memstore import MemoryStore
from chatroom.server.room import ChatState
from chatroom.server.store import HistoryStore


def chats(room: str, first: int, last: int) -> list[Chat]:
    return [Chat(room=room, seq=n, ts=float(n), nick="ann", text=f"m{n}", id=f"i{n}") for n in range(first, last + 1)]


def test_it_keeps_the_newest_messages_of_each_room_and_no_more():
    store = MemoryStore(keep=100)
    for start in range(1, 1001, 50):
        store.save(chats("Lobby", start, start + 49), [("Lobby", start + 50, "t")])
    store.save(chats("dev", 1, 5), [("dev", 6, "")])
    kept = store.after("lobby", 0, 10_000)
    assert 100 <= len(kept) <= 100 + 16 and kept[-1].seq == 1000  # trimmed in steps, never below keep
    assert [c.seq for c in kept] == list(range(kept[0].seq, 1001))
    assert [c.seq for c in store.recent("LOBBY", 3)] == [998, 999, 1000]
    assert store.room("lobby").next_seq == 1001 and store.room("lobby").name == "Lobby"
    assert [c.seq for c in store.after("dev", 0, 100)] == [1, 2, 3, 4, 5]  # another room is its own


@pytest.mark.parametrize("make", [lambda: MemoryStore(keep=10_000), lambda: HistoryStore(None)],
                         ids=["memory", "sqlite"])
def test_paging_is_the_same_on_both_stores(make):
    store = make()
    store.save(chats("lobby", 1, 300), [("lobby", 301, "")])
    assert [c.seq for c in store.before("lobby", 101, 5)] == [96, 97, 98, 99, 100]
    assert [c.seq for c in store.before("lobby", 3, 5)] == [1, 2]
    assert [c.seq for c in store.after("lobby", 297, 5)] == [298, 299, 300]
    assert store.oldest_seq("lobby") == 1 and store.oldest_seq("nowhere") is None
    assert store.prune(keep=250) == 50 and store.oldest_seq("lobby") == 51
    assert store.prune(max_age=100, now=300.5) == 150 and store.oldest_seq("lobby") == 201
    store.save_ban("127.0.0.9", None, "eve", "spam", "op")
    assert [b.target for b in store.bans()] == ["127.0.0.9"]
    store.delete_ban("127.0.0.9")
    assert store.bans() == []


def test_a_room_on_the_memory_store_pages_back_to_what_it_kept():
    store = MemoryStore(keep=200)
    state = ChatState(history_size=50, store=store)
    talker, _, _ = state.admit(1, "ann", "a", 0.0)
    for n in range(1000):
        state.say(talker, f"m{n}", float(n))
        store.save(*state.take_unsaved())
    seen, before = [], 1001
    while True:
        page = state.history("lobby", before, 100)
        seen = [c.seq for c in page.messages] + seen
        if page.complete or not page.messages:
            break
        before = page.messages[0].seq
    assert seen == list(range(seen[0], 1001)) and 200 <= len(seen) <= 250
