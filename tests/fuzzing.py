"""Random input for the live fuzz tests: frames of every message type with fields of
any shape, IRC lines, and WebSocket upgrades with frames behind them.  Seeded: a
failure names its seed and replays.

What it aims at is what a stranger's client or an attacker sends: real field names
with wrong types and sizes, names and ids seen on the wire (so requests reach deep
states: accepting a real offer, kicking a real nick), pipelining behind a hello, a
byte flipped here and there, frames cut anywhere, connections reset mid-frame.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import struct
from typing import Any

from chatroom.protocol import MESSAGE_TYPES, PROTOCOL_VERSION

#: Every message type of the catalogue, by its "type" tag, with its field names.
FIELDS: dict[str, tuple[str, ...]] = {tag: cls.__struct_fields__ for tag, cls in MESSAGE_TYPES.items()}
#: What clients send: half of the messages are drawn from these.
CLIENT_TYPES = ("say", "action", "direct", "join", "part", "nick", "set_topic", "away", "who", "whois", "search",
                "fetch_history", "list_rooms", "offer_file", "accept_file", "reject_file", "cancel_file",
                "file_chunk", "file_ack", "file_done", "op", "moderate", "ping", "pong", "bye", "auth", "hello")
IRC_COMMANDS = ("NICK", "USER", "JOIN", "PART", "PRIVMSG", "NOTICE", "TOPIC", "MODE", "KICK", "WHO", "WHOIS", "LIST",
                "NAMES", "CAP", "PING", "PONG", "AWAY", "QUIT", "PASS", "OPER", "TAGMSG", "CHATHISTORY", "INVITE",
                "ISON", "USERHOST", "MOTD", "LUSERS", "VERSION", "KILL", "AUTHENTICATE", "MONITOR", "")
ODD_STRINGS = ("", " ", "lobby", "#lobby", "*", "\u202e", "\x00", "\x1b[2J", "e\u0301", "𝔞", "İ", "ß", "\r\n",
               "../../etc/passwd", "CON", "%s%n", "-1", "1e400", "a" * 33, "a" * 5000, "\ud7ff", "\ufeff")
ODD_NUMBERS = (0, 1, -1, 7, 1024, 2**31, 2**53, 2**63, 2**64, -(2**63), 10**30, 1 << 20)


class Fuzzer:
    """One seeded source of hostile input, remembering names it has seen."""

    def __init__(self, seed: int, keep_out: frozenset[str] = frozenset()) -> None:
        self.rng = random.Random(seed)
        self.keep_out = keep_out  # nicks never aimed at (the test's bystanders)
        self.seen: dict[str, list[Any]] = {"nick": [], "room": ["lobby", "side"], "id": [], "transfer": []}

    # -------------------------------------------------------------- values

    def text(self) -> str:
        rng = self.rng
        if rng.random() < 0.4:
            return rng.choice(ODD_STRINGS)
        size = rng.choice((0, 1, 5, 30, 300))
        return "".join(chr(rng.choice((rng.randint(0, 0x7F), rng.randint(0x80, 0xD7FF), rng.randint(0xE000, 0x10FFFF))))
                       for _ in range(size))

    def value(self, field: str | None = None, depth: int = 0) -> Any:
        rng = self.rng
        pool = {"nick": "nick", "to": "nick", "target": "nick", "room": "room", "id": "id",
                "transfer": "transfer"}.get(field or "")
        if pool and self.seen[pool] and rng.random() < 0.6:
            return rng.choice(self.seen[pool])
        k = rng.random()
        if k < 0.4:
            return self.text()
        if k < 0.6:
            return rng.choice(ODD_NUMBERS)
        if k < 0.68:
            return rng.choice((0.0, -0.0, 1.5, 1e308, -1e308))
        if k < 0.76:
            return rng.choice((True, False, None))
        if depth < 3 and k < 0.88:
            return [self.value(depth=depth + 1) for _ in range(rng.choice((0, 1, 3, 40)))]
        if depth < 3:
            return {self.text()[:8]: self.value(depth=depth + 1) for _ in range(rng.choice((0, 1, 3)))}
        return None

    def message(self) -> dict[str, Any]:
        rng = self.rng
        kind = rng.choice(CLIENT_TYPES) if rng.random() < 0.5 else rng.choice(list(FIELDS))
        msg: dict[str, Any] = {"type": kind}
        for name in FIELDS[kind]:
            if rng.random() < 0.8:
                msg[name] = self.value(name)
        if rng.random() < 0.1:
            msg[self.text()[:8]] = self.value()
        if rng.random() < 0.03:
            msg["type"] = self.value()
        return msg

    # -------------------------------------------------------------- frames

    def frame(self, header: dict[str, Any], body: bytes = b"", *, mutate: bool = True) -> bytes:
        rng = self.rng
        if body:
            header["body"] = len(body) if rng.random() < 0.8 else self.value()
        try:
            raw = json.dumps(header, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError):
            raw = b'{"type":"ping"}'
        if mutate and rng.random() < 0.01:
            flipped = bytearray(raw)
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            raw = bytes(flipped)
        prefix = struct.pack("!I", len(raw))
        if mutate and rng.random() < 0.005:
            prefix = struct.pack("!I", rng.choice((0, 1, 2**32 - 1, 65537, len(raw) + 5)))
        return prefix + raw + body

    def hello(self, nick: str, room: str = "lobby") -> bytes:
        return self.frame({"type": "hello", "version": PROTOCOL_VERSION, "nick": nick, "room": room}, mutate=False)

    def session(self, nick: str) -> bytes:
        """A connection's worth of frames: usually a hello, then anything."""
        rng = self.rng
        out = self.hello(nick, rng.choice(self.seen["room"])) if rng.random() < 0.9 else self.frame(self.message())
        for _ in range(rng.randint(1, 40)):
            body = os.urandom(rng.choice((1, 100, 5000))) if rng.random() < 0.1 else b""
            out += self.frame(self.message(), body)
        return out

    def irc_session(self, nick: str) -> bytes:
        rng = self.rng
        out = b""
        if rng.random() < 0.8:
            out += rng.choice((b"CAP LS 302\r\n", b"")) + f"NICK {nick}\r\nUSER u 0 * :r\r\n".encode()
            out += rng.choice((b"CAP END\r\n", b"")) + (b"JOIN #lobby\r\n" if rng.random() < 0.7 else b"")
        for _ in range(rng.randint(1, 60)):
            out += self.irc_line()
        return out

    def irc_line(self) -> bytes:
        rng = self.rng
        words = []
        if rng.random() < 0.1:
            words.append("@" + ";".join(f"{self.text()[:5]}={self.text()[:20]}" for _ in range(rng.randint(0, 4))))
        words.append(rng.choice(IRC_COMMANDS))
        for _ in range(rng.randint(0, 5)):
            pool = rng.choice(("#lobby", "*", ":", "+b", "-o", "LS", "REQ", "END", "latest", self.text()[:60] or "x"))
            words.append(rng.choice(self.seen["nick"]) if self.seen["nick"] and rng.random() < 0.3 else pool)
        if rng.random() < 0.5:
            words.append(":" + self.text())
        line = " ".join(words).replace("\r", "").replace("\n", "").encode("utf-8", "surrogatepass")
        if rng.random() < 0.05:
            line = os.urandom(rng.randint(1, 40)).replace(b"\n", b"")
        return line + rng.choice((b"\r\n", b"\n"))

    def web_session(self, port: int, nick: str) -> bytes:
        rng = self.rng
        if rng.random() < 0.2:  # not even a WebSocket: an odd HTTP request
            head = rng.choice((b"GET ", b"POST ", b"HEAD ", b"OPTIONS "))
            head += rng.choice((b"/", b"/ws", b"/../x", b"/%00"))
            lines = [self.text()[:50].encode("utf-8", "replace").replace(b"\r", b"").replace(b"\n", b"")
                     for _ in range(rng.randint(0, 10))]
            return head + b" HTTP/1.1\r\n" + b"".join(b"X-" + line + b": v\r\n" for line in lines) + b"\r\n"
        key = base64.b64encode(os.urandom(16)).decode()
        origin = rng.choice(("", f"Origin: http://127.0.0.1:{port}\r\n", "Origin: http://elsewhere.invalid\r\n"))
        out = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n").encode()
        for frame in [self.hello(nick)] + [self.frame(self.message()) for _ in range(rng.randint(0, 30))]:
            r = rng.random()
            if r < 0.75:
                out += ws_frame(0x2, frame)
            elif r < 0.85:  # fragmented, maybe with a ping between the fragments
                cut = rng.randint(0, len(frame))
                out += ws_frame(0x2, frame[:cut], fin=False) + (ws_frame(0x9, b"p") if rng.random() < 0.5 else b"")
                out += ws_frame(0x0, frame[cut:])
            elif r < 0.9:
                out += ws_frame(0x1, self.text().encode("utf-8", "replace"))
            elif r < 0.94:
                out += ws_frame(rng.choice((0x3, 0x7, 0x9, 0xB)), os.urandom(rng.choice((0, 10, 125, 126))))
            elif r < 0.97:
                out += ws_frame(0x2, frame, mask=False)
            else:
                out += ws_frame(0x2, frame, rsv=0x40)
        return out

    def learn(self, data: bytes) -> None:
        """Remember the names and numbers the server used, to aim at them later."""
        for match in re.finditer(rb'"(nick|room|id|transfer)":("?)([^",}\\]{1,40})\2', data):
            kind, value = match.group(1).decode(), match.group(3).decode(errors="replace")
            item: Any = int(value) if kind == "transfer" and value.isdigit() else value
            pool = self.seen[kind]
            if item not in pool and item not in self.keep_out:
                pool.append(item)
                del pool[:-50]


def ws_frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
    """A WebSocket frame as a client sends it (masked), or as it must not."""
    first = (0x80 if fin else 0) | rsv | opcode
    size = len(payload)
    bit = 0x80 if mask else 0
    if size < 126:
        head = bytes([first, bit | size])
    elif size < 65536:
        head = bytes([first, bit | 126]) + struct.pack("!H", size)
    else:
        head = bytes([first, bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
