"""The outbox alone: its byte bound, and that it delivers what it took, in order."""

from __future__ import annotations

import socket
import threading
import time

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


def test_an_outbox_going_from_idle_to_backed_up_and_back_keeps_every_byte_in_order():
    """The idle path sends without a lock; a backlog is flushed by other threads (the
    producer after the hub lock, a racing flush, the flusher).  Switching between the
    two, many times, with a reader slower than the writer, the peer still gets every
    byte once and in order, and a drained outbox becomes idle (lock-free) again."""
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flusher = Flusher()
    flusher.start()
    lock = threading.RLock()
    box = Outbox(a, flusher, lock, limit=100_000_000)
    parts = [f"{i:07d}|".encode() * (1 + i % 97) for i in range(4000)]
    want = b"".join(parts)
    results: list[int] = []
    idle_again = 0
    done = threading.Event()

    def produce() -> None:
        nonlocal idle_again
        was_idle = True
        for i, p in enumerate(parts):
            if i % 400 == 399:  # now and then let the reader catch up: the backlog drains
                deadline = time.monotonic() + 10
                while len(box) and time.monotonic() < deadline:
                    done.wait(0.001)
            if i % 7 == 0:  # a frame for this connection alone (queued, then flushed)
                box.send_now(p)
                continue
            with lock:
                results.append(box.put_or_send(p))
                if box.idle and not was_idle:
                    idle_again += 1
                was_idle = box.idle
            if results[-1] == QUEUED:
                box.flush()
        done.set()

    def race_flushes() -> None:
        while not done.wait(0.0002):  # often, without holding the GIL to itself
            box.flush()

    threads = [threading.Thread(target=produce), threading.Thread(target=race_flushes)]
    try:
        for t in threads:
            t.start()
        got = bytearray()
        b.settimeout(10)
        while len(got) < len(want):
            chunk = b.recv(1500)  # small reads: the writer keeps getting ahead
            assert chunk, "the outbox's socket closed early"
            got += chunk
        for t in threads:
            t.join(10)
        assert bytes(got) == want
        assert REFUSED not in results and SENT in results and QUEUED in results
        assert idle_again > 0  # backed up, drained, and back on the lock-free path
        with lock:
            assert box.put_or_send(b"last") == SENT and box.idle and len(box) == 0
        assert b.recv(10) == b"last"
    finally:
        done.set()
        flusher.stop()
        a.close()
        b.close()
