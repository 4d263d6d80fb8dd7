"""One gate for secrets, whatever the door: the room password (a framed proof, a
WebSocket's framed proof, IRC's ``PASS``) and the operator token (``op``, ``OPER``) are
counted and throttled by the same ``AuthGuard`` record per address.  A guesser gets the
same slow answers through every door, and failures through one door slow the others.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable

import pytest
from websockets.sync.client import connect as ws_connect

from chatroom.auth import client_proof, derive_key
from chatroom.protocol import (
    PROTOCOL_VERSION,
    Auth,
    Challenge,
    Error,
    ErrorCode,
    FrameDecoder,
    Hello,
    Message,
    ModAction,
    Moderate,
    Notice,
    Op,
    Welcome,
    decode_message,
    encode_message,
)
from chatroom.server.guard import AuthGuard
from chatroom.server.tcp import ChatServer
from tests.irc.client import IrcClient
from tests.polling import wait_until
from tests.wire import WireClient

PASSWORD = "correct horse battery staple"
#: Two free failures, then answers 0.5 s apart, then 1 s (tests need short delays).
FREE, FIRST, MOST = 2, 0.5, 1.0
#: The times are the test's, taken when it has read an answer: a loaded machine may
#: read one late and the next early.  (Unthrottled, IRC answers come milliseconds apart.)
SLACK = 0.15


def slow_guard() -> AuthGuard:
    return AuthGuard(free=FREE, window=60, first_delay=FIRST, max_delay=MOST)


def unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # pins nothing: tests the gate
    return context


def framed_try(port: int, password: str) -> bool:
    """The password exchange by hand over TLS: True if welcomed."""
    c = WireClient(port, tls=True)
    try:
        nonce = os.urandom(32)
        c.send(Hello(version=PROTOCOL_VERSION, nick="guesser", nonce=nonce.hex()))
        challenge = c.expect(Challenge)
        key = derive_key(password, bytes.fromhex(challenge.salt))
        c.send(Auth(proof=client_proof(key, bytes.fromhex(challenge.nonce), nonce).hex()))
        reply = c.wait_for(lambda m: isinstance(m, Welcome | Error))
        return isinstance(reply, Welcome)
    finally:
        c.close()


def web_try(port: int, password: str) -> bool:
    """The same exchange inside a WebSocket, as the page does it."""
    with ws_connect(f"wss://127.0.0.1:{port}/ws", origin=f"https://127.0.0.1:{port}", ssl=unverified()) as ws:
        decoder = FrameDecoder()

        def next_message(kinds: tuple[type[Message], ...]) -> Message:
            while True:
                for frame in decoder.feed(ws.recv(timeout=10)):  # type: ignore[arg-type]
                    msg = decode_message(frame)
                    if isinstance(msg, kinds):
                        return msg

        nonce = os.urandom(32)
        ws.send(encode_message(Hello(version=PROTOCOL_VERSION, nick="guesser", nonce=nonce.hex())))
        challenge = next_message((Challenge,))
        assert isinstance(challenge, Challenge)
        key = derive_key(password, bytes.fromhex(challenge.salt))
        ws.send(encode_message(Auth(proof=client_proof(key, bytes.fromhex(challenge.nonce), nonce).hex())))
        return isinstance(next_message((Welcome, Error)), Welcome)


def irc_try(port: int, password: str) -> bool:
    """IRC's PASS over TLS: True if registered (001), False on 464."""
    irc = IrcClient(port, sock=unverified().wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10)))
    try:
        irc.send(f"PASS :{password}", "NICK guesser", "USER guesser 0 * :guesser")
        answer = irc.wait_for(lambda line: line.command in ("001", "464"), what="001 or 464")
        return answer.command == "001"
    finally:
        irc.close()


DOORS: dict[str, Callable[[int, str], bool]] = {"framed": framed_try, "web": web_try, "irc": irc_try}


@pytest.fixture
def password_server(make_server: Callable[..., ChatServer], tls_files: tuple[str, str]) -> ChatServer:
    cert, key = tls_files  # IRC takes a password only over TLS (PASS travels in clear)
    server = make_server(password=PASSWORD, tls_cert=cert, tls_key=key, max_per_address=0)
    server.auth_guard = slow_guard()
    return server


