"""Fuzzing the frame decoder and the message parser, with a fixed budget for CI.

Whatever bytes arrive, the decoder returns frames or raises one of our own
exceptions -- never IndexError, KeyError, UnicodeDecodeError, RecursionError... --
and the parser turns any JSON object into a message or a MessageError.
"""

from __future__ import annotations

import enum
import json
import struct
import types
import typing

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatroom.errors import ChatroomError, MessageError
from chatroom.protocol import (
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    Error,
    ErrorCode,
    FrameDecoder,
    Message,
    Ping,
    Pong,
    encode_frame,
    encode_message,
    message_from_header,
)
from chatroom.protocol.messages import MemberInfo, RoomInfo

BUDGET = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@BUDGET
@given(chunks=st.lists(st.binary(max_size=64), max_size=20))
def test_the_decoder_survives_any_bytes(chunks):
    decoder = FrameDecoder(max_header=256, max_body=256)
    try:
        for chunk in chunks:
            for frame in decoder.feed(chunk):
                assert isinstance(frame.header, dict) and len(frame.body) <= 256
        decoder.feed_eof()
    except ChatroomError:
        pass


@BUDGET
@given(prefix=st.integers(0, 2**32 - 1), rest=st.binary(max_size=300))
def test_any_length_prefix_is_checked_before_anything_is_buffered(prefix, rest):
    decoder = FrameDecoder(max_header=200, max_body=200)
    try:
        decoder.feed(prefix.to_bytes(4, "big") + rest)
    except ChatroomError:
        pass
    assert decoder.buffered <= 4 + 300


@BUDGET
@given(type_name=st.sampled_from(sorted(MESSAGE_TYPES)) | st.text(max_size=10),
       fields=st.dictionaries(st.text(max_size=12), json_values, max_size=8))
def test_the_parser_turns_any_object_into_a_message_or_a_message_error(type_name, fields):
    header = {**fields, "type": type_name}
    try:
        msg = message_from_header(header)
    except MessageError as exc:
        assert str(exc)
        return
    assert isinstance(msg, Message)


@BUDGET
@given(type_name=st.sampled_from(sorted(MESSAGE_TYPES)),
       fields=st.dictionaries(st.sampled_from(["id", "text", "nick", "room", "seq", "ts", "to", "members",
                                               "history", "limits", "event", "code", "before", "limit",
                                               "nonce", "proof", "action", "duration"]),
                              json_values, max_size=8))
def test_known_fields_with_any_values_never_escape_as_foreign_exceptions(type_name, fields):
    frame = encode_frame({"type": type_name, **fields})
    decoder = FrameDecoder()
    try:
        for f in decoder.feed(frame):
            message_from_header(f.header, f.body)
    except ChatroomError:
        pass


# ----------------------------------------------------------------------------- strings that are not Unicode

#: JSON escapes a peer may put in any string: lone high and low surrogates (valid JSON,
#: not Unicode), a proper pair, NUL, noncharacters, the last code point.
LONE_SURROGATES = ["\ud83d", "\ude00", "a\udbff"]
ESCAPES = [*LONE_SURROGATES, "\ud83d\ude00", "\u0000", "\uffff", "\ufdd0", "\U0010ffff"]


def _sample(tp: object) -> object:
    """A valid JSON value for annotation ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _sample(next(a for a in typing.get_args(tp) if a is not type(None)))
    if origin is tuple:
        return []
    if origin is dict:
        return {}
    if tp is str:
        return "x"
    if tp is bool:
        return False
    if tp in (int, float):
        return 1
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp)).value
    if tp in (MemberInfo, RoomInfo):
        return {"name": "x", "nick": "x"}
    return None


def _string_fields(cls: type) -> list[str]:
    hints = typing.get_type_hints(cls)
    return [f.name for f in msgspec.structs.fields(cls) if str in (hints[f.name], *typing.get_args(hints[f.name]))]


def _valid_header(cls: type) -> dict:
    hints = typing.get_type_hints(cls)
    header = {"type": cls.TYPE}
    for f in msgspec.structs.fields(cls):
        if f.name != "data":
            header[f.name] = _sample(hints[f.name])
    for name, value in {"id": "id1", "nonce": "0" * 64, "proof": "0" * 64, "sha256": "0" * 64,
                        "salt": "00", "version": PROTOCOL_VERSION, "room": "lobby", "to": "bystander"}.items():
        if name in header:
            header[name] = value
    return header


@BUDGET
@given(type_name=st.sampled_from(sorted(MESSAGE_TYPES)),
       text=st.text(st.characters(exclude_categories=()), max_size=12))
def test_every_message_that_decodes_re_encodes(type_name, text):
    cls = MESSAGE_TYPES[type_name]
    for name in _string_fields(cls):
        header = {**_valid_header(cls), name: text}
        try:
            msg = message_from_header(json.loads(json.dumps(header)))
        except MessageError:
            continue
        assert encode_message(msg)  # nothing that was accepted fails on its way out


def test_json_escapes_in_every_string_field_of_every_message_are_answered(make_server):
    """Against a live server: each frame gets an answer (an ack, an error, or what the
    message asks for) before the ping after it is answered; a lone surrogate is always
    ``invalid_field``; nothing is an internal error; the connection and the room live on."""
    from chatroom.server.guard import AuthGuard
    from tests.wire import WireClient

    server = make_server(rate=0)
    server.auth_guard = AuthGuard(free=1000)  # wrong operator tokens are not what this tests
    bystander, fuzzer = WireClient(server.port), WireClient(server.port)
    bystander.hello("bystander")
    fuzzer.hello("fuzzer")
    sent = 0
    try:
        for type_name in sorted(MESSAGE_TYPES):
            if type_name in ("bye", "hello"):
                continue  # a goodbye closes, by design; a second hello is one error, tested elsewhere
            cls = MESSAGE_TYPES[type_name]
            for name in _string_fields(cls):
                for escape in ESCAPES:
                    header = {**_valid_header(cls), name: f"f{escape}z"}
                    payload = json.dumps(header).encode()
                    fuzzer.send_raw(struct.pack("!I", len(payload)) + payload)
                    sent += 1
                    fuzzer.send(Ping(token=str(sent)))
                    fuzzer.expect(Pong, token=str(sent))
                    errors = [m for m in fuzzer.inbox if isinstance(m, Error)]
                    assert not any(e.code == ErrorCode.INTERNAL.value for e in errors), (header, errors)
                    if escape in LONE_SURROGATES:
                        assert any(e.code == ErrorCode.INVALID_FIELD.value and name in e.message for e in errors), \
                            (header, fuzzer.inbox[-3:])
                    fuzzer.inbox.clear()
        assert sent > 200
        assert not fuzzer.eof and not bystander.eof
        newcomer = WireClient(server.port)
        assert newcomer.hello("newcomer").nick == "newcomer"
        newcomer.close()
    finally:
        fuzzer.close()
        bystander.close()
