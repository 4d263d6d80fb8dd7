"""Backpressure: a sender that floods a room is slowed to the pace of the room's
readers, instead of the readers being dropped as too slow.

After a connection's batch is flushed (its reader thread, outside the hub lock), the
outboxes that batch filled past their high-water mark are *behind* (``outbox.py``).
When more than half of the other members it spoke to lag (more than the low-water
mark not yet taken by their readers, the kernel's send queue included:
``hub.room_lags``), the room as a whole reads slower than the sender writes:
the sender's reader thread then
waits for each of them to get back under its low-water mark -- and while it waits it
does not read its socket, so the sender's client is slowed by TCP exactly as a fast
writer is slowed by a slow reader.  A few laggards in a room that keeps up are not
waited for: a reader far behind the rest of its room is dropped as too slow when its
outbox fills, as before.  Two more exceptions keep one bad reader from holding a room:

* a reader that has taken no byte for :data:`STALL` seconds is *stalled* (its progress
  is read from the kernel's send queue, not only from the outbox, whose progress the
  kernel's own buffer hides): nobody waits for it again until it takes a byte, its
  outbox fills, and it is dropped as too slow, as before;
* a sender's own outbox (its echoes and acks) does not count in whether the room
  lags; but when it is behind itself, the sender waits for it as for any other: a
  client that writes faster than it reads what comes back is slowed to its own
  reading, not dropped.  (A client that reads only between its writes, blocked in a
  write meanwhile, takes nothing while its sender waits: it is judged stalled, as
  above, and the sender goes on.)

The rate limit stays the first defence (a flood is refused long before this, at the
defaults); this is the second, for ``--rate 0`` and for many senders at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from chatroom.server.hub import room_lags
from chatroom.server.outbox import Outbox

__all__ = ["BURST", "STALL", "keep_pace", "to_wait_for"]

log = logging.getLogger("chatroom.server")

#: A reader behind that takes nothing for this long is not waited for (a client that
#: stopped reading: a closed laptop, a hung program).  It only matters in a room whose
#: majority lags (a few laggards are never waited for), so it can be long enough for a
#: reader on a loaded machine: at 0.25 s, readers starved of CPU for that long were
#: taken for stalled and dropped.  Being judged stalled only means the sender goes on.
STALL = 1.0

#: How often a waiting sender looks again (it is also woken when a reader catches up).
_SLICE = 0.02
#: ... and how many looks without progress it takes, besides STALL's time, to judge a
#: reader stalled: a second in which this thread hardly ran (the machine paused, a
#: loaded host, the GIL) is not a second in which the reader was seen not reading.  On
#: two shared cores with two CPU-bound processes beside the tests, readers that read
#: were taken for stalled after 1.2-1.4 s of wall time and dropped.
_LOOKS = int(STALL / _SLICE) // 2


#: A run of this many chat messages from one read is a burst: before it is fanned out,
#: its sender looks whether its room is behind (``to_wait_for``).  (A message or two
#: adds a few hundred bytes to each outbox: not worth a look at every member.)
BURST = 8


def to_wait_for(room: tuple[Any, ...], own: Outbox | None) -> list[Outbox]:
    """The outboxes of ``room`` past their high-water mark that a sender must wait for
    before it adds a burst -- none unless the room lags as a whole (``room_lags``: a
    few far behind a room that keeps up are not waited for), nor those judged stalled.

    Asked under the hub lock, right before the burst is fanned out, so the look and the
    fan-out are one step: a burst lands only on outboxes under the mark, and however
    many senders flood at once an outbox passes it by one burst at most.  (Looked at
    after each burst only, as before, ten senders' bursts in flight at once -- 64 KiB
    reads, ~90 KB to every outbox each -- filled outboxes past their limit: readers
    that kept up with the rest of the room were dropped as too slow, and the run
    stopped: ``scripts/bench.py``'s browsers row, 12 M deliveries.)"""
    behind = [m.sink.outbox for m in room if m.sink is not None and m.sink.outbox is not own
              and m.sink.outbox.behind()]
    behind = [outbox for outbox in behind if outbox.stalled_at != outbox.taken()]
    if behind and not room_lags(room, own):
        behind = []
    if own is not None and own.behind() and own.stalled_at != own.taken():
        behind.append(own)  # its own echoes and acks: it waits for its own reading
    return behind


def keep_pace(behind: Iterable[Outbox], stopped: threading.Event,
              clock: Callable[[], float] = time.monotonic) -> float:
    """Wait until every outbox of ``behind`` has caught up, is stalled, or is gone, or
    the server stops.  Never under the hub lock.  Returns the seconds waited."""
    started = clock()
    for outbox in behind:
        taken, progress_at, looks = outbox.taken(), started, 0
        if outbox.stalled_at == taken:
            continue  # judged stalled before, and it has taken nothing since
        while not outbox.caught_up() and not stopped.is_set():
            if clock() - progress_at > STALL and looks >= _LOOKS:
                outbox.stalled_at = taken  # stalled: it is left to overflow
                log.info("%s took nothing for %.1f s while behind: not waited for (it is dropped if it "
                         "overflows)", outbox.owner, clock() - progress_at)
                break
            outbox.wait_caught_up(_SLICE)
            looks += 1
            now_taken = outbox.taken()
            if now_taken != taken:
                taken, progress_at, looks = now_taken, clock(), 0
    return clock() - started
