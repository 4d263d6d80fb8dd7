"""Applying another server's log entries to this server's rooms: no sockets, no Redis."""

from __future__ import annotations

import pytest

from chatroom.cluster import mirror
from chatroom.errors import Refused
from chatroom.protocol import Chat, Presence, PresenceEvent, Topic
from chatroom.server.chat_path import claimed
from chatroom.server.members import RoomSnapshot
from chatroom.server.room import ChatState


class FakePeers:
    """The cluster as the room rules see it, in memory: claims and one shared room."""

    server = "here"

    def __init__(self) -> None:
        self.claims: dict[str, str] = {}
        self.snapshots: dict[str, RoomSnapshot] = {}

    def claim(self, nick: str, owner: str) -> None:
        if self.claims.setdefault(nick.lower(), owner) != owner:
            raise Refused("nick_taken", "taken elsewhere")  # type: ignore[arg-type]

    def release(self, nick: str, owner: str) -> None:
        if self.claims.get(nick.lower()) == owner:
            del self.claims[nick.lower()]

    def load(self, name: str) -> RoomSnapshot:
        return self.snapshots.get(name) or RoomSnapshot(name=name, next_seq=1, topic="", locked=False,
                                                        last_id=(0, 0), recent=[], members=[])


def chat(seq: int, nick: str, text: str) -> tuple[tuple[int, int], dict]:
    return (seq, 0), {"t": "chat", "room": "lobby", "nick": nick, "text": text, "ts": 1.0, "server": "there"}


def event(entry_id: tuple[int, int], kind: str, nick: str, **fields: object) -> tuple[tuple[int, int], dict]:
    return entry_id, {"t": kind, "room": "lobby", "nick": nick, "server": "there", "ts": 2.0, **fields}


@pytest.fixture
def state() -> ChatState:
    return ChatState(peers=FakePeers())


def test_entries_apply_once_and_in_the_logs_order(state):
    ann, _, _ = state.admit(1, "ann", "127.0.0.1:1", 0.0)
    lobby = state.rooms["lobby"]
    deliveries = mirror.apply(state, lobby, *chat(1, "bob", "hi"))
    assert [d.message.text for d in deliveries] == ["hi"] and deliveries[0].recipients == (ann,)
    assert mirror.apply(state, lobby, *chat(1, "bob", "hi")) == []  # the reader and a sender both saw it
    mirror.apply(state, lobby, *chat(2, "bob", "again"))
    assert [c.seq for c in lobby.history] == [1, 2] and lobby.next_seq == 3


def test_a_remote_member_comes_goes_and_is_forgotten(state):
    ann, _, _ = state.admit(1, "ann", "127.0.0.1:1", 0.0)
    lobby = state.rooms["lobby"]
    (out,) = mirror.apply(state, lobby, *event((0, 1), "join", "bob", address="10.0.0.2:5"))
    assert out.message == Presence(room="lobby", event=PresenceEvent.JOIN, nick="bob", ts=2.0)
    bob = state.nicks["bob"]
    assert bob.server == "there" and bob.sink is None and bob.address == "10.0.0.2:5"
    assert {m.nick for m in lobby.everyone()} == {"ann", "bob"} and lobby.local == 1
    with pytest.raises(Refused):  # listed here: the local check refuses before the cluster's
        state.admit(2, "BOB", "127.0.0.1:2", 0.0)
    mirror.apply(state, lobby, *event((0, 2), "nick", "bob", new_nick="rob"))
    assert "rob" in state.nicks and "bob" not in state.nicks
    (out,) = mirror.apply(state, lobby, *event((0, 3), "leave", "rob", reason="left: bye"))
    assert out.message.event is PresenceEvent.LEAVE and out.recipients == (ann,)
    assert "rob" not in state.nicks and lobby.everyone() == (ann,)


def test_our_own_events_coming_back_are_not_applied_twice(state):
    state.admit(1, "ann", "127.0.0.1:1", 0.0)
    lobby = state.rooms["lobby"]
    assert state.published and state.published[-1]["t"] in ("join", "session")
    _, body = event((0, 1), "topic", "ann", topic="ours")
    body["server"] = "here"
    assert mirror.apply(state, lobby, (0, 1), body) == [] and lobby.topic == ""
    (out,) = mirror.apply(state, lobby, *event((0, 2), "topic", "bob", topic="theirs"))
    assert out.message == Topic(room="lobby", topic="theirs", nick="bob", ts=2.0) and lobby.topic == "theirs"


