"""IRCv3 ``draft/chathistory``: an IRC client pages a channel's history itself.  A part
of :class:`~chatroom.irc.door.IrcDoor`; the pages are the core's (``ChatState.history``,
the same as the framed protocol's ``history``), read under the hub lock.

    CHATHISTORY LATEST  #room <* | ref> <limit>       the newest (after ref)
    CHATHISTORY BEFORE  #room <ref> <limit>           the newest before ref
    CHATHISTORY AFTER   #room <ref> <limit>           the oldest after ref
    CHATHISTORY AROUND  #room <ref> <limit>           ref and around it
    CHATHISTORY BETWEEN #room <ref> <ref> <limit>     between the two (from the first)
    CHATHISTORY TARGETS <timestamp> <timestamp> <limit>   your channels with messages then

A ref is ``msgid=SEQ.room`` (a room message's ``msgid``) or ``timestamp=2026-12-07T08:00:00.000Z``.
Bounds are exclusive; at most ``CHATHISTORY`` (ISUPPORT) messages a page; each page is a
``chathistory`` batch, oldest first.  Only channels you are in; direct messages are not
kept, so their history is an empty batch.  A client that negotiated the capability gets
no history pushed on JOIN: it asks.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from chatroom.irc.lines import IrcLine, format_line
from chatroom.irc.part import DoorPart
from chatroom.irc.replies import history_lines
from chatroom.irc.wire import channel, server_time
from chatroom.protocol import Chat
from chatroom.text import fold, without_hash

if TYPE_CHECKING:
    from chatroom.server.members import Room
    from chatroom.server.room import ChatState

__all__ = ["ChatHistory", "parse_timestamp"]

_TIMESTAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z")
_WITH_REF = ("LATEST", "BEFORE", "AFTER", "AROUND")


def parse_timestamp(text: str) -> float | None:
    """``2026-12-07T08:00:00.000Z`` (server-time's form) as seconds, or None."""
    m = _TIMESTAMP.fullmatch(text)
    if m is None:
        return None
    whole = calendar.timegm(tuple(int(g) for g in m.groups()[:6]) + (0, 0, 0))
    return whole + (int(m.group(7).ljust(6, "0")) / 1e6 if m.group(7) else 0.0)


class _BadParams(Exception):
    """A CHATHISTORY the client got wrong: FAIL ... INVALID_PARAMS (or the code given)."""

    def __init__(self, text: str, code: str = "INVALID_PARAMS") -> None:
        super().__init__(text)
        self.code = code


class ChatHistory(DoorPart):
    """Paging history, over IRC."""

    def on_chathistory(self, line: IrcLine) -> None:
        if not self.need(line, 1):
            return
        sub = line.params[0].upper()
        try:
            if sub == "TARGETS":
                self.history_targets(line.params[1:])
            elif sub in _WITH_REF or sub == "BETWEEN":
                self.history_page(sub, line.params[1:])
            else:
                self.send(format_line("FAIL", "CHATHISTORY", "INVALID_PARAMS", sub, "Unknown subcommand",
                                      source=self.name, trailing=True))
        except _BadParams as exc:
            self.send(format_line("FAIL", "CHATHISTORY", exc.code, sub, str(exc), source=self.name, trailing=True))

    def _limit(self, word: str) -> int:
        if not word.isdigit() or int(word) < 1:
            raise _BadParams("The limit must be a positive number")
        return min(int(word), self.server.config.history_size)

    def history_page(self, sub: str, params: list[str]) -> None:
        count = 4 if sub == "BETWEEN" else 3
        if len(params) < count:
            raise _BadParams("Not enough parameters")
        target, limit = params[0], self._limit(params[count - 1])
        if not target.startswith("#"):  # (direct messages are not kept: nothing to page)
            self.send(self._batch(target, []))
            return
        with self.hub.locked(self.handler.batch) as state:
            room = self.member().rooms.get(fold(without_hash(target)))
            if room is None:
                raise _BadParams(f"You are not in {target}", "INVALID_TARGET")
            refs = [self._ref(state, room, word, sub) for word in params[1:count - 1]]
            page = _page(state, room, sub, refs, limit)
        self.send(self._batch(channel(room.name), page))

    def _ref(self, state: ChatState, room: Room, word: str, sub: str) -> tuple[int, int]:
        """A reference as the numbers bounding it: (the first number at or after it,
        the first number after it) -- equal for a point in time between messages."""
        kind, _, value = word.partition("=")
        if word == "*" and sub == "LATEST":
            return 0, 0  # (no bound: the newest)
        if kind == "msgid":
            seq, _, name = value.partition("/")[0].partition(".")
            if not seq.isdigit() or fold(name) != fold(room.name):
                raise _BadParams(f"No message of {channel(room.name)} has that msgid", "INVALID_MSGREFTYPE")
            return int(seq), int(seq) + 1
        if kind == "timestamp":
            ts = parse_timestamp(value)
            if ts is None:
                raise _BadParams("A timestamp is 2026-12-07T08:00:00.000Z", "INVALID_MSGREFTYPE")
            # (server-time shows milliseconds: a time names its whole millisecond)
            return state.seq_at(room, ts), state.seq_at(room, ts + 0.001)
        raise _BadParams("A reference is msgid=... or timestamp=...", "INVALID_MSGREFTYPE")

    def _batch(self, target: str, page: Sequence[Chat]) -> bytes:
        return b"".join(history_lines(self.session, target, page, self.hub, ref="chathistory", asked=True))

    def history_targets(self, params: list[str]) -> None:
        """TARGETS: your channels with a message between the two times, the latest
        first... as ``CHATHISTORY TARGETS #room time`` lines in a batch."""
        if len(params) < 3:
            raise _BadParams("Not enough parameters")
        times = [parse_timestamp(p.partition("=")[2]) for p in params[:2]]
        if None in times:
            raise _BadParams("TARGETS takes two timestamp=... references")
        low, high = sorted(t for t in times if t is not None)
        limit = self._limit(params[2])
        with self.hub.locked(self.handler.batch):
            latest = [(room.history[-1].ts, room.name) for room in self.member().rooms.values()
                      if room.history and low <= room.history[-1].ts <= high]
        latest.sort()
        out = [format_line("BATCH", "+targets", "draft/chathistory-targets", source=self.name)]
        out += [format_line("CHATHISTORY", "TARGETS", channel(name), server_time(ts), source=self.name,
                            tags={"batch": "targets"}) for ts, name in latest[:limit]]
        out.append(format_line("BATCH", "-targets", source=self.name))
        self.send(b"".join(out))


def _page(state: ChatState, room: Room, sub: str, refs: list[tuple[int, int]], limit: int) -> list[Chat]:
    """The messages a subcommand asks for (numbers bounding each reference: see ``_ref``)."""
    name = room.name
    if sub in ("LATEST", "BEFORE"):
        bound = refs[0][0] if sub == "BEFORE" else room.next_seq
        page = list(state.history(name, bound, limit).messages)
        return [c for c in page if c.seq >= refs[0][1]] if sub == "LATEST" else page
    if sub == "AFTER":
        return list(state.history(name, None, limit, after=refs[0][1] - 1).messages)
    if sub == "AROUND":
        before = list(state.history(name, refs[0][0], limit // 2).messages)
        return before + list(state.history(name, None, limit - len(before), after=refs[0][0] - 1).messages)
    return _between(state, room, refs, limit)


def _between(state: ChatState, room: Room, refs: list[tuple[int, int]], limit: int) -> list[Chat]:
    """BETWEEN: from the first reference towards the second (backwards if it is later)."""
    name = room.name
    (first, first_after), (second, second_after) = refs
    if first < second:
        return [c for c in state.history(name, None, limit, after=first_after - 1).messages if c.seq < second]
    return [c for c in state.history(name, first, limit).messages if c.seq >= second_after]
