"""A protocol client for tests that run it inside a network namespace (where the test
process cannot reach): ``python -m tests.ns_client HOST PORT NICK``.

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
    sock = socket.create_connection((host, port), timeout=30)
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
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            print(json.dumps({"TYPE": "eof"}), flush=True)
            return 0
        for frame in decoder.feed(data):
            msg = decode_message(frame)
            print(json.dumps({"TYPE": msg.TYPE, **msgspec.to_builtins(msg)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
