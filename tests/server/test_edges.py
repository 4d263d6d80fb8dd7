"""Promises at the edges: exactly-once across any gap, ids that cannot swallow a new
message, keepalive that a burst cannot refuse, and PROTOCOL.md's fine print.

Pure tests (a ChatState with an in-memory store, no sockets) first, then a few against
a live server on 127.0.0.1.
"""

from __future__ import annotations

import json
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatroom.errors import Refused
from chatroom.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Chat,
    Error,
    ErrorCode,
    FetchHistory,
    FrameDecoder,
    History,
    Ping,
    Pong,
    Say,
    Welcome,
    decode_message,
)
from chatroom.server.fitting import replay_frames as _replay_frames
from chatroom.server.room import ChatState
from chatroom.server.store import HistoryStore
from tests.polling import wait_until
from tests.wire import WireClient


def _state_with_history(count: int, size: int, history_size: int = 100) -> tuple[ChatState, object]:
    store = HistoryStore(None)
    state = ChatState(history_size=history_size, store=store)
    talker, _, _ = state.admit(1, "talker", "a", 0.0)
    for n in range(count):
        state.say(talker, f"{n:05d} " + "€" * size, float(n))
        chats, rooms = state.take_unsaved()
        store.save(chats, rooms)
    return state, talker


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gap=st.integers(0, 400), size=st.sampled_from([1, 100, 3000, 3990]),
       budget=st.sampled_from([64 * 1024, 256 * 1024, 512 * 1024]))
def test_a_resume_replays_exactly_what_was_missed_and_the_rest_can_be_fetched(gap, size, budget):
    state, _ = _state_with_history(gap + 5, size)
    room = state.rooms["lobby"]
    last_seq = 5  # the resuming client had seen 1..5
    missed = state.missed(room, last_seq, 10_000)
    frames, replayed = _replay_frames("lobby", missed, 64 * 1024, budget)
    decoder = FrameDecoder()
    got = []
    for out in frames:
        (frame,) = decoder.feed(out.framed)
        page = decode_message(frame)
        assert isinstance(page, History) and page.replay
        got += [c.seq for c in page.messages]
    assert got == list(range(6, 6 + replayed))  # contiguous, oldest first, no holes
    assert sum(len(f.framed) for f in frames) <= budget or len(frames) == 1
    # Whatever did not fit is fetched going forward, page by page, with nothing skipped.
    seen = got[-1] if got else last_seq
    while True:
        page = state.history("lobby", None, 100, after=seen)
        assert [c.seq for c in page.messages] == list(range(seen + 1, seen + 1 + len(page.messages)))
        if page.messages:
            seen = page.messages[-1].seq
        if page.complete:
            break
    assert seen == room.next_seq - 1 == gap + 5


def test_a_message_id_reused_with_other_text_is_a_new_message_not_a_duplicate():
    state = ChatState()
    ann, _, _ = state.admit(1, "ann", "a", 0.0)
    chat, _ = state.say(ann, "first", 1.0, msg_id="1")
    assert state.already_sent(ann, "1", "first") is chat  # a resend: the same text
    assert state.already_sent(ann, "1", "something new") is None  # a counter that restarted
    assert state.already_sent(ann, "1", "first", action=True) is None  # another kind
    state.join(ann, "dev", 2.0)
    assert state.already_sent(ann, "1", "first") is None  # another room
    assert state.already_sent(ann, "1", "first", private=True) is None


def test_history_pages_are_exclusive_and_complete_at_the_oldest():
    state, _ = _state_with_history(30, 10, history_size=10)
    page = state.history("lobby", 11, 5)
    assert [c.seq for c in page.messages] == [6, 7, 8, 9, 10] and not page.complete  # below 11, not 11
    first = state.history("lobby", 3, 50)
    assert [c.seq for c in first.messages] == [1, 2] and first.complete
    assert state.history("lobby", 1, 50).complete  # nothing before the first message
    forward = state.history("lobby", None, 5, after=27)
    assert [c.seq for c in forward.messages] == [28, 29, 30] and forward.complete


def test_nick_taken_carries_its_suggestion_in_a_field():
    state = ChatState()
    state.admit(1, "ann", "a", 0.0)
    try:
        state.admit(2, "ANN", "b", 0.0)
    except Refused as exc:
        assert exc.code == ErrorCode.NICK_TAKEN and exc.suggestion == "ANN2"
    else:
        raise AssertionError("ANN was admitted next to ann")


# ----------------------------------------------------------------------------- live


def test_a_big_gap_of_long_messages_is_replayed_in_full(make_server):
    """The black-box finding: 60 missed messages of 3,000 characters came back as 14."""
    server = make_server(rate=0, resume_grace=60)
    flaky, talker = WireClient(server.port), WireClient(server.port)
    welcome = flaky.hello("flaky")
    talker.hello("talker")
    flaky.close()
    for n in range(60):
        talker.send(Say(id=str(n), text=f"{n:02d} " + "é" * 3000))
    talker.collect(Ack, 60)
    back = WireClient(server.port)
    back.send_raw(_hello(nick="flaky", resume=welcome.resume_token, last_seq=welcome.last_seq))
    resumed = back.expect(type(welcome))
    assert resumed.resumed and resumed.missed == 60 and resumed.last_seq == welcome.last_seq + 60
    pages = back.collect(History, len([m for m in back.inbox if isinstance(m, History)]) or 1)
    seqs = [c.seq for p in pages for c in p.messages]
    while len(seqs) < 60:
        pages = back.collect(History, 1)
        seqs += [c.seq for p in pages for c in p.messages]
    assert seqs == list(range(welcome.last_seq + 1, welcome.last_seq + 61))
    assert all(p.replay for p in pages)
    back.close()
    talker.close()


