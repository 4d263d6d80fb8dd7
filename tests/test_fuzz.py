"""Fuzzing the frame decoder and the message parser, with a fixed budget for CI.

Whatever bytes arrive, the decoder returns frames or raises one of our own
exceptions -- never IndexError, KeyError, UnicodeDecodeError, RecursionError... --
and the parser turns any JSON object into a message or a MessageError.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatroom.errors import ChatroomError, MessageError
from chatroom.protocol import MESSAGE_TYPES, FrameDecoder, Message, encode_frame, message_from_header

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
