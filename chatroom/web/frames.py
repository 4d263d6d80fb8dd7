"""RFC 6455 frames of the web door's common case, both ways.  No I/O.

websockets' sans-I/O protocol (``door.py``) answers the handshake and every frame
that is out of the ordinary.  Under a flood its generator-based parser cost ~2.6 us
a browser's message (five generator steps and a ``Frame`` object each) and
``Frame.serialize`` ~1.6 us each of ours: the whole of the web door's difference
from the framed one (``scripts/bench.py``, the browsers' saturation row).  Here,
the common case only:

- ``binary_header(n)``: the 2-10 bytes ahead of an unmasked, final binary frame of
  ``n`` bytes (RFC 6455 section 5.2) -- what ``Frame(Opcode.BINARY, data)
  .serialize(mask=False)`` writes ahead of ``data``;
- ``Cutter``: a browser's stream, while it is nothing but masked, final binary
  frames of at most ``max_size`` bytes (all a browser sends until it closes), cut
  into their unmasked payloads.  The first frame that is anything else -- a ping, a
  close, a text or fragmented message, a frame too large, unmasked, with reserved
  bits -- is handed back with everything after it, for websockets to parse from
  then on; it starts at a frame's first byte, so websockets reads it as it would
  have read the whole stream.
"""

from __future__ import annotations

import struct

__all__ = ["Cutter", "binary_header"]

try:  # websockets' own unmasking, in C when its extension is built (as frames.py does)
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the pure-Python fallback of websockets
    from websockets.utils import apply_mask

#: FIN and the binary opcode, no reserved bits: a final binary frame's first byte.
FINAL_BINARY = 0x82
#: A client's frames carry a mask (the second byte's high bit).
MASKED = 0x80

_SHORT = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def binary_header(size: int) -> bytes:
    """The header of an unmasked, final binary frame of ``size`` payload bytes."""
    if size < 126:
        return bytes((FINAL_BINARY, size))
    if size < 1 << 16:
        return _SHORT.pack(FINAL_BINARY, 126, size)
    return _LONG.pack(FINAL_BINARY, 127, size)


#: What ``_measure`` says of a frame whose length has not all come, or that is not common.
INCOMPLETE, UNCOMMON = -1, -2


def _measure(buf: bytes | bytearray, pos: int, end: int, max_size: int) -> tuple[int, int]:
    """Where the mask of the common frame at ``pos`` starts, and its payload's size;
    ``INCOMPLETE`` or ``UNCOMMON`` (and 0) for a frame that is not (yet) one: a
    frame larger than ``max_size`` is not (websockets closes it: 1009)."""
    head2 = buf[pos + 1]
    if buf[pos] != FINAL_BINARY or not head2 & MASKED:
        return UNCOMMON, 0
    size, start = head2 & 0x7F, pos + 2
    if size >= 126:
        start += 2 if size == 126 else 8
        if start > end:
            return INCOMPLETE, 0
        size = int.from_bytes(buf[pos + 2:start])
    return (start, size) if size <= max_size else (UNCOMMON, 0)


class Cutter:
    """A browser's common frames cut into payloads; the rest handed on (above)."""

    __slots__ = ("max_size", "pending")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.pending = bytearray()  # the start of a frame not complete yet

    def cut(self, data: bytes) -> tuple[list[bytes], bytes | None]:
        """The payloads of the complete common frames in what came so far, and ``None``
        -- or, at the first frame that is not common, the bytes from its first on
        (the cutter is spent: its caller hands everything to websockets from then on)."""
        pending = self.pending
        if pending:
            pending += data
            buf: bytes | bytearray = pending
        else:
            buf = data
        payloads: list[bytes] = []
        pos, end = 0, len(buf)
        with memoryview(buf) as view:
            while end - pos >= 2:
                start, size = _measure(buf, pos, end, self.max_size)
                if start == UNCOMMON:
                    return self._hand_on(payloads, buf, pos)
                if start == INCOMPLETE or start + 4 + size > end:
                    break
                payloads.append(apply_mask(view[start + 4:start + 4 + size], buf[start:start + 4]))
                pos = start + 4 + size
        if pending:
            del pending[:pos]
        elif pos < end:
            pending += buf[pos:]  # (pending is empty here: this read's unfinished frame)
        return payloads, None

    def _hand_on(self, payloads: list[bytes], buf: bytes | bytearray, pos: int) -> tuple[list[bytes], bytes]:
        rest = bytes(buf[pos:])
        self.pending = bytearray()
        return payloads, rest

