"""The server's output side: bounded outboxes and one flusher thread.

Broadcasting must never block on a socket, or one member who stops reading freezes
the room.  So a broadcast only *appends* bytes to each recipient's :class:`Outbox`
(memory, bounded); then :meth:`Outbox.flush` tries one non-blocking ``send`` of
everything pending (``MSG_DONTWAIT``: the socket stays blocking for its reader).
What the kernel does not take waits for the :class:`Flusher`, one thread that watches
the backed-up sockets with ``selectors`` and writes each one's whole backlog when it
drains.  Frames queued together go out in one ``send``: coalescing is where the speed
is (see ../shared/notes/performance.md and ``scripts/bench.py``).

An outbox that would grow past its limit refuses the data and reports overflow: the
server then drops that client as "too slow" instead of buffering without bound.  Before
that, an outbox past its high-water mark (half the limit) is *behind*: the sender
whose messages filled it waits until it is back under its low-water mark (a quarter)
-- see ``pace.py`` -- so a reader that reads, however slowly, is kept up with rather
than dropped.  (Marks lower than these held senders back often enough to cost a
fifth of the throughput of ten senders flooding a room of 100: ``bench.py --compare``.)
"""

from __future__ import annotations

import logging
import selectors
import socket
import struct
import threading
import time
from collections import deque
from typing import Any

__all__ = ["DEFAULT_OUTBOX_LIMIT", "Outbox", "Flusher", "SENT", "QUEUED", "REFUSED"]

try:  # the bytes a socket has not sent yet (Linux: SIOCOUTQ, the same number as TIOCOUTQ)
    import fcntl
    import termios

    _OUTQ: int | None = termios.TIOCOUTQ
except (ImportError, AttributeError):  # pragma: no cover -- Windows, or a platform without it
    _OUTQ = None

#: What :meth:`Outbox.put_or_send` did.
SENT, QUEUED, REFUSED = 0, 1, 2

log = logging.getLogger(__name__)

#: 1 MiB holds several seconds of a busy room for a client that stalls briefly (a
#: laptop lid, a slow Wi-Fi burst), yet 2,000 stalled clients cost at most 2 GiB.
DEFAULT_OUTBOX_LIMIT = 1024 * 1024

_SEND_FLAGS = getattr(socket, "MSG_DONTWAIT", 0) | getattr(socket, "MSG_NOSIGNAL", 0)

#: Join at most this much per send: big enough to amortise the system call, small
#: enough not to copy megabytes for a peer that will take a fraction of it.
_MAX_SEND = 256 * 1024


