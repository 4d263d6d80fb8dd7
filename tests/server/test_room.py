"""Room rules with no sockets, threads or clocks."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatroom.errors import Refused
from chatroom.protocol import Chat, ErrorCode, ModAction, Presence, PresenceEvent, Private, Topic
from chatroom.server.members import DEFAULT_ROOM
from chatroom.server.room import ChatState
from chatroom.text import fold, nick_key, nick_problem


def test_members_start_in_the_lobby_and_hear_each_other_arrive():
    s = ChatState()
    ann, joined, deliveries = s.admit(1, "ann", "a", 0.0)
    assert joined.room == DEFAULT_ROOM and deliveries == []
    bob, joined, deliveries = s.admit(2, "bob", "b", 1.0)
    assert [m.nick for m in joined.members] == ["ann", "bob"]
    (d,) = deliveries
    assert d.recipients == (ann,)
    assert d.message == Presence(room="lobby", event=PresenceEvent.JOIN, nick="bob", ts=1.0)


def test_room_messages_get_increasing_sequence_numbers_and_go_to_everyone():
    s = ChatState()
    ann, _, _ = s.admit(1, "ann", "a", 0.0)
    bob, _, _ = s.admit(2, "bob", "b", 0.0)
    c1, (d1,) = s.say(ann, "one", 1.0, msg_id="x")
    c2, _ = s.say(bob, "two", 2.0, action=True)
    assert (c1.seq, c2.seq) == (1, 2)
    assert c2.action and c1.id == "x"
    assert set(d1.recipients) == {ann, bob}


def test_nicks_are_unique_ignoring_case_and_a_free_one_is_suggested():
    s = ChatState()
    s.admit(1, "Ann", "a", 0.0)
    s.admit(2, "ann2", "a", 0.0)
    with pytest.raises(Refused) as info:
        s.admit(3, "aNN", "a", 0.0)
    assert info.value.code == ErrorCode.NICK_TAKEN
    assert "aNN3" in info.value.message


@pytest.mark.parametrize("nick", ["", "a b", "x" * 33, "ann\x1b[31m", "tab\t", "a/b", "émoji🎉"])
def test_invalid_nicks_are_refused_with_a_reason(nick):
    with pytest.raises(Refused) as info:
        ChatState().admit(1, nick, "a", 0.0)
    assert info.value.code == ErrorCode.INVALID_NICK


@pytest.mark.parametrize("nick", ["ann", "Zoë", "名前", "a.b-c_d", "x" * 32, "R2D2"])
def test_valid_nicks_include_unicode_letters_and_some_punctuation(nick):
    member, _, _ = ChatState().admit(1, nick, "a", 0.0)
    assert member.nick == nick


def test_switching_rooms_tells_both_rooms_and_empty_rooms_vanish_except_the_lobby():
    s = ChatState()
    ann, _, _ = s.admit(1, "ann", "a", 0.0)
    bob, _, _ = s.admit(2, "bob", "b", 0.0)
    joined, deliveries = s.join(ann, "dev", 1.0)
    assert joined.room == "dev"
    left = deliveries[0].message
    assert isinstance(left, Presence) and left.event is PresenceEvent.LEAVE and deliveries[0].recipients == (bob,)
    assert [r.name for r in s.list_rooms().rooms] == ["dev", "lobby"]
    s.join(ann, "lobby", 2.0)
    assert [r.name for r in s.list_rooms().rooms] == ["lobby"]
    s.remove(ann, "quit", 3.0)
    s.remove(bob, "quit", 3.0)
    assert [r.name for r in s.list_rooms().rooms] == ["lobby"]


def test_joining_replays_recent_history_bounded_by_history_size():
    s = ChatState(history_size=3)
    ann, _, _ = s.admit(1, "ann", "a", 0.0)
    for i in range(5):
        s.say(ann, f"m{i}", float(i))
    _, joined, _ = s.admit(2, "bob", "b", 9.0)
    assert [c.text for c in joined.history] == ["m2", "m3", "m4"]


def test_history_pages_go_backwards_from_a_sequence_number():
    s = ChatState(history_size=10)
    ann, _, _ = s.admit(1, "ann", "a", 0.0)
    for i in range(6):
        s.say(ann, f"m{i}", float(i))
    page = s.history("lobby", before=5, limit=2)
    assert [c.seq for c in page.messages] == [3, 4] and not page.complete
    page = s.history("lobby", before=3, limit=10)
    assert [c.seq for c in page.messages] == [1, 2] and page.complete


def test_direct_messages_reach_the_recipient_and_echo_to_the_sender():
    s = ChatState()
    ann, _, _ = s.admit(1, "ann", "a", 0.0)
    bob, _, _ = s.admit(2, "bob", "b", 0.0)
    s.join(bob, "elsewhere", 0.5)
    msg, (d,) = s.direct(ann, "BOB", "psst", 1.0, msg_id="d1")
    assert isinstance(msg, Private) and msg.to == "bob" and d.recipients == (bob, ann)
    with pytest.raises(Refused) as info:
        s.direct(ann, "carol", "hi", 1.0)
    assert info.value.code == ErrorCode.NO_SUCH_NICK


def test_text_is_cleaned_and_limited():
    s = ChatState(max_text=10)
    ann, _, _ = s.admit(1, "ann", "a", 0.0)
    chat, _ = s.say(ann, "\x1b[2Jhi\x07", 1.0)
    assert chat.text == "hi\ufffd"
    with pytest.raises(Refused) as info:
        s.say(ann, "x" * 11, 1.0)
    assert info.value.code == ErrorCode.TEXT_TOO_LONG
    with pytest.raises(Refused):
        s.say(ann, "  \n ", 1.0)


def test_nick_change_topic_and_away_are_announced_to_the_room():
    s = ChatState()
    ann, _, _ = s.admit(1, "ann", "a", 0.0)
    (d,) = s.rename(ann, "anna", 1.0)
    assert d.message.new_nick == "anna" and s.nicks["anna"] is ann and "ann" not in s.nicks
    (d,) = s.set_topic(ann, "release day", 2.0)
    assert d.message == Topic(room="lobby", topic="release day", nick="anna", ts=2.0)
    (d,) = s.set_away(ann, "lunch", 3.0)
    assert d.message.event is PresenceEvent.AWAY and ann.away == "lunch"
    assert s.who(ann, 4.0).members[0].away == "lunch"
    (d,) = s.set_away(ann, None, 5.0)
    assert d.message.event is PresenceEvent.BACK and ann.away is None


def test_members_show_idle_time_since_their_last_message():
    s = ChatState()
    ann, _, _ = s.admit(1, "ann", "a", 0.0)
    s.say(ann, "hi", 10.0)
    assert s.who(ann, 25.0).members[0].idle == 15.0


def test_chat_history_messages_are_chat():
    s = ChatState()
    ann, _, _ = s.admit(1, "ann", "a", 0.0)
    s.say(ann, "hi", 1.0)
    assert all(isinstance(c, Chat) for c in s.rooms["lobby"].history)


def test_member_lists_name_at_most_the_listed_maximum_but_count_everyone():
    from chatroom.protocol import MAX_LISTED_MEMBERS

    s = ChatState()
    for i in range(MAX_LISTED_MEMBERS + 50):
        member, joined, _ = s.admit(i, f"m{i}", "a", 0.0)
    assert len(joined.members) == MAX_LISTED_MEMBERS
    assert joined.member_count == MAX_LISTED_MEMBERS + 50
    assert s.who(member, 1.0).member_count == MAX_LISTED_MEMBERS + 50


#: (present, newcomer): each newcomer is refused while the present one holds the nick.
#: The first rows differ in case or script after folding; the later ones only before it
#: (Unicode maps capitals to look-alikes: I -> l, 0 -> O, Ь -> b).
LOOKALIKES = [
    ("alice", "\u0430lice"), ("alice", "al\u0131ce"), ("alice", "AL\u0130CE"), ("alice", "ALICE"),
    ("alice", "\uff41lice"), ("alice", "alice\u0307"), ("bob", "b\u043eb"),
    ("alice", "aIice"), ("alice", "AIice"), ("BOB", "B0B"), ("BOB", "\u042cob"), ("BOB", "\u042cOB"),
    ("carol", "caroI"), ("carol", "CAR0L"), ("aIice", "alice"), ("B0B", "bob"), ("mallory", "MALL0RY"),
    ("mallory", "maIlory"), ("MALLORY", "rnallory"),
]


@pytest.mark.parametrize(("present", "lookalike"), LOOKALIKES)
def test_a_nick_that_looks_like_a_present_or_held_one_is_taken(present, lookalike):
    s = ChatState()
    holder, _, _ = s.admit(1, present, "a", 0.0, token="t")
    for holder_state in ("present", "held"):
        if holder_state == "held":
            s.hold(holder, "connection lost", 1.0, grace=60)
        with pytest.raises(Refused) as info:
            s.admit(2, lookalike, "b", 2.0)
        assert info.value.code in (ErrorCode.NICK_TAKEN, ErrorCode.INVALID_NICK), info.value
        if info.value.code == ErrorCode.NICK_TAKEN:
            assert "try " in info.value.message
            suggestion = info.value.suggestion
            assert suggestion and s.nicks.holder(suggestion) is None  # what it suggests is free
    s.remove(holder, "quit", 3.0)  # gone: both keys are free again
    if nick_problem(lookalike) is None:
        assert s.admit(3, lookalike, "c", 4.0)[0].nick == lookalike


@pytest.mark.parametrize("pair", [("ann", "anne"), ("bob", "rob"), ("alice", "alicia"), ("li", "ll1"),
                                  ("\u674e", "\u5b63")])
def test_different_names_are_not_taken(pair):
    s = ChatState()
    s.admit(1, pair[0], "a", 0.0)
    assert s.admit(2, pair[1], "b", 0.0)[0].nick == pair[1]


def test_a_person_ban_holds_against_look_alikes_of_the_banned_nick():
    from chatroom.server.bans import Ban, BanList, person_key

    bans = BanList([Ban(person_key("alice"), None, nick="alice")])
    for nick in ("alice", "ALICE", "\u0430lice", "aIice", "AIice"):
        assert bans.for_nick(nick, 0.0) is not None, nick
    assert bans.for_nick("alicia", 0.0) is None


def test_the_skeleton_follows_unicode_confusables_and_keeps_distinct_names_apart():
    assert nick_key("\u0430lice") == nick_key("alice") == nick_key("ALİCE") == nick_key("alıce")
    assert nick_key("m") == nick_key("rn")  # UTS #39: m looks like rn
    assert nick_key("ann") != nick_key("anne") and nick_key("bob") != nick_key("rob")
    assert nick_key("李") != nick_key("季")


@pytest.mark.parametrize("nick", ["server", "SYSTEM", "admin", "\u0430dmin", "Operator", "chatroom", "--", "._"])
def test_reserved_and_punctuation_only_nicks_are_refused(nick):
    s = ChatState()
    with pytest.raises(Refused) as info:
        s.admit(1, nick, "a", 0.0)
    assert info.value.code == ErrorCode.INVALID_NICK


def test_renaming_into_a_lookalike_of_someone_else_is_refused_but_respelling_ones_own_is_not():
    s = ChatState()
    s.admit(1, "bob", "a", 0.0)
    ann, _, _ = s.admit(2, "ann", "b", 0.0)
    with pytest.raises(Refused) as info:
        s.rename(ann, "b\u043eb", 1.0)
    assert info.value.code == ErrorCode.NICK_TAKEN and "looks like bob" in info.value.message
    s.rename(ann, "Ann", 2.0)
    assert ann.nick == "Ann" and s.nicks[nick_key("ann")] is ann


def test_a_late_disconnect_of_a_replaced_connection_changes_nothing():
    """A resume may hand the session to a new connection just before the old one's
    reader ends: the old one's hold must not silence (or later drop) the new one."""
    s = ChatState()
    old_sink, new_sink = object(), object()
    ann, _, _ = s.admit(1, "ann", "a", 0.0, token="t")
    ann.sink = old_sink
    s.hold(ann, "connection lost", 1.0, grace=60, sink=old_sink)
    member, ghost, _ = s.resume("t", 2, "a", 2.0)
    member.sink = new_sink
    assert s.hold(member, "connection lost", 3.0, grace=60, sink=old_sink) == []
    assert member.sink is new_sink and member.held_until is None
    s.hold(member, "connection lost", 4.0, grace=0, sink=new_sink)  # its own connection's end does count
    assert s.nicks == {}


