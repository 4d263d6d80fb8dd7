"""The message layer: typed, validated, round-tripping, with specific errors."""

from __future__ import annotations

import enum
import types
import typing

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatroom.errors import InvalidField, LocalProtocolError, MessageError, UnknownMessageType
from chatroom.protocol import (
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    Chat,
    FrameDecoder,
    Hello,
    Message,
    Presence,
    PresenceEvent,
    Say,
    Welcome,
    decode_message,
    encode_frame,
    encode_message,
    major_version,
    message_from_header,
)


def strategy_for(tp: typing.Any) -> st.SearchStrategy[typing.Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return st.none() | strategy_for(inner)
    if origin is tuple:
        return st.lists(strategy_for(typing.get_args(tp)[0]), max_size=3).map(tuple)
    if origin is dict:
        return st.dictionaries(st.text(max_size=10), strategy_for(typing.get_args(tp)[1]), max_size=3)
    if tp is str:
        return st.text(min_size=1, max_size=40)
    if tp is int:
        return st.integers(0, 2**53)
    if tp is float:
        return st.floats(0, 2e9, allow_nan=False)
    if tp is bool:
        return st.booleans()
    if tp is bytes:
        return st.binary(max_size=64)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return instances(tp)
    raise TypeError(tp)


def instances(cls: type) -> st.SearchStrategy[typing.Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: strategy_for(hints[f.name]) for f in msgspec.structs.fields(cls)}
    if cls is Hello:
        fields["version"] = st.just(PROTOCOL_VERSION)

    def build(kwargs: dict[str, typing.Any]) -> typing.Any:
        try:
            return cls(**kwargs)
        except LocalProtocolError:
            return None

    return st.fixed_dictionaries(fields).map(build).filter(lambda m: m is not None)


any_message = st.sampled_from(sorted(MESSAGE_TYPES.values(), key=lambda c: c.TYPE)).flatmap(instances)


@settings(max_examples=300, deadline=None)
@given(msgs=st.lists(any_message, min_size=1, max_size=15), cuts=st.lists(st.integers(0, 50_000), max_size=20))
def test_any_valid_messages_encoded_and_resplit_decode_to_the_same_sequence(msgs, cuts):
    stream = b"".join(encode_message(m) for m in msgs)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    decoder = FrameDecoder()
    out = []
    for a, b in zip(points, points[1:], strict=False):
        out += [decode_message(f) for f in decoder.feed(stream[a:b])]
    decoder.feed_eof()
    assert out == msgs


def test_every_message_type_is_registered_under_its_wire_name():
    assert len(MESSAGE_TYPES) >= 25
    for name, cls in MESSAGE_TYPES.items():
        assert cls.TYPE == name
        assert issubclass(cls, msgspec.Struct)
        assert cls.__struct_config__.frozen
    chat = Chat(room="lobby", seq=1, ts=0.0, nick="ann", text="hi")
    with pytest.raises(AttributeError):
        chat.text = "changed"  # type: ignore[misc]


def test_nested_records_survive_the_round_trip():
    chat = Chat(room="lobby", seq=7, ts=12.5, nick="ann", text="line 1\nline 2", action=True, id="c1")
    welcome = Welcome(version=PROTOCOL_VERSION, server="s", nick="ann", room="lobby", history=(chat,),
                      limits={"max_text": 4000})
    (frame,) = FrameDecoder().feed(encode_message(welcome))
    assert decode_message(frame) == welcome
    assert frame.header["history"][0]["type"] == "chat"


def test_none_fields_are_left_off_the_wire_and_come_back_as_defaults():
    header = Presence(room="r", event=PresenceEvent.JOIN, nick="a", ts=1.0).to_header()
    assert header == {"type": "presence", "room": "r", "event": "join", "nick": "a", "ts": 1.0}
    assert message_from_header(header).reason is None


def test_unknown_keys_are_ignored_for_forward_compatibility():
    msg = message_from_header({"type": "say", "id": "1", "text": "hi", "colour": "red"})
    assert msg == Say(id="1", text="hi")


@pytest.mark.parametrize(
    "header, exc, field",
    [
        ({"type": "teleport"}, UnknownMessageType, None),
        ({"no": "type"}, UnknownMessageType, None),
        ({"type": 5}, UnknownMessageType, None),
        ({"type": "say", "text": "hi"}, InvalidField, "id"),
        ({"type": "say", "id": "1", "text": 5}, InvalidField, "text"),
        ({"type": "say", "id": "1", "text": None}, InvalidField, "text"),
        ({"type": "say", "id": "", "text": "x"}, InvalidField, "id"),
        ({"type": "say", "id": "x" * 65, "text": "x"}, InvalidField, "id"),
        ({"type": "say", "id": "1", "text": ""}, InvalidField, "text"),
        ({"type": "chat", "room": "r", "seq": True, "ts": 1, "nick": "a", "text": "t"}, InvalidField, "seq"),
        ({"type": "chat", "room": "r", "seq": 1.5, "ts": 1, "nick": "a", "text": "t"}, InvalidField, "seq"),
        ({"type": "chat", "room": "r", "seq": 2**70, "ts": 1, "nick": "a", "text": "t"}, InvalidField, "seq"),
        ({"type": "chat", "room": "r", "seq": -1, "ts": 1, "nick": "a", "text": "t"}, InvalidField, "seq"),
        ({"type": "chat", "room": "r", "seq": 1, "ts": "now", "nick": "a", "text": "t"}, InvalidField, "ts"),
        ({"type": "presence", "room": "r", "event": "explode", "nick": "a", "ts": 1}, InvalidField, "event"),
        ({"type": "members", "room": "r", "members": {"nick": "a"}}, InvalidField, "members"),
        ({"type": "members", "room": "r", "members": [{"idle": 1}]}, InvalidField, "members[0].nick"),
        ({"type": "members", "room": "r", "members": ["ann"]}, InvalidField, "members[0]"),
        ({"type": "hello", "version": "one", "nick": "a"}, InvalidField, "version"),
        ({"type": "welcome", "version": "1.0", "server": "s", "nick": "a", "room": "r", "limits": {"a": "b"}},
         InvalidField, "limits[...]"),
        ({"type": "say", "id": "1", "text": "x", "body": 3}, InvalidField, "body"),
    ],
)
def test_each_invalid_message_raises_its_own_error(header, exc, field):
    with pytest.raises(exc) as info:
        message_from_header(header)
    assert isinstance(info.value, MessageError)
    if field is not None:
        assert info.value.field == field
    assert str(info.value)  # readable, never empty


def test_a_body_on_a_message_that_carries_none_is_refused_when_decoding_a_frame():
    (frame,) = FrameDecoder().feed(encode_frame({"type": "say", "id": "1", "text": "x"}, b"junk"))
    with pytest.raises(InvalidField):
        decode_message(frame)


def test_building_an_invalid_message_locally_is_a_local_error():
    with pytest.raises(LocalProtocolError):
        Say(id="", text="hi")
    with pytest.raises(LocalProtocolError):
        Hello(version="banana", nick="ann")


def test_major_version_parsing():
    assert major_version(PROTOCOL_VERSION) == 1
    assert major_version("2.7") == 2
    assert major_version("x.1") is None


def test_every_message_class_is_a_message():
    for cls in MESSAGE_TYPES.values():
        assert issubclass(cls, Message)


def test_a_number_too_big_for_64_bits_is_an_invalid_field_and_elsewhere_harmless():
    """Valid JSON whatever its size: in an integer field it is out of range (a field
    error, the stream stays in sync); in a key nobody reads it is ignored."""
    from chatroom.protocol import FrameDecoder, decode_message

    huge = b"9" * 5000
    for raw, expect in (
        (b'{"type":"fetch_history","room":"a","before":' + huge + b"}", "fetch_history.before: integer out of range"),
        (b'{"type":"ping","token":"t","n":' + huge + b"}", None),
    ):
        (frame,) = FrameDecoder().feed(len(raw).to_bytes(4, "big") + raw)
        if expect is None:
            assert decode_message(frame).token == "t"
        else:
            with pytest.raises(InvalidField) as info:
                decode_message(frame)
            assert str(info.value) == expect
