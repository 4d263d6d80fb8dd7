"""Several rooms at once (protocol 1.3): the room rules with no sockets, then the wire.

A 1.3 member's ``join`` adds a room and ``part`` leaves one; every room message names
its room; presence is per room; a resume covers every room of the session.  Members of
1.0-1.2 keep the old rule (one room; ``join`` moves them) in the same rooms.
"""

from __future__ import annotations

import pytest

from chatroom.errors import Refused
from chatroom.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Chat,
    Error,
    ErrorCode,
    Hello,
    History,
    Join,
    Joined,
    Part,
    Parted,
    Presence,
    PresenceEvent,
    Say,
    Welcome,
)
from chatroom.server.room import ChatState
from tests.wire import WireClient


def _state(max_rooms: int = 20):
    s = ChatState(max_rooms=max_rooms)
    ann, _, _ = s.admit(1, "ann", "a", 0.0, several=True)
    bob, _, _ = s.admit(2, "bob", "b", 0.0, several=True)
    return s, ann, bob


def test_join_adds_a_room_and_each_message_goes_to_the_room_it_names():
    s, ann, bob = _state()
    joined, deliveries = s.join(ann, "#dev", 1.0)
    assert joined.room == "dev" and deliveries == []  # nobody else there yet; the lobby hears nothing
    assert list(ann.rooms) == ["lobby", "dev"]
    s.join(bob, "dev", 1.5)
    chat, (d,) = s.say(ann, "in dev", 2.0, room_name="DEV")
    assert chat.room == "dev" and set(d.recipients) == {ann, bob}
    chat, _ = s.say(ann, "in the lobby", 3.0, room_name="#lobby")
    assert (chat.room, chat.seq) == ("lobby", 1)


def test_a_member_of_several_rooms_must_say_which_and_cannot_talk_where_it_is_not():
    s, ann, bob = _state()
    s.join(ann, "dev", 1.0)
    with pytest.raises(Refused) as info:
        s.say(ann, "where?", 2.0)
    assert info.value.code == ErrorCode.INVALID_ROOM and "2 rooms" in info.value.message
    with pytest.raises(Refused) as info:
        s.say(bob, "spy", 2.0, room_name="dev")
    assert info.value.code == ErrorCode.NOT_IN_ROOM
    with pytest.raises(Refused):
        s.set_topic(bob, "mine now", 2.0, room_name="dev")
    assert s.rooms["dev"].topic == "" and s.rooms["dev"].next_seq == 1  # nothing happened


def test_part_tells_the_room_the_reason_and_an_emptied_room_vanishes():
    s, ann, bob = _state()
    s.join(ann, "dev", 1.0)
    s.join(bob, "dev", 1.0)
    parted, (d,) = s.part(bob, "dev", "lunch", 2.0)
    assert parted == Parted(room="dev") and d.recipients == (ann,)
    assert d.message == Presence(room="dev", event=PresenceEvent.LEAVE, nick="bob", reason="left: lunch", ts=2.0)
    assert list(bob.rooms) == ["lobby"]
    _, deliveries = s.part(ann, "dev", "", 3.0)
    assert deliveries == [] and "dev" not in s.rooms
    with pytest.raises(Refused) as info:
        s.part(ann, "dev", "", 4.0)
    assert info.value.code == ErrorCode.NOT_IN_ROOM


def test_a_member_may_part_its_last_room_and_is_then_in_none():
    s, ann, bob = _state()
    _, (d,) = s.part(ann, "lobby", "", 1.0)
    assert d.message.reason == "left" and ann.rooms == {}
    with pytest.raises(Refused) as info:
        s.say(ann, "hello?", 2.0)
    assert info.value.code == ErrorCode.NOT_IN_ROOM
    # A change of its own is still told -- to it alone, with no room.
    (d,) = s.rename(ann, "anna", 3.0)
    assert d.recipients == (ann,) and d.message.room == "" and d.message.new_nick == "anna"
    s.join(ann, "lobby", 4.0)
    assert list(ann.rooms) == ["lobby"]