def test_a_room_nobody_here_is_in_is_forgotten_with_its_remote_members():
    peers = FakePeers()
    peers.snapshots["dev"] = RoomSnapshot(name="dev", next_seq=8, topic="t", locked=True, last_id=(7, 2),
                                          recent=[Chat(room="dev", seq=7, ts=1.0, nick="bob", text="x")],
                                          members=[{"nick": "bob", "server": "there"}])
    state = ChatState(peers=peers)
    ann, _, _ = state.admit(1, "ann", "127.0.0.1:1", 0.0, several=True)
    joined, _ = state.join(ann, "dev", 1.0)
    assert joined.last_seq == 7 and joined.topic == "t" and [m.nick for m in joined.members] == ["bob", "ann"]
    dev = state.rooms["dev"]
    assert dev.topic_locked and dev.last_id == (7, 2) and dev.local == 1
    state.part(ann, "dev", "", 2.0)
    assert "dev" not in state.rooms and "bob" not in state.nicks  # no longer followed


def test_a_session_taken_over_elsewhere_becomes_a_remote_member(state):
    ann, _, _ = state.admit(1, "ann", "127.0.0.1:1", 0.0, token="tok")
    ann.sink = object()
    sink = state.let_go("tok", "there")
    assert sink is not None and ann.server == "there" and ann.sink is None and "tok" not in state.sessions
    assert state.rooms["lobby"].local == 0 and state.nicks["ann"] is ann


def test_nick_claims_are_made_before_the_lock_follow_renames_and_are_freed_by_what_is_published(state):
    """The rules never ask Redis (they run under the hub lock): a nick is claimed
    before, through the chat path (``claimed``), and freed by a published event."""
    peers = state.peers
    with claimed(peers, "ann", "tok"):
        ann, _, _ = state.admit(1, "ann", "127.0.0.1:1", 0.0, token="tok")
    assert peers.claims == {"ann": "tok"}
    with claimed(peers, "anna", "tok", replacing="ann"):
        state.rename(ann, "anna", 1.0)
    assert peers.claims == {"anna": "tok"}
    with claimed(peers, "ANNA", "tok", replacing="anna"):  # only the spelling: nothing claimed or freed
        state.rename(ann, "ANNA", 1.5)
    assert peers.claims == {"anna": "tok"}
    peers.claims["bob"] = "someone else"
    with pytest.raises(Refused), claimed(peers, "bob", "tok", replacing="ANNA"):
        state.rename(ann, "bob", 2.0)
    assert ann.nick == "ANNA" and peers.claims == {"anna": "tok", "bob": "someone else"}
    with pytest.raises(Refused), claimed(peers, "cy", "tok", replacing="ANNA"):  # refused here: let go again
        state.rename(ann, "", 2.5)
    assert "cy" not in peers.claims
    state.published.clear()
    state.remove(ann, "quit", 3.0)
    assert {"t": "release", "nick": "ANNA", "owner": "tok"} in state.published


def test_another_servers_changes_go_through_the_same_reducers_as_ours():
    """Rename, away, back, topic, operator, topic lock: what ann is told, the nick index
    and the room are the same whether bob made the changes here or on another server."""
    here = ChatState()
    ann_here, _, _ = here.admit(1, "ann", "127.0.0.1:1", 0.0)
    bob, _, _ = here.admit(2, "bob", "127.0.0.1:2", 0.0)
    told_here = here.rename(bob, "rob", 2.0) + here.set_away(bob, "lunch", 2.0) + here.set_away(bob, None, 2.0)
    here.set_away(bob, "tea", 2.0)
    told_here += here.set_topic(bob, "plans", 2.0)
    here.make_operator(bob)
    here.lock_topic(bob, None, True)

    there = ChatState(peers=FakePeers())
    ann_there, _, _ = there.admit(1, "ann", "127.0.0.1:1", 0.0)
    lobby = there.rooms["lobby"]
    mirror.apply(there, lobby, *event((0, 1), "join", "bob"))
    told_there = []
    changes = [("nick", "bob", {"new_nick": "rob"}), ("away", "rob", {"message": "lunch"}), ("away", "rob", {}),
               ("away", "rob", {"message": "tea"}), ("topic", "rob", {"topic": "plans"}), ("op", "rob", {}),
               ("lock", "rob", {"locked": True})]
    for i, (kind, nick, fields) in enumerate(changes, start=2):
        told = mirror.apply(there, lobby, *event((0, i), kind, nick, **fields))
        if kind != "away" or fields.get("message") != "tea":
            told_there += told

    def seen(told: list, ann: object) -> list:
        return [d.message for d in told if ann in d.recipients]

    assert seen(told_here, ann_here) == seen(told_there, ann_there) and len(seen(told_there, ann_there)) == 4
    for state in (here, there):
        room, rob = state.rooms["lobby"], state.nicks["rob"]
        assert "bob" not in state.nicks and rob.away == "tea" and rob.op
        assert room.topic == "plans" and room.topic_locked
        assert [(m.nick, m.op, m.away) for m in room.member_infos(3.0)] == [("ann", False, None), ("rob", True, "tea")]
