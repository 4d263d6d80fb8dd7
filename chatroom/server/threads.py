"""A thread per connection, without ``threading.Thread``.

socketserver's ``ThreadingMixIn`` makes a ``threading.Thread`` per request: with its
``Event`` (a ``Condition``, its lock's bound methods, an empty ``deque`` of waiters),
its exception hook's closure and its registry entries, 2.5 KiB of Python objects that
live as long as the connection -- a tenth of a member's memory in a room of 10,000
(``scripts/bench.py --only scale``).  Nothing here uses them: the server tracks its
connections itself (``tcp.py``) and joins a connection's thread by its ``ended`` lock
(``connection.py``).  So the server starts each connection's thread with :func:`start`,
on ``_thread``, the primitive ``threading`` is built on.

One rule comes with it: nothing on such a thread may call
``threading.current_thread()``, which would register a "dummy" ``Thread`` for it that
is never freed.  ``logging`` does so for every record unless ``logging.logThreads``
is off: :func:`quiet_thread_names` turns it off (our log lines never show a thread's
name).  ``tests/server/test_server.py`` holds the server to it.
"""

from __future__ import annotations

import _thread
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["quiet_thread_names", "start"]


def quiet_thread_names() -> None:
    """Log records without the thread's name (its lookup would leak on our threads)."""
    logging.logThreads = False


def start(function: Callable[..., object], *args: Any) -> None:
    """Run ``function(*args)`` on a new daemonic thread (as socketserver's would be
    with ``daemon_threads = True``).  Raises ``RuntimeError`` if none can start."""
    _thread.start_new_thread(function, args)
