"""The chat path of a server alone, without sockets: what every door's messages go
through (resends, refusals, the echo rule, one fan-out entry per run, answers queued
behind the messages they answer)."""

from __future__ import annotations

from chatroom.errors import Refused
from chatroom.protocol import Chat, ErrorCode, Private
from chatroom.server.chat_path import LocalChat, Resent, SayItem
from chatroom.server.hub import Batch
from chatroom.server.wire import FRAMED, Outgoing
from tests.server.test_hub import frames, room_of


def test_a_run_is_stamped_in_order_and_each_member_gets_it_as_one_entry():
    hub, _, (ann, bob), sinks = room_of([FRAMED, FRAMED])
    path = LocalChat(hub)
    items = [SayItem(f"line {i}", False, f"m{i}", None) for i in range(5)]
    results = path.say_many(Batch(), ann, items, 1.0)
    assert [type(r) for r in results] == [Chat] * 5  # said now: the message as stamped, nothing else made
    assert [r.seq for r in results if isinstance(r, Chat)] == [1, 2, 3, 4, 5]
    for sink in sinks:
        (entry,) = sink.outbox.data
        assert [m.text for m in frames(entry)] == [f"line {i}" for i in range(5)]


def test_a_resend_is_recognised_and_not_sent_again():
    hub, _, (ann, _bob), sinks = room_of([FRAMED, FRAMED])
    path = LocalChat(hub)
    (first,) = path.say_many(Batch(), ann, [SayItem("hello", False, "x1", None)], 1.0)
    (again,) = path.say_many(Batch(), ann, [SayItem("hello", False, "x1", None)], 2.0)
    assert isinstance(first, Chat) and isinstance(again, Resent)
    assert again.msg is first  # the ack of the resend points at the message that was said
    assert sum(len(frames(d)) for d in sinks[1].outbox.data) == 1


def test_a_refusal_costs_one_message_and_the_rest_of_the_run_goes_on():
    hub, state, (ann, _bob), sinks = room_of([FRAMED, FRAMED])
    path = LocalChat(hub)
    items = [SayItem("one", False, "a", None), SayItem("two", False, "b", "nowhere"),
             SayItem("x" * 100_000, False, "c", None), SayItem("three", False, "d", None)]
    results = path.say_many(Batch(), ann, items, 1.0)
    assert isinstance(results[0], Chat) and isinstance(results[3], Chat)
    assert isinstance(results[1], Refused) and isinstance(results[2], Refused)
    assert results[2].code == ErrorCode.TEXT_TOO_LONG
    assert [m.text for d in sinks[1].outbox.data for m in frames(d)] == ["one", "three"]


def test_the_answer_is_queued_behind_the_messages_in_the_same_fan_out():
    hub, _, (ann, _bob), sinks = room_of([FRAMED, FRAMED])
    path = LocalChat(hub)
    batch = Batch()
    seen: list[int] = []

    def answer(results) -> None:
        seen.append(len(results))
        note = Private(nick="server", to=ann.nick, text=f"{len(results)} said", ts=1.0)
        batch.defer(ann.sink.me, Outgoing.of(note))

    path.say_many(batch, ann, [SayItem("a", False, "1", None), SayItem("b", False, "2", None)], 1.0, answer)
    assert seen == [2]
    got = [m.TYPE for entry in sinks[0].outbox.data for m in frames(entry)]
    assert got == ["chat", "chat", "private"]  # the messages, then the answer, in one fan-out


def test_a_member_without_echo_is_left_out_of_its_own_messages_and_runs_stay_one_entry():
    hub, _, (ann, _bob, _cy), sinks = room_of([FRAMED, FRAMED, FRAMED])
    ann.echo = False  # an IRC client without echo-message
    path = LocalChat(hub)
    path.say_many(Batch(), ann, [SayItem("one", False, None, None), SayItem("two", False, None, None)], 1.0)
    assert sinks[0].outbox.data == []
    for sink in sinks[1:]:
        (entry,) = sink.outbox.data
        assert [m.text for m in frames(entry)] == ["one", "two"]


def test_a_private_message_reaches_its_recipient_says_its_away_text_and_is_recognised_when_resent():
    hub, state, (ann, bob), sinks = room_of([FRAMED, FRAMED])
    state.set_away(bob, "at lunch", 1.0)
    path = LocalChat(hub)
    sent, away = path.direct(Batch(), ann, "USER1", "psst", 2.0, "p1")
    assert away == "at lunch"
    assert isinstance(sent, Private) and sent.to == "user1"
    again, _ = path.direct(Batch(), ann, "user1", "psst", 3.0, "p1")
    assert isinstance(again, Resent) and again.msg is sent
    got = [m for d in sinks[1].outbox.data for m in frames(d) if m.TYPE == "private"]
    assert [m.text for m in got] == ["psst"]


def test_a_private_message_to_nobody_is_refused():
    hub, _, (ann, _bob), _ = room_of([FRAMED, FRAMED])
    try:
        LocalChat(hub).direct(Batch(), ann, "ghost", "hello?", 1.0, None)
    except Refused as exc:
        assert exc.code == ErrorCode.NO_SUCH_NICK
    else:
        raise AssertionError("a message to nobody was accepted")
