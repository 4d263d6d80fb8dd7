"""Frames: the byte layer of the chatroom protocol.  No I/O here.

A frame on the wire is::

    +----------------+----------------------------+---------------------+
    | length: 4 bytes| header: `length` bytes     | body: `body` bytes  |
    | unsigned, big- | UTF-8 JSON object, always  | raw, present only   |
    | endian         | with a "type" key          | if header["body"]>0 |
    +----------------+----------------------------+---------------------+

TCP is a byte stream: one ``recv()`` may return half a frame or several frames glued
together.  :class:`FrameDecoder` takes bytes however they were split and yields whole
frames in order.  Sizes are checked against the limits *before* any of the declared
bytes are buffered, so a peer announcing a 4 GiB header costs us four bytes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

import msgspec

from chatroom.errors import FrameTooLarge, LocalProtocolError, MalformedHeader, TruncatedFrame

__all__ = [
    "PREFIX",
    "PREFIX_SIZE",
    "MAX_HEADER_SIZE",
    "MAX_BODY_SIZE",
    "BODY_KEY",
    "Frame",
    "FrameDecoder",
    "encode_frame",
    "pack_frame",
]

#: Network byte order, unsigned: the same on every machine, never negative.
PREFIX = struct.Struct("!I")
PREFIX_SIZE = PREFIX.size

#: A chat header is a few hundred bytes; a welcome with 100 messages of history is the
#: largest ordinary header (tens of KiB).  64 KiB keeps a hostile peer's cost bounded.
MAX_HEADER_SIZE = 64 * 1024

#: Bodies carry file chunks.  1 MiB chunks keep per-connection memory bounded while
#: still amortising the per-frame overhead.
MAX_BODY_SIZE = 1024 * 1024

#: The header key that declares the body's size in bytes.
BODY_KEY = "body"


class Frame(msgspec.Struct, gc=False):
    """One decoded frame: its header's raw bytes (``header`` parses them, for the
    curious: the wire trace, tests), the message ``type`` they name (None if not a
    string), and the body.

    ``wire_size`` is the frame's size on the wire, ``recv_count`` how many chunks fed
    to the decoder it took to assemble (the trace mode shows it: the sticky-packet
    lesson), and ``prefix`` the raw 4-byte length prefix.

    A msgspec struct: one is built for every frame received, in C (a Python
    ``__init__`` was 3-4 % of a flooded server's time).  Whoever builds one passes a
    ``type`` that is a str or None (``FrameDecoder`` does).
    """

    raw_header: bytes
    type: str | None = None
    body: bytes = b""
    declares_body: bool = False
    recv_count: int = 1

    @property
    def prefix(self) -> bytes:
        """The 4-byte length prefix it came with."""
        return PREFIX.pack(len(self.raw_header))

    @property
    def wire_size(self) -> int:
        return PREFIX_SIZE + len(self.raw_header) + len(self.body)

    @property
    def header(self) -> dict[str, Any]:
        return parse_header(self.raw_header)

    def __repr__(self) -> str:
        return f"Frame({self.raw_header!r}, body={len(self.body)} bytes)"


class _Envelope(msgspec.Struct, gc=False):
    """What the framing needs of a header: the body's size (and the type, passed on).
    Decoded from JSON and dropped at once: no cycle is possible, nothing to track."""

    type: Any = None
    body: Any = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def read_envelope(data: bytes) -> tuple[Any, Any]:
    """(type, body) of header bytes, or :class:`MalformedHeader` if they are not a
    UTF-8 JSON object.  One C pass; the stdlib parser only for what msgspec refuses
    (JSON that it does not take, a lone surrogate or a NaN among them, is refused or
    accepted exactly as Python's ``json`` would: the message layer then names the bad
    field)."""
    if not data.isascii():  # (ASCII is UTF-8: the common case needs no decoded copy)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedHeader(f"header is not valid UTF-8 (byte {exc.start})") from None
    try:
        envelope = _ENVELOPE.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        header = parse_header(data)
        return header.get("type"), header.get(BODY_KEY)
    except RecursionError:
        raise MalformedHeader("header JSON is nested too deeply") from None
    return envelope.type, envelope.body


# One encoder for every frame: json.dumps() with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _dumps(header: Mapping[str, Any]) -> bytes:
    try:
        return _ENCODER.encode(header).encode("utf-8")
    except ValueError as exc:  # NaN or infinity: not JSON
        raise LocalProtocolError(f"header cannot be encoded: {exc}") from None


def encode_frame(
    header: Mapping[str, Any],
    body: bytes = b"",
    *,
    max_header: int = MAX_HEADER_SIZE,
    max_body: int = MAX_BODY_SIZE,
) -> bytes:
    """Return the wire bytes for ``header`` (and ``body``, whose size is declared)."""
    if "type" not in header:
        raise LocalProtocolError("a frame header needs a 'type'")
    if body:
        header = {**header, BODY_KEY: len(body)}
    elif BODY_KEY in header:
        raise LocalProtocolError(f"header declares '{BODY_KEY}' but no body was given")
    return pack_frame(_dumps(header), body, max_header=max_header, max_body=max_body)


def pack_frame(data: bytes, body: bytes = b"", *, max_header: int = MAX_HEADER_SIZE,
               max_body: int = MAX_BODY_SIZE) -> bytes:
    """Prefix + encoded header ``data`` (which declares the body's size) + ``body``,
    within the limits."""
    if len(data) > max_header:
        raise LocalProtocolError(f"header of {len(data)} bytes is over {max_header}")
    if not body:
        return PREFIX.pack(len(data)) + data
    if len(body) > max_body:
        raise LocalProtocolError(f"body of {len(body)} bytes is over {max_body}")
    return b"".join((PREFIX.pack(len(data)), data, body))


def parse_header(data: bytes) -> dict[str, Any]:
    """Decode header bytes into a dict, or raise :class:`MalformedHeader`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedHeader(f"header is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise MalformedHeader("header JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and int strings over Python's digit limit
        raise MalformedHeader(f"header is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedHeader(f"header must be a JSON object, not {type(value).__name__}")
    return value


class FrameDecoder:
    """Incremental frame decoder: bytes in, :class:`Frame` objects out.

    Call :meth:`feed` with whatever ``recv()`` returned, in order; it returns the frames
    completed by that chunk (possibly none, possibly many).  Call :meth:`feed_eof` when
    the peer closed: it raises :class:`TruncatedFrame` if a frame was cut off.  After a
    :class:`~chatroom.errors.FrameError` the decoder is unusable: close the connection.
    """

    def __init__(self, max_header: int = MAX_HEADER_SIZE, max_body: int = MAX_BODY_SIZE) -> None:
        self.max_header = max_header
        self.max_body = max_body
        self._buf = bytearray()
        self._pos = 0  # start of unconsumed data in _buf
        # The frame being assembled: its header once parsed, and how much is needed.
        self._header: bytes | None = None  # raw
        self._type: Any = None
        self._header_len = 0
        self._body_len = 0
        self._chunks = 0  # chunks that contributed to the current frame
        self._broken: Exception | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as part of a frame."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> list[Frame]:
        if self._broken is not None:
            raise LocalProtocolError("decoder already failed") from self._broken
        if not data:
            return []
        self._buf += data
        self._chunks += 1
        frames: list[Frame] = []
        try:
            while True:
                frame = self._next_frame()
                if frame is None:
                    break
                frames.append(frame)
        except Exception as exc:
            # Kept to say why, without its traceback: that holds this very call's frame
            # (and ``self``), a cycle that would keep the buffer until a collection.
            self._broken = LocalProtocolError(f"{type(exc).__name__}: {exc}")
            raise
        # Compact once per feed, not once per frame: keeps decoding linear.
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        if not self._buf:
            self._chunks = 0  # the next frame starts in the next chunk
        return frames

    def feed_eof(self) -> None:
        """The peer closed the stream.  Raise if that cut a frame in half."""
        if self.buffered:
            have = self.buffered
            if self._header is None and have < PREFIX_SIZE:
                need = PREFIX_SIZE
            elif self._header is None:
                (length,) = PREFIX.unpack_from(self._buf, self._pos)
                need = PREFIX_SIZE + length
            else:
                need = PREFIX_SIZE + self._header_len + self._body_len
            raise TruncatedFrame(have, need)

    def close(self) -> None:
        """The stream has ended: drop whatever was buffered (up to a whole frame's
        body) at once.  The decoder is unusable afterwards."""
        self._buf = bytearray()
        self._pos = 0
        self._header = None
        self._broken = LocalProtocolError("decoder closed")

    def _next_frame(self) -> Frame | None:
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        if self._header is None:
            if avail < PREFIX_SIZE:
                return None
            (length,) = PREFIX.unpack_from(buf, pos)
            if length > self.max_header:
                raise FrameTooLarge("header", length, self.max_header)
            if avail < PREFIX_SIZE + length:
                return None
            raw = bytes(buf[pos + PREFIX_SIZE : pos + PREFIX_SIZE + length])
            type_name, body_len = read_envelope(raw)
            if type(type_name) is not str:
                type_name = None  # (the message layer says what is wrong with it)
            if body_len is None:  # the usual frame, whole in the buffer: no state to keep
                self._pos = pos + PREFIX_SIZE + length
                chunks, self._chunks = self._chunks, 1  # the next frame starts inside this chunk
                return Frame(raw, type_name, recv_count=chunks)
            if type(body_len) is not int or body_len < 0:
                raise MalformedHeader(f"'{BODY_KEY}' must be a non-negative integer")
            if body_len > self.max_body:
                raise FrameTooLarge("body", body_len, self.max_body)
            self._header, self._type, self._header_len, self._body_len = raw, type_name, length, body_len
        total = PREFIX_SIZE + self._header_len + self._body_len
        if avail < total:
            return None
        body_start = pos + PREFIX_SIZE + self._header_len
        frame = Frame(self._header, self._type, bytes(buf[body_start : body_start + self._body_len]),
                      declares_body=True, recv_count=self._chunks)
        self._pos = pos + total
        self._header = None
        # The next frame starts inside the chunk that completed this one.
        self._chunks = 1
        return frame
