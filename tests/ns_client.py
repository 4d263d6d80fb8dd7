"""A protocol client for tests that run it inside a network namespace (where the test
process cannot reach), or as a process of its own: ``python -m tests.ns_client HOST
PORT NICK [CHUNK DELAY [count]]`` -- with CHUNK and DELAY it is a slow reader: at most
CHUNK bytes per read through a 4 KiB receive buffer, DELAY seconds between reads; with
``count`` it prints no chat, only ``{"TYPE": "count", "chats": N}`` every 100 chats and
when the server closes (a reader whose pace must be its own: a line per message fills
the pipe to a test process whose threads wait for the GIL behind a flood, and the
reader would then stop reading its socket, fall behind the rest of its room, and be
dropped -- as designed).

It says hello as NICK, then prints every message it receives as one JSON line on
stdout (``{"TYPE": ..., fields...}``; ``{"TYPE": "eof"}`` when the server closes), and
sends what stdin asks, one line each: ``say ID TEXT`` or ``raw JSON`` (a message as
PROTOCOL.md writes it).  It ends when the server closes or stdin does.
"""

from __future__ import annotations

import json
import socket
import sys
import threading

import msgspec

from chatroom.protocol import PROTOCOL_VERSION, FrameDecoder, Hello, Say, decode_message, encode_message


def main() -> int:
    host, port, nick = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    chunk, delay = (int(sys.argv[4]), float(sys.argv[5])) if len(sys.argv) > 5 else (65536, 0.0)
    counting = sys.argv[6:7] == ["count"]
    chats = 0
    sock = socket.socket()
    if delay:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect((host, port))
    sock.settimeout(None)
    sock.sendall(encode_message(Hello(version=PROTOCOL_VERSION, nick=nick)))

    def commands() -> None:
        for line in sys.stdin:
            verb, _, rest = line.rstrip("\n").partition(" ")
            try:
                if verb == "say":
                    msg_id, _, text = rest.partition(" ")
                    sock.sendall(encode_message(Say(id=msg_id, text=text)))
                elif verb == "raw":
                    data = rest.encode()
                    sock.sendall(len(data).to_bytes(4, "big") + data)
            except OSError:
                return
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=commands, daemon=True).start()
    decoder = FrameDecoder(max_body=16 * 1024 * 1024)
    pause = threading.Event()  # (never set: a slow reader's pause between reads)
    while True:
        try:
            data = sock.recv(chunk)
        except OSError:
            data = b""
        if delay:
            pause.wait(delay)
        if not data:
            if counting:
                print(json.dumps({"TYPE": "count", "chats": chats}))
            print(json.dumps({"TYPE": "eof"}), flush=True)
            return 0
        for frame in decoder.feed(data):
            msg = decode_message(frame)
            if counting and msg.TYPE == "chat":
                chats += 1
                if chats % 100 == 0:
                    print(json.dumps({"TYPE": "count", "chats": chats}), flush=True)
                continue
            print(json.dumps({"TYPE": msg.TYPE, **msgspec.to_builtins(msg)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
