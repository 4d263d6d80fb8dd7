#!/usr/bin/env python3
"""The tutorial chat server, speaking chatroom's protocol: the baseline and the lesson.

This is how the classic socket tutorials broadcast: a ``ThreadingTCPServer``, a list of
clients behind one lock, and -- for every message -- the *sender's* thread calls
``sendall`` on every member's socket while holding that lock.  It frames correctly
(length prefix, read-until-complete), so our client can join it.  What it gets wrong is
the broadcast: ``sendall`` blocks when a member stops reading, the lock stays held, and
the whole room freezes behind one slow reader.  ``scripts/bench.py`` measures it next
to chatroom; ``scripts/slow_client_demo.py`` shows the freeze.

Run: python scripts/naive_server.py [--port 7374]   (always 127.0.0.1)
"""

from __future__ import annotations

import argparse
import json
import socket
import socketserver
import struct
import sys
import threading
import time

HEADER = struct.Struct("!I")
MAX_HEADER = 64 * 1024


def frame(header: dict) -> bytes:
    data = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    return HEADER.pack(len(data)) + data


def recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    chunks, have = [], 0
    while have < n:
        chunk = sock.recv(n - have)
        if not chunk:
            return None
        chunks.append(chunk)
        have += len(chunk)
    return b"".join(chunks)


class NaiveServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024  # as ours: the backlog is not what is being compared

    def __init__(self, address: tuple[str, int], nodelay: bool = False) -> None:
        super().__init__(address, NaiveHandler)
        self.lock = threading.Lock()
        self.clients: dict[socket.socket, str] = {}
        self.seq = 0
        self.nodelay = nodelay

    def broadcast(self, data: bytes) -> None:
        # The tutorial way: the caller's thread writes to every socket, under the lock.
        with self.lock:
            for sock in list(self.clients):
                try:
                    sock.sendall(data)
                except OSError:
                    self.clients.pop(sock, None)


class NaiveHandler(socketserver.BaseRequestHandler):
    server: NaiveServer

    def handle(self) -> None:
        sock = self.request
        if self.server.nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        nick = None
        while True:
            prefix = recv_exactly(sock, 4)
            if prefix is None:
                break
            (length,) = HEADER.unpack(prefix)
            if length > MAX_HEADER:
                break
            data = recv_exactly(sock, length)
            if data is None:
                break
            try:
                msg = json.loads(data)
            except ValueError:
                break
            kind = msg.get("type")
            if kind == "hello" and nick is None:
                nick = str(msg.get("nick"))
                with self.server.lock:
                    self.server.clients[sock] = nick
                    members = [{"nick": n} for n in self.server.clients.values()]
                sock.sendall(frame({"type": "welcome", "version": "1.0", "server": "naive", "nick": nick,
                                    "room": "lobby", "members": members}))
                self.server.broadcast(frame({"type": "presence", "room": "lobby", "event": "join",
                                             "nick": nick, "ts": time.time()}))
            elif kind in ("say", "action") and nick is not None:
                with self.server.lock:
                    self.server.seq += 1
                    seq = self.server.seq
                now = time.time()
                self.server.broadcast(frame({"type": "chat", "room": "lobby", "seq": seq, "ts": now,
                                             "nick": nick, "text": str(msg.get("text")),
                                             "action": kind == "action", "id": msg.get("id")}))
                with self.server.lock:
                    sock.sendall(frame({"type": "ack", "id": msg.get("id"), "ts": now, "seq": seq,
                                        "room": "lobby"}))
            elif kind == "ping":
                with self.server.lock:
                    sock.sendall(frame({"type": "pong", "token": msg.get("token", "")}))
            elif kind == "bye":
                break
        with self.server.lock:
            self.server.clients.pop(sock, None)
        if nick is not None:
            self.server.broadcast(frame({"type": "presence", "room": "lobby", "event": "leave", "nick": nick,
                                         "reason": "quit", "ts": time.time()}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7374)
    parser.add_argument("--nodelay", action="store_true", help="set TCP_NODELAY (tutorials do not)")
    args = parser.parse_args(argv)
    server = NaiveServer(("127.0.0.1", args.port), nodelay=args.nodelay)
    print(f"naive server: serving on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