# ----------------------------------------------------------------------------- moderation (no sockets)



def _room_with_op() -> tuple[ChatState, object]:
    s = ChatState()
    op, _, _ = s.admit(1, "op", "127.0.1.1:1000", 0.0)
    s.make_operator(op)
    return s, op


def test_only_operators_moderate_and_an_operator_is_never_banned():
    s, op = _room_with_op()
    bob, _, _ = s.admit(2, "bob", "127.0.1.2:2000", 0.0)
    with pytest.raises(Refused) as info:
        s.moderate(bob, ModAction.KICK, "op", "", None, 1.0)
    assert info.value.code == ErrorCode.NOT_OPERATOR
    other_op, _, _ = s.admit(3, "op2", "127.0.1.3:3000", 0.0)
    s.make_operator(other_op)
    assert "cannot be banned" in s.moderate(op, ModAction.BAN, "op2", "", None, 1.0).text
    assert "an operator is connected" in s.moderate(op, ModAction.BAN, "127.0.1.3", "", None, 1.0).text
    assert s.bans.all(1.0) == []


def test_a_ban_takes_the_address_unless_others_share_it_then_the_person():
    s, op = _room_with_op()
    s.admit(2, "bob", "127.0.1.2:2000", 0.0)
    alone = s.moderate(op, ModAction.BAN, "bob", "spam", 600, 1.0)
    assert alone.address == "127.0.1.2" and alone.added.target == "127.0.1.2" and alone.added.until == 601
    s.admit(4, "cat", "127.0.1.9:1", 0.0)
    s.admit(5, "dan", "127.0.1.9:2", 0.0)
    shared = s.moderate(op, ModAction.BAN, "cat", "", None, 1.0)
    assert shared.address is None and [m.nick for m in shared.victims] == ["cat"]
    assert "the person" in shared.text and s.bans.for_nick("CAT", 2.0) is not None
    # ... and a connection still in its handshake counts as sharing the address too.
    s.admit(6, "eve", "127.0.1.7:1", 0.0)
    assert s.moderate(op, ModAction.BAN, "eve", "", None, 1.0, handshaking=lambda ip: 1).address is None
    lifted = s.moderate(op, ModAction.UNBAN, "bob", "", None, 2.0)
    assert [b.target for b in lifted.lifted] == ["127.0.1.2"] and s.bans.for_address("127.0.1.2", 2.0) is None