def answered_at(attempt: Callable[[int, str], bool], port: int, guesses: int) -> list[float]:
    times = []
    for i in range(guesses):
        assert not attempt(port, f"guess {i}")
        times.append(time.monotonic())
    return times


@pytest.mark.parametrize("door", DOORS)
def test_password_guesses_are_throttled_through_every_door(password_server: ChatServer, door: str) -> None:
    attempt = DOORS[door]
    times = answered_at(attempt, password_server.port, FREE + 2)
    # The free failures, then answers spaced by the growing delay.
    assert times[FREE] - times[FREE - 1] >= FIRST - SLACK
    assert times[FREE + 1] - times[FREE] >= MOST - SLACK
    # The rightful user on the same address waits its turn too, then gets in.
    assert attempt(password_server.port, PASSWORD)
    assert time.monotonic() - times[-1] >= MOST - SLACK


def test_guesses_through_one_door_slow_the_others(password_server: ChatServer) -> None:
    """IRC failures count against the address at the framed door's gate, and back."""
    port = password_server.port
    for i in range(FREE + 1):
        assert not irc_try(port, f"guess {i}")
    started = time.monotonic()
    assert password_server.auth_guard.delay("127.0.0.1", started) >= FIRST
    assert not framed_try(port, "guess again")
    assert password_server.auth_guard.delay("127.0.0.1", time.monotonic()) >= MOST
    assert not irc_try(port, "and again")
    # Each answer waited its turn: at least FIRST, then MOST, after the last free one.
    assert time.monotonic() - started >= FIRST + MOST - SLACK


def test_operator_token_guesses_share_the_gate_across_doors(make_server: Callable[..., ChatServer]) -> None:
    server = make_server(op_password="the real token", max_per_address=0)
    server.auth_guard = slow_guard()
    framed = WireClient(server.port)
    framed.hello("ann")
    irc = IrcClient(server.port)
    irc.register("bob")
    try:
        times = []
        for i in range(FREE + 2):  # alternate the doors: one record for the address
            if i % 2:
                irc.send(f"OPER bob guess{i}")
                irc.expect("464")
            else:
                framed.send(Op(token=f"guess{i}"))
                framed.expect(Error, code=ErrorCode.NOT_OPERATOR.value)
            times.append(time.monotonic())
        assert times[FREE] - times[FREE - 1] >= FIRST - SLACK
        assert times[FREE + 1] - times[FREE] >= MOST - SLACK
        irc.send("OPER bob :the real token")
        irc.expect("381")
        assert time.monotonic() - times[-1] >= MOST - SLACK
    finally:
        framed.close()
        irc.close()


def test_a_person_ban_is_the_same_at_every_door_and_for_look_alikes(make_server: Callable[..., ChatServer]) -> None:
    server = make_server(op_password="tok", max_per_address=0)
    op = WireClient(server.port)
    op.hello("teacher")
    op.send(Op(token="tok"))
    op.expect(Notice)
    mallory = WireClient(server.port)  # (the teacher's address too: the ban falls on the person)
    mallory.hello("mallory")
    op.send(Moderate(action=ModAction.BAN, target="mallory"))
    assert mallory.expect(Error).code == ErrorCode.BANNED.value
    mallory.close()
    wait_until(lambda: server.hub.state.nicks.holder("mallory") is None, 10, "mallory's session to end")
    for nick in ("mallory", "MALL0RY", "maIlory"):
        framed = WireClient(server.port)
        framed.send(Hello(version=PROTOCOL_VERSION, nick=nick))
        refused = framed.expect(Error)
        assert refused.code == ErrorCode.BANNED.value and refused.fatal, nick
        framed.close()
        with ws_connect(f"ws://127.0.0.1:{server.port}/ws", origin=f"http://127.0.0.1:{server.port}") as ws:
            ws.send(encode_message(Hello(version=PROTOCOL_VERSION, nick=nick)))
            (frame,) = FrameDecoder().feed(ws.recv(timeout=10))  # type: ignore[arg-type]
            msg = decode_message(frame)
            assert isinstance(msg, Error) and msg.code == ErrorCode.BANNED.value, nick
        irc = IrcClient(server.port)
        irc.send(f"NICK {nick}", "USER m 0 * :m")
        assert "banned" in irc.expect("465").params[-1], nick
        irc.wait_closed()
    assert "mallory" not in " ".join(m.nick for m in server.hub.state.nicks.values())
    op.close()
