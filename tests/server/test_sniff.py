"""Choosing the door from a connection's first bytes, however TCP cuts them."""

from __future__ import annotations

import socket

import pytest

from chatroom.irc.door import irc_claims
from chatroom.protocol import PROTOCOL_VERSION, Hello, Welcome, encode_message
from chatroom.server.sniff import FRAMED_DOOR, choose
from chatroom.web.door import http_claims
from tests.irc.client import IrcClient
from tests.polling import wait_until
from tests.wire import WireClient

DOORS = (("http", http_claims), ("irc", irc_claims))
HELLO = encode_message(Hello(version=PROTOCOL_VERSION, nick="ann"))


@pytest.mark.parametrize(("first", "door"), [
    (b"GET / HTTP/1.1\r\n", "http"), (b"OPTIONS * HTTP/1.1", "http"), (b"NICK ann\r\n", "irc"),
    (b"CAP LS 302\r\n", "irc"), (b"PASS :x\r\n", "irc"), (b"@time=x PRIVMSG", "irc"), (HELLO, FRAMED_DOOR),
    (b"\x16\x03\x01", FRAMED_DOOR), (b"\xff garbage", FRAMED_DOOR), (b"GEX", "irc"),
])
def test_every_cut_of_the_first_bytes_chooses_the_same_door(first: bytes, door: str) -> None:
    decided = [choose(first[:n], DOORS) for n in range(1, len(first) + 1)]
    # Undecided for a while (a prefix of a method), then decided once and for all.
    assert decided[-1] == door
    first_decision = next(i for i, d in enumerate(decided) if d is not None)
    assert all(d == door for d in decided[first_decision:])
    assert first_decision < 16


def test_a_prefix_of_a_method_waits_for_more() -> None:
    for prefix in (b"G", b"GE", b"GET", b"P", b"PA", b"PAT", b"C", b"CON", b"OPTIONS"):
        assert choose(prefix, DOORS) is None, prefix
    assert choose(b"PAS", DOORS) == "irc" and choose(b"CA", DOORS) == "irc"


def _unread_by_server(server_port: int, client_port: int) -> int | None:
    """Bytes the kernel holds for the server's end of this connection that its reader
    has not taken yet (Linux's /proc/net/tcp: rx_queue), or None if it is not listed."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    with open("/proc/net/tcp") as table:
        for row in table.readlines()[1:]:
            fields = row.split()
            if fields[1] == local and fields[2] == remote:
                return int(fields[4].split(":")[1], 16)
    return None


def _cut_after(port: int, first: bytes, rest: bytes) -> socket.socket:
    """Send ``first``, wait until the server has read it (alone), then ``rest``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(first)
    mine = sock.getsockname()[1]
    wait_until(lambda: _unread_by_server(port, mine) == 0, 10, "the server to read the first bytes")
    sock.sendall(rest)
    return sock


def test_an_http_request_cut_after_its_first_letter_gets_the_page(server) -> None:
    sock = _cut_after(server.port, b"G", b"ET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        assert chunk, answer
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
    sock.close()


def test_an_irc_registration_and_a_frame_cut_early_reach_their_doors(server) -> None:
    irc = IrcClient(server.port, sock=_cut_after(server.port, b"NI", b"CK bob\r\nUSER bob 0 * :bob\r\n"))
    assert irc.expect("001").params[0] == "bob"
    irc.close()
    framed = WireClient(server.port)
    framed.sock.close()  # (its own socket: this one is cut by hand)
    framed.sock = _cut_after(server.port, HELLO[:1], HELLO[1:])
    assert framed.expect(Welcome).nick == "ann"
    framed.close()
