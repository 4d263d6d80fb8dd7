"""IRC mode strings (no I/O): what a ``MODE`` line asks to change, and a room's
changes written as one."""

from __future__ import annotations

from chatroom.protocol import LETTER_OF, LETTERS, ChannelModes, channel_modes, mode_line_parts

__all__ = ["USER_MODES", "user_modes", "channel_modes", "ChannelModes", "mode_line_parts", "LETTERS", "LETTER_OF"]


#: The user modes a client sets itself: invisible, and bot (IRCv3 bot mode).
USER_MODES = "iB"


def user_modes(modes: str, have: str) -> tuple[str, str, bool]:
    """``MODE nick +i-B...`` for a user whose modes are ``have`` (of ``USER_MODES``):
    its modes after it, what changed (``+i``, ``-B``, nothing: what to echo), and
    whether a flag was asked that cannot be set this way (anything else; ``+o`` too --
    operators are made by OPER)."""
    now, changed, sign, unknown, told = set(have), "", "+", False, ""
    for ch in modes:
        if ch in "+-":
            sign = ch
        elif ch in USER_MODES:
            if (ch in now) != (sign == "+"):
                (now.add if sign == "+" else now.discard)(ch)
                changed += ("" if told == sign else sign) + ch
                told = sign
        else:
            unknown = True
    return "".join(ch for ch in USER_MODES if ch in now), changed, unknown
