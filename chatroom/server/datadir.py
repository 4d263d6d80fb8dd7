"""One server per data directory.

Two servers on one ``history.sqlite3`` each hand out the same sequence numbers, and the
second's first message makes every later one of the first's fail ("UNIQUE constraint
failed").  So a server holds an exclusive lock on ``server.lock`` in its data
directory for as long as it runs -- an advisory ``flock`` (``msvcrt.locking`` on
Windows) that the kernel drops when the process ends, however it ends: no stale lock
after a crash -- and writes its PID and port into the file, so that a second server
can say who has it.

(Not the ``filelock`` package: it truncates the lock file when it opens it, and the
holder's PID and port are what the refused server must read.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from chatroom.errors import ChatroomError

__all__ = ["DataDirError", "DataDirBusy", "DataDirLock", "LOCK_NAME"]

LOCK_NAME = "server.lock"


class DataDirError(ChatroomError):
    """The data directory cannot be used; the message names it and says why."""


class DataDirBusy(DataDirError):
    """Another server is using the data directory."""


class DataDirLock:
    """Hold ``directory`` for this process: :meth:`acquire` (raises :class:`DataDirBusy`
    naming the holder), :meth:`note` the port once bound, :meth:`release` at the end."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        directory = self.directory
        if directory.exists() and not directory.is_dir():
            raise DataDirError(f"the data directory {directory} is a file, not a directory: "
                               "choose another with --data-dir")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise DataDirError(f"cannot use the data directory {directory}: {exc.strerror or exc}") from None
        if not _try_lock(fd):
            holder = _read(fd)
            os.close(fd)
            raise DataDirBusy(f"another chatroom server ({holder or 'PID unknown'}) is using the data directory "
                              f"{directory}: stop it first, or give this one its own with --data-dir")
        self._fd = fd
        self._write(f"PID {os.getpid()}")

    def note(self, port: int) -> None:
        """Add the port this server listens on, for a refused second server to name."""
        self._write(f"PID {os.getpid()}, port {port}")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            os.close(fd)  # (the lock goes with the descriptor)

    def _write(self, text: str) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, text.encode())


def _read(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 200).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _try_lock(fd: int) -> bool:
    """An exclusive lock on ``fd``'s file, or False if another process holds it.  (The
    platform's module is imported here: ``fcntl`` does not exist on Windows.)"""
    try:
        if sys.platform == "win32":  # pragma: no cover -- not run on our CI
            import msvcrt

            os.lseek(fd, 1024, os.SEEK_SET)  # a byte past the holder's text, which others read
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # (BlockingIOError: held by another process)
        return False
    return True
