"""ServerSession: one connection's protocol decisions, with bytes, messages and a fake
clock only -- no sockets, no threads."""

from __future__ import annotations

import dataclasses
import json
import struct

import pytest

from chatroom.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Auth,
    Bye,
    Error,
    ErrorCode,
    Hello,
    Ping,
    Pong,
    Say,
    encode_message,
)
from chatroom.server.session import (
    Act,
    Admit,
    Checked,
    CloseReason,
    Phase,
    Reply,
    RoomKey,
    ServerSession,
    SessionLimits,
)

LIMITS = SessionLimits(max_header=65536, max_body=1 << 20, rate=4.0, burst=5.0, max_strikes=3,
                       handshake_timeout=10.0, frame_timeout=30.0, ping_interval=30.0, pong_timeout=20.0)
HELLO = encode_message(Hello(version=PROTOCOL_VERSION, nick="ann"))


def active(now: float = 0.0, limits: SessionLimits = LIMITS) -> ServerSession:
    s = ServerSession(limits, now)
    _, events = s.receive_data(HELLO, now)
    assert [type(e) for e in events] == [Admit]
    s.admitted()
    return s


def errors(events: list) -> list[Error]:
    return [e.message for e in events if isinstance(e, Reply) and isinstance(e.message, Error)]


def pump(s: ServerSession, *chunks: bytes, admit: bool = True) -> list:
    """What the server's pump does: each read's events, an admission carried out
    (``admit``: the room accepts the hello), then what the session held behind it."""
    events: list = []
    for chunk in chunks:
        new = s.receive_data(chunk, 0.0)[1]
        while True:
            for event in new:
                events.append(event)
                if admit and type(event) is Admit:
                    s.admitted()
            if not s.held:
                break
            new = s.release(0.0)
    return events


def test_bytes_split_anywhere_give_the_same_events():
    data = HELLO + encode_message(Ping(token="t")) + encode_message(Say(id="1", text="héllo"))
    whole = pump(ServerSession(LIMITS, 0.0), data)
    assert [type(e) for e in whole] == [Admit, Reply, Act]  # hello; pong; the say, once the hello was admitted
    assert whole[1].message == Pong(token="t") and whole[2].message.text == "héllo"
    for cut in range(1, len(data)):
        assert pump(ServerSession(LIMITS, 0.0), data[:cut], data[cut:]) == whole, cut


def test_messages_right_behind_a_hello_wait_for_its_answer():
    say = encode_message(Say(id="1", text="hi"))
    s = ServerSession(LIMITS, 0.0)
    _, events = s.receive_data(HELLO + say, 0.0)
    assert [type(e) for e in events] == [Admit]  # the say is not judged before the hello is answered
    assert s.held
    _, later = s.receive_data(encode_message(Ping(token="t")), 0.0)
    assert later == [] and len(s.held) == 2  # in order, behind it
    s.admitted()
    events = s.release(0.0)
    assert [type(e) for e in events] == [Act, Reply] and events[0].message.text == "hi"
    assert not s.held


def test_messages_behind_a_refused_hello_are_not_ready_and_the_next_hello_is_judged_after_it():
    data = HELLO + encode_message(Say(id="1", text="hi")) + encode_message(Hello(version=PROTOCOL_VERSION, nick="bo"))
    s = ServerSession(LIMITS, 0.0)
    events = pump(s, data, admit=False)  # the room refused both hellos (say, the nick was taken)
    assert [type(e) for e in events] == [Admit, Reply, Admit]
    assert errors(events)[0].code == ErrorCode.NOT_READY.value and errors(events)[0].id == "1"
    assert events[2].hello.nick == "bo"


def test_what_is_legal_depends_on_the_phase():
    s = ServerSession(LIMITS, 0.0)
    assert errors(s.receive_data(encode_message(Say(id="1", text="hi")), 0.0)[1])[0].code == "not_ready"
    s = active()
    (err,) = errors(s.receive_data(HELLO, 1.0)[1])
    assert err.code == ErrorCode.ALREADY_HELLO.value and not err.fatal
    (err,) = errors(s.receive_data(encode_message(Auth(proof="0" * 64)), 1.0)[1])
    assert err.code == ErrorCode.ALREADY_HELLO.value
    (err,) = errors(s.receive_data(encode_message(Ack(id="1", ts=0.0)), 1.0)[1])
    assert err.code == ErrorCode.BAD_MESSAGE.value
    (act,) = s.receive_data(encode_message(Say(id="2", text="hi")), 1.0)[1]
    assert act == Act(Say(id="2", text="hi")) and s.phase is Phase.ACTIVE


