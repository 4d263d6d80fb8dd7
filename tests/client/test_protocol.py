"""The client's conversation with a server as one sans-I/O object (``ClientProtocol``):
bytes and messages in, bytes, events and endings out -- no sockets, threads or clocks."""

from __future__ import annotations

from chatroom.client.events import OutgoingChanged
from chatroom.client.protocol import RETRY_START, ClientProtocol, Why
from chatroom.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Chat,
    Error,
    Join,
    Joined,
    Ping,
    Pong,
    Welcome,
    decode_message,
    encode_message,
)
from chatroom.protocol.framing import FrameDecoder


def welcome(**fields: object) -> Welcome:
    base = {"version": PROTOCOL_VERSION, "server": "s", "nick": "ann", "room": "lobby", "resume_token": "t"}
    return Welcome(**{**base, **fields})  # type: ignore[arg-type]


def connected(p: ClientProtocol, now: float = 0.0, **fields: object) -> None:
    events, why = p.carry_out(p.welcomed(welcome(**fields), FrameDecoder(), now), now)
    assert why is None
    p.resend()


def sent(p: ClientProtocol, now: float) -> list:
    ready, _ = p.data_to_send(now)
    return [decode_message(FrameDecoder().feed(data)[0]) for data in ready]


def test_chat_typed_while_disconnected_is_kept_and_goes_after_the_rejoin_of_a_new_session():
    p = ClientProtocol("ann", "lobby")
    connected(p, limits={"rate_per_minute": 0})
    p.carry_out(p.session.receive(Joined(room="dev", topic="", members=(), member_count=1, last_seq=0)), 0.0)
    p.lost()
    out = p.say("still here", "dev")
    assert p.request(Join(room="x")) is False  # about the present: dropped while disconnected
    assert p.data_to_send(1.0) == ([], None)
    connected(p, 2.0, resume_token="new")  # a new session: the server forgot us
    kinds = [(type(m).__name__, getattr(m, "room", None)) for m in sent(p, 2.0)]
    assert ("Say", "dev") in kinds and kinds.index(("Join", "dev")) < kinds.index(("Say", "dev"))
    events, why = p.receive(Ack(id=out.id, ts=3.0, seq=1, room="dev"), 3.0)
    assert why is None and not p.outbound and OutgoingChanged in [type(e) for e in events]


def test_requests_are_paced_to_the_servers_rate_and_the_rest_go_at_once():
    p = ClientProtocol("ann")
    connected(p, limits={"rate_per_minute": 60, "burst": 2})  # 0.9/s, a burst of 1
    for i in range(3):
        p.say(f"m{i}")
    ready, wait = p.data_to_send(0.0)
    assert len(ready) == 1 and wait is not None and 1.0 <= wait <= 1.2
    pong = encode_message(Pong(token="x"))
    p.requests.append((pong, False))  # not counted by the rate limit: at once, past the waiting ones
    assert p.data_to_send(0.5) == ([pong], p.outbound.pacer.wait(0.5))
    ready, _ = p.data_to_send(1.2)
    assert len(ready) == 1 and len(p.requests) == 1


def test_a_silent_server_is_pinged_then_given_up_on_and_the_lag_is_measured():
    p = ClientProtocol("ann", ping_interval=10.0, pong_timeout=5.0)
    connected(p)
    assert p.timers(5.0) == 5.0
    assert p.timers(10.5) == 0.0 and isinstance(sent(p, 10.5)[0], Ping)
    assert p.lag_at(12.0) == 1.5  # overdue so far
    p.data_received(encode_message(Pong(token="client")), 12.5)
    assert p.lag_at(13.0) == 2.0 and p.timers(13.0) == 9.5
    p.timers(23.0)  # pinged again
    assert p.timers(28.5) == Why("the server stopped answering")


def test_what_the_server_cannot_take_now_goes_again_later_or_elsewhere():
    alone = ClientProtocol("ann")
    connected(alone, limits={"rate_per_minute": 0})
    out = alone.say("hi")
    sent(alone, 0.0)
    events, why = alone.receive(Error(code="unavailable", message="down", id=out.id), 1.0)
    assert not any(isinstance(e, OutgoingChanged) for e in events) and why is None  # still "sending"
    assert alone.retry_at is not None
    assert 1.0 + RETRY_START / 2 <= alone.retry_at <= 1.0 + RETRY_START
    assert sent(alone, 1.0) == []
    alone.timers(alone.retry_at)
    assert [m.id for m in sent(alone, alone.retry_at)] == [out.id]  # the same id again

    cluster = ClientProtocol("ann", servers=2)
    connected(cluster, limits={"rate_per_minute": 0})
    out = cluster.say("hi")
    _, why = cluster.receive(Error(code="unavailable", message="down", id=out.id), 1.0)
    assert why is not None and why.move_on and not why.fatal

    events, why = alone.receive(Error(code="text_too_long", message="too long", id=alone.say("x" * 9).id), 2.0)
    (changed,) = [e for e in events if isinstance(e, OutgoingChanged)]
    assert why is None and alone.refused == 1 and changed.outgoing.status == "refused"


def test_frames_split_across_reads_become_messages_and_an_unknown_one_is_skipped():
    p = ClientProtocol("ann")
    connected(p)
    chat = encode_message(Chat(room="lobby", seq=1, ts=1.0, nick="bob", text="hi"))
    unknown = encode_message(Chat(room="lobby", seq=2, ts=1.0, nick="bob", text="x")).replace(b'"chat"', b'"zzzz"')
    frames, messages = p.data_received(chat[:5], 1.0)
    assert frames == [] and messages == []
    frames, messages = p.data_received(chat[5:] + unknown, 1.0)
    assert len(frames) == 2 and [m.text for m in messages] == ["hi"]


def test_goodbye_sends_what_was_queued_paced_or_not_then_a_bye():
    p = ClientProtocol("ann")
    connected(p, limits={"rate_per_minute": 60, "burst": 2})
    for i in range(3):
        p.say(f"m{i}")
    frames = p.goodbye("gone home")
    messages = [decode_message(FrameDecoder().feed(f)[0]) for f in frames]
    assert [m.TYPE for m in messages] == ["say", "say", "say", "bye"] and messages[-1].reason == "gone home"
