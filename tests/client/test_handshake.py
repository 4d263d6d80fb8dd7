"""The client's handshake, with messages only: no sockets.  The cases a fake or broken
server can produce, which socket tests could not reach before."""

from __future__ import annotations

import os

import pytest

from chatroom.auth import client_proof, derive_key, server_proof
from chatroom.client.handshake import ClientHandshake, Done, NeedTls, Send
from chatroom.errors import HandshakeRefused
from chatroom.protocol import PROTOCOL_VERSION, Auth, Bye, Challenge, Error, ErrorCode, Notice, Welcome

PASSWORD = "correct horse"
SALT = bytes(range(16))


def welcome(**fields: object) -> Welcome:
    return Welcome(version=PROTOCOL_VERSION, server="s", nick="ann", room="lobby", **fields)  # type: ignore[arg-type]


def with_password(**kw: object) -> ClientHandshake:
    return ClientHandshake(nick="ann", room=None, client="test", password=PASSWORD, nonce=os.urandom(32), **kw)


def without_password(**kw: object) -> ClientHandshake:
    return ClientHandshake(nick="ann", room=None, client="test", password=None, nonce=None, **kw)


def test_a_nonce_is_sent_only_with_a_password():
    assert with_password().hello.nonce and without_password().hello.nonce is None
    with pytest.raises(ValueError):
        ClientHandshake(nick="ann", room=None, client="t", password=None, nonce=os.urandom(32))


def test_the_full_exchange_checks_the_servers_proof():
    hs = with_password()
    server_nonce = os.urandom(32)
    step = hs.receive(Challenge(nonce=server_nonce.hex(), salt=SALT.hex()))
    key = derive_key(PASSWORD, SALT)
    assert isinstance(step, Send) and step.message == Auth(proof=client_proof(key, server_nonce, hs.nonce).hex())
    good = welcome(proof=server_proof(key, hs.nonce, server_nonce).hex())
    assert hs.receive(good) == Done(good)


@pytest.mark.parametrize("resumed", [False, True])
def test_a_welcome_without_a_challenge_is_refused_when_we_sent_a_nonce(resumed):
    """The fake room: no challenge, just a welcome -- resumed or not."""
    with pytest.raises(HandshakeRefused) as info:
        with_password(resume_token="t" if resumed else None).receive(welcome(resumed=resumed))
    assert info.value.code == ErrorCode.AUTH_FAILED and "not the room" in info.value.message


@pytest.mark.parametrize("proof", [None, "0" * 64])
def test_a_welcome_with_no_proof_or_a_wrong_one_is_refused(proof):
    hs = with_password()
    hs.receive(Challenge(nonce=os.urandom(32).hex(), salt=SALT.hex()))
    with pytest.raises(HandshakeRefused):
        hs.receive(welcome(proof=proof))


def test_without_a_password_a_challenge_asks_for_one_and_an_open_welcome_is_fine():
    with pytest.raises(HandshakeRefused) as info:
        without_password().receive(Challenge(nonce=os.urandom(32).hex(), salt=SALT.hex()))
    assert info.value.code == ErrorCode.AUTH_REQUIRED
    w = welcome()
    assert without_password().receive(w) == Done(w)


def test_a_refused_resume_falls_back_to_a_plain_hello_once():
    hs = without_password(resume_token="old", last_seq=7)
    assert hs.hello.resume == "old" and hs.hello.last_seq == 7
    step = hs.receive(Error(code=ErrorCode.RESUME_REFUSED.value, message="expired"))
    assert isinstance(step, Send) and step.message.resume is None and hs.resume_refused
    with pytest.raises(HandshakeRefused):
        hs.receive(Error(code=ErrorCode.RESUME_REFUSED.value, message="again?"))


def test_tls_required_upgrades_a_plain_connection_and_is_final_on_a_tls_one():
    with pytest.raises(NeedTls):
        without_password().receive(Error(code=ErrorCode.TLS_REQUIRED.value, message="use TLS", fatal=True))
    with pytest.raises(HandshakeRefused):
        without_password(tls=True).receive(Error(code=ErrorCode.TLS_REQUIRED.value, message="?", fatal=True))


def test_notices_are_no_answer_and_errors_or_goodbyes_refuse():
    hs = without_password()
    assert hs.receive(Notice(text="your password is checked in 3 s")) is None
    with pytest.raises(HandshakeRefused) as info:
        hs.receive(Error(code=ErrorCode.NICK_TAKEN.value, message="taken", suggestion="ann2"))
    assert info.value.code == ErrorCode.NICK_TAKEN
    with pytest.raises(HandshakeRefused) as info:
        without_password().receive(Bye(reason="server shutting down"))
    assert info.value.code == ErrorCode.SHUTTING_DOWN
