#!/usr/bin/env python3
"""How the full-screen client copes with a flood of incoming messages.

Starts a server (127.0.0.1, free port) and ``chatroom join`` in a real pty whose screen
is rendered by pyte, types half a line, then floods the room with N messages from a
raw socket.  Reports the client's CPU time for the flood, how long until the last
message was on screen, whether the half-typed line survived, and the keystroke echo
latency measured *during* the flood (can the user still type?).

Usage: python scripts/client_flood.py [--messages 5000]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatroom.protocol import PROTOCOL_VERSION, Hello, Say, encode_message  # noqa: E402
from tests.terminal import ServerProcess, Terminal  # noqa: E402


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def drain(sock: socket.socket) -> None:
    """Read and discard the flooder's own echoes, so the server never drops it."""
    try:
        while sock.recv(1 << 16):
            pass
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args(argv)
    n = args.messages

    server = ServerProcess("--rate", "0")
    term = Terminal(["join", server.address, "--nick", "alice"])
    flooder = socket.create_connection(("127.0.0.1", server.port))
    try:
        term.wait_text("online")
        term.type("half a li")
        term.wait_for(lambda rows: rows[-1].startswith("> half a li"), what="half line")
        flooder.sendall(encode_message(Hello(version=PROTOCOL_VERSION, nick="flood")))
        threading.Thread(target=drain, args=(flooder,), daemon=True).start()
        term.wait_text("flood joined")

        cpu0 = cpu_seconds(term.child.pid)
        t0 = time.monotonic()
        payload = b"".join(encode_message(Say(id=str(i), text=f"flood message {i} " + "x" * 60)) for i in range(n))
        sender = threading.Thread(target=flooder.sendall, args=(payload,), daemon=True)
        sender.start()

        # Keystroke echo latency while the flood is arriving: type a letter, wait for
        # it on the input line, delete it.
        echoes: list[float] = []
        done_at = None
        deadline = t0 + 120
        while time.monotonic() < deadline:
            typed_at = time.monotonic()
            term.type("Z")
            term.wait_for(lambda rows: rows[-1].rstrip().endswith("half a liZ"), timeout=30, what="echo")
            echoes.append(time.monotonic() - typed_at)
            term.type("\x7f")  # backspace
            term.wait_for(lambda rows: rows[-1].rstrip() == "> half a li", timeout=30, what="backspace")
            if any(f"flood message {n - 1} " in r for r in term.rows):
                done_at = time.monotonic()
                break
        if done_at is None:
            print("the last message never appeared")
            return 1
        cpu = cpu_seconds(term.child.pid) - cpu0
        wall = done_at - t0
        intact = term.rows[-1].rstrip() == "> half a li"
        print(f"flood of {n} messages into the full-screen client (80x24 pty, pyte)")
        print(f"  last message on screen after {wall:.2f} s ({n / wall:,.0f} msg/s)")
        print(f"  client CPU during the flood: {cpu:.2f} s ({cpu / wall:.0%} of one core)")
        print(f"  keystroke echo during the flood: median {statistics.median(echoes) * 1000:.0f} ms, "
              f"max {max(echoes) * 1000:.0f} ms over {len(echoes)} keystrokes")
        print(f"  half-typed line intact afterwards: {'yes' if intact else 'NO'}")
        return 0 if intact else 1
    finally:
        flooder.close()
        term.close()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