def test_kick_and_mute_say_what_to_do():
    s, op = _room_with_op()
    bob, _, _ = s.admit(2, "bob", "127.0.1.2:2000", 0.0)
    kick = s.moderate(op, ModAction.KICK, "bob", "cool down", None, 1.0)
    assert kick.victims == [bob] and kick.why == "kicked by op: cool down" and kick.code == "kicked"
    mute = s.moderate(op, ModAction.MUTE, "bob", "", 60, 1.0)
    assert bob.muted_until == 61 and mute.notice == (bob, "op muted you for 60 s")
    with pytest.raises(Refused):
        s.say(bob, "hello?", 2.0)
    s.moderate(op, ModAction.UNMUTE, "bob", "", None, 3.0)
    s.say(bob, "hello!", 4.0)


# ----------------------------------------------------------------------------- large rooms (crowd summaries)


def _crowded(n: int, *, crowd_every: int = 2):
    from chatroom.server.room import ChatState

    state = ChatState()
    members = [state.admit(i, f"m{i}", f"127.0.0.1:{i}", 0.0, crowd=(i % crowd_every == 0))[0] for i in range(n)]
    state.crowd_news(0.0)  # what the filling up itself announced
    return state, members


def test_joins_and_leaves_in_a_large_room_are_summed_up_per_tick_for_12_clients_only():
    from chatroom.protocol import LARGE_ROOM, Crowd, Presence

    state, members = _crowded(LARGE_ROOM)
    _, _, deliveries = state.admit(1000, "newcomer", "127.0.0.1:1000", 1.0, crowd=True)
    assert deliveries == []  # not one frame per member per arrival
    more = [state.admit(1001 + i, f"late{i}", "127.0.0.1:9", 1.0)[0] for i in range(60)]
    assert state.remove(members[3], "quit", 1.2) == []
    (news,) = state.crowd_news(1.5)
    crowd = news.message
    assert isinstance(crowd, Crowd) and crowd.joined_count == 61 and len(crowd.joined) == 50
    assert crowd.joined[0] == "newcomer" and crowd.left == ("m3",) and crowd.left_count == 1
    assert crowd.member_count == LARGE_ROOM + 60
    assert all(m.crowd for m in news.recipients) and len(news.recipients) == LARGE_ROOM // 2 + 1  # evens + newcomer
    assert state.crowd_news(2.0) == []  # said once
    # Nick changes are presence as ever, whatever the size.
    (nick,) = state.rename(more[0], "later0", 3.0)
    assert isinstance(nick.message, Presence) and len(nick.recipients) == LARGE_ROOM + 60


