"""Every class of bad input, over a real socket, while two others keep chatting.

For each case: the offender gets a clear error (and is disconnected when the stream
can no longer be trusted), the server stays up, and the two bystanders keep
receiving each other's messages.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest

from chatroom.protocol import (
    PROTOCOL_VERSION,
    Chat,
    Error,
    ErrorCode,
    Hello,
    Say,
    encode_frame,
    encode_message,
)
from tests.wire import WireClient


def raw(payload: bytes) -> bytes:
    return struct.pack("!I", len(payload)) + payload


HELLO = encode_message(Hello(version=PROTOCOL_VERSION, nick="offender"))


@dataclass
class Case:
    name: str
    data: bytes
    code: ErrorCode | None  # the error code the offender must get (None: just closed)
    closes: bool
    after_hello: bool = True
    half_close: bool = False  # send EOF after the data


CASES = [
    Case("declared-zero-length", raw(b""), ErrorCode.MALFORMED_HEADER, True),
    Case("declared-one-byte", raw(b"x"), ErrorCode.MALFORMED_HEADER, True),
    Case("header-64kib-plus-one", struct.pack("!I", 64 * 1024 + 1), ErrorCode.FRAME_TOO_LARGE, True),
    Case("header-4gib", b"\xff\xff\xff\xff", ErrorCode.FRAME_TOO_LARGE, True),
    Case("body-over-limit", raw(b'{"type":"say","id":"1","text":"x","body":2000000}'),
         ErrorCode.FRAME_TOO_LARGE, True),
    Case("truncated-then-eof", raw(b'{"type":"say","id":"1","text":"hello"}')[:-5], None, True,
         half_close=True),
    Case("not-utf8", raw(b'{"type":"say","id":"1","text":"\xff\xfe"}'), ErrorCode.MALFORMED_HEADER, True),
    Case("not-json", raw(b"hello there"), ErrorCode.MALFORMED_HEADER, True),
    Case("json-list", raw(b'["say","hi"]'), ErrorCode.MALFORMED_HEADER, True),
    Case("deeply-nested", raw(b'{"type":"say","x":' + b"[" * 20000 + b"]" * 20000 + b"}"),
         ErrorCode.MALFORMED_HEADER, True),
    Case("huge-number", raw(b'{"type":"say","id":"1","text":"x","n":' + b"9" * 6000 + b"}"),
         ErrorCode.MALFORMED_HEADER, True),
    Case("unknown-type", encode_frame({"type": "launch_missiles"}), ErrorCode.UNKNOWN_TYPE, False),
    Case("missing-type", raw(b'{"text":"hi"}'), ErrorCode.UNKNOWN_TYPE, False),
    Case("wrong-field-type", encode_frame({"type": "say", "id": "1", "text": ["a"]}),
         ErrorCode.INVALID_FIELD, False),
    Case("missing-field", encode_frame({"type": "say", "id": "1"}), ErrorCode.INVALID_FIELD, False),
    Case("bool-as-int", encode_frame({"type": "fetch_history", "room": "lobby", "before": True}),
         ErrorCode.INVALID_FIELD, False),
    Case("server-only-message", encode_frame({"type": "ack", "id": "1", "ts": 1}), ErrorCode.BAD_MESSAGE, False),
    Case("say-before-hello", encode_message(Say(id="1", text="hi")), ErrorCode.NOT_READY, False,
         after_hello=False),
    Case("second-hello", HELLO, ErrorCode.ALREADY_HELLO, False),
    Case("nick-of-escapes", encode_message(Hello(version=PROTOCOL_VERSION, nick="\x1b[2J\x1b]0;pwned\x07")),
         ErrorCode.INVALID_NICK, False, after_hello=False),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_a_clear_error_and_nobody_else_notices(make_server, case):
    server = make_server(rate=0)
    alice, bob, offender = WireClient(server.port), WireClient(server.port), WireClient(server.port)
    try:
        alice.hello("alice")
        bob.hello("bob")
        alice.send(Say(id="before", text="before"))
        assert bob.expect(Chat).text == "before"
        assert alice.expect(Chat).text == "before"
        if case.after_hello:
            offender.hello("offender")
        offender.send_raw(case.data)
        if case.half_close:
            offender.sock.shutdown(1)  # SHUT_WR: EOF mid-frame
        if case.code is not None:
            err = offender.expect(Error)
            assert err.code == case.code.value, err
            assert err.message and err.fatal == case.closes
        if case.closes:
            offender.wait_closed()
        else:
            # the stream is still in sync: the offender can carry on normally
            if not case.after_hello:
                offender.hello("offender")
            offender.send(Say(id="ok", text="still here"))
            assert bob.expect(Chat, nick="offender").text == "still here"
            assert alice.expect(Chat, nick="offender").text == "still here"
        # the server and the bystanders carry on
        for n in range(20):
            bob.send(Say(id=f"b{n}", text=f"after {n}"))
        assert [c.text for c in alice.collect(Chat, 20)] == [f"after {n}" for n in range(20)]
        late = WireClient(server.port)
        assert late.hello("late").nick == "late"
        late.close()
    finally:
        for c in (alice, bob, offender):
            c.close()
