"""A thread per connection, without ``threading.Thread``.

socketserver's ``ThreadingMixIn`` makes a ``threading.Thread`` per request: with its
``Event`` (a ``Condition``, its lock's bound methods, an empty ``deque`` of waiters),
its exception hook's closure and its registry entries, 2.5 KiB of Python objects that
live as long as the connection -- a tenth of a member's memory in a room of 10,000
(``scripts/bench.py --only scale``).  Nothing here uses them: the server tracks its
connections itself (``tcp.py``) and joins a connection's thread by its ``ended`` lock
(``connection.py``).  So :class:`LightThreads` starts the same
``process_request_thread`` with ``_thread``, the primitive ``threading`` is built on.

One rule comes with it: nothing on such a thread may call
``threading.current_thread()``, which would register a "dummy" ``Thread`` for it that
is never freed.  ``logging`` does so for every record unless ``logging.logThreads``
is off: :func:`quiet_thread_names` turns it off (our log lines never show a thread's
name).  ``tests/server/test_server.py`` holds the server to it.
"""

from __future__ import annotations

import _thread
import logging
from typing import TYPE_CHECKING, Any

__all__ = ["LightThreads", "quiet_thread_names"]


def quiet_thread_names() -> None:
    """Log records without the thread's name (its lookup would leak on our threads)."""
    logging.logThreads = False


class LightThreads:
    """Mixed in before ``socketserver.ThreadingMixIn``: its ``process_request``, on a
    ``_thread`` thread (daemonic, as ours are: ``daemon_threads = True``)."""

    if TYPE_CHECKING:
        def process_request_thread(self, request: Any, client_address: Any) -> None: ...  # ThreadingMixIn's

    def process_request(self, request: Any, client_address: Any) -> None:
        _thread.start_new_thread(self.process_request_thread, (request, client_address))