def test_a_leave_that_makes_the_room_small_again_is_a_presence():
    from chatroom.protocol import LARGE_ROOM, Presence

    state, members = _crowded(LARGE_ROOM)
    (leave,) = state.remove(members[0], "quit", 1.0)  # 199 left: a small room
    assert isinstance(leave.message, Presence) and leave.message.event.value == "leave"
    assert len(leave.recipients) == LARGE_ROOM - 1


def test_a_wave_of_arrivals_shares_one_member_list_until_a_listed_member_changes():
    from chatroom.protocol import LARGE_ROOM
    from chatroom.server.members import LISTED_TTL

    state, members = _crowded(LARGE_ROOM)
    room = state.rooms["lobby"]
    first = state.admit(9000, "late1", "127.0.0.1:1", 10.0)[1].members
    second = state.admit(9001, "late2", "127.0.0.1:1", 10.5)[1].members
    assert second is first and len(first) == 200  # the listed 200 did not change: one list, encoded once
    state.set_away(members[5], "lunch", 10.6)
    third = state.admit(9002, "late3", "127.0.0.1:1", 10.7)[1].members
    assert third is not first and third[5].away == "lunch"  # a listed member changed: a fresh list
    later = room.member_infos(10.7 + LISTED_TTL)
    assert later is not third  # idle times are at most LISTED_TTL old
    state.remove(members[0], "quit", 12.0)
    assert all(m.nick != "m0" for m in room.member_infos(12.0))


