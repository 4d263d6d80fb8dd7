"""Room password, operators and moderation, against a live server on 127.0.0.1."""

from __future__ import annotations

import io
import os
import socket
import threading
import time

import pytest

from chatroom.auth import client_proof, derive_key, server_proof
from chatroom.client.connection import ChatClient
from chatroom.errors import HandshakeRefused
from chatroom.protocol import (
    PROTOCOL_VERSION,
    Auth,
    Challenge,
    Chat,
    Error,
    ErrorCode,
    FrameDecoder,
    Hello,
    Members,
    ModAction,
    Moderate,
    Notice,
    Op,
    Ping,
    Presence,
    PresenceEvent,
    Say,
    SetTopic,
    Topic,
    Welcome,
    Who,
    decode_message,
    encode_message,
)
from chatroom.server.guard import AuthGuard
from chatroom.server.tcp import CloseReason
from chatroom.trace import Tracer
from tests.polling import wait_until
from tests.wire import WireClient

PASSWORD = "correct horse battery staple"


def password_hello(c: WireClient, nick: str, password: str) -> Welcome | Error:
    """Do the exchange by hand, as PROTOCOL.md describes it."""
    nonce = os.urandom(32)
    c.send(Hello(version=PROTOCOL_VERSION, nick=nick, nonce=nonce.hex()))
    challenge = c.expect(Challenge)
    key = derive_key(password, bytes.fromhex(challenge.salt))
    c.send(Auth(proof=client_proof(key, bytes.fromhex(challenge.nonce), nonce).hex()))
    reply = c.wait_for(lambda m: isinstance(m, Welcome | Error))
    if isinstance(reply, Welcome):  # the server proves itself only now, and correctly
        assert reply.proof == server_proof(key, nonce, bytes.fromhex(challenge.nonce)).hex()
    return reply  # type: ignore[return-value]


def test_the_right_password_joins_and_the_password_never_crosses_the_wire(make_server):
    server = make_server(password=PASSWORD)
    server.tracer = trace = Tracer(io.StringIO())  # every frame, both ways, as text
    c = WireClient(server.port)
    reply = password_hello(c, "ann", PASSWORD)
    assert isinstance(reply, Welcome) and reply.nick == "ann"
    trace.close()
    wire = trace.out.getvalue()
    assert '"type":"auth"' in wire and '"type":"challenge"' in wire  # the exchange was traced ...
    assert "horse" not in wire and derive_key(PASSWORD, b"x").hex() not in wire  # ... the secret was not
    c.close()


def test_no_password_is_asked_for_and_a_wrong_one_is_refused(make_server):
    server = make_server(password=PASSWORD)
    c = WireClient(server.port)
    c.send(Hello(version=PROTOCOL_VERSION, nick="ann"))  # no nonce
    err = c.expect(Error)
    assert err.code == ErrorCode.AUTH_REQUIRED.value and not err.fatal
    reply = password_hello(c, "ann", "wrong")
    assert isinstance(reply, Error) and reply.code == ErrorCode.AUTH_FAILED.value and reply.fatal
    c.wait_closed()
    c.close()


def test_a_recorded_proof_cannot_be_replayed_in_another_exchange(make_server):
    server = make_server(password=PASSWORD)
    first = WireClient(server.port)
    nonce = os.urandom(32)
    first.send(Hello(version=PROTOCOL_VERSION, nick="ann", nonce=nonce.hex()))
    challenge = first.expect(Challenge)
    key = derive_key(PASSWORD, bytes.fromhex(challenge.salt))
    recorded = Auth(proof=client_proof(key, bytes.fromhex(challenge.nonce), nonce).hex())
    first.send(recorded)
    first.expect(Welcome)
    first.close()
    attacker = WireClient(server.port)
    attacker.send(Hello(version=PROTOCOL_VERSION, nick="mallory", nonce=nonce.hex()))  # same client nonce
    attacker.expect(Challenge)  # but a fresh server nonce
    attacker.send(recorded)
    assert attacker.expect(Error).code == ErrorCode.AUTH_FAILED.value
    attacker.close()


