"""Backpressure: a sender that floods a room is slowed to the pace of the room's
readers, instead of the readers being dropped as too slow.

After a connection's batch is flushed (its reader thread, outside the hub lock), the
outboxes that batch filled past their high-water mark are *behind* (``outbox.py``);
before a burst lands (``to_wait_for``, under the hub lock) the sender looks whether any
outbox of the room it goes to is (``burst_room``).  It waits for each of them -- the
others' and its own (its echoes and acks: a client that writes faster than it reads
what comes back is slowed to its own reading) -- to get back under its low-water mark,
and while it waits it does not read its socket, so the sender's client is slowed by
TCP exactly as a fast writer is slowed by a slow reader.

It does not wait for a *stalled* reader (``waited_for``): one that has taken less than
:data:`SLACK` bytes in :data:`STALL` seconds while behind -- its progress read from the
kernel's send queue, not only from the outbox, whose progress the kernel's own buffer
(megabytes on loopback) hides, and counted from the moment its socket filled, so a
reader that stopped is known as soon as its outbox falls behind.  Nobody waits for it
again until it has taken :data:`RESUME` bytes; its outbox fills, and it is dropped as
too slow.  So a reader that trickles bytes to hold the room hostage is let go like one
that stopped, while one that reads, however much slower than the rest of its room, is
waited for.  (A client that reads only between its blocking writes takes nothing while
its sender waits for its own outbox: it is judged stalled the same way, and its sender
goes on.)

History, each found by the bench's floods (``scripts/bench.py``) or the tests: a
sender never waited for its own outbox, and its own burst overflowed it while its
neighbours waited; a sender's first burst was not looked at (it had not spoken to its
room yet), and a sender whose thread first ran when the room's outboxes were nearly
full overflowed them; a closed outbox counted as behind, so a sender spun on it.  A
stalled reader was judged over a one-second window of waiting, which cost a room with
one member that stopped reading a second of its flood (the bench's "the others keep"
row: 46-85 %); so readers behind were waited for only when most of the room lagged --
and three members reading at half the pace of the seven flooding them were dropped as
too slow (``tests/server/test_pace.py``, 1 run in 4).  Judged from the moment its socket
filled, a stalled reader costs next to nothing, and a slow one is waited for.

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

__all__ = ["BURST", "RESUME", "SLACK", "STALL", "burst_room", "keep_pace", "to_wait_for", "waited_for",
           "worth_waiting"]

log = logging.getLogger("chatroom.server")

#: A reader behind that takes less than SLACK bytes in STALL seconds has stopped reading
#: (a closed laptop, a hung program, a reader that trickles bytes to hold its room):
#: it is not waited for.  SLACK: the few KB a kernel still hands a reader that stopped
#: (a closed window's probes); STALL: a tenth of a second, as its outbox fills -- it is
#: counted from the moment the reader's socket filled -- so that one reader that
#: stopped costs a room flooding it next to nothing.  (Being judged stalled only means
#: its senders go on; a reader that was only paused is waited for again as soon as it
#: has taken RESUME bytes -- a reader back from a pause takes that at once; one that
#: trickles a byte a second, to hold the room, never does.)
STALL = 0.1
SLACK = 4 * 1024
RESUME = 16 * 1024

#: How often a waiting sender looks again (it is also woken when a reader catches up).
_SLICE = 0.02


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
    return worth_waiting(behind, own)


def worth_waiting(behind: list[Outbox], own: Outbox | None) -> list[Outbox]:
    """Of the outboxes ``behind`` (past their high-water mark), those their sender waits
    for: every one not judged stalled -- the others' and its own (``own``) when behind."""
    wait = [outbox for outbox in behind if outbox is not own and waited_for(outbox)]
    if own is not None and own.behind() and waited_for(own):
        wait.append(own)
    return wait


def burst_room(spoke_to: tuple[Any, ...], member: Member) -> tuple[Any, ...]:
    """Where a sender's burst goes, most likely: the recipients of its last fan-out
    (``Batch.spoke_to``) -- or, before its first, everyone in its rooms.  (Looked at
    only once it had spoken, a sender's first burst landed unlooked-at: ten senders
    flooding at once, one whose thread first ran when the room's outboxes were nearly
    full overflowed them, and readers were dropped as too slow.)"""
    if spoke_to:
        return spoke_to
    return tuple(m for room in list(member.rooms.values()) for m in room.everyone())


def waited_for(outbox: Outbox, clock: Callable[[], float] = time.monotonic) -> bool:
    """Whether a sender waits for ``outbox`` (one behind): not if its reader has taken
    less than :data:`SLACK` bytes in the :data:`STALL` seconds since its progress was
    last seen (``Outbox.seen_at``: when its socket last filled, or a sender's last look
    that saw it take SLACK) -- it is judged stalled then, and waited for again only once
    it has taken :data:`RESUME` bytes.  A system call (the kernel's send queue)."""
    taken = outbox.taken()
    stalled_at = outbox.stalled_at
    if stalled_at is not None:
        if taken - stalled_at < RESUME:
            return False
        outbox.stalled_at = None  # it reads again: waited for, and judged afresh from now
        outbox.seen_at, outbox.seen_taken = clock(), taken
        return True
    now = clock()
    if taken - outbox.seen_taken >= SLACK:
        outbox.seen_at, outbox.seen_taken = now, taken
        return True
    if now - outbox.seen_at < STALL:
        return True
    outbox.stalled_at = taken  # stalled: it is left to overflow
    log.info("%s took %d bytes in %.2f s while behind: not waited for (it is dropped if it overflows)",
             outbox.owner, taken - outbox.seen_taken, now - outbox.seen_at)
    return False


def keep_pace(behind: Iterable[Outbox], stopped: threading.Event,
              clock: Callable[[], float] = time.monotonic) -> float:
    """Wait until every outbox of ``behind`` has caught up, is stalled, or is gone, or
    the server stops.  Never under the hub lock.  Returns the seconds waited."""
    started = clock()
    for outbox in behind:
        while not outbox.caught_up() and not stopped.is_set() and waited_for(outbox, clock):
            outbox.wait_caught_up(_SLICE)
    return clock() - started