def test_the_replayed_history_is_shared_until_the_next_message():
    from chatroom.server.room import ChatState

    state = ChatState()
    ann = state.admit(1, "ann", "a:1", 0.0)[0]
    state.say(ann, "one", 1.0)
    a = state.admit(2, "bob", "b:1", 2.0)[1].history
    b = state.admit(3, "cy", "c:1", 2.0)[1].history
    assert a is b and [c.text for c in a] == ["one"]
    state.say(ann, "two", 3.0)
    assert [c.text for c in state.admit(4, "di", "d:1", 4.0)[1].history] == ["one", "two"]


def test_a_hash_in_front_of_a_room_name_is_accepted_and_ignored():
    from chatroom.server.room import ChatState

    state = ChatState()
    ann, joined, _ = state.admit(1, "ann", "127.0.0.1:1", 0.0, room="#Lobby")
    assert joined.room == "lobby"
    joined, _ = state.join(ann, "#general", 1.0)
    assert joined.room == "general" and state.who(ann, 1.0, "#GENERAL").room == "general"
    state.say(ann, "hi", 2.0)
    assert [c.text for c in state.history("#general", 10, 10).messages] == ["hi"]


def test_resends_are_recognised_for_the_newest_ids_and_the_memory_of_them_is_bounded(monkeypatch):
    from chatroom.server import resends

    monkeypatch.setattr(resends, "RECENT_IDS", 100)
    s = ChatState()
    ann, _, _ = s.admit(1, "Ann", "a", 0.0)
    chats = [s.say(ann, f"message {i}", float(i), msg_id=str(i))[0] for i in range(250)]
    assert 100 <= s.remembered_ids <= 200
    for i in range(150, 250):  # the newest 100: a resend is recognised, under any spelling of the nick
        assert s.already_sent(ann, str(i), f"message {i}") is chats[i]
        assert s.already_sent(ann, str(i), f"message {i}", sender="ann") is chats[i]
    assert s.already_sent(ann, "0", "message 0") is None  # long forgotten: a new message


