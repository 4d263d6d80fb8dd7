"""Bans: of an address, or of a person when an address is shared.  No I/O.

A ban of an address refuses every connection from it.  On a network where many people
share one address (everyone on one machine, a NAT) that would ban them all, the
operator included; so when the banned nick shares its address with anyone else the
ban falls back to the *person*: their nick, compared by look-alike key
(:func:`chatroom.text.nick_key`), is refused at every hello, and their session ends.
The server persists bans (``HistoryStore.save_ban``); this module only decides.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chatroom.text import fold, lookalike_key, nick_key

__all__ = ["Ban", "BanList", "person_key", "looks_like_address"]

#: Person bans are stored under this prefix and the nick's key (addresses never start with it).
PERSON_PREFIX = "@"


def person_key(nick: str) -> str:
    return PERSON_PREFIX + nick_key(nick)


def looks_like_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Ban:
    """``target``: an IP address, or ``@`` + a nick's key for a person ban."""

    target: str
    until: float | None  # seconds since the epoch; None: until lifted
    nick: str = ""  # who was banned (for a person ban: the nick as written)
    reason: str = ""
    by: str = ""

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Ban:
        """A ban as another server of a cluster (or the store) wrote it down."""
        return cls(record["target"], record.get("until"), record.get("nick", ""), record.get("reason", ""),
                   record.get("by", ""))

    @property
    def person(self) -> bool:
        return self.target.startswith(PERSON_PREFIX)

    def matches(self, ip: str, nick: str) -> bool:
        """Whether this bans a connection from ``ip`` named ``nick``."""
        return self.target == ip or self.target == person_key(nick) or self.alike(nick)

    def alike(self, nick: str) -> bool:
        """A person ban also holds against a look-alike of the banned nick (the other key
        of ``server/nicks.py``): ``aIice`` is not a way around a ban on ``alice``."""
        return self.person and bool(self.nick) and lookalike_key(self.nick) == lookalike_key(nick)

    def active(self, now: float) -> bool:
        return self.until is None or self.until > now

    def describe(self, now: float) -> str:
        what = f"{self.nick} (the person)" if self.person else self.target + (f" ({self.nick})" if self.nick else "")
        left = "until lifted" if self.until is None else f"{math.ceil(max(0.0, self.until - now) / 60)} more min"
        by = f" by {self.by}" if self.by else ""
        why = f": {self.reason}" if self.reason else ""
        return f"{what}, {left}{by}{why}"


class BanList:
    """The bans in force, keyed by target.  Expired bans are dropped when looked at."""

    def __init__(self, bans: Iterable[Ban] = ()) -> None:
        self._bans = {b.target: b for b in bans}

    def add(self, ban: Ban) -> None:
        self._bans[ban.target] = ban

    def remove(self, target: str) -> None:
        self._bans.pop(target, None)

    def for_address(self, ip: str, now: float) -> Ban | None:
        return self._active(ip, now)

    def for_nick(self, nick: str, now: float) -> Ban | None:
        ban = self._active(person_key(nick), now)
        if ban is None:  # (a hello's question, over a short list; copied at once: read without the lock)
            ban = next((b for b in tuple(self._bans.values()) if b.active(now) and b.alike(nick)), None)
        return ban

    def matching(self, text: str) -> list[Ban]:
        """The bans ``/unban TEXT`` lifts: of that address, or of the person or address
        banned under that nick."""
        if text in self._bans:
            return [self._bans[text]]
        key = person_key(text)
        return [b for b in self._bans.values() if b.target == key or (b.nick and fold(b.nick) == fold(text))]

    def all(self, now: float) -> list[Ban]:
        return sorted((b for b in self._bans.values() if b.active(now)), key=lambda b: b.target)

    def expired(self, now: float) -> list[Ban]:
        return [b for b in self._bans.values() if not b.active(now)]

    def _active(self, target: str, now: float) -> Ban | None:
        ban = self._bans.get(target)
        return ban if ban is not None and ban.active(now) else None
