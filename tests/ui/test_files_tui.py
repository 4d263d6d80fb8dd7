"""File sharing as a person sees it: the full-screen client in a real pty (pyte).

The other side is a raw ``WireClient`` so the test decides exactly when data moves:
a transfer can be held half-way and the status bar read while it is.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from chatroom.client.transfers import CHUNK_SIZE
from chatroom.protocol import (
    AcceptFile,
    CancelFile,
    FileAck,
    FileChunk,
    FileData,
    FileEvent,
    FileOffer,
    FileSend,
    FileUpdate,
    OfferFile,
)
from tests.polling import wait_until
from tests.terminal import Terminal
from tests.wire import WireClient

KiB = 1024


def status_bar(term: Terminal) -> str:
    return term.rows[-2]


def test_sending_shows_progress_and_cancel_tells_the_receiver(server, tmp_path: Path):
    data = os.urandom(1024 * KiB)
    source = tmp_path / "lecture notes.bin"
    source.write_bytes(data)
    bob = WireClient(server.port)
    bob.hello("bob")
    alice = Terminal(["join", f"127.0.0.1:{server.port}", "--nick", "alice", "--downloads", str(tmp_path / "dl")],
                     cols=120)
    try:
        alice.wait_text("online")
        alice.type(f'/send "{source}"\r')
        offer = bob.expect(FileOffer)
        assert (offer.name, offer.size, offer.nick) == ("lecture notes.bin", len(data), "alice")
        assert offer.sha256 == hashlib.sha256(data).hexdigest()
        alice.wait_text("offered “lecture notes.bin” (1.0 MiB) to the room")
        bob.send(AcceptFile(transfer=offer.transfer))
        alice.wait_text("bob accepted")
        # bob takes the first window and acknowledges only its first chunk: the
        # sender may then run one window past that, and no further.
        first = bob.expect(FileData, offset=0)
        bob.send(FileAck(transfer=offer.transfer, offset=len(first.data)))
        alice.wait_for(lambda rows: re.search(r"↑ lecture notes\.bin 31% 320\.0 KiB/1\.0 MiB [\d.]+ \w+/s",
                                              rows[-2]) is not None, what="upload progress in the status bar")
        alice.type("/cancel\r")
        update = bob.expect(FileUpdate, transfer=offer.transfer, event=FileEvent.CANCELLED)
        assert update.over and update.nick == "alice"
        alice.wait_text("cancelled “lecture notes.bin”")
        alice.wait_for(lambda rows: "↑" not in rows[-2], what="the status bar to drop the transfer")
    finally:
        alice.close()
        bob.close()


def test_receiving_shows_the_offer_progress_and_a_verified_file(server, tmp_path: Path):
    downloads = tmp_path / "dl"
    mallory = WireClient(server.port)
    mallory.hello("mallory")
    alice = Terminal(["join", f"127.0.0.1:{server.port}", "--nick", "alice", "--downloads", str(downloads)],
                     cols=120)
    try:
        alice.wait_text("with 1 other")
        # 1. An offer held half-way, then cancelled by the receiver.
        big = os.urandom(1024 * KiB)
        mallory.send(OfferFile(id="1", name="../../etc/passwd\x1b[31m", size=len(big),
                               sha256=hashlib.sha256(big).hexdigest()))
        offer = mallory.expect(FileOffer, id="1")
        alice.wait_text(f"/accept {offer.transfer} or /reject {offer.transfer}")
        assert "\x1b" not in alice.text()
        alice.type("/accept\r")
        start = mallory.expect(FileSend, transfer=offer.transfer)
        for offset in range(0, 2 * CHUNK_SIZE, CHUNK_SIZE):
            mallory.send(FileChunk(transfer=offer.transfer, round=start.round, offset=offset,
                                   data=big[offset:offset + CHUNK_SIZE]))
        alice.wait_for(lambda rows: re.search(r"↓ \.\./\.\./etc/passwd\S* 12% 128\.0 KiB/1\.0 MiB [\d.]+ \w+/s",
                                              rows[-2]) is not None, what="download progress in the status bar")
        assert [p.name for p in downloads.iterdir() if p.name.endswith(".part")]
        alice.type("/cancel\r")
        update = mallory.expect(FileUpdate, transfer=offer.transfer, event=FileEvent.CANCELLED)
        assert update.nick == "alice"
        alice.wait_text("cancelled")
        wait_until(lambda: not list(downloads.iterdir()), what="the partial download to be deleted")

        # 2. A small file, accepted by number, verified and kept under a safe name.
        small = b"the real notes\n" * 1000
        mallory.send(OfferFile(id="2", name="notes.txt", size=len(small), sha256=hashlib.sha256(small).hexdigest()))
        offer = mallory.expect(FileOffer, id="2")
        alice.wait_text(f"/accept {offer.transfer}")
        alice.type(f"/accept {offer.transfer}\r")
        start = mallory.expect(FileSend, transfer=offer.transfer)
        mallory.send(FileChunk(transfer=offer.transfer, round=start.round, offset=0, data=small))
        alice.wait_text("(SHA-256 verified)")
        assert (downloads / "notes.txt").read_bytes() == small
        assert mallory.expect(FileUpdate, transfer=offer.transfer, event=FileEvent.RECEIVED).nick == "alice"
        alice.type("/files\r")
        alice.wait_text("saved as")
        # 3. /reject tells the sender.
        mallory.send(OfferFile(id="3", name="spam.exe", size=3, sha256=hashlib.sha256(b"abc").hexdigest()))
        offer = mallory.expect(FileOffer, id="3")
        alice.wait_text("spam.exe")
        alice.type("/reject\r")
        assert mallory.expect(FileUpdate, transfer=offer.transfer, event=FileEvent.REJECTED).nick == "alice"
        mallory.send(CancelFile(transfer=offer.transfer))
    finally:
        alice.close()
        mallory.close()


def test_in_two_rooms_send_offers_to_the_window_s_room_and_join_of_a_room_one_is_in_goes_there(
        server, tmp_path: Path):
    from chatroom.protocol import Chat, Join

    source = tmp_path / "slides.bin"
    source.write_bytes(b"x" * 5000)
    bob = WireClient(server.port)
    bob.hello("bob")
    bob.send(Join(room="dev"))
    alice = Terminal(["join", f"127.0.0.1:{server.port}", "--nick", "alice", "--downloads", str(tmp_path / "dl")],
                     cols=120)
    try:
        alice.wait_text("online")
        alice.type("/join dev\r")
        alice.wait_text("you are in dev")
        alice.type(f'/send "{source}"\r')  # from dev's window: to dev (no "say which one")
        offer = bob.expect(FileOffer)
        assert (offer.name, offer.room) == ("slides.bin", "dev")
        alice.type("/join lobby\r")  # in it already: its window comes up
        alice.type("hello lobby\r")
        assert bob.expect(Chat, text="hello lobby").room == "lobby"
        assert not any(isinstance(m, Chat) and m.room == "dev" for m in bob.inbox)
    finally:
        alice.close()
        bob.close()