def test_a_message_that_could_not_be_stored_is_forgotten_whole():
    s = ChatState()
    ann, _, _ = s.admit(1, "Ann", "a", 0.0)
    kept, _ = s.say(ann, "kept", 1.0, msg_id="1")
    lost, _ = s.say(ann, "lost", 2.0, msg_id="2")
    s.rollback([lost])
    assert list(s.rooms["lobby"].history) == [kept]
    assert s.already_sent(ann, "2", "lost") is None  # its resend is a new message...
    assert s.already_sent(ann, "1", "kept") is kept
    again, _ = s.say(ann, "lost", 3.0, msg_id="2")
    assert again.seq == lost.seq  # ...under the number the lost one never used


def test_typing_reaches_the_others_who_understand_it_at_most_once_per_state_every_two_seconds():
    from chatroom.protocol import LARGE_ROOM, Typing, TypingState

    s = ChatState()
    ann, _, _ = s.admit(1, "ann", "127.0.0.1:1", 0.0, several=True)
    bob, _, _ = s.admit(2, "bob", "127.0.0.1:2", 0.0, several=True)
    old, _, _ = s.admit(3, "old", "127.0.0.1:3", 0.0, several=True)  # a 1.3 client: never sent one
    ann.hears_typing = bob.hears_typing = True
    (told,) = s.typing(ann, None, "active", 10.0)
    assert told.recipients == (bob,) and told.message == Typing(state=TypingState.ACTIVE, room="lobby", nick="ann")
    assert s.typing(ann, None, "active", 11.5) == []  # said 1.5 s ago: dropped
    assert len(s.typing(ann, None, "active", 12.1)) == 1  # 2 s on: again
    assert len(s.typing(ann, None, "done", 12.2)) == 1  # another state: at once
    with pytest.raises(Refused) as refused:
        s.typing(ann, "dev", "active", 13.0)
    assert refused.value.code == ErrorCode.NOT_IN_ROOM
    for n in range(LARGE_ROOM):
        s.admit(100 + n, f"m{n}", "127.0.0.1:9", 0.0)[0].hears_typing = True
    assert s.typing(bob, None, "active", 20.0) == []  # a large room: nobody is told
    assert old.hears_typing is False


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text())
def test_fold_is_nfkc_then_casefold_for_any_text_ascii_by_its_shortcut(name):
    assert fold(name) == unicodedata.normalize("NFKC", name).casefold()
