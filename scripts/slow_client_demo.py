#!/usr/bin/env python3
"""One client stops reading: the tutorial server's room freezes, chatroom's carries on.

Starts the tutorial-style server (scripts/naive_server.py) and chatroom, each on
127.0.0.1 with a free port.  In each room: a *listener* that reads everything, a
*stalled* client that connects and never reads again, and a *talker* that sends
messages as fast as the server takes them.  Then it prints, side by side, how much
reached the listener.

Why the tutorial server freezes: it broadcasts from the sender's thread with
``sendall()`` while holding the one lock.  Once the stalled client's socket buffers
are full, ``sendall()`` to it blocks -- with the lock held -- and nobody gets anything
any more.  chatroom only appends to each client's bounded outbox and never waits for a
socket; the stalled client's outbox overflows and it is dropped as "too slow".

Usage: python scripts/slow_client_demo.py [--messages 10000] [--seconds 8]
Everything stays on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatroom.protocol import PROTOCOL_VERSION, FrameDecoder, Hello, Say, encode_message  # noqa: E402
from chatroom.server.pace import STALL  # noqa: E402

CHAT = b'{"type":"chat"'


@dataclass
class Outcome:
    sent: int = 0
    received: int = 0
    stalled_dropped_after: float | None = None
    frozen: bool = False


def start(argv: list[str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"serving on 127\.0\.0\.1:(\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"a server did not start: {line!r}")
    return proc, int(match.group(1))


def hello(port: int, nick: str, *, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: a small window
    sock.connect(("127.0.0.1", port))
    sock.sendall(encode_message(Hello(version=PROTOCOL_VERSION, nick=nick)))
    # Wait for the welcome: the handlers run in parallel, and a talker admitted before
    # the listener would say things the listener is not there to hear.
    decoder, sock_timeout = FrameDecoder(), sock.gettimeout()
    sock.settimeout(10)
    while True:
        data = sock.recv(4096)
        if not data:
            raise SystemExit(f"the server closed {nick}'s connection before its welcome")
        if any(f.type == "welcome" for f in decoder.feed(data)):
            break
    sock.settimeout(sock_timeout)
    return sock


def run_room(port: int, messages: int, seconds: float) -> Outcome:
    out = Outcome()
    listener = hello(port, "listener")
    stalled = hello(port, "stalled", rcvbuf=4096)  # says hello, then never reads again
    talker = hello(port, "talker")
    start_time = time.monotonic()
    deadline = start_time + seconds
    done = threading.Event()

    def listen() -> None:
        tail = b""
        listener.settimeout(0.2)
        while not done.is_set() and time.monotonic() < deadline:
            try:
                data = listener.recv(1 << 18)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            joined = tail + data
            # What the tail already held was counted last time.
            out.received += joined.count(CHAT) - tail.count(CHAT)
            if out.stalled_dropped_after is None and b'"nick":"stalled","ts"' in joined and b"too slow" in joined:
                out.stalled_dropped_after = time.monotonic() - start_time
            tail = joined[-64:]
            if out.received >= messages:
                done.set()

    def drain_talker() -> None:  # the talker reads its own echoes, as a real client would
        talker.settimeout(0.2)
        while not done.is_set() and time.monotonic() < deadline:
            try:
                if not talker.recv(1 << 18):
                    break
            except TimeoutError:
                continue
            except OSError:
                break

    threads = [threading.Thread(target=listen, daemon=True), threading.Thread(target=drain_talker, daemon=True)]
    for t in threads:
        t.start()
    # A room that froze never reads the talker again; chatroom may hold a fast talker
    # back while most of its room is behind -- at most STALL for a reader that stopped
    # (then it is left to be dropped), longer only for readers that are reading.  So a
    # talker not read for three times that is in a frozen room.
    talker.settimeout(3 * STALL)
    text = "x" * 1000
    try:
        for n in range(messages):
            if time.monotonic() > deadline:
                break
            talker.sendall(encode_message(Say(id=str(n), text=f"{n} {text}")))
            out.sent += 1
    except (TimeoutError, OSError):
        out.frozen = True  # the server stopped reading from the talker, too
    while not done.is_set() and time.monotonic() < deadline:
        done.wait(0.1)
    done.set()
    for t in threads:
        t.join(2)
    out.frozen = out.frozen or out.received < out.sent
    for s in (listener, stalled, talker):
        s.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="messages of 1 KB the talker sends")
    parser.add_argument("--seconds", type=float, default=8.0, help="time limit per room")
    args = parser.parse_args(argv)

    naive_proc, naive_port = start([sys.executable, "scripts/naive_server.py", "--port", "0"])
    ours_proc, ours_port = start([sys.executable, "-m", "chatroom", "serve", "--port", "0", "--memory",
                                  "--rate", "0", "--log-level", "ERROR"])
    try:
        print(f"one stalled client, a talker sending {args.messages:,} messages of 1 KB, a listener counting...")
        naive = run_room(naive_port, args.messages, args.seconds)
        ours = run_room(ours_port, args.messages, args.seconds)
    finally:
        for proc in (naive_proc, ours_proc):
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()

    def received(o: Outcome) -> str:
        share = o.received / args.messages if args.messages else 0
        return f"{o.received:,} of {args.messages:,} ({share:.0%})"

    def stalled(o: Outcome) -> str:
        if o.stalled_dropped_after is not None:
            return f"dropped as 'too slow' after {o.stalled_dropped_after:.1f} s"
        return "still connected"

    rows = [
        ("", "tutorial server", "chatroom"),
        ("talker could send", f"{naive.sent:,}", f"{ours.sent:,}"),
        ("listener received", received(naive), received(ours)),
        ("the stalled client", stalled(naive), stalled(ours)),
        ("the room", "FROZE" if naive.frozen else "carried on", "FROZE" if ours.frozen else "carried on"),
    ]
    for label, a, b in rows:
        print(f"  {label:<20} {a:<36} {b}")
    shows_it = naive.frozen and not ours.frozen and ours.received == args.messages
    print("the tutorial server's room froze behind one slow reader; chatroom's did not." if shows_it
          else "the difference did not show this time (see the figures above)")
    return 0 if shows_it else 1


if __name__ == "__main__":
    sys.exit(main())
