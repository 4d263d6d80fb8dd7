"""The targets of a PRIVMSG or NOTICE, and what a line costs the rate limit (no I/O)."""

from __future__ import annotations

from chatroom.text import fold, lookalike_key, nick_key

__all__ = ["MAX_TARGETS", "chat_cost", "chat_targets"]


#: Targets one PRIVMSG or NOTICE may name (``TARGMAX`` in 005).  Each distinct target is
#: one message to the rate limit; a line naming more is refused whole (407).
MAX_TARGETS = 4


def chat_cost(raw: bytes) -> int:
    """What this (unparsed) line costs the rate limit if it is a PRIVMSG or NOTICE: one
    per distinct target (at most ``MAX_TARGETS``); 0 if it is not one.  Tags and a
    source may come first."""
    head = raw
    if head[:1] == b"@":
        head = head.partition(b" ")[2].lstrip(b" ")
    if head[:1] == b":":
        head = head.partition(b" ")[2].lstrip(b" ")
    word = head[:8].upper()
    if not word.startswith((b"PRIVMSG ", b"NOTICE ")):
        return 0
    field = head.partition(b" ")[2].lstrip(b" ").partition(b" ")[0]
    if b"," not in field:
        return 1
    return max(1, min(MAX_TARGETS, len(chat_targets(field.decode("utf-8", "replace")))))


def chat_targets(field: str) -> list[str]:
    """The targets of a PRIVMSG or NOTICE, in order, each once: ``#lobby,#LOBBY`` is one
    room, ``ann,Ann`` (or a look-alike) one person."""
    seen: set[str] = set()
    targets = []
    for target in field.split(","):
        if not target:
            continue
        keys = ("#" + fold(target[1:]),) if target.startswith("#") else (nick_key(target), "~" + lookalike_key(target))
        if not seen.intersection(keys):
            seen.update(keys)
            targets.append(target)
    return targets
