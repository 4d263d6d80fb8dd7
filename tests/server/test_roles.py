"""Rooms run by their operators (``chatroom.server.roles``): roles, modes, bans, keys,
invitations -- the core's rules, with no sockets, threads or clocks.  Every door gets
these same answers (the IRC and framed tests check their wording)."""

from __future__ import annotations

import os

import pytest

from chatroom.auth import client_proof, derive_key, server_proof
from chatroom.errors import Refused
from chatroom.protocol import ErrorCode, Invited, ModeChange, Parted, Presence, RoomMode, RoomModesInfo
from chatroom.server.members import Member
from chatroom.server.memstore import MemoryStore
from chatroom.server.roles import KeyNeeded
from chatroom.server.room import ChatState


def member(state: ChatState, key: int, nick: str, *, roles: bool = True) -> Member:
    m = state.admit_roomless(key, nick, f"10.0.0.{key}:5", 1.0, token=f"t{key}")
    m.hears_roles = roles
    return m


def change(mode: RoomMode, on: bool = True, arg: str | None = None) -> ModeChange:
    return ModeChange(mode=mode, on=on, arg=arg)


def refused(code: ErrorCode, call, *args, **kwargs) -> Refused:  # type: ignore[no-untyped-def]
    with pytest.raises(Refused) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code.value, caught.value.message
    return caught.value


def told(state: ChatState, who: Member, room: str, *changes: ModeChange, now: float = 5.0):  # type: ignore[no-untyped-def]
    """``set_modes`` that must refuse none of ``changes``: its deliveries."""
    deliveries, refusals = state.set_modes(who, room, list(changes), now)
    assert not refusals, refusals
    return deliveries


def refused_change(code: ErrorCode, state: ChatState, who: Member, room: str, change: ModeChange) -> None:
    deliveries, refusals = state.set_modes(who, room, [change], 5.0)
    assert deliveries == [] and [(c, e.code) for c, e in refusals] == [(change, code.value)]


@pytest.fixture
def room() -> tuple[ChatState, Member, Member]:
    """``dev``, made by ann (its operator), with bob in it."""
    state = ChatState()
    ann, bob = member(state, 1, "ann"), member(state, 2, "bob")
    state.join(ann, "dev", 2.0)
    state.join(bob, "dev", 3.0)
    return state, ann, bob


def test_whoever_makes_a_room_runs_it_and_the_member_lists_say_so(room):
    state, ann, bob = room
    dev = state.rooms["dev"]
    assert state.runs(ann, dev) and not state.runs(bob, dev)
    roles = {i.nick: i.role for i in dev.member_infos(4.0)}
    assert roles == {"ann": "@", "bob": None}
    state.join(ann, "lobby", 4.0)  # the lobby is nobody's: its first member does not run it
    assert not state.runs(ann, state.rooms["lobby"])


def test_operators_give_roles_and_the_room_is_told_once_per_change(room):
    state, ann, bob = room
    (said,) = told(state, ann, "dev", change(RoomMode.VOICE, arg="BOB"))
    assert set(said.recipients) == {ann, bob}
    assert said.message == RoomModesInfo(room="dev", changes=(change(RoomMode.VOICE, arg="bob"),), nick="ann",
                                         ts=5.0)
    assert told(state, ann, "dev", change(RoomMode.VOICE, arg="bob")) == []  # nothing changed
    refused(ErrorCode.NOT_ROOM_OPERATOR, state.set_modes, bob, "dev", [change(RoomMode.MODERATED)], 6.0)
    refused_change(ErrorCode.NO_SUCH_NICK, state, ann, "dev", change(RoomMode.OPERATOR, arg="zed"))
    cy = member(state, 3, "cy")
    refused_change(ErrorCode.NOT_IN_ROOM, state, ann, "dev", change(RoomMode.OPERATOR, arg="cy"))
    (both,) = state.set_modes(ann, "dev", [change(RoomMode.OPERATOR, arg="cy"), change(RoomMode.MODERATED)], 6.0)[0]
    assert both.message.changes == (change(RoomMode.MODERATED),)  # one refused: the other still done, and told
    told(state, ann, "dev", change(RoomMode.MODERATED, on=False))
    told(state, ann, "dev", change(RoomMode.OPERATOR, arg="bob"), now=7.0)
    assert state.runs(bob, state.rooms["dev"])
    state.set_modes(bob, "dev", [change(RoomMode.OPERATOR, on=False, arg="ann")], 8.0)  # ops can deop ops
    assert not state.runs(ann, state.rooms["dev"])
    cy.op = True  # a server operator runs every room
    state.join(cy, "dev", 9.0)
    assert state.runs(cy, state.rooms["dev"])