def test_a_change_of_a_member_is_one_presence_per_room_it_is_in():
    s, ann, bob = _state()
    for member in (ann, bob):
        s.join(member, "dev", 1.0)
    deliveries = s.rename(ann, "anna", 2.0)
    assert [(d.message.room, set(d.recipients)) for d in deliveries] == [("lobby", {ann, bob}), ("dev", {ann, bob})]
    deliveries = s.set_away(bob, "lunch", 3.0)
    assert [d.message.room for d in deliveries] == ["lobby", "dev"]
    deliveries = s.remove(bob, "quit", 4.0)
    assert [(d.message.room, d.message.reason, d.recipients) for d in deliveries] == [
        ("lobby", "quit", (ann,)), ("dev", "quit", (ann,))]
    assert s.rooms["dev"].members == {ann.key: ann}


def test_the_room_limit_is_kept_and_a_refused_join_creates_nothing():
    s, ann, _ = _state(max_rooms=2)
    s.join(ann, "dev", 1.0)
    with pytest.raises(Refused) as info:
        s.join(ann, "ops", 2.0)
    assert info.value.code == ErrorCode.TOO_MANY_ROOMS and "ops" not in s.rooms
    with pytest.raises(Refused) as info:
        s.join(ann, "#DEV", 2.0)
    assert info.value.code == ErrorCode.INVALID_ROOM and "already" in info.value.message


def test_an_older_client_is_in_one_room_join_moves_it_and_part_is_refused():
    s = ChatState()
    old, _, _ = s.admit(1, "old", "a", 0.0)  # protocol 1.2
    new, _, _ = s.admit(2, "new", "b", 0.0, several=True)
    s.join(new, "dev", 0.5)
    _, deliveries = s.join(old, "dev", 1.0)
    assert list(old.rooms) == ["dev"]
    assert [(d.message.room, d.message.event, d.message.reason) for d in deliveries] == [
        ("lobby", PresenceEvent.LEAVE, "went to dev"), ("dev", PresenceEvent.JOIN, None)]
    chat, _ = s.say(old, "no room named: my only one", 2.0)
    assert chat.room == "dev"
    with pytest.raises(Refused) as info:
        s.part(old, "dev", "", 3.0)
    assert info.value.code == ErrorCode.BAD_MESSAGE and "1.3" in info.value.message


def test_a_resend_counts_as_one_only_in_the_same_room():
    s, ann, _ = _state()
    s.join(ann, "dev", 1.0)
    chat, _ = s.say(ann, "hi", 2.0, msg_id="m1", room_name="dev")
    assert s.already_sent(ann, "m1", "hi", room_name="dev") is chat
    assert s.already_sent(ann, "m1", "hi", room_name="lobby") is None  # the same id elsewhere: a new message
    assert s.already_sent(ann, "m1", "hi", room_name="nowhere") is None


def test_a_resume_takes_back_every_room_and_each_room_hears_it_once():
    s, ann, bob = _state()
    ann.token = "t"
    s.sessions["t"] = ann
    for member in (ann, bob):
        s.join(member, "dev", 1.0)
    s.hold(ann, "connection lost", 2.0, grace=60)
    s.say(bob, "missed in dev", 3.0, room_name="dev")
    member, _, deliveries = s.resume("t", 9, "a2", 4.0, several=True)
    assert member is ann and list(ann.rooms) == ["lobby", "dev"]
    assert all(ann.key == 9 and s.rooms[r].members[9] is ann for r in ("lobby", "dev"))
    assert [(d.message.room, d.message.event) for d in deliveries] == [
        ("lobby", PresenceEvent.RECONNECTED), ("dev", PresenceEvent.RECONNECTED)]
    assert [c.text for c in s.missed(s.rooms["dev"], 0)] == ["missed in dev"]


