"""The remaining decision-makers, alone: the rate limiter, the outbox's bounds, the
file relay and the client's transfers -- bytes, messages and a fake clock; no server."""

from __future__ import annotations

import hashlib
import socket
import threading
from pathlib import Path

import pytest

from chatroom.client.transfers import Phase, Transfers
from chatroom.errors import Refused
from chatroom.protocol import (
    ErrorCode,
    FileAck,
    FileChunk,
    FileCredit,
    FileData,
    FileDone,
    FileOffer,
    FileSend,
    OfferFile,
)
from chatroom.server.outbox import Flusher, Outbox
from chatroom.server.ratelimit import RateLimiter, Verdict
from chatroom.server.relay import MAX_OFFERS_PER_SENDER, Relay
from chatroom.server.room import ChatState

# ----------------------------------------------------------------------------- rate limiter


def test_a_burst_passes_then_the_rate_then_strikes_fade():
    limiter = RateLimiter(rate=2.0, burst=3, max_strikes=2, now=0.0)
    assert [limiter.check(0.0) for _ in range(3)] == [Verdict.ALLOW] * 3
    assert limiter.check(0.0) is Verdict.SLOW_DOWN
    assert limiter.check(0.5) is Verdict.ALLOW  # one token back after 0.5 s at 2/s
    # Strikes faded with that token; now more than max_strikes refusals in a row disconnect.
    assert [limiter.check(0.5) for _ in range(3)] == [Verdict.SLOW_DOWN, Verdict.SLOW_DOWN, Verdict.DISCONNECT]
    fresh = RateLimiter(rate=2.0, burst=3, max_strikes=2, now=0.0)
    for _ in range(4):
        fresh.check(0.0)
    assert fresh.check(10.0) is Verdict.ALLOW  # strikes and tokens came back with time
    assert RateLimiter(rate=0, burst=0, max_strikes=0, now=0.0).check(0.0) is Verdict.ALLOW  # off


# ----------------------------------------------------------------------------- outbox


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


# ----------------------------------------------------------------------------- relay


def _relay_room():
    state = ChatState()
    sender, _, _ = state.admit(1, "ann", "a:1", 0.0)
    receiver, _, _ = state.admit(2, "bob", "b:1", 0.0)
    return Relay(max_size=10_000, window=100, offer_ttl=300, stall_timeout=60), sender, receiver


def test_the_relay_passes_chunks_within_credit_and_refuses_the_rest():
    relay, sender, receiver = _relay_room()
    ann_conn, bob_conn = object(), object()
    sender.sink, receiver.sink = ann_conn, bob_conn
    offer = OfferFile(id="o1", name="a.txt", size=250, sha256="0" * 64)
    offers = relay.offer(ann_conn, sender, offer, (sender, receiver), 0.0, 0.0)
    assert any(isinstance(d.message, FileOffer) and receiver in d.recipients for d in offers)
    transfer = next(iter(relay.transfers))
    (start,) = [d.message for d in relay.accept(bob_conn, receiver, transfer, 1.0) if isinstance(d.message, FileSend)]
    assert start.credit == 100
    (data,) = relay.chunk(ann_conn, FileChunk(transfer=transfer, round=start.round, offset=0, data=b"x" * 100), 1.0)
    assert isinstance(data.message, FileData) and data.recipients == (bob_conn,)  # straight to the connection
    credit = relay.ack(bob_conn, FileAck(transfer=transfer, offset=100), 1.0)
    assert any(isinstance(d.message, FileCredit) and d.message.credit == 200 for d in credit)
    beyond = relay.chunk(ann_conn, FileChunk(transfer=transfer, round=start.round, offset=100, data=b"y" * 150), 1.0)
    assert any(getattr(d.message, "code", None) == ErrorCode.BAD_TRANSFER.value for d in beyond)
    assert transfer not in relay.transfers  # over for everyone


def test_one_sender_has_at_most_a_few_offers_open():
    relay, sender, receiver = _relay_room()
    for n in range(MAX_OFFERS_PER_SENDER):
        relay.offer("ann", sender, OfferFile(id=f"o{n}", name="f", size=1, sha256="0" * 64), (receiver,), 0.0, 0.0)
    with pytest.raises(Refused) as info:
        relay.offer("ann", sender, OfferFile(id="x", name="f", size=1, sha256="0" * 64), (receiver,), 0.0, 0.0)
    assert info.value.code == ErrorCode.TOO_MANY_TRANSFERS


# ----------------------------------------------------------------------------- client transfers


def _receiving(tmp_path: Path, data: bytes, sha: str) -> tuple[Transfers, list[object], list[object]]:
    sent: list[object] = []
    events: list[object] = []
    transfers = Transfers(tmp_path, send=lambda m: sent.append(m) or True, emit=events.append,
                          next_id=lambda: "id")
    transfers.handle(FileOffer(transfer=3, name="../../etc/passwd", size=len(data), sha256=sha, nick="ann",
                               ts=0.0, expires_in=60, room="lobby", recipients=1))
    transfers.accept(3)
    for offset in range(0, len(data), 4):
        transfers.handle(FileData(transfer=3, offset=offset, data=data[offset:offset + 4]))
    return transfers, sent, events


def test_a_verified_download_is_kept_under_a_safe_name(tmp_path):
    data = b"hello, file!"
    transfers, sent, _ = _receiving(tmp_path, data, hashlib.sha256(data).hexdigest())
    t = transfers.get(3)
    assert t.phase is Phase.DONE and t.path.parent == tmp_path and t.path.read_bytes() == data
    assert ".." not in t.path.name and "/" not in t.path.name
    assert FileDone(transfer=3, ok=True) in sent and FileAck(transfer=3, offset=len(data)) in sent


def test_a_damaged_download_is_discarded_and_the_sender_told(tmp_path):
    transfers, sent, _ = _receiving(tmp_path, b"hello, file!", "0" * 64)
    t = transfers.get(3)
    assert t.phase is Phase.FAILED and "SHA-256" in t.detail
    assert list(tmp_path.iterdir()) == []  # nothing left behind, not even the partial file
    assert any(isinstance(m, FileDone) and not m.ok for m in sent)
