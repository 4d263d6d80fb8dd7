"""``chatroom join --plain``: lines in from stdin, one line out per room event.

For scripts, pipes, screen readers and classroom demos.  On EOF it waits (bounded)
until the server has acknowledged everything it sent, then leaves, so
``echo "build done" | chatroom join --plain`` delivers its line.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from chatroom.client import ChatClient, ConnState, StateChanged
from chatroom.controller import Controller
from chatroom.transcript import plain_line

__all__ = ["run_plain"]

#: How long to wait at EOF for acknowledgements before leaving anyway.
EOF_ACK_TIMEOUT = 10.0


def run_plain(client: ChatClient, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    """Run until EOF or /quit.  The client must be connected.  Returns an exit status."""
    out_lock = threading.Lock()
    done = threading.Event()

    def emit(text: str) -> None:
        with out_lock:
            stdout.write(text + "\n")
            stdout.flush()

    def on_event(event: object) -> None:
        if isinstance(event, StateChanged):
            if event.state is ConnState.DISCONNECTED:
                emit(f"-- disconnected: {event.detail}; retrying in {event.retry_in:g} s")
            elif event.state is ConnState.CLOSED and not done.is_set():
                emit(f"-- closed: {event.detail}")
                done.set()
            return
        line = plain_line(event, client.nick)
        if line is not None:
            emit(line)

    client.on_event = on_event
    reason = ["quit"]

    def quit(why: str) -> None:
        reason[0] = why or "quit"
        done.set()

    controller = Controller(client, show=lambda text, error: emit(("-- " if not error else "-- error: ") + text),
                            quit=quit)
    status = 0
    try:
        for raw in stdin:
            controller.handle(raw.rstrip("\n"))
            if done.is_set():
                break
    except KeyboardInterrupt:
        status = 130
    if not client.wait_acked(EOF_ACK_TIMEOUT):
        unsent = len(client.pending())
        emit(f"-- {unsent} message(s) were not acknowledged by the server and may not have been delivered")
        status = status or 1
    done.set()  # our own goodbye is not news
    client.close(reason[0])
    return status