def test_a_burst_then_slow_down_then_flooding_closes():
    s = active()
    says = b"".join(encode_message(Say(id=str(n), text="x")) for n in range(9))
    events = s.receive_data(says, 1.0)[1]
    assert [type(e) for e in events[:5]] == [Act] * 5  # the burst
    refused = errors(events[5:])
    assert [e.code for e in refused[:3]] == ["rate_limited"] * 3 and refused[0].id == "5"
    assert refused[-1].code == ErrorCode.FLOODING.value and refused[-1].fatal
    assert s.closed and s.close_reason is CloseReason.FLOODING and not s.close_reason.keeps_session


def test_keepalive_is_never_refused_after_a_burst_of_chat_but_a_ping_flood_is():
    s = active(limits=dataclasses.replace(LIMITS, max_strikes=100))
    s.receive_data(b"".join(encode_message(Say(id=str(n), text="x")) for n in range(8)), 1.0)
    (pong,) = s.receive_data(encode_message(Ping(token="alive?")), 1.0)[1]
    assert pong == Reply(Pong(token="alive?"))
    flood = b"".join(encode_message(Ping(token=str(n))) for n in range(300))
    events = s.receive_data(flood, 1.0)[1]
    assert errors(events)[-1].code == ErrorCode.FLOODING.value and s.closed


def test_a_goodbye_closes_with_its_reason():
    s = active()
    assert s.receive_data(encode_message(Bye(reason="lunch\x1b[31m")), 1.0)[1] == []
    assert s.closed and s.close_reason is CloseReason.QUIT and s.close_text.startswith("quit: lunch")
    s = active()
    s.receive_data(encode_message(Bye(reason="quit")), 1.0)
    assert s.close_text == "quit"


def test_a_broken_stream_closes_and_nothing_after_it_counts():
    s = active()
    _, events = s.receive_data(b"\xff\xff\xff\xff" + encode_message(Say(id="1", text="x")), 1.0)
    (err,) = errors(events)
    assert err.code == ErrorCode.FRAME_TOO_LARGE.value and err.fatal
    assert s.close_reason is CloseReason.PROTOCOL_ERROR and len(events) == 1


def test_an_id_that_cannot_be_encoded_is_not_echoed():
    s = active()
    payload = json.dumps({"type": "say", "id": "x\ud83d", "text": "hi"}).encode()
    (err,) = errors(s.receive_data(struct.pack("!I", len(payload)) + payload, 1.0)[1])
    assert err.code == ErrorCode.INVALID_FIELD.value and err.id is None


@pytest.mark.parametrize("waited", [0.0, 5.0])
def test_the_handshake_deadline_counts_the_time_the_server_made_it_wait(waited):
    s = ServerSession(LIMITS, 0.0)
    s.waited = waited
    assert s.tick(10.0 + waited - 0.1) == []
    (err,) = errors(s.tick(10.0 + waited + 0.1))
    assert err.code == ErrorCode.TIMED_OUT.value and err.fatal and s.close_reason is CloseReason.NO_HELLO


def test_a_frame_left_incomplete_too_long_drops_its_sender():
    s = active()
    frame = encode_message(Say(id="1", text="slowly, " * 10))
    for t in range(1, 31):  # a byte a second: no frame ever completes, and no connection is kept
        assert s.receive_data(frame[t - 1:t], float(t))[1] == []
        assert s.tick(float(t)) == []
    (err,) = errors(s.tick(31.5))
    assert "too slow sending" in err.message and s.close_reason is CloseReason.TOO_SLOW_SENDING


def test_keepalive_pings_a_silent_member_then_times_it_out_keeping_its_session():
    s = active(0.0)
    assert s.tick(29.0) == []
    assert s.tick(31.0) == [Reply(Ping(token="keepalive"))]
    assert s.tick(40.0) == []  # waiting for the answer
    (err,) = errors(s.tick(51.5))
    assert err.code == ErrorCode.TIMED_OUT.value and s.close_reason is CloseReason.TIMED_OUT
    assert s.close_reason.keeps_session  # a lost network: the member may resume


def test_while_the_server_holds_a_sender_back_no_deadline_runs_and_after_it_they_move_on():
    s = active(0.0)
    assert s.tick(31.0) == [Reply(Ping(token="keepalive"))]  # a ping out, its answer due by 51
    s.pause(40.0)  # the server stops reading it: its sender keeps pace with the room (pace.py)
    assert s.tick(70.0) == [] and not s.closed  # the silence is the server's
    s.unpause(80.0)  # held 40 s: the answer is now due by 91
    assert s.tick(85.0) == [] and not s.closed
    (err,) = errors(s.tick(92.0))
    assert err.code == ErrorCode.TIMED_OUT.value


