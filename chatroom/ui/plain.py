"""``chatroom join --plain``: lines in from stdin, one line out per room event.

For scripts, pipes, screen readers and classroom demos.  Lines go out as fast as the
server's rate limit allows (the client paces itself, so a long pipe is never refused).
On EOF it waits until the server has acknowledged everything it sent -- as long as
what is left needs at the server's rate, plus a margin -- then leaves, so
``seq 1 60 | chatroom join --plain`` delivers all 60 lines, in order.  If anything was
not delivered it says how many on stderr and exits with status 1.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from chatroom.client.connection import ChatClient, ConnState, StateChanged
from chatroom.client.controller import Controller
from chatroom.client.transcript import plain_line

__all__ = ["run_plain"]

#: How long to wait at EOF for acknowledgements, beyond what the rate limit needs.
EOF_ACK_TIMEOUT = 10.0


def run_plain(client: ChatClient, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
              stderr: TextIO = sys.stderr) -> int:
    """Run until EOF or /quit.  The client must be connected.  Returns an exit status."""
    out = _Output(stdout)
    done = threading.Event()
    reason = ["quit"]

    def on_event(event: object) -> None:
        if isinstance(event, StateChanged):
            if event.state is ConnState.DISCONNECTED:
                out.emit(f"-- disconnected: {event.detail}; retrying in {event.retry_in:.1f} s")
            elif event.state is ConnState.CLOSED and not done.is_set():
                out.emit(f"-- closed: {event.detail}")
                done.set()
            return
        if controller.hides(event):
            return
        line = plain_line(event, client.nick, several=len(client.session.rooms) > 1)
        if line is not None:
            out.emit(line)

    def quit(why: str) -> None:
        reason[0] = why or "quit"
        done.set()

    controller = Controller(client, show=lambda text, error: out.emit(("-- " if not error else "-- error: ") + text),
                            quit=quit)
    client.on_event = on_event
    status = 0
    try:
        for raw in stdin:
            controller.handle(raw.rstrip("\n"))
            if done.is_set():
                break
    except KeyboardInterrupt:
        status = 130
    status = _report_undelivered(client, stderr) or status
    done.set()  # our own goodbye is not news
    client.close(reason[0])
    return status


class _Output:
    """Lines to stdout, one writer at a time, never lost to an encoding."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def emit(self, text: str) -> None:
        with self.lock:
            try:
                self.stream.write(text + "\n")
            except UnicodeEncodeError:  # e.g. Windows' redirected output: replace, never drop the line
                encoding = getattr(self.stream, "encoding", None) or "ascii"
                self.stream.write(text.encode(encoding, "replace").decode(encoding) + "\n")
            self.stream.flush()


def _report_undelivered(client: ChatClient, stderr: TextIO) -> int:
    """Wait (as long as the rate limit needs, and a margin) for everything to be
    acknowledged; say on stderr what was not delivered.  Returns 1 if anything was not."""
    status = 0
    if not client.wait_acked(EOF_ACK_TIMEOUT + client.pace_time(len(client.pending()))):
        stderr.write(f"chatroom: {len(client.pending())} message(s) were not acknowledged by the server and may "
                     "not have been delivered\n")
        status = 1
    if client.refused:
        stderr.write(f"chatroom: {client.refused} message(s) were refused by the server (see above)\n")
        status = 1
    stderr.flush()
    return status
