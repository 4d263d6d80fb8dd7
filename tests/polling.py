"""The one way tests wait: poll a condition until a deadline, never a bare sleep."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable


def wait_until(pred: Callable[[], object], timeout: float = 10.0, what: str = "condition",
               interval: float = 0.01) -> None:
    """Return as soon as ``pred()`` is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class Events:
    """Collects a client's events (delivered on its network thread)."""

    def __init__(self) -> None:
        self.q: queue.Queue[object] = queue.Queue()
        self.seen: list[object] = []

    def __call__(self, event: object) -> None:
        self.q.put(event)

    def wait(self, pred, timeout: float = 10.0) -> object:
        deadline = time.monotonic() + timeout
        for event in self.seen:
            if pred(event):
                self.seen.remove(event)
                return event
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching event; last: {self.seen[-5:]}")
            try:
                event = self.q.get(timeout=remaining)
            except queue.Empty:
                continue
            if pred(event):
                return event
            self.seen.append(event)
