"""The outbox alone: its byte bound, and that it delivers what it took, in order."""

from __future__ import annotations

import socket
import threading

from chatroom.server.outbox import Flusher, Outbox


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
