"""The test process's threads as the kernel counts them.  The server's handler
threads are started with ``_thread``, not ``threading`` (``chatroom/server/threads.py``):
``threading.active_count()`` does not see them, ``/proc/self/task`` does."""

from __future__ import annotations

import os


def os_threads() -> set[int]:
    """The ids of this process's live threads (Linux)."""
    return {int(tid) for tid in os.listdir("/proc/self/task")}
