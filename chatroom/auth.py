"""Room passwords: mutual challenge-response, and slowing down guessers.  No I/O.

The exchange (PROTOCOL.md, "Room password")::

    client                                         server (knows key = KDF(password, salt))
      hello {nonce: Nc, ...}                  ->
                                              <-   challenge {nonce: Ns, salt, proof: Ps}
      checks Ps == HMAC(key, "server" | Nc | Ns)   (a fake room cannot produce it)
      auth {proof: Pc}                        ->   Pc == HMAC(key, "client" | Ns | Nc) ?
                                              <-   welcome ... or error auth_failed

Both nonces are 32 fresh random bytes, so a recorded exchange proves nothing in
another one: it cannot be replayed.  The password never crosses the wire.  What a
recording *does* allow is guessing weak passwords offline (PBKDF2 slows that down, it
cannot stop it): use a long password, and TLS, on a network you do not trust.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections import deque
from dataclasses import dataclass, field

__all__ = [
    "NONCE_BYTES",
    "derive_key",
    "server_proof",
    "client_proof",
    "proofs_match",
    "AuthGuard",
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


@dataclass
class _Record:
    failures: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0


class AuthGuard:
    """Counts failed password (and operator) attempts per address.

    The first ``free`` failures in ``window`` seconds cost nothing; each one after that
    is answered ``delay(n)`` seconds late (doubling, at most ``max_delay``); at
    ``limit`` failures the address is refused outright for ``block`` seconds.
    """

    def __init__(self, *, free: int = 3, limit: int = 10, window: float = 600.0, block: float = 600.0,
                 max_delay: float = 8.0) -> None:
        self.free, self.limit, self.window, self.block, self.max_delay = free, limit, window, block, max_delay
        self._records: dict[str, _Record] = {}

    def blocked_for(self, address: str, now: float) -> float:
        """Seconds this address is still refused (0 if it may try)."""
        record = self._records.get(address)
        return max(0.0, record.blocked_until - now) if record else 0.0

    def failed(self, address: str, now: float) -> tuple[float, bool]:
        """Record a failure.  Returns (seconds to delay the answer, now blocked?)."""
        record = self._records.setdefault(address, _Record())
        failures = record.failures
        failures.append(now)
        while failures and failures[0] < now - self.window:
            failures.popleft()
        if len(failures) >= self.limit:
            record.blocked_until = now + self.block
            failures.clear()
            return 0.0, True
        extra = len(failures) - self.free
        return (min(self.max_delay, 2.0 ** (extra - 1)) if extra > 0 else 0.0), False

    def succeeded(self, address: str) -> None:
        self._records.pop(address, None)

    def forget_old(self, now: float) -> None:
        """Drop records with nothing left to remember (housekeeping)."""
        for address in [a for a, r in self._records.items()
                        if r.blocked_until <= now and (not r.failures or r.failures[-1] < now - self.window)]:
            del self._records[address]