def test_any_byte_answers_a_ping():
    s = active(0.0)
    s.tick(31.0)
    s.receive_data(encode_message(Pong(token="keepalive")), 45.0)
    assert s.tick(52.0) == [] and not s.closed


# ---------------------------------------------------------------- handshake: version, password

KEY = RoomKey(key=bytes(range(32)), salt=b"salt" * 4)
CLIENT_NONCE = b"c" * 32


def challenged(nonce: bytes = b"s" * 32) -> tuple[ServerSession, object]:
    s = ServerSession(LIMITS, 0.0, password=KEY, random=lambda n: nonce[:n])
    hello = encode_message(Hello(version=PROTOCOL_VERSION, nick="ann", nonce=CLIENT_NONCE.hex()))
    _, events = s.receive_data(hello, 0.0)
    (reply,) = events
    assert type(reply) is Reply and reply.message.TYPE == "challenge"
    assert reply.message.nonce == nonce.hex() and reply.message.salt == KEY.salt.hex()
    return s, reply.message


def test_another_major_version_is_refused_and_closes():
    s = ServerSession(LIMITS, 0.0)
    _, events = s.receive_data(encode_message(Hello(version="2.0", nick="ann")), 0.0)
    (error,) = errors(events)
    assert error.code == "version_mismatch" and error.fatal and "2.0" in error.message
    assert s.close_reason is CloseReason.VERSION_MISMATCH


def test_a_newer_minor_version_is_admitted():
    s = ServerSession(LIMITS, 0.0)
    _, events = s.receive_data(encode_message(Hello(version="1.99", nick="ann")), 0.0)
    assert [type(e) for e in events] == [Admit] and events[0].proof is None


def test_a_password_room_asks_for_a_nonce_first_without_closing():
    s = ServerSession(LIMITS, 0.0, password=KEY)
    _, events = s.receive_data(HELLO, 0.0)
    (error,) = errors(events)
    assert error.code == "auth_required" and not error.fatal and not s.closed


def test_the_right_proof_admits_with_the_servers_own_proof():
    from chatroom.auth import client_proof, server_proof

    s, challenge = challenged()
    proof = client_proof(KEY.key, bytes.fromhex(challenge.nonce), CLIENT_NONCE)
    _, events = s.receive_data(encode_message(Auth(proof=proof.hex())) + encode_message(Say(id="1", text="hi")), 0.0)
    (checked,) = events  # the say waits for the admission
    assert type(checked) is Checked and checked.right and type(checked.then) is Admit
    assert checked.then.proof == server_proof(KEY.key, CLIENT_NONCE, b"s" * 32).hex()
    assert checked.then.hello.nick == "ann" and not s.closed
    s.admitted()
    (said,) = s.release(0.0)
    assert type(said) is Act and said.message.text == "hi"


def test_a_wrong_proof_closes_and_a_second_guess_is_not_checked():
    from chatroom.auth import client_proof

    s, challenge = challenged()
    wrong = client_proof(b"x" * 32, bytes.fromhex(challenge.nonce), CLIENT_NONCE)
    _, events = s.receive_data(encode_message(Auth(proof=wrong.hex())), 0.0)
    (checked,) = events
    assert type(checked) is Checked and not checked.right
    assert checked.then.message.code == "auth_failed" and checked.then.message.fatal
    assert s.close_reason is CloseReason.WRONG_PASSWORD


def test_one_proof_per_challenge():
    from chatroom.auth import client_proof

    s, challenge = challenged()
    proof = encode_message(Auth(proof=client_proof(KEY.key, bytes.fromhex(challenge.nonce), CLIENT_NONCE).hex()))
    _, events = s.receive_data(proof + proof, 0.0)  # the same proof twice, before any welcome
    assert [type(e) for e in events] == [Checked] and events[0].right
    (error,) = errors(s.release(0.0))  # (judged after the first: here its admission failed, say a taken nick)
    assert error.code == "not_ready" and not s.closed


def test_a_proof_for_another_challenge_is_wrong():
    """A recorded exchange is no use in another: the server's nonce differs."""
    from chatroom.auth import client_proof

    s1, c1 = challenged(b"1" * 32)
    recorded = client_proof(KEY.key, bytes.fromhex(c1.nonce), CLIENT_NONCE)
    s2, _ = challenged(b"2" * 32)
    _, events = s2.receive_data(encode_message(Auth(proof=recorded.hex())), 0.0)
    assert type(events[0]) is Checked and not events[0].right