def test_keepalive_is_answered_even_right_after_a_burst(make_server):
    server = make_server(rate=4, burst=5, max_strikes=100)
    c = WireClient(server.port)
    c.hello("bursty")
    for n in range(8):  # three over the burst: refused, as they should be
        c.send(Say(id=str(n), text="paste"))
    c.send(Ping(token="still there?"))
    assert c.expect(Pong, token="still there?")
    refused = [m for m in c.inbox if isinstance(m, Error) and m.code == ErrorCode.RATE_LIMITED.value]
    assert refused and all(m.id is not None for m in refused)
    c.close()


def test_the_fine_print_of_protocol_md_holds(make_server):
    server = make_server(rate=0)
    c = WireClient(server.port)
    for version in ("1", "1.0.3", "one"):
        c.send_raw(_hello(nick="x", version=version))
        err = c.expect(Error)
        assert err.code == ErrorCode.INVALID_FIELD.value and "version" in err.message
    welcome = c.hello("ann")
    for key in ("max_text", "max_header", "max_body", "history_size", "ping_interval", "max_file",
                "rate_per_minute", "burst"):
        assert key in welcome.limits, key
    other = WireClient(server.port)
    other.send_raw(_hello(nick="ANN"))
    err = other.expect(Error)
    assert err.code == ErrorCode.NICK_TAKEN.value and err.suggestion == "ANN2" and not err.fatal
    c.send(FetchHistory(room="lobby", before=1))
    assert c.expect(History).complete
    c.send_raw(_frame({"type": "fetch_history", "room": "lobby", "before": 5, "after": 1}))
    assert c.expect(Error).code == ErrorCode.INVALID_FIELD.value
    body = b"x" * (64 * 1024 + 1)
    c.send_raw(_frame({"type": "file_chunk", "transfer": 1, "round": 1, "offset": 0, "body": len(body)}) + body)
    assert c.expect(Error).code == ErrorCode.INVALID_FIELD.value
    c.send(Say(id="alive", text="still in sync"))
    assert c.expect(Chat).text == "still in sync"
    other.send_raw(_hello(nick="bea", nonce="AB" * 32))  # hex, but not lowercase
    err = other.expect(Error)
    assert err.code == ErrorCode.INVALID_FIELD.value and "nonce" in err.message
    c.close()
    # On a resume the hello's nick is ignored: the session's nick comes back.
    wait_until(lambda: not server.connections() or all(x.member is None or x.member.sink is None
                                                         for x in server.connections() if x.member
                                                         and x.member.nick == "ann"), 5, "ann's drop")
    back = WireClient(server.port)
    back.send_raw(_hello(nick="somebody-else", resume=welcome.resume_token, last_seq=welcome.last_seq))
    resumed = back.expect(type(welcome))
    assert resumed.resumed and resumed.nick == "ann"
    back.close()
    other.close()


def test_a_client_may_send_right_behind_its_hello_without_waiting_for_the_welcome(make_server):
    """However the bytes are cut into reads, what follows a hello is handled after its
    answer: a say in the same packet is said; behind a refused hello it is not_ready."""
    server = make_server(rate=0)
    eager = WireClient(server.port)
    eager.send_raw(_hello(nick="eager") + _frame({"type": "say", "id": "s1", "text": "first words"})
                   + _frame({"type": "join", "room": "side"}) + _frame({"type": "say", "id": "s2", "room": "side",
                                                                         "text": "over here"}))
    assert eager.expect(Welcome).nick == "eager"
    assert eager.expect(Chat, room="lobby").text == "first words"
    assert eager.expect(Ack, id="s1").seq is not None
    assert eager.expect(Chat, room="side").text == "over here"
    assert eager.expect(Ack, id="s2").room == "side"
    assert not [m for m in eager.inbox if isinstance(m, Error)]
    late = WireClient(server.port)
    late.send_raw(_hello(nick="EAGER") + _frame({"type": "say", "id": "s3", "text": "lost?"})
                  + _hello(nick="late") + _frame({"type": "say", "id": "s4", "text": "second try"}))
    assert late.expect(Error, code=ErrorCode.NICK_TAKEN.value).suggestion
    assert late.expect(Error, id="s3").code == ErrorCode.NOT_READY.value
    assert late.expect(Welcome).nick == "late"
    assert eager.expect(Chat, nick="late").text == "second try"
    assert not any(isinstance(m, Chat) and m.text == "lost?" for m in eager.inbox)
    eager.close()
    late.close()


def _frame(header: dict) -> bytes:
    payload = json.dumps(header).encode()
    return struct.pack("!I", len(payload)) + payload


def _hello(**fields: object) -> bytes:
    return _frame({"type": "hello", "version": PROTOCOL_VERSION, **fields})


def test_only_a_lost_connection_or_an_unanswered_ping_keeps_the_session():
    """PROTOCOL.md, "Sessions": which endings keep the session for a resume."""
    from chatroom.server.tcp import CloseReason

    assert {r for r in CloseReason if r.keeps_session} == {CloseReason.LOST, CloseReason.TIMED_OUT}
    assert len({r.text for r in CloseReason}) == len(CloseReason)  # each says something of its own
