"""The hostile-input suite: every case against a live server on 127.0.0.1 while two
well-behaved clients keep chatting.

For every case the harness checks that the offender got a clear error or was
disconnected (the case says which), that the server still serves (a newcomer can
join), that the two bystanders received every message they sent each other *during*
the attack, and that no connection's buffers ever exceeded their configured limits.
"""

from __future__ import annotations

import json
import os
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from chatroom.protocol import (
    PROTOCOL_VERSION,
    Auth,
    Challenge,
    Chat,
    Direct,
    Error,
    ErrorCode,
    FetchHistory,
    Hello,
    History,
    Join,
    Members,
    Nick,
    Notice,
    Ping,
    Private,
    Say,
    SetTopic,
    Topic,
    Welcome,
    Who,
    encode_frame,
    encode_message,
)
from chatroom.server.tcp import ChatServer
from tests.polling import wait_until
from tests.wire import WireClient

HELLO = encode_message(Hello(version=PROTOCOL_VERSION, nick="offender"))


def raw(payload: bytes) -> bytes:
    return struct.pack("!I", len(payload)) + payload


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Chatter:
    """Two bystanders talking the whole time, each counting what the other said."""

    #: However quick the attack, the bystanders say at least this much during it.
    MIN_MESSAGES = 10

    def __init__(self, server: ChatServer) -> None:
        tls = server.tls_context is not None
        self.alice, self.bob = WireClient(server.port, tls=tls), WireClient(server.port, tls=tls)
        password = server.config.password
        self.welcomes = {}
        for c, nick in ((self.alice, "alice"), (self.bob, "bob")):
            if password:  # the bystanders know the room password; the attacker does not
                from tests.server.test_security import password_hello

                welcome = password_hello(c, nick, password)
                assert isinstance(welcome, Welcome) and welcome.nick == nick
            else:
                welcome = c.hello(nick)
            self.welcomes[nick] = welcome
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._talk, daemon=True)

    def _talk(self) -> None:
        while not self.stop.is_set() and self.sent < 2000:
            n = self.sent
            (self.alice if n % 2 == 0 else self.bob).send(Say(id=f"c{n}", text=f"chat {n}"))
            self.sent += 1
            self.stop.wait(0.02)

    def __enter__(self) -> Chatter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        wait_until(lambda: self.sent >= self.MIN_MESSAGES or not self.thread.is_alive(), 10,
                   "the bystanders to talk")
        self.stop.set()
        self.thread.join(5)

    def verify(self) -> None:
        """Both saw every message of the conversation, in the same order, and each
        sender's messages in the order it sent them.  (Not a global order across the two
        senders: they send independently, and the server may sequence them either way.)"""
        seen = []
        for c in (self.alice, self.bob):
            def ours(c: WireClient = c) -> list[Chat]:
                return [m for m in c.inbox if isinstance(m, Chat) and m.text.startswith("chat ")]

            deadline = time.monotonic() + 20
            while len(ours()) < self.sent and time.monotonic() < deadline:
                c._pump(min(deadline, time.monotonic() + 0.5))
            seen.append([(m.seq, m.text) for m in ours()])
        texts = [t for _, t in seen[0]]
        assert sorted(texts) == sorted(f"chat {n}" for n in range(self.sent))  # every one, once
        assert seen[0] == seen[1]  # one order for everyone
        seqs = [seq for seq, _ in seen[0]]
        assert seqs == sorted(seqs)
        for parity in (0, 1):  # alice said the even ones, bob the odd ones
            own = [int(t.split()[1]) for t in texts if int(t.split()[1]) % 2 == parity]
            assert own == sorted(own)

    def close(self) -> None:
        self.alice.close()
        self.bob.close()


@dataclass
class Ctx:
    server: ChatServer
    chatter: Chatter
    port: int
    sockets: list[socket.socket] = field(default_factory=list)

    def client(self, nick: str | None = "offender") -> WireClient:
        c = WireClient(self.port)
        self.sockets.append(c.sock)
        if nick:
            c.hello(nick)
        return c


def expect_error(c: WireClient, code: ErrorCode, *, fatal: bool) -> Error:
    err = c.wait_for(lambda m: isinstance(m, Error) and m.code == code.value)
    assert err.message and err.fatal == fatal, err
    if fatal:
        c.wait_closed()
    return err  # type: ignore[return-value]


