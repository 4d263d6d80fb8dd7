"""What a room's operators decide about it: who runs it, who may speak, who may come
in.  Plain data and pure matching (no I/O); the rules that change it are ``roles.py``.

A room's roles are kept by nick (``nick_key``): chatroom has no accounts, a nick is
who someone is on a server (a server with a password decides who may take one).  They
are saved with the room, so the person who made a room runs it again after a restart.
The key is never kept in clear: only a salt and the key derived from it
(``chatroom.auth.derive_key``), the verifier a proof is checked against.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from typing import Any

from chatroom.protocol import ModeChange, RoomBanInfo, RoomMode

__all__ = ["RoomBan", "RoomModes", "MAX_ROOM_BANS", "mask_matches", "normal_mask"]

#: Bans one room keeps (IRC's MAXLIST): a list, not a database.
MAX_ROOM_BANS = 100


@dataclass(frozen=True)
class RoomBan:
    mask: str  # nick!user@host, with * and ? (a bare nick is nick!*@*)
    by: str
    at: float

    def info(self) -> RoomBanInfo:
        return RoomBanInfo(mask=self.mask, by=self.by, at=self.at)


def normal_mask(text: str) -> str:
    """A ban mask as IRC writes it: ``bob`` -> ``bob!*@*``, ``*@10.0.0.7`` ->
    ``*!*@10.0.0.7``, ``bob!x`` -> ``bob!x@*``."""
    text = text.strip()
    if "!" not in text and "@" not in text:
        return f"{text}!*@*"
    if "!" not in text:
        return f"*!{text}"
    if "@" not in text:
        return f"{text}@*"
    return text


def mask_matches(mask: str, who: tuple[str, ...]) -> bool:
    """Whether ``mask`` (with ``*`` and ``?``) matches one of ``who`` -- the forms of a
    member's ``nick!user@host`` -- ignoring case."""
    compiled = re.compile(fnmatch.translate(mask.casefold().replace("[", "[[]")))
    return any(compiled.match(form.casefold()) for form in who)


@dataclass(eq=False)
class RoomModes:
    """A room's roles and modes (``RoomMode``), as saved with it (``dump``/``load``)."""

    operators: set[str] = field(default_factory=set)  # nick keys
    voiced: set[str] = field(default_factory=set)
    moderated: bool = False
    invite_only: bool = False
    secret: bool = False
    limit: int = 0  # 0: none
    key_salt: str = ""  # hex; "" : no key
    key_verifier: str = ""  # hex of derive_key(key, salt)
    bans: list[RoomBan] = field(default_factory=list)

    @property
    def blank(self) -> bool:
        """Nobody runs the room and no mode is set."""
        return not (self.operators or self.voiced or self.moderated or self.invite_only or self.secret
                    or self.limit or self.key_verifier or self.bans)

    @property
    def keyed(self) -> bool:
        return bool(self.key_verifier)

    def flags(self, topic_locked: bool) -> tuple[ModeChange, ...]:
        """The room's modes that are on, as changes that would set them."""
        out = [ModeChange(mode=mode) for mode, on in (
            (RoomMode.MODERATED, self.moderated), (RoomMode.TOPIC_LOCK, topic_locked),
            (RoomMode.INVITE_ONLY, self.invite_only), (RoomMode.SECRET, self.secret), (RoomMode.KEY, self.keyed))
            if on]
        if self.limit:
            out.append(ModeChange(mode=RoomMode.LIMIT, arg=str(self.limit)))
        return tuple(out)

    def banned(self, who: tuple[str, ...]) -> RoomBan | None:
        for ban in self.bans:
            if mask_matches(ban.mask, who):
                return ban
        return None

    def dump(self, topic_locked: bool) -> str:
        return json.dumps({
            "operators": sorted(self.operators), "voiced": sorted(self.voiced), "moderated": self.moderated,
            "invite_only": self.invite_only, "secret": self.secret, "limit": self.limit, "key_salt": self.key_salt,
            "key_verifier": self.key_verifier, "topic_locked": topic_locked,
            "bans": [[b.mask, b.by, b.at] for b in self.bans]}, separators=(",", ":"))

    @classmethod
    def load(cls, text: str) -> tuple[RoomModes, bool]:
        """What ``dump`` wrote (and the topic lock); a blank or unreadable text: none."""
        try:
            data: dict[str, Any] = json.loads(text) if text else {}
            modes = cls(
                operators=set(map(str, data.get("operators", ()))), voiced=set(map(str, data.get("voiced", ()))),
                moderated=bool(data.get("moderated")), invite_only=bool(data.get("invite_only")),
                secret=bool(data.get("secret")), limit=max(0, int(data.get("limit", 0))),
                key_salt=str(data.get("key_salt", "")), key_verifier=str(data.get("key_verifier", "")),
                bans=[RoomBan(str(m), str(b), float(a)) for m, b, a in data.get("bans", ())][:MAX_ROOM_BANS])
            return modes, bool(data.get("topic_locked"))
        except (ValueError, TypeError, AttributeError):
            return cls(), False
