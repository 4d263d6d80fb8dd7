"""Protocol 1.5: rooms that their operators run -- roles, modes, invitations (no I/O).

See PROTOCOL.md, "Running a room".  A room's operators (``@``) and voiced members
(``+``) are listed in each ``MemberInfo.role``; its modes travel as ``ModeChange``
records, set with ``mode`` and told to the room with ``modes``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from chatroom.protocol.base import Message, _Record, _require

__all__ = ["RoomMode", "ModeChange", "RoomBanInfo", "SetMode", "RoomModesInfo", "Invite", "Invited",
           "MAX_MODE_CHANGES", "LETTERS", "LETTER_OF", "ChannelModes", "channel_modes", "mode_line_parts"]

#: Changes in one ``mode`` message (IRC's MODES).
MAX_MODE_CHANGES = 6


class RoomMode(enum.StrEnum):
    OPERATOR = "operator"  # arg: a nick; runs the room (IRC +o)
    VOICE = "voice"  # arg: a nick; may speak in a moderated room (+v)
    MODERATED = "moderated"  # only operators and voiced members speak (+m)
    TOPIC_LOCK = "topic_lock"  # only operators change the topic (+t)
    KEY = "key"  # arg: "SALT:VERIFIER" (hex), never the key itself (+k)
    INVITE_ONLY = "invite_only"  # only the invited come in (+i)
    LIMIT = "limit"  # arg: how many members at most (+l)
    SECRET = "secret"  # not listed, not announced (+s)
    BAN = "ban"  # arg: a mask nick!user@host (or a nick) (+b)


#: The modes that take an argument when set (and, for these, when unset too).  (A key
#: is set with one; a room tells that it has one without it.)
ARG_ON = frozenset({RoomMode.OPERATOR, RoomMode.VOICE, RoomMode.LIMIT, RoomMode.BAN})
ARG_OFF = frozenset({RoomMode.OPERATOR, RoomMode.VOICE, RoomMode.BAN})


class ModeChange(_Record, frozen=True):
    """One mode turned on or off (``arg``: see ``RoomMode``)."""

    mode: RoomMode
    on: bool = True
    arg: str | None = None

    def __post_init__(self) -> None:
        needs = ARG_ON if self.on else ARG_OFF
        _require(self.arg is None or len(self.arg) <= 200, "arg", "must be at most 200 characters")
        _require(self.mode not in needs or bool(self.arg), "arg", f"{self.mode} needs one")


class RoomBanInfo(_Record, frozen=True):
    mask: str
    by: str = ""
    at: float = 0.0


class SetMode(Message, tag="mode", frozen=True):
    """Change ``room`` 's modes (its operators only), or, with no changes, ask what
    they are (and, with ``bans``, its ban list): answered with ``modes``."""

    room: str
    changes: tuple[ModeChange, ...] = ()
    bans: bool = False

    def check(self) -> None:
        _require(len(self.changes) <= MAX_MODE_CHANGES, "changes", f"at most {MAX_MODE_CHANGES} at once")


class RoomModesInfo(Message, tag="modes", frozen=True):
    """``nick`` changed ``room`` 's modes (told to the room); or, with no ``nick``, the
    room's modes now (``changes`` that would set them) and maybe its bans (to the asker)."""

    room: str
    changes: tuple[ModeChange, ...] = ()
    nick: str | None = None
    ts: float = 0.0
    bans: tuple[RoomBanInfo, ...] | None = None
    created: float | None = None


class Invite(Message, tag="invite", frozen=True):
    """Invite ``nick`` into ``room`` (one of your rooms; its operators only, when it is
    invite-only)."""

    nick: str
    room: str

    def check(self) -> None:
        _require(0 < len(self.nick) <= 200, "nick", "must be 1-200 characters")


class Invited(Message, tag="invited", frozen=True):
    """``nick`` invited ``to`` into ``room``: told to both (and to the room's operators)."""

    room: str
    nick: str
    to: str
    ts: float


# --------------------------------------------------------------------------- IRC's letters
# (the IRC door reads and writes them; the terminal client's /mode takes them too)

#: A channel mode letter -> chatroom's room mode (``n`` is not one: every room only
#: hears its members, so ``+n`` is always on and ``-n`` is refused).
LETTERS: dict[str, RoomMode] = {
    "o": RoomMode.OPERATOR, "v": RoomMode.VOICE, "m": RoomMode.MODERATED, "t": RoomMode.TOPIC_LOCK,
    "k": RoomMode.KEY, "i": RoomMode.INVITE_ONLY, "l": RoomMode.LIMIT, "s": RoomMode.SECRET, "b": RoomMode.BAN,
}
LETTER_OF: dict[RoomMode, str] = {mode: letter for letter, mode in LETTERS.items()}


@dataclass
class ChannelModes:
    """What a ``MODE #chan ...`` line asks: the changes (``arg`` of ``+k`` still the key
    in clear: the door derives it), and what it cannot do."""

    changes: list[tuple[RoomMode, bool, str | None]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # letters chatroom has not (472)
    missing: list[str] = field(default_factory=list)  # letters whose argument is missing (461)
    ban_list: bool = False  # a bare +b: the ban list is asked for


def _takes(mode: RoomMode, on: bool) -> bool:
    """Whether IRC's letter for ``mode`` takes an argument (set, or unset)."""
    return mode in ARG_OFF or (on and mode in (RoomMode.KEY, RoomMode.LIMIT))


def channel_modes(modes: str, args: list[str]) -> ChannelModes:
    """Read ``MODE #chan MODES ARGS...`` (at most ``MAX_MODE_CHANGES`` changes)."""
    out, sign, args = ChannelModes(), "+", list(args)
    for ch in modes:
        if ch in "+-":
            sign = ch
            continue
        on, mode = sign == "+", LETTERS.get(ch)
        if mode is None:
            if ch != "n" or not on:  # (+n: always so)
                out.unknown.append(ch)
            continue
        _read_letter(out, ch, mode, on, args)
    return out


def _read_letter(out: ChannelModes, ch: str, mode: RoomMode, on: bool, args: list[str]) -> None:
    takes = _takes(mode, on)
    arg = args.pop(0) if takes and args else None
    if mode is RoomMode.KEY and not on and args:
        args.pop(0)  # (-k takes the old key, unused)
    if takes and arg is None:
        if mode is RoomMode.BAN:
            out.ban_list = True
        else:
            out.missing.append(ch)
    elif len(out.changes) < MAX_MODE_CHANGES:
        out.changes.append((mode, on, arg))


def mode_line_parts(changes: tuple[ModeChange, ...]) -> tuple[str, list[str]]:
    """A room's changes as IRC writes them: ``+o-v`` and their arguments (a key is
    never told: ``*`` stands for it)."""
    letters, args, sign = "", [], ""
    for change in changes:
        want = "+" if change.on else "-"
        if want != sign:
            letters, sign = letters + want, want
        letters += LETTER_OF[change.mode]
        if change.mode is RoomMode.KEY and change.on:
            args.append("*")
        elif change.arg is not None:
            args.append(change.arg)
    return letters, args
