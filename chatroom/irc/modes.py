"""IRC mode strings (no I/O): what a ``MODE`` line asks to change, and a room's
changes written as one."""

from __future__ import annotations

from chatroom.protocol import LETTER_OF, LETTERS, ChannelModes, channel_modes, mode_line_parts

__all__ = ["user_modes", "channel_modes", "ChannelModes", "mode_line_parts", "LETTERS", "LETTER_OF"]


def user_modes(modes: str, invisible: bool) -> tuple[bool, str, bool]:
    """``MODE nick +i-x...`` for a user who is ``invisible`` now: whether they are
    invisible after it, what changed (``+i``, ``-i`` or nothing: what to echo), and
    whether a flag was asked that cannot be set this way (anything but ``i``; ``-o``
    and ``+o`` too -- operators are made by OPER)."""
    changed, sign, unknown = "", "+", False
    for ch in modes:
        if ch in "+-":
            sign = ch
        elif ch == "i":
            if invisible != (sign == "+"):
                invisible = sign == "+"
                changed += sign + "i"
        else:
            unknown = True
    return invisible, changed, unknown