def test_the_client_refuses_a_room_that_cannot_prove_it_knows_the_password():
    """A fake room that accepts any proof gives itself away: it cannot prove back."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def fake_room() -> None:
        conn, _ = listener.accept()
        decoder = FrameDecoder()
        while not (frames := decoder.feed(conn.recv(65536))):
            pass
        conn.sendall(encode_message(Challenge(nonce=os.urandom(32).hex(), salt=os.urandom(16).hex())))
        while not decoder.feed(conn.recv(65536)):
            pass
        conn.sendall(encode_message(Welcome(version=PROTOCOL_VERSION, server="fake", nick="ann", room="lobby",
                                            proof=os.urandom(32).hex())))
        assert isinstance(decode_message(frames[0]), Hello)
        conn.recv(65536)
        conn.close()

    thread = threading.Thread(target=fake_room, daemon=True)
    thread.start()
    client = ChatClient("127.0.0.1", listener.getsockname()[1], "ann", password=PASSWORD)
    with pytest.raises(HandshakeRefused) as info:
        client.connect()
    assert info.value.code == ErrorCode.AUTH_FAILED and "not the room" in info.value.message
    thread.join(5)
    listener.close()


def test_a_client_with_a_password_refuses_a_room_that_never_asked_for_it(make_server):
    """A fake "password room" that skips the challenge and welcomes anyone: the client
    sent a nonce, got no proof back, and refuses."""
    server = make_server()  # no password at all
    client = ChatClient("127.0.0.1", server.port, "ann", password=PASSWORD)
    with pytest.raises(HandshakeRefused) as info:
        client.connect()
    assert info.value.code == ErrorCode.AUTH_FAILED and "not the room" in info.value.message
    # Without a password the same client joins that open room as before.
    open_client = ChatClient("127.0.0.1", server.port, "bea")
    try:
        assert open_client.connect().nick == "bea"
    finally:
        open_client.close()


def test_a_resume_on_a_password_room_proves_both_sides_again(make_server):
    server = make_server(password=PASSWORD, resume_grace=30)
    first = WireClient(server.port)
    welcome = password_hello(first, "ann", PASSWORD)
    assert isinstance(welcome, Welcome) and welcome.resume_token
    first.close()  # dropped, not gone: the session is held
    wait_until(lambda: all(c.member is None or c.member.sink is None for c in server.connections()), 5,
               "the first connection to end")
    back = WireClient(server.port)
    back.send(Hello(version=PROTOCOL_VERSION, nick="ann", resume=welcome.resume_token, last_seq=0))
    assert back.expect(Error).code == ErrorCode.AUTH_REQUIRED.value  # the token alone is not enough
    nonce = os.urandom(32)
    back.send(Hello(version=PROTOCOL_VERSION, nick="ann", resume=welcome.resume_token, last_seq=0,
                    nonce=nonce.hex()))
    challenge = back.expect(Challenge)
    key = derive_key(PASSWORD, bytes.fromhex(challenge.salt))
    back.send(Auth(proof=client_proof(key, bytes.fromhex(challenge.nonce), nonce).hex()))
    resumed = back.expect(Welcome)
    assert resumed.resumed and resumed.nick == "ann"
    assert resumed.proof == server_proof(key, nonce, bytes.fromhex(challenge.nonce)).hex()
    back.close()


def test_the_client_resumes_a_password_room_checking_the_servers_proof(make_server):
    server = make_server(password=PASSWORD)
    client = ChatClient("127.0.0.1", server.port, "ann", password=PASSWORD)
    client.BACKOFF_START = 0.1
    try:
        client.connect()
        conn = next(c for c in server.connections() if c.member and c.member.nick == "ann")
        conn.close(CloseReason.LOST)
        wait_until(lambda: client.resumed and client.state.value == "connected", 10, "the client to resume")
        assert client.nick == "ann"
    finally:
        client.close()


def test_the_client_does_the_exchange_itself(make_server):
    server = make_server(password=PASSWORD)
    client = ChatClient("127.0.0.1", server.port, "ann", password=PASSWORD)
    client.BACKOFF_START = 0.1
    try:
        assert client.connect().nick == "ann"
        with pytest.raises(HandshakeRefused) as info:
            ChatClient("127.0.0.1", server.port, "bob").connect()
        assert info.value.code == ErrorCode.AUTH_REQUIRED
        with pytest.raises(HandshakeRefused) as info:
            ChatClient("127.0.0.1", server.port, "bob", password="nope").connect()
        assert info.value.code == ErrorCode.AUTH_FAILED
    finally:
        client.close()


def test_guessers_are_slowed_but_the_right_password_still_gets_in(make_server, caplog):
    server = make_server(password=PASSWORD)
    server.auth_guard = AuthGuard(free=2, window=60, first_delay=0.2, max_delay=0.4)
    answered = []
    for attempt in range(4):
        c = WireClient(server.port)
        reply = password_hello(c, "guesser", f"guess {attempt}")
        answered.append(time.monotonic())
        assert isinstance(reply, Error) and reply.code == ErrorCode.AUTH_FAILED.value
        c.close()
    # Two free failures, then answers spaced by a growing delay: 0.2 s, then 0.4 s.
    assert answered[2] - answered[1] >= 0.19 and answered[3] - answered[2] >= 0.39
    # The rightful user on the same address waits its turn (as long as a guess would:
    # the timing tells nothing), is told why, and gets in.
    # (Its turn comes a delay after the last answer, as the guesses' did -- timed from
    # there, not from when this client got going, which a busy machine makes later.)
    c = WireClient(server.port)
    reply = password_hello(c, "rightful", PASSWORD)
    assert isinstance(reply, Welcome) and reply.nick == "rightful"
    assert time.monotonic() - answered[3] >= 0.39
    assert any(isinstance(m, Notice) and "checked in" in m.text for m in c.inbox)
    c.close()
    assert any("wrong password from 127.0.0.1" in r.message for r in caplog.records)


def test_a_throttled_guesser_that_hangs_up_leaves_no_thread_waiting(make_server):
    """Throttled attempts wait their turn in the connection's thread; one whose client
    has gone stops waiting (else a guesser opening a connection per try and hanging up
    parks a thread per try, for minutes)."""
    server = make_server(password=PASSWORD)
    server.auth_guard = AuthGuard(free=0, window=600, first_delay=60, max_delay=60)
    server.auth_guard.failed("127.0.0.1", time.monotonic())  # throttled: a minute between answers
    for _ in range(3):
        c = WireClient(server.port)
        nonce = os.urandom(32)
        c.send(Hello(version=PROTOCOL_VERSION, nick="guesser", nonce=nonce.hex()))
        c.expect(Challenge)
        c.send(Auth(proof="0" * 64))
        assert "checked in" in c.expect(Notice).text  # waiting its turn (a minute or more)
        c.send(Ping(token="unread"))  # something the server cannot read while it waits
        c.close()
    wait_until(lambda: not server.connections(), 5, "the hung-up guessers' connections to end")
    # One that only stops sending (a script piping its input) still reads its answer.
    server.auth_guard = AuthGuard(free=0, window=600, first_delay=1.5, max_delay=1.5)
    server.auth_guard.failed("127.0.0.1", time.monotonic())
    c = WireClient(server.port)
    nonce = os.urandom(32)
    c.send(Hello(version=PROTOCOL_VERSION, nick="rightful", nonce=nonce.hex()))
    challenge = c.expect(Challenge)
    key = derive_key(PASSWORD, bytes.fromhex(challenge.salt))
    c.send(Auth(proof=client_proof(key, bytes.fromhex(challenge.nonce), nonce).hex()))
    c.sock.shutdown(socket.SHUT_WR)
    assert c.expect(Welcome).nick == "rightful"
    c.close()


def test_auth_guard_rules():
    guard = AuthGuard(free=2, window=100, first_delay=1, max_delay=4)
    assert guard.schedule("a", 0) == 0
    guard.failed("a", 0)
    assert guard.delay("a", 0) == 0 and guard.schedule("a", 1) == 0  # a free guess (typos happen)
    guard.failed("a", 1)
    assert guard.delay("a", 1) == 1
    guard.failed("a", 2)
    assert guard.delay("a", 2) == 2
    guard.failed("a", 4)
    guard.failed("a", 5)
    assert guard.delay("a", 5) == 4  # capped
    # Answers to one address are spaced out, however many connections ask at once.
    assert guard.schedule("a", 5) == 4 and guard.schedule("a", 5) == 8 and guard.schedule("a", 6) == 11
    assert guard.schedule("b", 5) == 0  # other addresses are not affected
    assert guard.delay("a", 200) == 0  # the failures aged out of the window
    guard.forget_old(1000)  # long after: nothing about "a" is kept
    assert guard._records == {}


# ----------------------------------------------------------------------------- operators


def become_op(c: WireClient, server) -> None:
    c.send(Op(token=server.op_token))
    assert "operator" in c.expect(Notice).text


def test_only_the_operator_token_makes_an_operator_and_only_operators_moderate(connect, server):
    ann, bob = connect("ann"), connect("bob")
    bob.send(Moderate(action=ModAction.KICK, target="ann"))
    assert bob.expect(Error).code == ErrorCode.NOT_OPERATOR.value
    bob.send(Op(token="guess"))
    assert bob.expect(Error).code == ErrorCode.NOT_OPERATOR.value
    become_op(ann, server)
    ann.send(Who())
    assert all(m.address and m.address.startswith("127.0.0.1") for m in ann.expect(Members).members)
    bob.send(Who())
    assert all(m.address is None for m in bob.expect(Members).members)


def test_kick_disconnects_with_a_reason_everyone_sees(connect, server):
    op, victim, witness = connect("op"), connect("victim"), connect("witness")
    become_op(op, server)
    op.send(Moderate(action=ModAction.KICK, target="victim", reason="spamming"))
    err = victim.expect(Error)
    assert err.code == ErrorCode.KICKED.value and "spamming" in err.message and err.fatal
    victim.wait_closed()
    leave = witness.expect(Presence, event=PresenceEvent.LEAVE, nick="victim")
    assert leave.reason == "kicked by op: spamming"


def test_a_ban_disconnects_refuses_reconnects_survives_a_restart_and_can_be_lifted(make_server, tmp_path):
    server = make_server(data_dir=str(tmp_path))
    op = WireClient(server.port)  # 127.0.0.1
    victim = WireClient(server.port, source="127.0.0.2")  # another machine
    op.hello("op")
    victim.hello("victim")
    become_op(op, server)
    op.send(Moderate(action=ModAction.BAN, target="victim", reason="spam"))
    assert victim.expect(Error).code == ErrorCode.BANNED.value
    assert "banned 127.0.0.2" in op.expect(Notice).text
    victim.wait_closed()
    again = WireClient(server.port, source="127.0.0.2")
    assert again.expect(Error).code == ErrorCode.BANNED.value
    neighbour = WireClient(server.port, source="127.0.0.3")
    assert neighbour.hello("neighbour").nick == "neighbour"  # only that address
    op.send(Moderate(action=ModAction.BANS))
    listing = op.expect(Notice).text
    assert "127.0.0.2 (victim)" in listing and "by op: spam" in listing
    for c in (again, neighbour, op):
        c.close()
    server.stop()
    restarted = make_server(data_dir=str(tmp_path))
    still = WireClient(restarted.port, source="127.0.0.2")
    err = still.expect(Error)
    assert err.code == ErrorCode.BANNED.value and err.fatal
    still.close()
    op2 = WireClient(restarted.port)
    op2.hello("op2")
    become_op(op2, restarted)
    op2.send(Moderate(action=ModAction.UNBAN, target="victim"))  # by the banned nick
    assert "unbanned 127.0.0.2" in op2.expect(Notice).text
    back = WireClient(restarted.port, source="127.0.0.2")
    assert back.hello("victim").nick == "victim"
    for c in (op2, back):
        c.close()


def test_on_a_shared_address_a_ban_falls_back_to_the_person_and_never_hits_an_operator(connect, server):
    op, victim, bystander = connect("op"), connect("victim"), connect("bystander")  # all on 127.0.0.1
    become_op(op, server)
    op.send(Moderate(action=ModAction.BAN, target="victim"))
    assert victim.expect(Error).code == ErrorCode.BANNED.value
    assert "the person, not the address 127.0.0.1" in op.expect(Notice).text
    victim.wait_closed()
    bystander.send(Say(id="b1", text="still here"))  # the others on that address are untouched
    assert op.expect(Chat).text == "still here"
    for nick in ("victim", "VICTIM", "v\u0456ctim"):  # the person, look-alikes included
        back = connect()
        back.send(Hello(version=PROTOCOL_VERSION, nick=nick))
        assert back.expect(Error).code == ErrorCode.BANNED.value
    # An operator is never banned: not by nick, not by address.
    second = connect("second")
    become_op(second, server)
    op.send(Moderate(action=ModAction.BAN, target="second"))
    assert "operators cannot be banned" in op.expect(Notice).text
    op.send(Moderate(action=ModAction.BAN, target="127.0.0.1"))
    assert "an operator is connected from 127.0.0.1" in op.expect(Notice).text
    op.send(Moderate(action=ModAction.UNBAN, target="victim"))
    assert "unbanned victim (the person)" in op.expect(Notice).text
    connect("victim")  # joins again: its hello expects a welcome, and fails the test otherwise


def test_bans_can_be_listed_and_lifted_with_the_server_down(make_server, tmp_path):
    import subprocess
    import sys

    server = make_server(data_dir=str(tmp_path))
    op = WireClient(server.port)
    victim = WireClient(server.port, source="127.0.0.2")
    op.hello("op")
    victim.hello("victim")
    become_op(op, server)
    op.send(Moderate(action=ModAction.BAN, target="victim", duration=3600))
    op.expect(Notice)
    op.close()
    victim.close()
    server.stop()

    def bans(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "chatroom", "bans", "--data-dir", str(tmp_path), *args],
                              capture_output=True, text=True, timeout=30)

    listed = bans()
    assert listed.returncode == 0 and "127.0.0.2 (victim)" in listed.stdout and "more min" in listed.stdout
    lifted = bans("--unban", "victim")
    assert lifted.returncode == 0 and "unbanned 127.0.0.2" in lifted.stdout
    assert "nobody is banned" in bans().stdout
    assert bans("--unban", "nobody").returncode == 1
    restarted = make_server(data_dir=str(tmp_path))
    back = WireClient(restarted.port, source="127.0.0.2")
    assert back.hello("victim").nick == "victim"
    back.close()


def test_mute_stops_messages_until_unmuted(connect, server):
    op, loud, witness = connect("op"), connect("loud"), connect("witness")
    become_op(op, server)
    op.send(Moderate(action=ModAction.MUTE, target="loud"))
    assert "muted you" in loud.expect(Notice).text
    loud.send(Say(id="m1", text="can anyone hear me"))
    err = loud.expect(Error, id="m1")
    assert err.code == ErrorCode.MUTED.value
    op.send(Moderate(action=ModAction.UNMUTE, target="loud"))
    loud.expect(Notice)
    loud.send(Say(id="m2", text="back"))
    assert witness.expect(Chat).text == "back"  # the muted message never arrived


def test_a_locked_topic_is_for_operators_only(connect, server):
    op, user = connect("op"), connect("user")
    become_op(op, server)
    op.send(Moderate(action=ModAction.LOCK))
    assert "locked" in op.expect(Notice).text
    user.send(SetTopic(topic="vandalism"))
    assert user.expect(Error).code == ErrorCode.NOT_OPERATOR.value
    op.send(SetTopic(topic="official"))
    assert user.expect(Topic).topic == "official"
