"""ClientSession: what server messages mean to the client, with messages only -- the
resume replay, holes, duplicates, final refusals.  No sockets."""

from __future__ import annotations

from chatroom.client.session import ClientSession, Emit, End, Request, Settle
from chatroom.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Chat,
    Error,
    ErrorCode,
    FetchHistory,
    History,
    MemberInfo,
    Ping,
    Pong,
    Presence,
    PresenceEvent,
    Welcome,
)


def chat(seq: int, room: str = "lobby") -> Chat:
    return Chat(room=room, seq=seq, ts=float(seq), nick="bob", text=f"m{seq}")


def welcome(**fields: object) -> Welcome:
    base = {"version": PROTOCOL_VERSION, "server": "s", "nick": "ann", "room": "lobby", "resume_token": "t"}
    return Welcome(**{**base, **fields})  # type: ignore[arg-type]


def shown(actions: list) -> list[int]:
    seqs: list[int] = []
    for a in actions:
        if isinstance(a, Emit) and isinstance(a.event, Chat):
            seqs.append(a.event.seq)
        elif isinstance(a, Emit) and isinstance(a.event, History):
            seqs += [c.seq for c in a.event.messages]
    return seqs


def fetches(actions: list) -> list[FetchHistory]:
    return [a.message for a in actions if isinstance(a, Request) and isinstance(a.message, FetchHistory)]


def test_a_bounded_replay_is_completed_by_fetching_and_live_chats_wait_for_it():
    s = ClientSession("ann")
    s.welcomed(welcome(last_seq=5))
    # Dropped at 5; the room went on to 20; the replay holds 6-8 only.
    assert s.welcomed(welcome(last_seq=20, resumed=True, missed=3)) == []
    actions = s.receive(History(room="lobby", messages=(chat(6), chat(7), chat(8)), replay=True))
    assert shown(actions) == [6, 7, 8]
    (fetch,) = fetches(actions)
    assert fetch.after == 8 and fetch.before is None
    assert s.receive(chat(21)) == []  # live, but the hole comes first: held
    page1 = s.receive(History(room="lobby", messages=tuple(chat(n) for n in range(9, 15))))
    assert shown(page1) == list(range(9, 15)) and fetches(page1)[0].after == 14
    page2 = s.receive(History(room="lobby", messages=tuple(chat(n) for n in range(15, 22)), complete=True))
    assert shown(page2) == list(range(15, 22))  # 21 once: from the page, not again from the held copy
    assert s.receive(chat(22)) == [Emit(chat(22))]


def test_a_jump_in_sequence_numbers_is_fetched_and_a_repeat_is_dropped():
    s = ClientSession("ann")
    s.welcomed(welcome(last_seq=3))
    assert shown(s.receive(chat(4))) == [4]
    assert s.receive(chat(4)) == []  # exactly once
    actions = s.receive(chat(7))
    assert shown(actions) == [] and fetches(actions)[0].after == 4
    done = s.receive(History(room="lobby", messages=(chat(5), chat(6)), complete=False))
    assert shown(done) == [5, 6, 7]


def test_messages_the_server_no_longer_has_do_not_stall_the_room():
    s = ClientSession("ann")
    s.welcomed(welcome(last_seq=3))
    s.receive(chat(9))  # 4-8 missing, fetched ...
    gone = s.receive(History(room="lobby", messages=(), complete=True))  # ... but deleted by retention
    assert shown(gone) == [9]


def test_a_fresh_welcome_sets_where_the_room_is_even_lower_after_a_wiped_server():
    s = ClientSession("ann")
    s.welcomed(welcome(last_seq=500))
    s.welcomed(welcome(last_seq=2))  # a new server, numbering from 1 again
    assert shown(s.receive(chat(3))) == [3]


def test_acks_settle_and_a_kick_ends_the_session_for_good():
    s = ClientSession("ann")
    assert s.receive(Ack(id="m1", ts=1.0))[0] == Settle("m1", "acked")
    refused = s.receive(Error(code=ErrorCode.TEXT_TOO_LONG.value, message="too long", id="m2"))
    assert refused[0] == Settle("m2", "refused", "too long", "text_too_long")
    assert not any(isinstance(a, End) for a in refused)
    kicked = s.receive(Error(code=ErrorCode.KICKED.value, message="you were kicked by op", fatal=True))
    (end,) = [a for a in kicked if isinstance(a, End)]
    assert end.fatal and "/reconnect" in end.why
    (lost,) = [a for a in s.receive(Error(code=ErrorCode.TIMED_OUT.value, message="x", fatal=True))
               if isinstance(a, End)]
    assert not lost.fatal  # a timeout: reconnect and resume


def test_pings_are_answered_and_presence_is_tracked():
    s = ClientSession("ann")
    s.welcomed(welcome(members=(MemberInfo(nick="ann"),), member_count=1))
    assert s.receive(Ping(token="k")) == [Request(Pong(token="k"))]
    s.receive(Presence(room="lobby", event=PresenceEvent.JOIN, nick="bob", ts=1.0))
    assert set(s.members) == {"ann", "bob"} and s.member_count == 2
    s.receive(Presence(room="lobby", event=PresenceEvent.NICK, nick="ann", new_nick="anna", ts=2.0))
    assert s.nick == s.wanted_nick == "anna" and "anna" in s.members


def test_a_crowd_summary_updates_the_count_and_drops_who_left_and_is_shown():
    from chatroom.protocol import Crowd

    s = ClientSession("ann")
    s.welcomed(welcome(members=(MemberInfo(nick="ann"), MemberInfo(nick="eve")), member_count=250))
    crowd = Crowd(room="lobby", ts=1.0, joined=("x",), joined_count=30, left=("eve",), left_count=2, member_count=278)
    actions = s.receive(crowd)
    assert s.member_count == 278 and "eve" not in s.members and "ann" in s.members
    assert [a.event for a in actions if isinstance(a, Emit)] == [crowd]
    other = Crowd(room="elsewhere", ts=1.0, member_count=3)
    s.receive(other)
    assert s.member_count == 278  # another room's news does not change ours


def test_a_crowd_line_does_not_announce_our_own_arrival():
    from chatroom.protocol import Crowd

    s = ClientSession("ann")
    s.welcomed(welcome(member_count=300))
    assert s.receive(Crowd(room="lobby", ts=1.0, joined=("ann",), joined_count=1, member_count=300)) == []
    (emit,) = s.receive(Crowd(room="lobby", ts=2.0, joined=("ann", "bob"), joined_count=2, member_count=301))
    assert emit.event.joined == ("bob",) and emit.event.joined_count == 1 and s.member_count == 301
