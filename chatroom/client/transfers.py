"""File sharing as a client sees it: offers, sending, receiving, verifying.

No sockets and no UI here.  :class:`Transfers` is driven from two sides:

* the user's commands (any thread): :meth:`Transfers.offer`, :meth:`~Transfers.accept`,
  :meth:`~Transfers.reject`, :meth:`~Transfers.cancel`;
* the client's network thread: :meth:`Transfers.handle` for every file message from
  the server, :meth:`~Transfers.connection_lost` when the connection drops.

Transfer state is changed on one thread only: the network thread.  A command checks
what it can at once (and raises :class:`TransferError` for the user), then hands the
change to the network thread through ``run``; the hashing thread hands its result over
the same way.  The lock only guards the two dicts that other threads read.

It answers through two callbacks: ``send(message)`` queues a frame for the server,
``emit(event)`` reports a :class:`TransferChanged` to the UI.

The sender reads its file only as credit arrives (``file_send``/``file_credit``), a
chunk at a time.  The receiver writes each chunk to a hidden temporary file in the
downloads directory, hashes as it goes, and acknowledges what it stored; after the
last byte it compares the SHA-256 with the offer's and only then gives the file its
final (sanitised, never overwriting) name.  Anything else -- a mismatch, a cancel, a
lost connection -- deletes the temporary file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import platformdirs

from chatroom.client.events import FileTransfer, Phase, TransferChanged, human_rate
from chatroom.client.filenames import keep, safe_name
from chatroom.protocol import (
    AcceptFile,
    CancelFile,
    Error,
    ErrorCode,
    FileAck,
    FileChunk,
    FileCredit,
    FileData,
    FileDone,
    FileEvent,
    FileOffer,
    FileSend,
    FileUpdate,
    Message,
    OfferFile,
    RejectFile,
)
from chatroom.text import clean_line, human_size

__all__ = ["CHUNK_SIZE", "Phase", "FileTransfer", "TransferChanged", "TransferError", "Transfers",
           "default_downloads", "human_rate", "file_sha256"]

log = logging.getLogger("chatroom.transfers")

#: Bytes per chunk: big enough that per-frame costs vanish, small enough that a chat
#: message queued behind one waits for no more than a fraction of a millisecond on a LAN.
CHUNK_SIZE = 64 * 1024

#: Progress events at most this often per transfer (the UI redraws on each).
PROGRESS_INTERVAL = 0.1


#: What a transfer becomes when a file_update with ``over: true`` reports ``event``.
_OVER_AS = {
    FileEvent.CLOSED: Phase.DONE,
    FileEvent.RECEIVED: Phase.DONE,
    FileEvent.REJECTED: Phase.REJECTED,
    FileEvent.FAILED: Phase.FAILED,
    FileEvent.CANCELLED: Phase.CANCELLED,
    FileEvent.EXPIRED: Phase.EXPIRED,
}


class TransferError(Exception):
    """A file command that cannot be done; the message says why, for the user."""


def default_downloads() -> Path:
    """Where received files go unless ``--downloads`` says otherwise: the platform's own
    setting (on Linux, XDG user-dirs: ``XDG_DOWNLOAD_DIR`` in the environment or in
    ``~/.config/user-dirs.dirs``; Downloads on macOS and Windows)."""
    return Path(platformdirs.user_downloads_dir())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class Transfers:
    """Every file offer this client made or received, by server transfer number."""

    def __init__(self, downloads: Path, send: Callable[[Message], bool], emit: Callable[[object], None],
                 next_id: Callable[[], str], run: Callable[[Callable[[], None]], None] = lambda fn: fn()) -> None:
        self.downloads = downloads
        self._send = send
        self._emit = emit
        self._next_id = next_id
        self._run = run  # runs a change on the network thread (the one thread that changes state)
        self._lock = threading.RLock()  # guards _by_id and _preparing, which other threads read
        self._by_id: dict[int, FileTransfer] = {}
        self._preparing: dict[str, FileTransfer] = {}  # our offers the server has not confirmed
        self.max_size: int | None = None  # the server's limit, from the welcome

    # ------------------------------------------------------------------ queries

    def all(self) -> list[FileTransfer]:
        with self._lock:
            return [*self._preparing.values(), *self._by_id.values()]

    def active(self) -> list[FileTransfer]:
        return [t for t in self.all() if t.phase.active]

    def get(self, transfer_id: int) -> FileTransfer | None:
        with self._lock:
            return self._by_id.get(transfer_id)

    # ------------------------------------------------------------------ the user's side

    def offer(self, path: Path, to: str | None = None, room: str | None = None) -> FileTransfer:
        """Offer ``path`` to ``room`` (None: the current one) or to nick ``to``.
        Hashing happens in the background; the offer goes out when it is done."""
        path = path.expanduser()
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise TransferError(f"{path} is not a file")
            with open(path, "rb"):
                pass
        except FileNotFoundError:
            raise TransferError(f"no such file: {path}") from None
        except OSError as exc:
            raise TransferError(f"cannot read {path}: {exc.strerror or exc}") from None
        if self.max_size is not None and size > self.max_size:
            raise TransferError(f"{path.name} is {human_size(size)}; this server takes files up to "
                                f"{human_size(self.max_size)}" if self.max_size else
                                "file sharing is turned off on this server")
        t = FileTransfer(outgoing=True, name=clean_line(path.name), size=size, peer=to or "the room", path=path,
                         phase=Phase.HASHING, offer_id=self._next_id())
        with self._lock:
            self._preparing[t.offer_id] = t
        threading.Thread(target=self._hash_and_offer, args=(t, to, room), name="chatroom-hash", daemon=True).start()
        return t

    def _hash_and_offer(self, t: FileTransfer, to: str | None, room: str | None) -> None:
        """The hashing thread: compute, then hand the result to the network thread."""
        assert t.path is not None
        try:
            digest = file_sha256(t.path)
        except OSError as exc:
            failure = f"cannot read {t.path}: {exc.strerror or exc}"
            self._run(lambda: self._fail(t, failure))
            return
        self._run(lambda: self._hashed(t, to, room, digest))

    def _hashed(self, t: FileTransfer, to: str | None, room: str | None, digest: str) -> None:
        assert t.path is not None
        if t.phase is not Phase.HASHING:  # cancelled meanwhile
            return
        t.sha256 = digest
        t.phase = Phase.OFFERED
        if not self._send(OfferFile(id=t.offer_id, name=t.path.name, size=t.size, sha256=t.sha256, to=to,
                                    room=None if to else room)):
            self._fail(t, "not connected to the server: try again when we are")

    def accept(self, transfer_id: int) -> FileTransfer:
        t = self._theirs(transfer_id)
        if t.phase is not Phase.OFFERED:
            raise TransferError(f"{t.name} is already {t.phase.value}")
        try:
            self.downloads.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(self.downloads).free
        except OSError as exc:
            raise TransferError(f"cannot save to {self.downloads}: {exc.strerror or exc}") from None
        if free < t.size + (16 << 20):
            raise TransferError(f"not enough space in {self.downloads} for {t.name} ({human_size(t.size)}; "
                                f"{human_size(free)} free)")

        def accept() -> None:
            if t.phase is not Phase.OFFERED:  # it changed while the command travelled
                self._changed(t, "error", detail=f"{t.name} is already {t.phase.value}")
                return
            t.phase = Phase.WAITING
            t.detail = ""
            self._send(AcceptFile(transfer=transfer_id, id=f"accept:{transfer_id}"))
            self._changed(t, "accepted", detail=str(self.downloads))

        self._run(accept)
        return t

    def reject(self, transfer_id: int) -> FileTransfer:
        t = self._theirs(transfer_id)
        if t.phase is not Phase.OFFERED:
            raise TransferError(f"{t.name} is already {t.phase.value}: use /cancel")

        def reject() -> None:
            if t.phase is not Phase.OFFERED:
                self._changed(t, "error", detail=f"{t.name} is already {t.phase.value}: use /cancel")
                return
            t.phase = Phase.REJECTED
            self._send(RejectFile(transfer=transfer_id))
            self._changed(t, FileEvent.REJECTED.value)

        self._run(reject)
        return t

    def cancel(self, transfer_id: int | None = None) -> FileTransfer:
        """Cancel ``transfer_id``, or the one transfer under way if there is only one."""
        with self._lock:
            if transfer_id is None:
                live = [t for t in self.all() if not t.phase.over and (t.outgoing or t.phase is not Phase.OFFERED)]
                if len(live) != 1:
                    raise TransferError("no transfer to cancel" if not live else
                                        "which one? /cancel N (see /files for the numbers)")
                t = live[0]
            else:
                found = self._by_id.get(transfer_id)
                if found is None:
                    raise TransferError(f"there is no transfer {transfer_id} (see /files)")
                t = found
            if t.phase.over:
                raise TransferError(f"{t.name} is already {t.phase.value}")

        def cancel() -> None:
            if t.phase.over:
                return
            was = t.phase
            t.phase = Phase.CANCELLED
            self._close(t)
            if t.id is not None and was is not Phase.HASHING:
                self._send(CancelFile(transfer=t.id, reason="cancelled"))
            self._changed(t, FileEvent.CANCELLED.value)

        self._run(cancel)
        return t

    def latest_offer(self) -> FileTransfer | None:
        """The newest offer still waiting for our answer."""
        with self._lock:
            waiting = [t for t in self._by_id.values() if not t.outgoing and t.phase is Phase.OFFERED]
        return waiting[-1] if waiting else None

    def _theirs(self, transfer_id: int) -> FileTransfer:
        t = self.get(transfer_id)
        if t is None or t.outgoing:
            raise TransferError(f"there is no file offer {transfer_id} for you (see /files)")
        return t

    # ------------------------------------------------------------------ the network thread

    def handle(self, msg: Message) -> bool:
        """Act on a message from the server; False if it is not about files."""
        if isinstance(msg, FileData):
            self._on_data(msg)
        elif isinstance(msg, FileCredit):
            self._on_credit(msg)
        elif isinstance(msg, FileSend):
            self._on_send(msg)
        elif isinstance(msg, FileOffer):
            self._on_offer(msg)
        elif isinstance(msg, FileUpdate):
            self._on_update(msg)
        elif isinstance(msg, Error) and msg.id is not None and msg.id in self._preparing:
            t = self._preparing.pop(msg.id)
            self._fail(t, clean_line(msg.message))
        elif isinstance(msg, Error) and msg.id is not None and msg.id.startswith("accept:"):
            self._accept_refused(msg)
        else:
            return False
        return True

    def connection_lost(self) -> None:
        """Everything under way stops (the server ended it too); offers to us stay."""
        with self._lock:
            transfers = self.all()
        for t in transfers:
            if t.outgoing and not t.phase.over:
                self._fail(t, "the connection was lost")
            elif t.phase in (Phase.WAITING, Phase.RECEIVING):
                self._close(t)
                t.phase, t.done = Phase.OFFERED, 0
                self._changed(t, FileEvent.FAILED.value, detail="the connection was lost; /accept it again")

    def close(self) -> None:
        """Leaving: delete every unfinished download."""
        with self._lock:
            for t in self.all():
                self._close(t)

    def _accept_refused(self, msg: Error) -> None:
        number = msg.id.partition(":")[2] if msg.id else ""
        t = self.get(int(number)) if number.isdigit() else None
        if t is None or t.phase is not Phase.WAITING:
            return
        gone = msg.code == ErrorCode.NO_SUCH_TRANSFER
        t.phase, t.detail = (Phase.EXPIRED if gone else Phase.OFFERED), clean_line(msg.message)
        self._changed(t, "error", detail=t.detail)

    def _on_offer(self, msg: FileOffer) -> None:
        with self._lock:
            mine = self._preparing.pop(msg.id, None) if msg.id else None
            if mine is not None:
                mine.id = msg.transfer
                mine.detail = f"offered to {msg.recipients}" if msg.to is None else f"offered to {msg.to}"
                self._by_id[msg.transfer] = mine
                if mine.phase is Phase.CANCELLED:  # cancelled while the offer travelled
                    self._send(CancelFile(transfer=msg.transfer, reason="cancelled"))
                    return
                t = mine
            else:
                t = FileTransfer(outgoing=False, id=msg.transfer, name=clean_line(msg.name), size=msg.size,
                                 peer=clean_line(msg.nick), sha256=msg.sha256,
                                 detail="to you" if msg.to else f"to {clean_line(msg.room or 'the room')}")
                self._by_id[msg.transfer] = t
        self._changed(t, "offered", detail=f"{msg.recipients}" if t.outgoing else t.detail)

    def _on_send(self, msg: FileSend) -> None:
        t = self.get(msg.transfer)
        if t is None or not t.outgoing or t.phase.over:
            return
        self._close(t)
        assert t.path is not None
        try:
            t._file = open(t.path, "rb")
        except OSError as exc:
            self._fail(t, f"cannot read {t.path}: {exc.strerror or exc}", tell=True)
            return
        t.phase = Phase.SENDING
        t._round, t._credit, t.done = msg.round, msg.credit, 0
        t.receivers = tuple(clean_line(n) for n in msg.receivers)
        t._samples.clear()
        t.sample(time.monotonic())
        self._changed(t, "started", detail=", ".join(t.receivers))
        self._pump(t)

    def _on_credit(self, msg: FileCredit) -> None:
        t = self.get(msg.transfer)
        if t is None or not t.outgoing or t.phase is not Phase.SENDING or msg.round != t._round:
            return
        t._credit = max(t._credit, msg.credit)
        self._pump(t)

    def _pump(self, t: FileTransfer) -> None:
        """Send what the credit allows."""
        f = t._file
        if f is None:
            return
        try:
            if t.size == 0 and t.done == 0:
                self._send(FileChunk(transfer=t.id or 0, round=t._round, offset=0))
            while t.done < min(t._credit, t.size):
                data = f.read(min(CHUNK_SIZE, t._credit - t.done))
                if not data:
                    raise OSError(0, "the file got shorter while it was being sent")
                self._send(FileChunk(transfer=t.id or 0, round=t._round, offset=t.done, data=data))
                t.done += len(data)
        except OSError as exc:
            self._fail(t, f"cannot read {t.path}: {exc.strerror or exc}", tell=True)
            return
        if t.done >= t.size:
            self._close(t)
            t.phase = Phase.OFFERED
            self._changed(t, "sent", detail=", ".join(t.receivers))
        else:
            self._progress(t)

    def _on_data(self, msg: FileData) -> None:
        t = self.get(msg.transfer)
        if t is None or t.outgoing or t.phase not in (Phase.WAITING, Phase.RECEIVING):
            return  # a cancelled transfer's last chunks
        if msg.offset != t.done or t.done + len(msg.data) > t.size:
            self._give_up(t, f"the data arrived out of order (offset {msg.offset}, expected {t.done})")
            return
        try:
            if t._file is None:
                self._open_download(t)
            assert t._file is not None
            t._file.write(msg.data)
        except OSError as exc:
            self._give_up(t, f"cannot write to {self.downloads}: {exc.strerror or exc}")
            return
        t._hash.update(msg.data)  # type: ignore[attr-defined]
        t.done += len(msg.data)
        self._send(FileAck(transfer=msg.transfer, offset=t.done))
        if t.done == t.size:
            self._finish_download(t)
        else:
            self._progress(t)

    def _open_download(self, t: FileTransfer) -> None:
        self.downloads.mkdir(parents=True, exist_ok=True)
        temp = self.downloads / f".{safe_name(t.name)[:60]}.{secrets.token_hex(4)}.part"
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        t._temp, t._file = temp, os.fdopen(fd, "wb")
        t._hash = hashlib.sha256()
        t.phase = Phase.RECEIVING
        t._samples.clear()
        t.sample(time.monotonic())
        self._changed(t, "started")

    def _finish_download(self, t: FileTransfer) -> None:
        assert t._file is not None and t._temp is not None
        try:
            t._file.flush()
            os.fsync(t._file.fileno())
            t._file.close()
        except OSError as exc:
            self._give_up(t, f"cannot write to {self.downloads}: {exc.strerror or exc}", done=True)
            return
        t._file = None
        digest = t._hash.hexdigest()  # type: ignore[attr-defined]
        if digest != t.sha256:
            self._give_up(t, "the SHA-256 does not match: the file was damaged on the way and was discarded",
                          done=True)
            return
        try:
            t.path = keep(t._temp, self.downloads, t.name)
        except OSError as exc:
            self._give_up(t, f"cannot save to {self.downloads}: {exc.strerror or exc}", done=True)
            return
        t._temp = None
        t.phase = Phase.DONE
        self._send(FileDone(transfer=t.id or 0, ok=True))
        self._changed(t, "saved", detail=str(t.path))

    def _give_up(self, t: FileTransfer, reason: str, *, done: bool = False) -> None:
        """Our download failed: drop the partial file and tell the server."""
        self._close(t)
        t.phase, t.detail = Phase.FAILED, reason
        if done:
            self._send(FileDone(transfer=t.id or 0, ok=False, reason=reason))
        else:
            self._send(CancelFile(transfer=t.id or 0, reason=reason))
        self._changed(t, FileEvent.FAILED.value, detail=reason)

    def _on_update(self, msg: FileUpdate) -> None:
        t = self.get(msg.transfer)
        if t is None:
            return
        nick, reason, event = clean_line(msg.nick), clean_line(msg.reason), msg.event
        if msg.over and not t.phase.over:
            self._close(t)
            t.detail = reason
            # CLOSED: our offer is over (`reason` says how many got it).  An event that
            # does not end anything by itself (a server of another version?) ends as failed.
            t.phase = _OVER_AS.get(event, Phase.FAILED)
        elif event is FileEvent.RECEIVED and t.outgoing:
            t.delivered += 1
        elif event is FileEvent.STOPPED and t.outgoing and t.phase is Phase.SENDING:
            self._close(t)
            t.phase = Phase.OFFERED
        elif event is FileEvent.QUEUED and not t.outgoing:
            t.detail = reason
        elif msg.over:
            return  # already over here (we cancelled it ourselves)
        self._changed(t, event.value, nick=nick, detail=reason)

    # ------------------------------------------------------------------ helpers

    def _progress(self, t: FileTransfer) -> None:
        now = time.monotonic()
        t.sample(now)
        if now - t._shown >= PROGRESS_INTERVAL:
            t._shown = now
            self._changed(t, "progress")

    def _fail(self, t: FileTransfer, reason: str, *, tell: bool = False) -> None:
        with self._lock:
            self._preparing.pop(t.offer_id, None)
            self._close(t)
            t.phase, t.detail = Phase.FAILED, reason
        if tell and t.id is not None:
            self._send(CancelFile(transfer=t.id, reason=reason))
        self._changed(t, "error", detail=reason)

    def _close(self, t: FileTransfer) -> None:
        """Close the open file; a download that did not finish is deleted."""
        f, t._file = t._file, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
        temp, t._temp = t._temp, None
        if temp is not None:
            try:
                temp.unlink()
            except OSError:
                pass

    def _changed(self, t: FileTransfer, what: str, *, nick: str = "", detail: str = "") -> None:
        self._emit(TransferChanged(t, what, nick, detail))