def test_a_moderated_room_hears_only_its_operators_and_voiced_members(room):
    state, ann, bob = room
    told(state, ann, "dev", change(RoomMode.MODERATED), now=5.0)
    refused(ErrorCode.MODERATED, state.say, bob, "hi", 6.0, room_name="dev")
    state.say(ann, "the lecture begins", 6.0, room_name="dev")
    told(state, ann, "dev", change(RoomMode.VOICE, arg="bob"), now=7.0)
    chat, _ = state.say(bob, "a question", 8.0, room_name="dev")
    assert chat.text == "a question"


def test_a_ban_keeps_someone_out_and_quiet_and_the_list_says_who_and_when(room):
    state, ann, bob = room
    (said,) = told(state, ann, "dev", change(RoomMode.BAN, arg="bob"))
    assert said.message.changes == (change(RoomMode.BAN, arg="bob!*@*"),)
    refused(ErrorCode.BANNED_FROM_ROOM, state.say, bob, "hi", 6.0, room_name="dev")
    state.part(bob, "dev", "", 6.0)
    refused(ErrorCode.BANNED_FROM_ROOM, state.join, bob, "dev", 7.0)
    state.set_modes(ann, "dev", [change(RoomMode.BAN, arg="*!*@10.0.0.9")], 7.5)  # by address (IRC's *!*@host)
    listed = state.room_modes(ann, "dev", 8.0, bans=True).bans
    assert [(b.mask, b.by, b.at) for b in listed or ()] == [("bob!*@*", "ann", 5.0), ("*!*@10.0.0.9", "ann", 7.5)]
    told(state, ann, "dev", change(RoomMode.BAN, on=False, arg="BOB!*@*"), now=9.0)
    state.join(bob, "dev", 10.0)
    ann.op = False
    refused(ErrorCode.BANNED_FROM_ROOM, state.join, member(state, 9, "dee"), "dev", 11.0)


def test_invite_only_a_limit_and_an_invitation_used_once(room):
    state, ann, bob = room
    cy, dee = member(state, 3, "cy"), member(state, 4, "dee")
    told(state, ann, "dev", change(RoomMode.INVITE_ONLY), change(RoomMode.LIMIT, arg="3"), now=5.0)
    refused(ErrorCode.INVITE_ONLY, state.join, cy, "dev", 6.0)
    refused(ErrorCode.NOT_ROOM_OPERATOR, state.invite, bob, "cy", "dev", 6.0)
    invited, deliveries = state.invite(ann, "cy", "dev", 6.0)
    assert invited == Invited(room="dev", nick="ann", to="cy", ts=6.0)
    assert deliveries[0].recipients == (cy,)  # (the inviter's door answers the inviter)
    state.join(cy, "dev", 7.0)
    state.part(cy, "dev", "", 8.0)
    refused(ErrorCode.INVITE_ONLY, state.join, cy, "dev", 9.0)  # used up
    state.invite(ann, "dee", "dev", 9.0)
    state.invite(ann, "cy", "dev", 9.0)
    state.join(dee, "dev", 10.0)
    refused(ErrorCode.ROOM_FULL, state.join, cy, "dev", 11.0)  # an invitation does not pass the limit


def test_a_key_is_proved_never_told_and_a_wrong_proof_gets_a_new_challenge(room):
    state, ann, bob = room
    salt = os.urandom(16)
    verifier = derive_key("open sesame", salt)
    (said,) = told(state, ann, "dev", change(RoomMode.KEY, arg=f"{salt.hex()}:{verifier.hex()}"))
    assert said.message.changes == (change(RoomMode.KEY),)  # the verifier is not told
    cy = member(state, 3, "cy")
    with pytest.raises(KeyNeeded) as first:
        state.join(cy, "dev", 6.0)
    challenge = first.value.challenge
    assert challenge is not None and challenge.room == "dev" and challenge.salt == salt.hex()
    mine = os.urandom(32)
    wrong = client_proof(derive_key("guess", salt), bytes.fromhex(challenge.nonce), mine)
    with pytest.raises(KeyNeeded) as second:
        state.join(cy, "dev", 7.0, key=(mine, wrong))
    again = second.value.challenge
    assert again is not None and again.nonce != challenge.nonce
    proof = client_proof(verifier, bytes.fromhex(again.nonce), mine)
    joined, _ = state.join(cy, "dev", 8.0, key=(mine, proof))
    assert joined.proof == server_proof(verifier, mine, bytes.fromhex(again.nonce)).hex()
    assert joined.modes == (change(RoomMode.KEY),)
    dee = member(state, 4, "dee")  # an IRC client: the key derived by its door
    refused(ErrorCode.KEY_NEEDED, state.join, dee, "dev", 9.0, key=derive_key("nope", salt))
    state.join(dee, "dev", 9.0, key=verifier)
    refused_change(ErrorCode.INVALID_FIELD, state, ann, "dev", change(RoomMode.KEY, arg="plaintext"))
    half_a_byte = change(RoomMode.KEY, arg="abc:" + "0" * 64)
    refused_change(ErrorCode.INVALID_FIELD, state, ann, "dev", half_a_byte)