def raw_case(data: bytes, code: ErrorCode | None, *, closes: bool, after_hello: bool = True,
             half_close: bool = False) -> Callable[[Ctx], None]:
    def attack(ctx: Ctx) -> None:
        c = ctx.client("offender" if after_hello else None)
        c.send_raw(data)
        if half_close:
            c.sock.shutdown(socket.SHUT_WR)
        if code is not None:
            expect_error(c, code, fatal=closes)
        if closes:
            c.wait_closed()
        else:  # still in sync: it can carry on normally
            if not after_hello:
                c.hello("offender")
            c.send(Say(id="ok", text="still here"))
            ctx.chatter.bob.expect(Chat, nick="offender", text="still here")
    return attack


def slowloris(ctx: Ctx) -> None:
    c = ctx.client(None)
    start = time.monotonic()
    for byte in HELLO[:30]:  # a byte every 0.1 s: never a whole hello before the deadline
        try:
            c.send_raw(bytes([byte]))
        except OSError:
            break
        time.sleep(0.1)
        if c.eof or time.monotonic() - start > 5:
            break
    expect_error(c, ErrorCode.TIMED_OUT, fatal=True)


def many_silent_connections(ctx: Ctx) -> None:
    socks = []
    for _ in range(500):
        s = socket.socket()
        s.settimeout(10)
        s.connect(("127.0.0.1", ctx.port))
        socks.append(s)
    ctx.sockets.extend(socks)
    # Beyond max_clients they are refused at once; the rest are dropped at the handshake deadline.
    deadline = time.monotonic() + 15
    for s in socks:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        assert b'"type":"error"' in data and (b"server_full" in data or b"timed_out" in data)


def valid_flood(ctx: Ctx) -> None:
    c = ctx.client()
    try:
        for n in range(500):
            c.send(Say(id=f"f{n}", text="flood"))
    except OSError:
        pass
    expect_error(c, ErrorCode.RATE_LIMITED, fatal=False)
    expect_error(c, ErrorCode.FLOODING, fatal=True)


def ping_flood(ctx: Ctx) -> None:
    c = ctx.client()
    try:
        for n in range(500):
            c.send(Ping(token=str(n)))
    except OSError:
        pass
    expect_error(c, ErrorCode.FLOODING, fatal=True)


def wrong_password_repeated(ctx: Ctx) -> None:
    from chatroom.server.guard import AuthGuard
    from tests.server.test_security import password_hello

    ctx.server.auth_guard = AuthGuard(free=1, window=60, first_delay=0.05, max_delay=0.1)
    for attempt in range(4):
        c = ctx.client(None)
        reply = password_hello(c, "guesser", f"guess {attempt}")
        assert isinstance(reply, Error) and reply.code == ErrorCode.AUTH_FAILED.value
        c.wait_closed()
    c = ctx.client(None)
    c.send(Hello(version=PROTOCOL_VERSION, nick="guesser", nonce=os.urandom(32).hex()))
    c.expect(Challenge)
    c.send(Auth(proof=os.urandom(32).hex()))
    assert "checked in" in c.expect(Notice).text  # throttled, and told so
    assert expect_error(c, ErrorCode.AUTH_FAILED, fatal=True).message == "wrong password"


def tls_client_to_plain_server(ctx: Ctx) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    s = socket.create_connection(("127.0.0.1", ctx.port), timeout=10)
    ctx.sockets.append(s)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        context.wrap_socket(s, server_hostname="localhost")  # our reply is not TLS: the handshake fails


def plain_client_to_tls_server(ctx: Ctx) -> None:
    c = ctx.client(None)
    c.send(Hello(version=PROTOCOL_VERSION, nick="plain"))
    assert "--tls" in expect_error(c, ErrorCode.TLS_REQUIRED, fatal=True).message


def escapes_are_made_harmless(ctx: Ctx) -> None:
    c = ctx.client()
    c.send(Say(id="e", text="\x1b]0;pwned\x07\x1b[2J\x00null\u202eevil\x9b31m"))
    c.send(SetTopic(topic="\x1b[5mblink\x07"))
    chat = ctx.chatter.bob.expect(Chat, nick="offender")
    topic = ctx.chatter.bob.expect(Topic)
    for text in (chat.text, topic.topic):
        assert not any(ch in text for ch in "\x1b\x07\x00\u202e\x9b")
    assert "null" in chat.text and "blink" in topic.topic


def history_with_a_huge_limit(ctx: Ctx) -> None:
    c = ctx.client()
    c.send(FetchHistory(room="lobby", before=10**12, limit=10**9))
    page = c.expect(History)
    assert len(page.messages) <= ctx.server.config.history_size


