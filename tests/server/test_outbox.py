"""The outbox alone: its byte bound, and that it delivers what it took, in order."""

from __future__ import annotations

import socket
import threading

from chatroom.server.outbox import QUEUED, REFUSED, SENT, Flusher, Outbox


def test_an_outbox_refuses_past_its_limit_and_delivers_what_it_took():
    a, b = socket.socketpair()
    flusher = Flusher()
    flusher.start()
    try:
        box = Outbox(a, flusher, threading.RLock(), limit=100)
        assert box.put(b"x" * 60) and len(box) == 60
        assert not box.put(b"y" * 41) and box.overflowed and len(box) == 60  # refused whole
        assert box.put(b"z" * 40)
        box.flush()
        got = b""
        b.settimeout(5)
        while len(got) < 100:
            got += b.recv(200)
        assert got == b"x" * 60 + b"z" * 40 and len(box) == 0
        box.close()
        assert box.put(b"after close")  # ignored: the connection is going away
        assert len(box) == 0
    finally:
        flusher.stop()
        a.close()
        b.close()


def test_the_fast_path_sends_at_once_when_idle_and_queues_behind_a_backlog_in_order():
    """An idle outbox sends straight away (nothing to flush); one with a backlog, or
    whose kernel buffer filled mid-send, queues -- and the peer still gets every byte
    in the order it was given."""
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    flusher = Flusher()
    flusher.start()
    try:
        box = Outbox(a, flusher, threading.RLock(), limit=10_000_000)
        assert box.put_or_send(b"first|") == SENT and len(box) == 0
        parts = [f"{i:06d}|".encode() * 200 for i in range(200)]  # ~1.4 MB: far past the kernel's buffers
        results = [box.put_or_send(p) for p in parts]
        assert SENT in results and QUEUED in results  # sent while idle, queued once backed up
        assert REFUSED not in results
        box.flush()
        want = b"first|" + b"".join(parts)
        got = bytearray()
        b.settimeout(5)
        while len(got) < len(want):
            got += b.recv(1 << 16)
        assert bytes(got) == want
    finally:
        flusher.stop()
        a.close()
        b.close()
