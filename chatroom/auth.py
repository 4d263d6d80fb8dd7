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
    last_answer: float = 0.0  # when the latest attempt from this address was (or will be) answered


class AuthGuard:
    """Slows down guessing of the room password and the operator token, per address,
    without ever refusing the right secret.

    Up to ``free`` failures within ``window`` seconds cost nothing (typos happen).  From
    then on the address is *throttled*: each attempt from it -- right or wrong alike, so that the
    timing of an answer gives nothing away -- is answered no sooner than a delay after
    the previous answer to that address.  The delay starts at ``first_delay`` and
    doubles with each further failure, up to ``max_delay``.  Answers to one address are
    spaced out however many connections it opens, so a guesser gets at most one answer
    per ``max_delay`` seconds; the rightful user on the same address waits its turn
    (bounded: the server limits connections per address) and then gets in.  Failures
    older than ``window`` are forgotten.

    ``schedule`` takes the clock and returns how long to wait; it does no waiting.
    """

    def __init__(self, *, free: int = 3, window: float = 600.0, first_delay: float = 0.5,
                 max_delay: float = 4.0) -> None:
        self.free, self.window, self.first_delay, self.max_delay = free, window, first_delay, max_delay
        self._records: dict[str, _Record] = {}

    def delay(self, address: str, now: float) -> float:
        """The spacing between answers to ``address`` now (0: not throttled)."""
        record = self._records.get(address)
        if record is None:
            return 0.0
        self._age(record, now)
        extra = len(record.failures) - self.free
        return min(self.max_delay, self.first_delay * 2.0**extra) if extra >= 0 else 0.0

    def schedule(self, address: str, now: float) -> float:
        """An attempt from ``address`` arrived: seconds to wait before checking it (and
        answering).  Reserves its slot, so call it once per attempt."""
        spacing = self.delay(address, now)
        if not spacing:
            return 0.0
        record = self._records[address]
        answer_at = max(now, record.last_answer + spacing)
        record.last_answer = answer_at
        return answer_at - now

    def failed(self, address: str, now: float) -> None:
        """Record a wrong password or token from ``address``."""
        record = self._records.setdefault(address, _Record())
        record.failures.append(now)
        record.last_answer = max(record.last_answer, now)
        self._age(record, now)

    def forget_old(self, now: float) -> None:
        """Drop records with nothing left to remember (housekeeping)."""
        stale = now - self.window
        for address in [a for a, r in self._records.items()
                        if r.last_answer < stale and (not r.failures or r.failures[-1] < stale)]:
            del self._records[address]

    def _age(self, record: _Record, now: float) -> None:
        failures = record.failures
        while failures and failures[0] < now - self.window:
            failures.popleft()