def direct_to_self_and_to_nobody(ctx: Ctx) -> None:
    c = ctx.client()
    c.send(Direct(id="d1", to="offender", text="note to self"))
    assert c.expect(Private).text == "note to self"
    c.send(Direct(id="d2", to="\x1b[31mghost", text="?"))
    assert expect_error(c, ErrorCode.NO_SUCH_NICK, fatal=False).id == "d2"


def invalid_room(ctx: Ctx) -> None:
    c = ctx.client()
    c.send(Join(room="\x1b[31mred room"))
    expect_error(c, ErrorCode.INVALID_ROOM, fatal=False)


def text_too_long(ctx: Ctx) -> None:
    c = ctx.client()
    c.send(Say(id="long", text="x" * (ctx.server.config.max_text + 1)))
    assert expect_error(c, ErrorCode.TEXT_TOO_LONG, fatal=False).id == "long"


def one_byte_per_send_is_fine(ctx: Ctx) -> None:
    c = ctx.client()
    for byte in encode_message(Say(id="slow", text="byte by byte")):
        c.send_raw(bytes([byte]))
    ctx.chatter.bob.expect(Chat, nick="offender", text="byte by byte")


def surrogates(*headers: dict) -> Callable[[Ctx], None]:
    """Frames whose JSON holds a lone surrogate (``"\\ud83d"``: valid JSON, not valid
    Unicode) in some string field: each is refused as invalid_field, the stream goes on,
    and nothing of it is kept that could break someone else's welcome or message."""
    def attack(ctx: Ctx) -> None:
        c = ctx.client()
        for header in headers:
            c.send_raw(raw(json.dumps(header).encode()))  # ensure_ascii: the surrogate goes as an escape
            err = expect_error(c, ErrorCode.INVALID_FIELD, fatal=False)
            assert "surrogate" in err.message
            if isinstance(header.get("id"), str) and "\ud83d" in header["id"]:
                assert err.id is None  # an id that cannot be encoded is not echoed back
            elif "id" in header:
                assert err.id == header["id"]
        c.send(Say(id="ok", text="still here"))
        ctx.chatter.bob.expect(Chat, nick="offender", text="still here")
        late = ctx.client("latecomer")  # a welcome that lists the offender, the topic, the history
        late.close()
    return attack


def from_address(ctx: Ctx, address: str, nick: str | None = None) -> WireClient:
    """A client whose source address is another loopback address (127.0.0.0/8)."""
    c = WireClient(ctx.port, source=address)
    ctx.sockets.append(c.sock)
    if nick:
        c.hello(nick)
    return c


def one_address_cannot_take_every_slot(ctx: Ctx) -> None:
    limit = ctx.server.config.max_per_address
    squatter = [from_address(ctx, "127.0.0.2", f"squat{n}" if n % 2 else None) for n in range(limit)]
    extra = from_address(ctx, "127.0.0.2")
    err = expect_error(extra, ErrorCode.TOO_MANY_CONNECTIONS, fatal=True)
    assert str(limit) in err.message
    # Others still get in, from their own addresses (the harness's newcomer too).
    assert from_address(ctx, "127.0.0.3", "neighbour").eof is False
    for c in squatter[:1]:  # one slot freed: the address may connect again
        c.close()
    wait_until(lambda: ctx.server._per_address.get("127.0.0.2", 0) < limit, 5, "the slot to be freed")
    assert from_address(ctx, "127.0.0.2", "squat-again").eof is False


def trickle_after_hello(ctx: Ctx) -> None:
    c = ctx.client()
    frame = encode_message(Say(id="t", text="one byte at a time, forever"))
    start = time.monotonic()
    for byte in frame[:-1]:
        try:
            c.send_raw(bytes([byte]))
        except OSError:
            break
        if ctx.chatter.stop.wait(0.1) or time.monotonic() - start > 5:
            break
        if select.select([c.sock], [], [], 0)[0]:  # the server said something: stop and read it
            break
    err = expect_error(c, ErrorCode.TIMED_OUT, fatal=True)
    assert "too slow sending" in err.message
    assert time.monotonic() - start < 5


