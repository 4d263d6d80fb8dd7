"""Wire trace: every recv() and every frame, for teaching how framing works.

``chatroom serve --trace`` and ``chatroom join --trace FILE`` write lines like::

    14:02:11.503121 RECV  127.0.0.1:40122 ann       recv() returned 91 bytes
    14:02:11.503190 IN    127.0.0.1:40122 ann       len 00 00 00 29 = 41  {"type":"say",...}  body 0  (1 recv)
    14:02:11.503388 OUT   -> 3 members              len 00 00 00 5a = 90  {"type":"chat",...}  body 0

so a class can watch one recv() carry two glued frames, or a frame assembled from
three recv() calls, and the decoder put them right.

Tracing never slows the room unboundedly: lines go into a bounded queue that one
thread writes out; when the queue is full, lines are dropped and counted, and the
count is written as soon as there is room again.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import TextIO

from chatroom.protocol import PREFIX_SIZE, Frame

__all__ = ["Tracer", "MAX_SHOWN"]

#: Header text longer than this is cut (long chat text, welcome history...).
MAX_SHOWN = 160
_QUEUE = 10_000


def _stamp() -> str:
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"


def _shown(text: str) -> str:
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 12] + f"... ({len(text)} chars)"


def _prefix(data: bytes) -> str:
    return f"len {data[:PREFIX_SIZE].hex(' ')} = {int.from_bytes(data[:PREFIX_SIZE], 'big')}"


class Tracer:
    """Formats trace lines and writes them from its own thread."""

    def __init__(self, out: TextIO, *, close_out: bool = False) -> None:
        self.out = out
        self.close_out = close_out
        self.dropped = 0
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=_QUEUE)
        self._thread = threading.Thread(target=self._write, name="chatroom-trace", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ events

    def recv(self, peer: str, size: int) -> None:
        self._line(f"RECV  {peer:<28} recv() returned {size} bytes")

    def frame_in(self, peer: str, frame: Frame) -> None:
        header = frame.raw_header.decode("utf-8", "replace")  # as the peer sent it
        glue = f"{frame.recv_count} recv()s" if frame.recv_count != 1 else "1 recv"
        self._line(f"IN    {peer:<28} {_prefix(frame.prefix)}  {_shown(header)}  body {len(frame.body)}  ({glue})")

    def frame_out(self, peer: str, data: bytes) -> None:
        length = int.from_bytes(data[:PREFIX_SIZE], "big")
        header = data[PREFIX_SIZE : PREFIX_SIZE + length].decode("utf-8", "replace")
        body = len(data) - PREFIX_SIZE - length
        self._line(f"OUT   {peer:<28} {_prefix(data)}  {_shown(header)}  body {body}")

    def note(self, peer: str, text: str) -> None:
        self._line(f"NOTE  {peer:<28} {text}")

    # ------------------------------------------------------------------ output

    def _line(self, text: str) -> None:
        try:
            self._queue.put_nowait(f"{_stamp()} {text}")
        except queue.Full:
            self.dropped += 1

    def _write(self) -> None:
        reported = 0
        while True:
            line = self._queue.get()
            if line is None:
                break
            if self.dropped != reported:
                self.out.write(f"{_stamp()} NOTE  trace could not keep up: {self.dropped - reported} lines dropped\n")
                reported = self.dropped
            self.out.write(line + "\n")
            if self._queue.empty():
                self.out.flush()
        self.out.flush()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(5)
        if self.close_out:
            self.out.close()
