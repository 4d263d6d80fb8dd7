"""The web door's common-case frames (``chatroom/web/frames.py``) against websockets,
which parses and writes every frame the door does not."""

from __future__ import annotations

import random

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side

from chatroom.web.frames import Cutter, binary_header
from tests.fuzzing import ws_frame

MAX = 70_000


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
def test_a_header_is_what_websockets_writes_ahead_of_the_payload(size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert binary_header(size) + data == Frame(Opcode.BINARY, data).serialize(mask=False)


def _websockets_reads(stream: bytes) -> list[tuple[int, bytes]]:
    """What websockets makes of a client's stream on an open connection."""
    ws = Protocol(Side.SERVER, max_size=MAX)
    ws.receive_data(stream)
    return [(frame.opcode.value, bytes(frame.data)) for frame in ws.events_received()]


def _cut(stream: bytes, reads: list[int]) -> tuple[list[bytes], bytes | None]:
    """The cutter fed ``stream`` in reads of the given sizes (the rest in the last)."""
    cutter, payloads, pos = Cutter(MAX), [], 0
    for size in [*reads, len(stream)]:
        got, rest = cutter.cut(stream[pos:pos + size])
        payloads += got
        pos += size
        if rest is not None:
            return payloads, rest + stream[pos:]
        if pos >= len(stream):
            break
    return payloads, None


def test_common_frames_come_out_whole_however_the_reads_cut_them():
    """Every size class of length (7-bit, 16-bit, 64-bit), cut at every byte and at
    random: the payloads websockets would have made, in order, none early."""
    rng = random.Random(7)
    sizes = [0, 5, 125, 126, 300, 65_535, 65_536, 69_000]
    payloads = [rng.randbytes(n) for n in sizes]
    stream = b"".join(ws_frame(0x2, p) for p in payloads)
    assert [p for _, p in _websockets_reads(stream)] == payloads
    assert _cut(stream, []) == (payloads, None)
    small = b"".join(ws_frame(0x2, p) for p in payloads[:5])
    assert _cut(small, [1] * len(small)) == (payloads[:5], None)
    for _ in range(20):
        reads = [rng.randint(1, 9000) for _ in range(40)]
        assert _cut(stream, reads) == (payloads, None)
    cutter = Cutter(MAX)
    frame = ws_frame(0x2, b"abcdef")
    assert cutter.cut(frame[:7]) == ([], None)  # not whole yet: nothing
    assert cutter.cut(frame[7:] + frame[:1]) == ([b"abcdef"], None)
    assert cutter.pending == frame[:1]


@pytest.mark.parametrize("odd", [
    ws_frame(0x9, b"ping"),                      # a control frame
    ws_frame(0x8, b"\x03\xe8"),                  # a close
    ws_frame(0x1, b"text"),                      # a text message
    ws_frame(0x2, b"first half", fin=False),     # a fragmented message
    ws_frame(0x2, b"unmasked", mask=False),      # a client must mask
    ws_frame(0x2, b"reserved", rsv=0x40),        # no extension was agreed
    ws_frame(0x2, bytes(MAX + 1)),               # too large (websockets: 1009)
])
def test_the_first_frame_out_of_the_common_case_is_handed_on_with_all_after_it(odd):
    """What the cutter took and what websockets then reads of the rest make, together,
    what websockets reads of the whole stream: the hand-on starts at a frame's first
    byte, whatever read it arrives in."""
    before = [b"one", b"two" * 50]
    after = ws_frame(0x2, b"after")
    stream = b"".join(ws_frame(0x2, p) for p in before) + odd + after
    head = len(stream) - len(odd) - len(after)
    for reads in ([], [head], [head + 1], [3, head - 3 + 2], [1] * (head + 3)):
        payloads, rest = _cut(stream, reads)
        assert payloads == before
        assert rest == odd + after
    whole = _websockets_reads(stream)
    assert [(2, p) for p in before] + _websockets_reads(odd + after) == whole


def test_a_handed_on_cutter_keeps_nothing_of_the_stream():
    cutter, frame, ping = Cutter(MAX), ws_frame(0x2, b"x"), ws_frame(0x9, b"")
    assert cutter.cut(frame[:3]) == ([], None)
    assert cutter.pending == frame[:3]
    assert cutter.cut(frame[3:] + ping) == ([b"x"], ping)
    assert not cutter.pending
