"""The client's side of the handshake, with no I/O: messages in, what to send or the
outcome out.  ``connection.py`` pumps it over a socket; tests drive it with messages.

The rules it keeps (PROTOCOL.md, "Handshake" and "Room password"):

* a ``nonce`` goes in the hello only when we have a password -- and then the server
  must prove it knows the password too: a ``welcome`` (resumed or not) without this
  exchange's proof is refused, whatever else it says;
* a ``challenge`` without a password of ours is ``auth_required`` (the caller may ask
  the user and try again);
* a refused resume falls back to a plain hello, once;
* ``tls_required`` on a plaintext connection means: reconnect with TLS (never the
  other way round); any other error, or a goodbye, refuses the handshake.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from chatroom.auth import client_proof, derive_key, proofs_match, server_proof
from chatroom.errors import HandshakeRefused
from chatroom.protocol import (
    PROTOCOL_VERSION,
    Auth,
    Bye,
    Challenge,
    Error,
    ErrorCode,
    Hello,
    Message,
    Notice,
    Welcome,
)

__all__ = ["ClientHandshake", "Send", "Done", "NeedTls"]


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to the server and wait for more."""

    message: Message


@dataclass(frozen=True, slots=True)
class Done:
    """The handshake succeeded: this is the welcome."""

    welcome: Welcome


class NeedTls(Exception):
    """The server speaks TLS only: connect again with TLS (an upgrade, never a downgrade)."""


class ClientHandshake:
    """One attempt at a handshake.  ``nonce``: 32 fresh random bytes when we have a
    password (the caller makes them, so that tests can choose them)."""

    def __init__(self, *, nick: str, room: str | None, client: str, password: str | None,
                 nonce: bytes | None, resume_token: str | None = None, last_seq: int | None = None,
                 seen: dict[str, int] | None = None, tls: bool = False) -> None:
        if (password is None) != (nonce is None):
            raise ValueError("a nonce goes with a password, and only with one")
        self.password = password
        self.nonce = nonce
        self.tls = tls
        self.plain_hello = Hello(version=PROTOCOL_VERSION, nick=nick, client=client, room=room or None,
                                 nonce=nonce.hex() if nonce else None)
        self.hello = (msgspec.structs.replace(self.plain_hello, resume=resume_token, last_seq=last_seq,
                                              seen=seen or None)
                      if resume_token else self.plain_hello)
        self.resume_refused = False
        self._expected_proof: bytes | None = None  # the server's proof, once we have given ours

    def receive(self, msg: Message) -> Send | Done | None:
        """What the server said; raises :class:`~chatroom.errors.HandshakeRefused` or
        :class:`NeedTls` when the handshake cannot go on."""
        if isinstance(msg, Welcome):
            if self.nonce is not None:
                self._check_proof(msg)
            return Done(msg)
        if isinstance(msg, Challenge):
            return Send(self._answer(msg))
        if isinstance(msg, Error):
            return self._error(msg)
        if isinstance(msg, Bye):
            raise HandshakeRefused(ErrorCode.SHUTTING_DOWN, msg.reason or "the server is closing")
        if isinstance(msg, Notice):
            return None  # e.g. a throttled password check says how long it waits
        return None  # anything else before the welcome: not ours to act on

    def _error(self, msg: Error) -> Send:
        if msg.code == ErrorCode.RESUME_REFUSED and not self.resume_refused:
            self.resume_refused = True  # the session is gone: join afresh
            return Send(self.plain_hello)
        if msg.code == ErrorCode.TLS_REQUIRED and not self.tls:
            raise NeedTls(msg.message)
        raise HandshakeRefused(msg.code, msg.message)

    def _answer(self, challenge: Challenge) -> Auth:
        """Prove we know the room password; remember what the server must answer."""
        if self.password is None or self.nonce is None:
            raise HandshakeRefused(ErrorCode.AUTH_REQUIRED, "this room needs a password")
        key = derive_key(self.password, bytes.fromhex(challenge.salt))
        server_nonce = bytes.fromhex(challenge.nonce)
        self._expected_proof = server_proof(key, self.nonce, server_nonce)
        return Auth(proof=client_proof(key, server_nonce, self.nonce).hex())

    def _check_proof(self, welcome: Welcome) -> None:
        """We sent a nonce: the welcome must carry the server's proof for this exchange.
        No challenge at all, no proof, or a wrong one: a server that does not know the
        room password let us in, so it is not the room we think."""
        expected = self._expected_proof
        if expected is None or welcome.proof is None or not proofs_match(bytes.fromhex(welcome.proof), expected):
            raise HandshakeRefused(
                ErrorCode.AUTH_FAILED,
                "this server accepted us without proving it knows the room password: it is not the room you "
                "think it is (check the address with the host)",
            )
