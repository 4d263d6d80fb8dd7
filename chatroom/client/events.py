"""What the client's parts tell each other: the connection's state, the messages the
user sent and what became of them, file transfers and their progress.  No I/O.

Plain data, in a module of its own so that the pure parts (``transcript.py``,
``windows.py``) can take them without importing the connection (sockets, TLS,
threads) or the transfers (files, hashing threads).
"""

from __future__ import annotations

import enum
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from chatroom.protocol import Action, Direct, Say
from chatroom.text import human_size

__all__ = ["ConnState", "StateChanged", "Outgoing", "OutgoingChanged", "Trusted", "Phase", "FileTransfer",
           "TransferChanged", "human_rate", "RATE_WINDOW"]

#: The transfer rate shown is measured over this many seconds.
RATE_WINDOW = 3.0


class ConnState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # will retry
    CLOSED = "closed"  # for good


@dataclass(frozen=True)
class StateChanged:
    """The connection state changed.  ``retry_in``: seconds until the next attempt."""

    state: ConnState
    detail: str = ""
    retry_in: float | None = None


@dataclass(eq=False)
class Outgoing:
    """A message the user sent, until the server acknowledges or refuses it."""

    id: str
    message: Say | Action | Direct
    status: str = "pending"  # pending -> acked | refused
    error: str = ""


@dataclass(frozen=True)
class Trusted:
    """A TLS server's certificate, and whether we just met it (trust on first use)."""

    server: str
    fingerprint: str
    first_time: bool


@dataclass(frozen=True)
class OutgoingChanged:
    """An outgoing message was queued, acknowledged or refused."""

    outgoing: Outgoing


class Phase(enum.Enum):
    HASHING = "hashing"  # ours: computing the SHA-256 before offering
    OFFERED = "offered"  # ours: open for accepts; theirs: waiting for our answer
    WAITING = "waiting"  # theirs: accepted, the data has not started yet
    SENDING = "sending"
    RECEIVING = "receiving"
    DONE = "done"  # theirs: verified and kept; ours: the offer is over
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def active(self) -> bool:
        return self in (Phase.HASHING, Phase.SENDING, Phase.RECEIVING)

    @property
    def over(self) -> bool:
        return self in (Phase.DONE, Phase.FAILED, Phase.CANCELLED, Phase.REJECTED, Phase.EXPIRED)


@dataclass(eq=False)
class FileTransfer:
    """One file offer, ours (``outgoing``) or someone else's."""

    outgoing: bool
    name: str  # the name as offered, cleaned for display
    size: int
    peer: str  # theirs: who offers it; ours: "the room" or a nick
    id: int | None = None  # the server's transfer number (ours: once the server confirmed)
    phase: Phase = Phase.OFFERED
    sha256: str = ""
    done: int = 0  # bytes sent (this round) or received
    path: Path | None = None  # ours: the file sent; theirs: where it was kept
    detail: str = ""  # why it failed, or what is happening
    receivers: tuple[str, ...] = ()  # ours: who this round is for
    delivered: int = 0  # ours: receivers that confirmed the checksum
    offer_id: str = ""
    # working state (network thread)
    _file: BinaryIO | None = field(default=None, repr=False)
    _hash: object = field(default=None, repr=False)
    _temp: Path | None = field(default=None, repr=False)
    _round: int = 0
    _credit: int = 0
    _samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64), repr=False)
    _shown: float = 0.0  # when progress was last reported

    @property
    def percent(self) -> float:
        return 100.0 if self.size == 0 else 100.0 * self.done / self.size

    def rate(self, now: float | None = None) -> float:
        """Bytes per second over the last few seconds (0 when stalled)."""
        now = time.monotonic() if now is None else now
        recent = [s for s in self._samples if now - s[0] <= RATE_WINDOW]
        if not recent:
            return 0.0
        then, at = recent[0]
        return (self.done - at) / max(now - then, 0.2)

    def sample(self, now: float) -> None:
        if not self._samples or now - self._samples[-1][0] >= 0.05:
            self._samples.append((now, self.done))

    def progress_text(self, *, short: bool = False) -> str:
        """'notes.pdf 45% 9.0 MiB/20.0 MiB 31.2 MiB/s' for the status bar (``short``:
        'notes.pdf 45%', which the full text starts with)."""
        arrow = "↑" if self.outgoing else "↓"
        if self.phase in (Phase.HASHING, Phase.WAITING):
            return f"{arrow} {_short(self.name)} {self.phase.value}…"
        if short:
            return f"{arrow} {_short(self.name)} {self.percent:.0f}%"
        rate = f" {human_rate(self.rate())}" if self.phase in (Phase.SENDING, Phase.RECEIVING) else ""
        return (f"{arrow} {_short(self.name)} {self.percent:.0f}% {human_size(self.done)}/{human_size(self.size)}"
                f"{rate}")


@dataclass(frozen=True)
class TransferChanged:
    """Something happened to ``transfer``: ``what`` is a :class:`FileEvent` value, or
    'offered', 'started', 'progress', 'saved', 'sent', 'error' for our own news;
    ``nick`` is who (a receiver, for our offers); ``detail`` says more."""

    transfer: FileTransfer
    what: str
    nick: str = ""
    detail: str = ""


def human_rate(rate: float) -> str:
    return f"{human_size(rate)}/s"


def _short(name: str, width: int = 24) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


