"""whois and search (protocol 1.3): the stores, the rules, and on the wire."""

from __future__ import annotations

import pytest

from chatroom.protocol import Chat, Error, ErrorCode, Found, Join, Joined, Say, Search, User, Whois
from chatroom.server.memstore import MemoryStore
from chatroom.server.store import HistoryStore


def chats(texts: list[str], room: str = "lobby") -> list[Chat]:
    return [Chat(room=room, seq=n + 1, ts=float(n), nick="bob", text=t) for n, t in enumerate(texts)]


@pytest.fixture(params=["sqlite", "memory"])
def store(request, tmp_path):
    s = HistoryStore(tmp_path / "h.sqlite3") if request.param == "sqlite" else MemoryStore()
    yield s
    s.close()


def test_a_search_finds_the_newest_matches_ignoring_case_in_any_script(store):
    store.save(chats(["Release on Friday", "nothing", "the RELEASE notes", "Straße gesperrt", "release!"]),
               [("lobby", 6, "")])
    store.save(chats(["release elsewhere"], room="dev"), [("dev", 2, "")])
    found, complete = store.search("lobby", "release", 2)
    assert [c.text for c in found] == ["the RELEASE notes", "release!"] and not complete
    found, complete = store.search("LOBBY", "release", 10)
    assert [c.seq for c in found] == [1, 3, 5] and complete
    assert [c.text for c in store.search("lobby", "STRASSE", 5)[0]] == ["Straße gesperrt"]  # Unicode folding
    assert store.search("lobby", "50%", 5) == ([], True)  # no LIKE wildcards: text is text
    # 1.4: the next page of older matches, below the oldest one seen
    found, complete = store.search("lobby", "release", 1, before=5)
    assert [c.seq for c in found] == [3] and not complete
    found, complete = store.search("lobby", "release", 5, before=3)
    assert [c.seq for c in found] == [1] and complete


def test_a_search_of_a_room_in_memory_pages_back_too():
    from chatroom.server.search import search_in

    found, complete = search_in(chats(["a x", "b", "c x", "d x"]), "x", 1, before=4)
    assert [c.seq for c in found] == [3] and not complete


def test_whois_and_search_on_the_wire(connect):
    ann, bob = connect("ann"), connect("bob")
    bob.send(Join(room="dev"))
    bob.expect(Joined)
    bob.send(Say(id="1", text="Lunch at noon?", room="lobby"))
    bob.send(Say(id="2", text="code review", room="dev"))
    ann.expect(Chat)
    ann.send(Whois(nick="BOB"))
    user = ann.expect(User)
    assert (user.nick, user.rooms, user.op, user.held, user.address) == ("bob", ("lobby", "dev"), False, False, None)
    ann.send(Whois(nick="nobody"))
    assert ann.expect(Error).code == ErrorCode.NO_SUCH_NICK.value
    ann.send(Search(room="#lobby", text="LUNCH"))
    found = ann.expect(Found)
    assert (found.room, found.text, [c.text for c in found.messages], found.complete) == (
        "lobby", "LUNCH", ["Lunch at noon?"], True)
    ann.send(Search(room="dev", text="review"))  # any room that exists, as for fetch_history
    assert [c.text for c in ann.expect(Found).messages] == ["code review"]
    ann.send(Search(room="nowhere", text="x"))
    assert ann.expect(Error).code == ErrorCode.NO_SUCH_ROOM.value
