"""Ignoring people: by nick or by mask (``bo*``, ``*bot``), for everything they do or
for some kinds of it -- their messages, their actions (``/me``), their private messages,
their comings and goings (joins, parts, quits, nick changes).  No I/O.

A rule is written ``MASK [KIND...]`` (``/ignore *bot actions joins``); the rules are
kept in client.toml (``ignore = [...]``) across runs.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from chatroom.protocol import Chat, Presence, PresenceEvent, Private
from chatroom.text import fold

__all__ = ["KINDS", "IgnoreRule", "Ignores", "parse_rule", "kind_of"]

#: What can be ignored ("all": every kind).
KINDS = ("messages", "actions", "private", "joins")


@dataclass(frozen=True)
class IgnoreRule:
    mask: str  # a nick, or a mask with * and ?
    kinds: frozenset[str]

    def text(self) -> str:
        return self.mask + ("" if self.kinds == frozenset(KINDS) else " " + " ".join(sorted(self.kinds)))

    def matches(self, nick: str) -> bool:
        return fnmatch.fnmatchcase(fold(nick), fold(self.mask))


def parse_rule(text: str) -> IgnoreRule:
    """``MASK [KIND...]``: a ValueError says what is wrong."""
    words = text.split()
    if not words:
        raise ValueError("say whom: /ignore NICK-OR-MASK [messages|actions|private|joins]")
    kinds = {w.lower() for w in words[1:]} or {"all"}
    unknown = sorted(kinds - set(KINDS) - {"all"})
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not something to ignore (kinds: all, {', '.join(KINDS)})")
    return IgnoreRule(words[0], frozenset(KINDS) if "all" in kinds else frozenset(kinds))


def kind_of(event: object) -> tuple[str, str] | None:
    """(who, what kind) of an event that may be ignored; None for the rest."""
    if isinstance(event, Chat):
        return event.nick, "actions" if event.action else "messages"
    if isinstance(event, Private):
        return event.nick, "private"
    if isinstance(event, Presence) and event.event not in (PresenceEvent.AWAY, PresenceEvent.BACK):
        return event.nick, "joins"
    return None


class Ignores:
    """The rules in force, in the order they were made."""

    def __init__(self, rules: tuple[str, ...] = ()) -> None:
        self.rules = [parse_rule(r) for r in rules]

    def hides(self, event: object) -> bool:
        found = kind_of(event)
        return found is not None and any(found[1] in r.kinds and r.matches(found[0]) for r in self.rules)

    def add(self, rule: IgnoreRule) -> None:
        self.remove(rule.mask)
        self.rules.append(rule)

    def remove(self, mask: str) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if fold(r.mask) != fold(mask)]
        return len(self.rules) != before

    def texts(self) -> tuple[str, ...]:
        return tuple(r.text() for r in self.rules)