def lookalike_and_reserved_nicks(ctx: Ctx) -> None:
    c = ctx.client(None)
    for nick in ("\u0430lice", "al\u0131ce", "AL\u0130CE", "ALICE", "b\u043eb"):  # alice and bob are here
        c.send_raw(raw(json.dumps({"type": "hello", "version": PROTOCOL_VERSION, "nick": nick}).encode()))
        err = expect_error(c, ErrorCode.NICK_TAKEN, fatal=False)
        assert "try " in err.message
    for nick in ("server", "System", "admin", "\u0430dmin", "operator", "chatroom", "--", "..", "_"):
        c.send_raw(raw(json.dumps({"type": "hello", "version": PROTOCOL_VERSION, "nick": nick}).encode()))
        expect_error(c, ErrorCode.INVALID_NICK, fatal=False)
    assert c.hello("alice2").nick == "alice2"  # a nick of its own is fine
    c.send(Nick(nick="b\u043eb"))  # and renaming into a look-alike is not
    assert expect_error(c, ErrorCode.NICK_TAKEN, fatal=False)


def guessing_does_not_lock_out_the_rightful(ctx: Ctx) -> None:
    from chatroom.server.guard import AuthGuard
    from tests.server.test_security import password_hello

    ctx.server.auth_guard = AuthGuard(free=2, window=60, first_delay=0.05, max_delay=0.2)
    for attempt in range(12):  # far past where the old guard refused everyone for 10 minutes
        c = ctx.client(None)
        reply = password_hello(c, "guesser", f"guess {attempt}")
        assert isinstance(reply, Error) and reply.code == ErrorCode.AUTH_FAILED.value
        c.wait_closed()
    c = ctx.client(None)
    welcome = password_hello(c, "rightful", ctx.server.config.password or "")
    assert isinstance(welcome, Welcome) and welcome.nick == "rightful"


def stolen_resume_token_without_the_password(ctx: Ctx) -> None:
    """A resume token (sniffed on a plaintext network, say) is not a password: on a
    password room a resume goes through the same challenge as any hello."""
    token = ctx.chatter.welcomes["alice"].resume_token
    c = ctx.client(None)
    c.send(Hello(version=PROTOCOL_VERSION, nick="alice", resume=token, last_seq=0))
    expect_error(c, ErrorCode.AUTH_REQUIRED, fatal=False)
    c.send(Hello(version=PROTOCOL_VERSION, nick="alice", resume=token, last_seq=0, nonce=os.urandom(32).hex()))
    c.expect(Challenge)
    c.send(Auth(proof=os.urandom(32).hex()))  # a guess
    expect_error(c, ErrorCode.AUTH_FAILED, fatal=True)
    assert not any(isinstance(m, Welcome) for m in c.inbox)


def internal_errors_cost_one_message(ctx: Ctx) -> None:
    """A bug in one handler (forced here) answers that message with `internal` and a
    log line; the connection and everyone else go on."""
    from chatroom.server import requests as server_module

    c = ctx.client()
    original = server_module.HANDLERS[Who]

    def broken(handler, msg):
        raise ZeroDivisionError("a bug nobody foresaw")

    server_module.HANDLERS[Who] = broken
    try:
        c.send(Who())
        err = expect_error(c, ErrorCode.INTERNAL, fatal=False)
        assert "who" in err.message
    finally:
        server_module.HANDLERS[Who] = original
    c.send(Who())
    assert c.expect(Members).room == "lobby"
    c.send(Say(id="after", text="after the bug"))
    ctx.chatter.bob.expect(Chat, nick="offender", text="after the bug")


