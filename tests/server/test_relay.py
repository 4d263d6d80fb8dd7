"""The file relay alone: credit, offers per sender -- messages and a fake clock."""

from __future__ import annotations

import pytest

from chatroom.errors import Refused
from chatroom.protocol import (
    ErrorCode,
    FileAck,
    FileChunk,
    FileCredit,
    FileData,
    FileOffer,
    FileSend,
    OfferFile,
)
from chatroom.server.relay import MAX_OFFERS_PER_SENDER, Relay
from chatroom.server.room import ChatState


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
