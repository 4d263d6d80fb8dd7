"""What the client keeps of what it sent, without sockets: an error that says "not
now" keeps the message for another try; an error about the message refuses it."""

from __future__ import annotations

from chatroom.client.events import Outgoing
from chatroom.client.outbound import MAX_TRIES, Outbound, Pacer, Verdict
from chatroom.protocol import Say


def _sent(outbound: Outbound, *ids: str) -> None:
    for msg_id in ids:
        outbound.add(Outgoing(msg_id, Say(id=msg_id, text=f"text {msg_id}")))


def test_an_ack_settles_and_an_unknown_id_is_not_ours():
    outbound = Outbound()
    _sent(outbound, "a")
    out, verdict = outbound.settle("a", None)
    assert verdict is Verdict.ACKED and out is not None and out.status == "acked"
    assert len(outbound) == 0
    assert outbound.settle("a", None) == (None, Verdict.UNKNOWN)


def test_unavailable_keeps_the_message_and_it_goes_again_in_sending_order():
    outbound = Outbound()
    _sent(outbound, "a", "b", "c")
    for msg_id in ("c", "a"):
        out, verdict = outbound.settle(msg_id, "unavailable", "the cluster's store cannot be reached")
        assert verdict is Verdict.RETRY and out is not None and out.status == "pending"
    assert [m.id for m in outbound.retrying()] == ["a", "c"]  # the order they were sent in
    assert outbound.retrying() == []  # handed out once
    for _ in range(10):  # "not now" as often as it takes: never given up on
        assert outbound.settle("a", "unavailable")[1] is Verdict.RETRY
    assert [m.id for m in outbound.to_resend()] == ["a", "b", "c"]


def test_a_message_the_server_keeps_failing_on_is_refused_in_the_end():
    outbound = Outbound()
    _sent(outbound, "a")
    verdicts = [outbound.settle("a", "internal", "the server failed")[1] for _ in range(MAX_TRIES)]
    assert verdicts == [Verdict.RETRY] * (MAX_TRIES - 1) + [Verdict.REFUSED]
    assert len(outbound) == 0


def test_an_error_about_the_message_refuses_it_at_once():
    outbound = Outbound()
    _sent(outbound, "a")
    out, verdict = outbound.settle("a", "text_too_long", "at most 4000 characters")
    assert verdict is Verdict.REFUSED and out is not None
    assert (out.status, out.error) == ("refused", "at most 4000 characters")
    assert outbound.retrying() == []


def test_the_pacer_lets_a_burst_through_then_one_per_interval():
    pacer = Pacer(rate=2.0, burst=3.0, now=100.0)
    assert [pacer.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert abs(pacer.wait(100.0) - 0.5) < 1e-9
    assert pacer.take(100.5)