class Outbox:
    """Frames waiting to go to one socket, at most ``limit`` bytes of them.

    Producers and consumers are kept apart so the broadcast path takes no lock per
    recipient:

    * **Producers** (:meth:`put`) must be serialised by the caller: the server holds
      its hub lock (``producer_lock``) around every put, which is also what keeps every
      member's view in the same order.  A put appends a *shared* ``bytes`` object (the
      frame encoded once for the whole room) to a list: no copy.
    * **Consumers** (:meth:`flush`, the flusher) take a per-outbox try-lock, join what
      is queued and send it in one call.

    The size is ``queued - sent``: two counters, each written by one side only.
    """

    __slots__ = (
        "sock", "limit", "flusher", "producer_lock", "overflowed", "idle", "owner", "stalled_at", "seen_at",
        "seen_taken",
        "_send", "_chunks", "_queued", "_sent", "_partial", "_flush_lock", "_parked", "_closed", "_drained",
    )

    def __init__(self, sock: socket.socket, flusher: Flusher, producer_lock: threading.RLock,
                 limit: int = DEFAULT_OUTBOX_LIMIT) -> None:
        self.sock = sock
        self.limit = limit
        self.flusher = flusher
        self.producer_lock = producer_lock
        self.overflowed = False
        self.idle = True  # nothing queued, parked or being sent (see put_or_send)
        self.owner: Any = None  # the connection it belongs to (told when it overflows)
        self._send = sock.send
        # A list, not a deque: an idle member's empty list is 56 bytes, an empty deque
        # 624 (its first block) -- in a room of 10,000 mostly idle members, 5 MiB.
        self._chunks: list[bytes] = []
        self._queued = 0  # bytes ever put (producers only)
        self._sent = 0  # bytes sent or dropped (consumers only)
        self._partial: memoryview | None = None  # the unsent tail of the last send
        self._flush_lock = threading.Lock()
        self._parked = False  # the flusher owns writing until the backlog is gone
        self._closed = False
        self._drained: threading.Event | None = None  # set when it is caught up (a sender waits)
        #: ``taken()`` when a waiting sender judged its reader stalled (``pace.py``).
        self.stalled_at: int | None = None
        #: Its reader's progress as last seen -- when, and ``taken()`` then: looked at
        #: each time the kernel would take no more (the socket is full) and by the
        #: senders that look whether it is stalled (``pace.waited_for``).
        self.seen_at = 0.0
        self.seen_taken = 0

    def __len__(self) -> int:
        return self._queued - self._sent

    def behind(self) -> bool:
        """Past the high-water mark: its reader is behind (half the limit queued).  Never
        once closed: a sender waiting for it would find it caught up at once, look
        again, and spin until its connection's thread had taken it out of the room."""
        return (self._queued - self._sent) * 2 > self.limit and not self._closed

    def caught_up(self) -> bool:
        """Back under the low-water mark (a quarter of the limit), or gone."""
        return (self._queued - self._sent) * 4 <= self.limit or self._closed

    def taken(self) -> int:
        """How many bytes its reader has taken: what left this outbox, less what still
        sits in the kernel's send queue (Linux tells; elsewhere the outbox's count alone).
        It grows while the reader reads, however slowly, even while the kernel's own
        buffer -- megabytes on loopback -- hides the outbox's progress."""
        return self._sent - self._in_kernel()

    def _in_kernel(self) -> int:
        """Bytes sent to the socket that its peer has not taken (Linux; 0 elsewhere)."""
        if _OUTQ is None or self._closed:
            return 0
        try:
            return int(struct.unpack("i", fcntl.ioctl(self.sock.fileno(), _OUTQ, b"\0\0\0\0"))[0])
        except (OSError, ValueError):  # closed meanwhile
            return 0

    def wait_caught_up(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for :meth:`caught_up` (a sender keeping pace,
        never under the hub lock).  True if it is."""
        event = self._drained
        if event is None or event.is_set():
            event = self._drained = threading.Event()
        if self.caught_up():  # (looked at after the event is in place: no wake-up is lost)
            return True
        event.wait(timeout)
        return self.caught_up()

    def _progress(self) -> None:
        """The socket took bytes: wake a sender waiting for this reader if it caught up."""
        event = self._drained
        if event is not None and self.caught_up():
            event.set()

    def put(self, data: bytes) -> bool:
        """Queue ``data``; never blocks or sends.  False if that would overflow.
        The caller holds ``producer_lock``."""
        if self._closed:
            return True  # the connection is going away; nothing to deliver to
        self.idle = False
        if self._queued - self._sent + len(data) > self.limit:
            self.overflowed = True
            return False
        self._chunks.append(data)
        self._queued += len(data)
        return True

    def put_or_send(self, data: bytes) -> int:
        """The broadcast's fast path: if nothing is queued or being sent, send ``data``
        at once (non-blocking: a socket call that cannot block, so allowed under the
        producer lock), else queue it.  Returns SENT (nothing left to flush), QUEUED
        (flush this outbox afterwards) or REFUSED (it would overflow).  The caller
        holds ``producer_lock``.

        This runs once per recipient of every message, so an idle outbox is one flag
        and the ``send``: ``idle`` is True only while nothing is queued, parked or
        being sent, and only a producer (holding ``producer_lock`` and, to set it,
        ``_flush_lock`` after looking) makes it True; anything that queues makes it
        False first.  Consumers send only what is queued, so none can be sending while
        it is True, and no lock is needed to send then.
        """
        if self.idle:
            try:
                # sock.send, not the bound self._send: after each send() the kernel has
                # evicted these objects from the CPU cache, and one object fewer per
                # recipient is measurable (see hub._Plan).
                sent = self.sock.send(data, _SEND_FLAGS)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.idle = False
                self._closed = True  # the peer is gone; its reader sees that too and cleans up
                return SENT
            if sent == len(data):
                return SENT  # the common case: in the kernel, no bookkeeping at all
            self.idle = False
            with self._flush_lock:  # uncontended: nothing was pending, and only we queue
                self._keep_rest(data, sent)
            self.flusher.watch(self)
            return SENT
        return self._put_busy(data)

    def _put_busy(self, data: bytes) -> int:
        """:meth:`put_or_send` when the outbox was not idle: queue behind what waits,
        or -- if that was sent meanwhile and nobody is sending -- send at once."""
        # acquire(False), not acquire(blocking=False): the keyword doubles the cost of
        # the call in CPython 3.11.
        if self._chunks or self._parked or self._closed or not self._flush_lock.acquire(False):
            return QUEUED if self.put(data) else REFUSED
        try:
            if self._partial is not None or self._parked or self._chunks:
                return QUEUED if self.put(data) else REFUSED
            if not self._send_alone(data):
                return SENT
        finally:
            self._flush_lock.release()
        self.flusher.watch(self)
        return SENT

    def _send_alone(self, data: bytes) -> bool:
        """Nothing pending and nobody sending (the flush lock held): send ``data``,
        idle again if it all went.  True if part of it is left for the flusher."""
        try:
            sent = self._send(data, _SEND_FLAGS)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._closed = True
            return False
        if sent == len(data):
            self.idle = True
            return False
        self._keep_rest(data, sent)
        return True

    def _keep_rest(self, data: bytes, sent: int) -> None:
        """The kernel took ``sent`` bytes of ``data``: the rest waits for the flusher
        (watch this outbox next).  Hold ``_flush_lock``."""
        self._queued += len(data)
        self._sent += sent
        self._partial = memoryview(data)[sent:]
        self._parked = True
        self._full()

    def _full(self) -> None:
        """The kernel takes no more: what the reader has taken so far is noted, so that
        a sender looking soon after can tell whether it takes anything (``pace.py``): a
        reader that stopped shows it from the moment its socket filled, not from the
        moment its outbox fell behind.  (A system call each time the socket fills.)"""
        self.seen_at = time.monotonic()
        self.seen_taken = self.taken()

    def send_now(self, data: bytes) -> None:
        """Queue ``data`` and flush (any thread: takes ``producer_lock`` itself)."""
        with self.producer_lock:
            ok = self.put(data)
        if ok:
            self.flush()

    def flush(self) -> None:
        """Send what the kernel takes now; hand any rest to the flusher.  Any thread."""
        while self._chunks and not self._parked and not self._closed:
            if not self._flush_lock.acquire(False):
                return  # another thread is flushing; it re-checks after releasing
            try:
                if self._parked:
                    return
                blocked = not self._send_some()
                if blocked and not self._closed:
                    self._parked = True
            finally:
                self._flush_lock.release()
            if self._parked:
                self.flusher.watch(self)
                return
            # Loop: a producer may have appended while we held the lock and given up.

    def close(self) -> None:
        """Drop anything pending; further puts are ignored.  Call before closing the
        socket, so the flusher forgets it before its descriptor can be reused."""
        self.idle = False
        self._closed = True
        # A producer may be in an idle outbox's send, which takes no flush lock: it
        # holds the producer lock, so taking that waits for it (never the reverse order).
        with self.producer_lock, self._flush_lock:
            self._chunks.clear()
            self._partial = None
            parked, self._parked = self._parked, False
        if parked:
            self.flusher.forget(self)
        event = self._drained
        if event is not None:
            event.set()  # nobody waits for a reader that is gone

    @property
    def closed(self) -> bool:
        return self._closed

    def _send_some(self) -> bool:
        """Send pending bytes until done (True) or the kernel is full (False).
        Hold ``_flush_lock``."""
        chunks = self._chunks
        while self._partial is not None or chunks:
            if self._partial is not None:
                data: bytes | memoryview = self._partial
                self._partial = None
            else:
                # Coalesce: everything queued goes out in as few sends as possible --
                # the first chunks, up to _MAX_SEND, taken off the front at once.  (A
                # producer appends meanwhile without a lock: each list operation is
                # whole under the GIL, and appends land behind the ones taken.)
                taken, size, queued = 0, 0, len(chunks)
                while taken < queued and size < _MAX_SEND:
                    size += len(chunks[taken])
                    taken += 1
                parts = chunks[:taken]
                del chunks[:taken]
                data = parts[0] if taken == 1 else b"".join(parts)
            try:
                sent = self.sock.send(data, _SEND_FLAGS)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                # The peer is gone; its reader thread sees that too and cleans up.
                self._closed = True
                self._sent += len(data) + sum(len(c) for c in chunks)
                chunks.clear()
                return True
            self._sent += sent
            if sent:
                self._progress()
            if sent < len(data):
                self._partial = memoryview(data)[sent:]
                self._full()
                return False
        return True

    def _drain(self) -> bool:
        """Called by the flusher when the socket is writable.  True when done."""
        with self._flush_lock:
            if self._closed or self._send_some():
                self._parked = False
                done = True
            else:
                done = False
        if done and self._chunks and not self._closed:
            self.flush()  # a producer appended after our last look
        return done


class Flusher:
    """One thread that writes the backlogs of sockets the kernel could not take at once."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        # (outbox, watch?) in order: a forget always precedes the reuse of its fd
        self._incoming: deque[tuple[Outbox, bool]] = deque()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="chatroom-flusher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def watch(self, outbox: Outbox) -> None:
        """Take over writing ``outbox`` until its backlog is gone (any thread)."""
        self._incoming.append((outbox, True))
        self._wake()

    def forget(self, outbox: Outbox) -> None:
        """Stop watching ``outbox`` (any thread)."""
        self._incoming.append((outbox, False))
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except BlockingIOError:
            pass  # a wake-up is already pending

    @property
    def backlog(self) -> int:
        """Sockets currently waiting to be writable (for tests and stats)."""
        return len(self._selector.get_map()) - 1

    def stop(self) -> None:
        self._stop = True
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _run(self) -> None:
        sel = self._selector
        while not self._stop:
            for key, _ in sel.select():
                if key.fileobj is self._wake_r:
                    self._take_incoming()
                    continue
                outbox: Outbox = key.data
                try:
                    # An earlier event of this same batch (a wake-up carrying a
                    # forget) may have unregistered it, or handed its fd to another.
                    if sel.get_key(key.fileobj).data is not outbox:
                        continue
                except (KeyError, ValueError):
                    continue
                try:
                    done = outbox._drain()
                except Exception:  # never let one socket kill the output thread
                    log.exception("flusher: writing failed")
                    done = True
                if done:
                    try:
                        sel.unregister(key.fileobj)
                    except (KeyError, ValueError):
                        pass

    def _take_incoming(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        sel = self._selector
        while self._incoming:
            outbox, watch = self._incoming.popleft()
            if not watch:
                # Only parked sockets are in the map: a short scan.
                for key in [k for k in sel.get_map().values() if k.data is outbox]:
                    sel.unregister(key.fileobj)
                continue
            if outbox._drain():
                continue
            try:
                sel.register(outbox.sock, selectors.EVENT_WRITE, outbox)
            except KeyError:  # the fd is already watched (for this outbox: keep it)
                sel.modify(outbox.sock, selectors.EVENT_WRITE, outbox)
            except (ValueError, OSError):  # the socket was closed meanwhile
                outbox.close()