CASES: dict[str, tuple[Callable[[Ctx], None], dict]] = {
    # declared lengths and truncation
    "length-0": (raw_case(raw(b""), ErrorCode.MALFORMED_HEADER, closes=True), {}),
    "length-1": (raw_case(raw(b"x"), ErrorCode.MALFORMED_HEADER, closes=True), {}),
    "length-64KiB+1": (raw_case(struct.pack("!I", 64 * 1024 + 1), ErrorCode.FRAME_TOO_LARGE, closes=True), {}),
    "length-4GiB": (raw_case(b"\xff\xff\xff\xff", ErrorCode.FRAME_TOO_LARGE, closes=True), {}),
    "body-over-limit": (raw_case(raw(b'{"type":"say","id":"1","text":"x","body":2000000}'),
                                 ErrorCode.FRAME_TOO_LARGE, closes=True), {}),
    "truncated-then-eof": (raw_case(raw(b'{"type":"say","id":"1","text":"hello"}')[:-5], None, closes=True,
                                    half_close=True), {}),
    "truncated-prefix-then-eof": (raw_case(b"\x00\x00", None, closes=True, half_close=True), {}),
    # headers that are not what they should be
    "not-utf8": (raw_case(raw(b'{"type":"say","id":"1","text":"\xff\xfe"}'), ErrorCode.MALFORMED_HEADER,
                          closes=True), {}),
    "not-json": (raw_case(raw(b"hello there"), ErrorCode.MALFORMED_HEADER, closes=True), {}),
    "json-list": (raw_case(raw(b'["say","hi"]'), ErrorCode.MALFORMED_HEADER, closes=True), {}),
    "json-string": (raw_case(raw(b'"say"'), ErrorCode.MALFORMED_HEADER, closes=True), {}),
    "deeply-nested": (raw_case(raw(b'{"type":"say","x":' + b"[" * 20000 + b"]" * 20000 + b"}"),
                               ErrorCode.MALFORMED_HEADER, closes=True), {}),
    # valid JSON: a field error, not a broken stream (64-bit integers, PROTOCOL.md)
    "huge-number": (raw_case(raw(b'{"type":"fetch_history","room":"lobby","limit":1,"before":' + b"9" * 6000 + b"}"),
                             ErrorCode.INVALID_FIELD, closes=False), {}),
    "negative-body": (raw_case(raw(b'{"type":"say","body":-5}'), ErrorCode.MALFORMED_HEADER, closes=True), {}),
    # valid frames, invalid messages: an error, and the stream carries on
    "unknown-type": (raw_case(encode_frame({"type": "launch_missiles"}), ErrorCode.UNKNOWN_TYPE, closes=False), {}),
    "missing-type": (raw_case(raw(b'{"text":"hi"}'), ErrorCode.UNKNOWN_TYPE, closes=False), {}),
    "wrong-field-type": (raw_case(encode_frame({"type": "say", "id": "1", "text": ["a"]}),
                                  ErrorCode.INVALID_FIELD, closes=False), {}),
    "nested-field": (raw_case(encode_frame({"type": "say", "id": "1", "text": {"a": [[[[1]]]]}}),
                              ErrorCode.INVALID_FIELD, closes=False), {}),
    "missing-field": (raw_case(encode_frame({"type": "say", "id": "1"}), ErrorCode.INVALID_FIELD, closes=False), {}),
    "bool-as-int": (raw_case(encode_frame({"type": "fetch_history", "room": "lobby", "before": True}),
                             ErrorCode.INVALID_FIELD, closes=False), {}),
    "huge-int-field": (raw_case(encode_frame({"type": "fetch_history", "room": "lobby", "before": 2**80}),
                                ErrorCode.INVALID_FIELD, closes=False), {}),
    "id-too-long": (raw_case(encode_frame({"type": "say", "id": "x" * 65, "text": "hi"}), ErrorCode.INVALID_FIELD,
                             closes=False), {}),
    "server-only-message": (raw_case(encode_frame({"type": "ack", "id": "1", "ts": 1}), ErrorCode.BAD_MESSAGE,
                                     closes=False), {}),
    "body-on-a-say": (raw_case(encode_frame({"type": "say", "id": "1", "text": "x"}, b"junk"),
                               ErrorCode.INVALID_FIELD, closes=False), {}),
    # the handshake
    "say-before-hello": (raw_case(encode_message(Say(id="1", text="hi")), ErrorCode.NOT_READY, closes=False,
                                  after_hello=False), {}),
    "second-hello": (raw_case(HELLO, ErrorCode.ALREADY_HELLO, closes=False), {}),
    "nick-of-escapes": (raw_case(encode_message(Hello(version=PROTOCOL_VERSION, nick="\x1b[2J\x1b]0;pwned\x07")),
                                 ErrorCode.INVALID_NICK, closes=False, after_hello=False), {}),
    "nick-too-long": (raw_case(encode_message(Hello(version=PROTOCOL_VERSION, nick="n" * 33)),
                               ErrorCode.INVALID_NICK, closes=False, after_hello=False), {}),
    "future-major-version": (raw_case(encode_frame({"type": "hello", "version": "9.0", "nick": "x"}),
                                      ErrorCode.VERSION_MISMATCH, closes=True, after_hello=False), {}),
    # behaviour
    "slowloris": (slowloris, {"handshake_timeout": 1.0}),
    "500-connections-never-say-hello": (many_silent_connections, {"handshake_timeout": 1.0, "max_clients": 300,
                                                                  "max_per_address": 0}),
    "flood-of-valid-messages": (valid_flood, {"rate": 4, "burst": 20, "max_strikes": 10}),
    "ping-flood": (ping_flood, {"rate": 4, "burst": 20, "max_strikes": 10}),
    "wrong-password-repeated": (wrong_password_repeated, {"password": "the real one"}),
    "tls-client-to-plain-server": (tls_client_to_plain_server, {}),
    "plain-client-to-tls-server": (plain_client_to_tls_server, {"tls": True}),
    "escape-sequences-in-text-and-topic": (escapes_are_made_harmless, {}),
    "history-with-a-huge-limit": (history_with_a_huge_limit, {}),
    "direct-to-self-and-to-nobody": (direct_to_self_and_to_nobody, {}),
    "invalid-room-name": (invalid_room, {}),
    "text-one-over-the-limit": (text_too_long, {}),
    "one-byte-per-send": (one_byte_per_send_is_fine, {}),
    # round two: what the black-box attackers found
    "surrogate-in-topic": (surrogates({"type": "set_topic", "topic": "t\ud83d"}), {}),
    "surrogate-in-away": (surrogates({"type": "away", "message": "gone \ud83d"}), {}),
    "surrogate-in-texts": (surrogates({"type": "say", "id": "s1", "text": "hi \ud83d"},
                                      {"type": "action", "id": "s2", "text": "\ude00 waves"},
                                      {"type": "direct", "id": "s3", "to": "bob", "text": "psst \ud83d"},
                                      {"type": "direct", "id": "s4", "to": "b\ud83d", "text": "psst"}), {}),
    "surrogate-in-id": (surrogates({"type": "say", "id": "x\ud83d", "text": "hi"}), {}),
    "surrogate-in-nick-and-room": (surrogates({"type": "nick", "nick": "n\ud83d"},
                                              {"type": "join", "room": "r\ud83d"},
                                              {"type": "fetch_history", "room": "\ud83d", "before": 5}), {}),
    "surrogate-in-file-name": (surrogates({"type": "offer_file", "id": "f1", "name": "evil\ud83d.txt",
                                           "size": 3, "sha256": "0" * 64}), {}),
    "one-address-takes-every-slot": (one_address_cannot_take_every_slot, {"max_per_address": 6}),
    "trickle-after-hello": (trickle_after_hello, {"frame_timeout": 1.0}),
    "lookalike-and-reserved-nicks": (lookalike_and_reserved_nicks, {}),
    "guessers-do-not-lock-out-the-rightful": (guessing_does_not_lock_out_the_rightful,
                                              {"password": "the real one"}),
    "a-bug-in-a-handler": (internal_errors_cost_one_message, {}),
    "stolen-resume-token-without-the-password": (stolen_resume_token_without_the_password,
                                                 {"password": "the real one"}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_harmless(make_server, name, request):
    attack, overrides = CASES[name]
    settings = {"rate": 0, **overrides}
    if settings.pop("tls", False):
        settings["tls_cert"], settings["tls_key"] = request.getfixturevalue("tls_files")
    needs_password = "password" in settings
    server = make_server(**settings)
    before = rss_kib()
    violations: list[str] = []
    watching = threading.Event()

    def watch_limits() -> None:  # every 10 ms: no buffer past its limit
        cfg = server.config
        while not watching.is_set():
            for conn in server.connections():
                if len(conn.outbox) > cfg.outbox_limit:
                    violations.append(f"{conn}: outbox {len(conn.outbox)}")
                if conn.decoder is not None and conn.decoder.buffered > cfg.max_header + cfg.max_body + 4 + 65536:
                    violations.append(f"{conn}: decoder {conn.decoder.buffered}")
            watching.wait(0.01)

    watcher = threading.Thread(target=watch_limits, daemon=True)
    watcher.start()
    chatter = Chatter(server)
    ctx = Ctx(server, chatter, server.port)
    try:
        with chatter:
            attack(ctx)
        assert chatter.sent >= Chatter.MIN_MESSAGES
        chatter.verify()
        newcomer = WireClient(server.port, tls=server.tls_context is not None) if not needs_password else None
        if newcomer is not None:
            assert newcomer.hello("newcomer").nick == "newcomer"
            newcomer.close()
        assert not violations, violations[:3]
        assert rss_kib() - before < 64 * 1024, "memory grew by more than 64 MiB"
    finally:
        watching.set()
        watcher.join(2)
        for s in ctx.sockets:
            s.close()
        chatter.close()


def test_the_suite_is_big_enough():
    assert len(CASES) >= 30