def test_a_room_kick_sends_one_out_of_the_room_and_keeps_them_on_the_server(room):
    state, ann, bob = room
    refused(ErrorCode.NOT_ROOM_OPERATOR, state.room_kick, bob, "ann", "dev", "", 5.0)
    deliveries = state.room_kick(ann, "bob", "dev", "spam", 5.0)
    assert "dev" not in bob.rooms and state.nicks.get("bob") is bob
    to_bob = [d.message for d in deliveries if d.recipients == (bob,)]
    assert to_bob == [Parted(room="dev", reason="kicked by ann: spam")]
    (to_room,) = [d for d in deliveries if d.recipients == (ann,)]
    assert isinstance(to_room.message, Presence) and to_room.message.reason == "kicked by ann: spam"


def test_roles_follow_a_rename_and_go_when_the_room_empties(room):
    state, ann, bob = room
    state.rename(ann, "anna", 5.0)
    assert state.runs(ann, state.rooms["dev"])
    told(state, ann, "dev", change(RoomMode.SECRET), change(RoomMode.MODERATED), now=6.0)
    assert [r.name for r in state.list_rooms(bob).rooms] == ["dev", "lobby"]
    assert [r.name for r in state.list_rooms(member(state, 5, "eve")).rooms] == ["lobby"]  # secret
    state.part(ann, "dev", "", 7.0)
    state.part(bob, "dev", "", 8.0)
    state.join(bob, "dev", 9.0)  # everyone had left: nobody ran it; now bob does, with no modes
    dev = state.rooms["dev"]
    assert state.runs(bob, dev) and not state.runs(ann, dev) and not dev.modes.moderated


def test_roles_and_modes_are_saved_with_the_room_and_come_back_after_a_restart():
    store = MemoryStore()
    state = ChatState(store=store)
    ann, bob = member(state, 1, "ann"), member(state, 2, "bob")
    state.join(ann, "dev", 2.0)
    state.join(bob, "dev", 3.0)
    state.set_modes(ann, "dev", [change(RoomMode.VOICE, arg="bob"), change(RoomMode.MODERATED),
                                 change(RoomMode.BAN, arg="*!*@10.0.0.66")], 4.0)
    store.save(*state.take_unsaved())
    after = ChatState(store=store)  # a restart: the room is read from the store when someone comes back
    ann2 = member(after, 1, "ann")
    after.join(ann2, "dev", 10.0)
    dev = after.rooms["dev"]
    assert after.runs(ann2, dev) and dev.modes.moderated and "bob" in dev.modes.voiced
    assert [b.mask for b in dev.modes.bans] == ["*!*@10.0.0.66"]


def test_an_older_client_is_never_sent_what_it_does_not_know_and_is_refused_plainly(make_server):
    """A 1.4 client in a room being run: no ``modes`` or ``invited`` frames (it could not
    read them), the same refusals as anyone (moderated), and its member list shows the
    roles in a field it ignores."""
    from chatroom.protocol import Error, Join, Joined, Say, SetMode
    from tests.wire import WireClient

    server = make_server()
    ann = WireClient(server.port)
    ann.hello("ann")
    old = WireClient(server.port)
    old.hello("old", "1.4")
    ann.send(Join(room="dev"))
    ann.expect(Joined, room="dev")
    old.send(Join(room="dev"))
    assert {m.nick: m.role for m in old.expect(Joined, room="dev").members} == {"ann": "@", "old": None}
    ann.send(SetMode(room="dev", changes=(change(RoomMode.MODERATED),)))
    ann.expect(RoomModesInfo, nick="ann")
    old.send(Say(id="1", text="hello?", room="dev"))
    assert old.expect(Error, id="1").code == ErrorCode.MODERATED.value
    assert not [m for m in old.inbox if isinstance(m, RoomModesInfo | Invited)]
