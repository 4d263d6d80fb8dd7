"""The admission rules (``chatroom.server.entry``): who gets in and what they are told
first -- no sockets, threads or clocks."""

from __future__ import annotations

import time

import pytest

from chatroom.errors import Refused
from chatroom.protocol import PROTOCOL_VERSION, ErrorCode, Hello, History, Joined, Presence, PresenceEvent, Welcome
from chatroom.server.bans import Ban, BanList, person_key
from chatroom.server.entry import Entrance, seen_rooms
from chatroom.server.room import ChatState

LIMITS = {"max_text": 4000}


def entrance(*, max_header: int = 65536, outbox_limit: int = 1 << 20) -> Entrance:
    return Entrance("here", LIMITS, max_header, outbox_limit)


def hello(nick: str, **fields: object) -> Hello:
    return Hello(version=PROTOCOL_VERSION, nick=nick, **fields)


def test_a_banned_nick_and_its_look_alikes_are_refused_with_how_long():
    bans = BanList([Ban(person_key("alice"), None, nick="alice"),
                    Ban(person_key("bob"), time.time() + 600, nick="bob")])
    assert Entrance.refusal(bans, "\u0430lice", 0.0) == "you are banned from this server"
    assert Entrance.refusal(bans, "BOB", 0.0) == "you are banned from this server for 10 more minutes"
    assert Entrance.refusal(bans, "carol", 0.0) is None


def test_a_new_member_is_welcomed_with_the_room_and_the_others_hear_it_join():
    state = ChatState()
    ann = entrance().admit(state, 1, hello("ann"), "127.0.0.1:1", 1.0, "tok-a", None).member
    state.say(ann, "hello", 2.0)
    entry = entrance().admit(state, 2, hello("bob", room="lobby"), "127.0.0.1:2", 3.0, "tok-b", "proof")
    (frame,) = entry.frames
    welcome = frame.message
    assert isinstance(welcome, Welcome) and welcome.nick == "bob" and welcome.room == "lobby"
    assert welcome.resume_token == "tok-b" and welcome.proof == "proof" and welcome.limits == LIMITS
    assert [c.text for c in welcome.history] == ["hello"] and welcome.last_seq == 1
    assert [m.nick for m in welcome.members] == ["ann", "bob"]
    (news,) = entry.deliveries
    assert news.recipients == (ann,) and news.message.event is PresenceEvent.JOIN and entry.first_room == "lobby"
    with pytest.raises(Refused) as refused:
        entrance().admit(state, 3, hello("ANN"), "127.0.0.1:3", 4.0, "tok-c", None)
    assert refused.value.code == ErrorCode.NICK_TAKEN


def test_a_welcome_that_does_not_fit_the_header_limit_loses_its_oldest_history():
    state = ChatState()
    ann = entrance().admit(state, 1, hello("ann"), "127.0.0.1:1", 1.0, "a", None).member
    for i in range(100):
        state.say(ann, f"{i:03} " + "x" * 1000, 2.0)
    (frame,) = entrance(max_header=20_000).admit(state, 2, hello("bob"), "127.0.0.1:2", 3.0, "b", None).frames
    history = frame.message.history
    assert 0 < len(history) < 20 and history[-1].text.startswith("099")  # the newest kept, no hole
    assert [c.seq for c in history] == list(range(history[0].seq, 101))


def test_a_resumed_session_gets_each_rooms_welcome_and_what_it_missed_in_order_within_one_budget():
    state = ChatState(history_size=1000)
    ann = entrance().admit(state, 1, hello("ann"), "127.0.0.1:1", 1.0, "tok", None).member
    bob = entrance().admit(state, 2, hello("bob"), "127.0.0.1:2", 1.0, "b", None).member
    state.join(ann, "dev", 1.0)
    state.join(bob, "dev", 1.0)
    state.hold(ann, "connection lost", 2.0, grace=60.0)
    for i in range(150):
        state.say(bob, f"lobby {i} " + "y" * 200, 3.0, room_name="lobby")
        state.say(bob, f"dev {i} " + "z" * 200, 3.0, room_name="dev")
    # Half of the outbox, 20 KB, for both replays: each room's first page (100 messages,
    # ~27 KB) goes whatever the budget, nothing after it.
    rules = entrance(outbox_limit=40_000)
    entry = rules.resume(state, 9, hello("ann", resume="tok", last_seq=0, seen={"#dev": 10}), "127.0.0.1:9",
                         4.0, None)
    messages = [f.message for f in entry.frames]
    assert isinstance(messages[0], Welcome) and messages[0].resumed and messages[0].room == "lobby"
    at = next(i for i, m in enumerate(messages) if isinstance(m, Joined))
    assert messages[at].room == "dev" and messages[at].resumed
    assert all(isinstance(m, History) and m.replay and m.room == "lobby" for m in messages[1:at])
    assert all(isinstance(m, History) and m.replay and m.room == "dev" for m in messages[at + 1:])
    lobby_seqs = [c.seq for m in messages[1:at] for c in m.messages]
    dev_seqs = [c.seq for m in messages[at + 1:] for c in m.messages]
    assert lobby_seqs == list(range(1, len(lobby_seqs) + 1))  # oldest first, no hole
    assert dev_seqs[:1] == [11] and dev_seqs == list(range(11, 11 + len(dev_seqs)))  # after what it had seen
    assert len(lobby_seqs) == len(dev_seqs) == 100  # the budget cut both; the client pages for the rest
    assert messages[0].missed == len(lobby_seqs) and messages[at].missed == len(dev_seqs)
    assert entry.rooms == 2 and entry.replayed == len(lobby_seqs) + len(dev_seqs) and entry.member is ann
    assert {d.message.event for d in entry.deliveries if isinstance(d.message, Presence)} == {
        PresenceEvent.RECONNECTED}
    with pytest.raises(Refused):
        rules.resume(state, 10, hello("ann", resume="nope"), "127.0.0.1:10", 5.0, None)


def test_what_a_resuming_client_has_seen_is_read_room_by_room_without_the_hash():
    assert seen_rooms(hello("ann", resume="t", seen={"#dev": 4, "lobby": 9})) == {"dev": 4, "lobby": 9}
    assert seen_rooms(hello("ann")) == {}
