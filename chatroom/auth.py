"""Room passwords: mutual challenge-response, and slowing down guessers.  No I/O.

The exchange (PROTOCOL.md, "Room password")::

    client                                         server (knows key = KDF(password, salt))
      hello {nonce: Nc, ...}                  ->
                                              <-   challenge {nonce: Ns, salt}
      auth {proof: Pc}                        ->   Pc == HMAC(key, "client" | Ns | Nc) ?
                                              <-   welcome {proof: Ps, ...} or error auth_failed
      checks Ps == HMAC(key, "server" | Nc | Ns)   (a fake room cannot produce it)

The server's side of it is decided in ``server/session.py``; the client's in
``client/handshake.py``.

Both nonces are 32 fresh random bytes, so a recorded exchange proves nothing in
another one: it cannot be replayed.  The password never crosses the wire.  What a
recording *does* allow is guessing weak passwords offline (PBKDF2 slows that down, it
cannot stop it): use a long password, and TLS, on a network you do not trust.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

__all__ = [
    "NONCE_BYTES",
    "derive_key",
    "server_proof",
    "client_proof",
    "proofs_match",
    "secrets_match",
]

NONCE_BYTES = 32
#: PBKDF2 rounds: ~0.1 s once per connection on a laptop; the server derives its key
#: once at start.
KDF_ROUNDS = 200_000


def derive_key(password: str, salt: bytes) -> bytes:
    normalized = unicodedata.normalize("NFKC", password).encode("utf-8")
    return hashlib.pbkdf2_hmac("sha256", normalized, salt, KDF_ROUNDS)


def server_proof(key: bytes, client_nonce: bytes, server_nonce: bytes) -> bytes:
    return hmac.new(key, b"chatroom-server\0" + client_nonce + server_nonce, hashlib.sha256).digest()


def client_proof(key: bytes, server_nonce: bytes, client_nonce: bytes) -> bytes:
    return hmac.new(key, b"chatroom-client\0" + server_nonce + client_nonce, hashlib.sha256).digest()


def proofs_match(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def secrets_match(given: str, expected: str) -> bool:
    """A secret typed in clear (IRC's ``PASS`` over TLS, an operator token) against the
    real one: normalised as ``derive_key`` does, compared in constant time."""
    def norm(text: str) -> bytes:
        return unicodedata.normalize("NFKC", text).encode("utf-8", "surrogatepass")

    return hmac.compare_digest(norm(given), norm(expected))
