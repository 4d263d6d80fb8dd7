"""The byte layer: frames split and glued anywhere, limits before buffering, EOF."""

from __future__ import annotations

import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatroom.errors import (
    FrameError,
    FrameTooLarge,
    LocalProtocolError,
    MalformedHeader,
    RemoteProtocolError,
    TruncatedFrame,
)
from chatroom.protocol import FrameDecoder, encode_frame, parse_header


def frame(header: dict, body: bytes = b"") -> bytes:
    return encode_frame(header, body)


def test_frame_layout_is_big_endian_length_then_json_then_body():
    data = frame({"type": "x"}, b"BODY")
    (length,) = struct.unpack("!I", data[:4])
    assert data[4 : 4 + length] == b'{"type":"x","body":4}'
    assert data[4 + length :] == b"BODY"


def test_two_glued_frames_in_one_chunk_decode_in_order():
    d = FrameDecoder()
    frames = d.feed(frame({"type": "a"}) + frame({"type": "b"}, b"123"))
    assert [f.header["type"] for f in frames] == ["a", "b"]
    assert frames[1].body == b"123"
    assert frames[0].recv_count == 1 and frames[1].recv_count == 1


def test_frame_fed_one_byte_at_a_time_counts_every_chunk():
    data = frame({"type": "hello", "nick": "ann"})
    d = FrameDecoder()
    out = []
    for i in range(len(data)):
        out += d.feed(data[i : i + 1])
    assert len(out) == 1 and out[0].header == {"type": "hello", "nick": "ann"}
    assert out[0].recv_count == len(data)
    assert out[0].wire_size == len(data)


def test_recv_count_follows_a_frame_split_across_three_chunks_after_a_glued_one():
    a, b = frame({"type": "a"}), frame({"type": "b", "text": "x" * 30})
    d = FrameDecoder()
    first = d.feed(a + b[:5])
    second = d.feed(b[5:10])
    third = d.feed(b[10:])
    assert [f.recv_count for f in first] == [1]
    assert second == []
    assert [f.recv_count for f in third] == [3]


def test_eof_mid_frame_is_the_peers_error():
    d = FrameDecoder()
    data = frame({"type": "a", "text": "hello"})
    d.feed(data[:-3])
    with pytest.raises(TruncatedFrame) as info:
        d.feed_eof()
    assert info.value.have == len(data) - 3 and info.value.need == len(data)
    assert isinstance(info.value, RemoteProtocolError)


def test_eof_inside_the_length_prefix_is_truncation_too():
    d = FrameDecoder()
    d.feed(b"\x00\x00")
    with pytest.raises(TruncatedFrame):
        d.feed_eof()


def test_eof_between_frames_is_clean():
    d = FrameDecoder()
    d.feed(frame({"type": "a"}))
    d.feed_eof()  # no exception


def test_declared_4gib_header_is_rejected_after_four_bytes_without_allocating():
    d = FrameDecoder()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        with pytest.raises(FrameTooLarge) as info:
            d.feed(b"\xff\xff\xff\xff")
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.size == 2**32 - 1 and info.value.what == "header"
    assert peak - before < 64 * 1024
    assert d.buffered == 4


def test_header_one_byte_over_the_limit_is_rejected_on_the_prefix_alone():
    d = FrameDecoder(max_header=100)
    with pytest.raises(FrameTooLarge):
        d.feed(struct.pack("!I", 101))
    ok = FrameDecoder(max_header=100)
    assert ok.feed(struct.pack("!I", 100)) == []  # exactly the limit waits for the rest


def test_declared_body_over_the_limit_is_rejected_before_the_body_arrives():
    d = FrameDecoder(max_body=10)
    header = b'{"type":"file","body":11}'
    with pytest.raises(FrameTooLarge) as info:
        d.feed(struct.pack("!I", len(header)) + header)
    assert info.value.what == "body"


@pytest.mark.parametrize(
    "payload, fragment",
    [
        (b"\xff\xfe", "UTF-8"),
        (b"not json", "JSON"),
        (b"[1,2]", "object"),
        (b'"text"', "object"),
        (b"", "JSON"),
        (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
        (b'{"type":"a","body":-1}', "non-negative"),
        (b'{"type":"a","body":"3"}', "non-negative"),
    ],
    ids=["bad-utf8", "not-json", "list", "string", "empty", "deep-nesting",
         "negative-body", "string-body"],
)
def test_each_malformed_header_raises_malformed_header(payload, fragment):
    d = FrameDecoder()
    with pytest.raises(MalformedHeader) as info:
        d.feed(struct.pack("!I", len(payload)) + payload)
    assert fragment in str(info.value)
    assert isinstance(info.value, FrameError)


def test_decoder_refuses_to_continue_after_a_frame_error():
    d = FrameDecoder()
    with pytest.raises(MalformedHeader):
        d.feed(frame({"type": "a"})[:4] + b"x" * (len(frame({"type": "a"})) - 4))
    with pytest.raises(LocalProtocolError):
        d.feed(frame({"type": "a"}))


def test_encoding_without_a_type_is_our_mistake():
    with pytest.raises(LocalProtocolError):
        encode_frame({"text": "no type"})


def test_parse_header_round_trips_unicode():
    assert parse_header('{"type":"say","text":"héllo 世界 🎉"}'.encode()) == {
        "type": "say",
        "text": "héllo 世界 🎉",
    }


headers = st.fixed_dictionaries(
    {"type": st.sampled_from(["say", "chat", "ping", "x"])},
    optional={
        "text": st.text(max_size=200),
        "n": st.integers(-(2**53), 2**53),
        "flag": st.booleans(),
        "list": st.lists(st.integers(), max_size=5),
    },
)


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(st.tuples(headers, st.binary(max_size=300)), min_size=1, max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_any_frames_split_at_any_points_decode_to_the_same_frames(items, cuts):
    stream = b"".join(frame(h, b) for h, b in items)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    d = FrameDecoder()
    out = []
    for start, end in zip(points, points[1:], strict=False):
        out += d.feed(stream[start:end])
    d.feed_eof()
    assert [(f.header, f.body) for f in out] == [
        ({**h, "body": len(b)} if b else h, b) for h, b in items
    ]


def test_protocol_package_imports_no_io_modules():
    # -S: site-packages' .pth files may import threading themselves; we test our code.
    code = (
        "import sys; sys.path.insert(0, '.'); "
        "import chatroom.protocol, chatroom.server.room, chatroom.server.session, chatroom.server.relay, "
        "chatroom.server.bans, chatroom.text, chatroom.server.ratelimit, chatroom.server.guard, "
        "chatroom.server.search; "
        "bad = {'socket', 'threading', 'asyncio', 'selectors', 'ssl'} & set(sys.modules); "
        "print(sorted(bad))"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert result.stdout.strip() == "[]"
