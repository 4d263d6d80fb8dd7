"""The client's transfers alone: verified downloads kept under safe names, damaged
ones discarded -- messages in, files and replies out; no server."""

from __future__ import annotations

import hashlib
from pathlib import Path

from chatroom.client.transfers import Phase, Transfers
from chatroom.protocol import (
    FileAck,
    FileData,
    FileDone,
    FileOffer,
)


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