def test_an_older_client_resuming_a_session_of_several_rooms_keeps_the_first():
    s, ann, bob = _state()
    ann.token = "t"
    s.sessions["t"] = ann
    for member in (ann, bob):
        s.join(member, "dev", 1.0)
    s.hold(ann, "connection lost", 2.0, grace=60)
    _, _, deliveries = s.resume("t", 9, "a2", 3.0, several=False)
    assert list(ann.rooms) == ["lobby"] and 9 not in s.rooms["dev"].members
    assert [(d.message.room, d.message.event) for d in deliveries] == [
        ("lobby", PresenceEvent.RECONNECTED), ("dev", PresenceEvent.LEAVE)]


# ----------------------------------------------------------------------------- on the wire


def test_a_member_talks_in_two_rooms_and_an_old_client_shares_one_of_them(connect, server):
    ann = connect("ann")  # 1.3
    old = connect("old", version="1.0")
    ann.expect(Presence, nick="old")
    ann.send(Join(room="#dev"))
    joined = ann.expect(Joined)
    assert joined.room == "dev" and server.limits["max_rooms"] > 1
    ann.send(Say(id="1", text="to the lobby", room="lobby"))
    ann.send(Say(id="2", text="to dev", room="dev"))
    ann.send(Say(id="3", text="which one?"))
    assert old.expect(Chat).text == "to the lobby"
    err = ann.expect(Error)
    assert err.id == "3" and err.code == ErrorCode.INVALID_ROOM.value and not err.fatal
    assert [c.room for c in ann.collect(Chat, 2)] == ["lobby", "dev"]
    old.send(Say(id="o", text="no room field, as in 1.0"))
    assert ann.expect(Chat, text="no room field, as in 1.0").room == "lobby"
    ann.send(Part(room="lobby", reason="bye lobby"))
    assert ann.expect(Parted).room == "lobby"
    assert old.expect(Presence, event=PresenceEvent.LEAVE).reason == "left: bye lobby"
    old.send(Part(room="lobby"))
    assert old.expect(Error).code == ErrorCode.BAD_MESSAGE.value  # a 1.0 client is in one room


def test_a_resume_replays_what_each_room_missed_after_what_the_client_saw_there(make_server):
    server = make_server(rate=0)
    bob = WireClient(server.port)
    bob.hello("bob")
    bob.send(Join(room="dev"))
    bob.expect(Joined)
    ann = WireClient(server.port)
    welcome = ann.hello("ann")
    ann.send(Join(room="dev"))
    ann.expect(Joined)
    for n, room in enumerate(("lobby", "dev", "dev")):
        bob.send(Say(id=f"seen{n}", text=f"seen in {room}", room=room))
    seen = {c.room: c.seq for c in ann.collect(Chat, 3)}
    ann.close()  # dropped, no bye: held
    for n, room in enumerate(("dev", "lobby", "dev")):
        bob.send(Say(id=f"m{n}", text=f"missed in {room} {n}", room=room))
    bob.expect(Ack, id="m2")  # all three are in (bob's inbox still holds the earlier chats)
    back = WireClient(server.port)
    back.send(Hello(version=PROTOCOL_VERSION, nick="x", resume=welcome.resume_token, seen=seen))
    w = back.expect(Welcome)
    assert (w.room, w.resumed, w.missed) == ("lobby", True, 1)
    lobby = back.expect(History)
    assert lobby.replay and [c.text for c in lobby.messages] == ["missed in lobby 1"]
    dev = back.expect(Joined)
    assert (dev.room, dev.resumed, dev.missed, dev.history) == ("dev", True, 2, ())
    replay = back.expect(History)
    assert replay.room == "dev" and [c.text for c in replay.messages] == ["missed in dev 0", "missed in dev 2"]
    assert [p.room for p in bob.collect(Presence, 2)] == ["lobby", "dev"]  # reconnected, once per room
    for client in (bob, back):
        client.close()
