"""The file-sharing messages (no I/O): offers, answers, chunks and their credit."""

from __future__ import annotations

import enum

from chatroom.protocol.base import MAX_CHUNK, Int, Message, _check_hex, _check_id, _require

__all__ = [
    "FileEvent",
    "OfferFile",
    "AcceptFile",
    "RejectFile",
    "CancelFile",
    "FileChunk",
    "FileAck",
    "FileDone",
    "FileOffer",
    "FileSend",
    "FileCredit",
    "FileData",
    "FileUpdate",
]


# --------------------------------------------------------------------------- file sharing
#
# A file travels from its sender through the server to each receiver in chunks that
# are raw frame bodies (``file_chunk`` in, ``file_data`` out), interleaved with chat.
# The server stores nothing: it passes each chunk on as it arrives, and the sender may
# only run ``credit`` bytes ahead of the slowest receiver's ``file_ack``, so what is in
# flight for one transfer is bounded whatever the speeds.  Every receiver gets the whole
# file from byte 0: the sender sends it once per *round* (``file_send``) to everyone
# who accepted before that round started.


class FileEvent(enum.StrEnum):
    """What a :class:`FileUpdate` reports."""

    ACCEPTED = "accepted"  # to the sender: ``nick`` accepted
    REJECTED = "rejected"  # to the sender: ``nick`` declined
    QUEUED = "queued"  # to a receiver: the file is being sent to others; yours follows
    RECEIVED = "received"  # to the sender: ``nick`` has the file, checksum verified
    FAILED = "failed"  # to either side: a reception failed (``nick``: whose; ``reason``: why)
    CANCELLED = "cancelled"  # to either side: ``nick`` cancelled
    EXPIRED = "expired"  # to who never answered: the offer timed out
    STOPPED = "stopped"  # to the sender: nobody is receiving this round any more: stop sending
    CLOSED = "closed"  # to the sender: the offer is over (expired, or everyone answered and was served)


def _check_sha256(value: str) -> None:
    _check_hex(value, "sha256", 64)


class OfferFile(Message, tag="offer_file", frozen=True):
    """Offer a file to the current room, or to one nick with ``to``."""

    id: str
    name: str
    size: Int
    sha256: str  # of the whole file, 64 lowercase hex digits
    to: str | None = None
    room: str | None = None  # 1.3: which of your rooms (without ``to``)

    def check(self) -> None:
        _check_id(self.id)
        _require(0 < len(self.name) <= 1024, "name", "must be 1-1024 characters")
        _require(self.size >= 0, "size", "must not be negative")
        _check_sha256(self.sha256)


class FileOffer(Message, tag="file_offer", frozen=True):
    """A file on offer, to each recipient -- and to its sender with the sender's ``id``,
    which is how the sender learns the ``transfer`` number."""

    transfer: Int
    name: str  # as the sender named it, control characters removed; receivers sanitise it again
    size: Int
    sha256: str
    nick: str  # who offers it
    ts: float
    expires_in: float  # seconds the offer stays open to /accept
    room: str | None = None  # offered to this room ...
    to: str | None = None  # ... or to this one nick
    recipients: Int = 0  # how many it was offered to
    id: str | None = None  # the sender's offer_file id (only in the sender's copy)

    def check(self) -> None:
        _require(self.size >= 0, "size", "must not be negative")
        _check_sha256(self.sha256)


class AcceptFile(Message, tag="accept_file", frozen=True):
    """Take an offer.  A refusal (expired, too many at once) names ``id``, if given."""

    transfer: Int
    id: str | None = None

    def check(self) -> None:
        _check_id(self.id)


class RejectFile(Message, tag="reject_file", frozen=True):
    transfer: Int


class CancelFile(Message, tag="cancel_file", frozen=True):
    """Stop a transfer: the sender stops it for everyone, a receiver only for itself."""

    transfer: Int
    reason: str = ""


class FileSend(Message, tag="file_send", frozen=True):
    """To the sender: send the file from byte 0 (round ``round``) to ``receivers``; you
    may send the bytes before offset ``credit`` now."""

    transfer: Int
    round: Int
    credit: Int
    receivers: tuple[str, ...] = ()


class FileCredit(Message, tag="file_credit", frozen=True):
    """To the sender: you may now send the bytes before offset ``credit``."""

    transfer: Int
    round: Int
    credit: Int


class FileChunk(Message, tag="file_chunk", frozen=True):
    """From the sender: the bytes at ``offset`` (the body).  Offsets follow each other
    exactly and stay within the credit; a zero-byte file is one empty chunk."""

    transfer: Int
    round: Int
    offset: Int
    data: bytes = b""

    def check(self) -> None:
        _require(self.offset >= 0, "offset", "must not be negative")
        _require(len(self.data) <= MAX_CHUNK, "body", f"a chunk is at most {MAX_CHUNK} bytes")


class FileData(Message, tag="file_data", frozen=True):
    """To a receiver: the bytes at ``offset`` (the body), in order, from 0 to the size."""

    transfer: Int
    offset: Int
    data: bytes = b""

    def check(self) -> None:
        _require(self.offset >= 0, "offset", "must not be negative")


class FileAck(Message, tag="file_ack", frozen=True):
    """From a receiver: I have stored every byte before ``offset``."""

    transfer: Int
    offset: Int


class FileDone(Message, tag="file_done", frozen=True):
    """From a receiver, after the last byte: whether the SHA-256 matched and the file was kept."""

    transfer: Int
    ok: bool
    reason: str = ""


class FileUpdate(Message, tag="file_update", frozen=True):
    """Something happened to a transfer: ``nick`` (who) did ``event``, maybe with a ``reason``."""

    transfer: Int
    event: FileEvent
    nick: str = ""
    reason: str = ""
    over: bool = False  # the transfer is over for whoever gets this update
