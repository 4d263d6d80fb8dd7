"""Backpressure: a sender that floods a room is slowed to the pace of the room's
readers, instead of the readers being dropped as too slow.

After a connection's batch is flushed (its reader thread, outside the hub lock), the
outboxes that batch filled past their high-water mark are *behind* (``outbox.py``);
before a burst lands (``to_wait_for``, under the hub lock) the sender looks whether any
outbox of the room it goes to is (``burst_room``).  Which of them it waits for
(``worth_waiting``):

* the others' when more than half of the room lags (``room_lags``: more than the
  low-water mark not yet taken by their readers, the kernel's send queue included):
  the room as a whole reads slower than the sender writes.  A few laggards in a room
  that keeps up are not waited for: a reader far behind the rest of its room is
  dropped as too slow when its outbox fills;
* its own (its echoes and acks) whenever it is behind: a client that writes faster
  than it reads what comes back is slowed to its own reading, not dropped.

The sender's reader thread then waits for each of them to get back under its
low-water mark -- and while it waits it does not read its socket, so the sender's
client is slowed by TCP exactly as a fast writer is slowed by a slow reader.  It does
not wait for a *stalled* reader: one that, while waited for, takes less than
:data:`MIN_RATE` bytes a second over :data:`STALL` seconds (its progress is read from
the kernel's send queue, not only from the outbox, whose progress the kernel's own
buffer hides).  Nobody waits for it again until it has taken :data:`RESUME` bytes; its
outbox fills, and it is dropped as too slow.  So a reader that trickles bytes to hold
the room hostage is let go like one that stopped.  (A client that reads only between
its blocking writes takes nothing while its sender waits for its own outbox: it is
judged stalled the same way, and its sender goes on.)

Three holes this closed, each of which had the bench's 100 members, 10 senders flood
(``scripts/bench.py``, 40 M deliveries) drop readers that read: a sender never waited
for its own outbox, and its own burst overflowed it while its neighbours waited; a
sender's first burst was not looked at (it had not spoken to its room yet), and a
sender whose thread first ran when the room's outboxes were nearly full overflowed
them; and a closed outbox counted as behind, so a sender spun on it.  Waiting for
every reader behind instead, whatever the rest of its room did, a reader that had
stopped cost a room that keeps up the second it takes to judge it stalled (the bench's
"the others keep" row: 46-85 % against 96-100 %).

The rate limit stays the first defence (a flood is refused long before this, at the
defaults); this is the second, for ``--rate 0`` and for many senders at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from chatroom.server.outbox import Outbox

if TYPE_CHECKING:
    from chatroom.server.members import Member

__all__ = ["BURST", "MIN_RATE", "RESUME", "STALL", "burst_room", "keep_pace", "room_lags", "to_wait_for",
           "waited_for", "worth_waiting"]

log = logging.getLogger("chatroom.server")

#: A reader behind that takes less than MIN_RATE a second for this long is not waited
#: for (a client that stopped reading: a closed laptop, a hung program).  Long enough
#: for a reader on a loaded machine: at 0.25 s, readers starved of CPU for that long
#: were taken for stalled and dropped.  Being judged stalled only means the sender goes on.
STALL = 1.0

#: How often a waiting sender looks again (it is also woken when a reader catches up).
_SLICE = 0.02
#: ... and how many looks a window takes, besides STALL's time, to judge a reader
#: stalled: a second in which this thread hardly ran (the machine paused, a loaded
#: host, the GIL) is not a second in which the reader was seen not reading.  On two
#: shared cores with two CPU-bound processes beside the tests, readers that read were
#: taken for stalled after 1.2-1.4 s of wall time and dropped.
_LOOKS = int(STALL / _SLICE) // 2

#: What a reader waited for must take a second to be waited for still (a phone on a
#: poor link reads ten times that); and what one judged stalled must take before it
#: is waited for again (a reader back from a pause takes that at once; one that
#: trickles a byte a second, to hold the room, never does).
MIN_RATE = 16 * 1024
RESUME = 16 * 1024


#: A run of this many chat messages from one read is a burst: before it is fanned out,
#: its sender looks whether its room is behind (``to_wait_for``).  (A message or two
#: adds a few hundred bytes to each outbox: not worth a look at every member.)
BURST = 8


def to_wait_for(room: tuple[Any, ...], own: Outbox | None) -> list[Outbox]:
    """The outboxes of ``room`` (and ``own``, the sender's) past their high-water mark
    that a sender must wait for before it adds a burst: all but the stalled.

    Asked under the hub lock, right before the burst is fanned out, so the look and the
    fan-out are one step: a burst lands only on outboxes under the mark, and however
    many senders flood at once an outbox passes it by one burst at most.  (Looked at
    after each burst only, as before, ten senders' bursts in flight at once -- 64 KiB
    reads, ~90 KB to every outbox each -- filled outboxes past their limit: readers
    that kept up with the rest of the room were dropped as too slow, and the run
    stopped: ``scripts/bench.py``'s browsers row, 12 M deliveries.)"""
    behind = [m.sink.outbox for m in room if m.sink is not None and m.sink.outbox.behind()]
    return worth_waiting(behind, room, own)


def worth_waiting(behind: list[Outbox], room: tuple[Any, ...], own: Outbox | None) -> list[Outbox]:
    """Of the outboxes ``behind`` (past their high-water mark) of ``room``, those its
    sender waits for: none judged stalled; the others' only when the room lags as a
    whole (``room_lags``); its own whenever it is behind."""
    others = [outbox for outbox in behind if outbox is not own and waited_for(outbox)]
    if others and not room_lags(room, own):
        others = []  # a few far behind a room that keeps up: nobody waits for them
    if own is not None and own.behind() and waited_for(own):
        others.append(own)
    return others


def burst_room(spoke_to: tuple[Any, ...], member: Member) -> tuple[Any, ...]:
    """Where a sender's burst goes, most likely: the recipients of its last fan-out
    (``Batch.spoke_to``) -- or, before its first, everyone in its rooms.  (Looked at
    only once it had spoken, a sender's first burst landed unlooked-at: ten senders
    flooding at once, one whose thread first ran when the room's outboxes were nearly
    full overflowed them, and readers were dropped as too slow.)"""
    if spoke_to:
        return spoke_to
    return tuple(m for room in list(member.rooms.values()) for m in room.everyone())


def waited_for(outbox: Outbox) -> bool:
    """Not judged stalled -- or it has taken :data:`RESUME` bytes since it was."""
    stalled_at = outbox.stalled_at
    return stalled_at is None or outbox.taken() - stalled_at >= RESUME


def room_lags(room: tuple[Any, ...], own: Outbox | None) -> bool:
    """Whether more than half of the other members of ``room`` lag: more than a quarter
    of their outbox limit not yet taken by their reader, counting what waits in the
    kernel's send queue (megabytes on loopback, which hide a slow reader from its outbox).
    Asked only when some outbox is behind; a syscall per member then."""
    outboxes = [m.sink.outbox for m in room if m.sink is not None and m.sink.outbox is not own]
    lagging = sum(1 for outbox in outboxes if outbox.backlog() * 4 > outbox.limit)
    return lagging * 2 > len(outboxes)


def keep_pace(behind: Iterable[Outbox], stopped: threading.Event,
              clock: Callable[[], float] = time.monotonic) -> float:
    """Wait until every outbox of ``behind`` has caught up, is stalled, or is gone, or
    the server stops.  Never under the hub lock.  Returns the seconds waited."""
    started = clock()
    for outbox in behind:
        if not waited_for(outbox):
            continue  # judged stalled before, and it has hardly taken anything since
        since, taken, looks = clock(), outbox.taken(), 0
        while not outbox.caught_up() and not stopped.is_set():
            outbox.wait_caught_up(_SLICE)
            looks += 1
            now = clock()
            if now - since > STALL and looks >= _LOOKS:  # a window's end: did it read?
                now_taken = outbox.taken()
                if now_taken - taken < MIN_RATE * (now - since):
                    outbox.stalled_at = now_taken  # stalled: it is left to overflow
                    log.info("%s took %d bytes in %.1f s while behind: not waited for (it is dropped if it "
                             "overflows)", outbox.owner, now_taken - taken, now - since)
                    break
                since, taken, looks = now, now_taken, 0
    return clock() - started
