"""The IRC door's MONITOR (IRCv3): being told when people come online or go.  A part of
:class:`~chatroom.irc.door.IrcDoor`; the watch lists are the core's (``server/watch.py``),
which also tells of each arrival and departure (``730``/``731``, rendered in ``wire.py``).

``MONITOR + a,b`` watches (answered at once: ``730`` for those online, ``731`` for the
others; ``734`` for those past the limit), ``MONITOR - a,b`` stops, ``C`` clears, ``L``
lists (``732``, ``733``), ``S`` says again who is online and who is not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chatroom.irc import numerics as n
from chatroom.irc.lines import IrcLine
from chatroom.irc.part import DoorPart
from chatroom.irc.wire import listed, mask
from chatroom.server.watch import MAX_WATCHED

if TYPE_CHECKING:
    from chatroom.server.members import Member
    from chatroom.server.room import ChatState

__all__ = ["Monitor"]


class Monitor(DoorPart):
    """Watching for people, over IRC."""

    def on_monitor(self, line: IrcLine) -> None:
        if not self.need(line, 1):
            return
        what = line.params[0][:1]
        nicks = [nick for nick in (line.params[1] if len(line.params) > 1 else "").split(",") if nick]
        if what in "+-" and not self.need(line, 2):
            return
        subcommand = _SUBCOMMANDS.get(what)
        if subcommand is None:
            return  # (an unknown subcommand: MONITOR says nothing)
        me = self.member()
        with self.hub.locked(self.handler.batch) as state:
            subcommand(self, state, me, nicks)

    def _add(self, state: ChatState, me: Member, nicks: list[str]) -> None:
        self.send(self.watch_lines(me, *state.watch(me, nicks)))

    def _remove(self, state: ChatState, me: Member, nicks: list[str]) -> None:
        state.unwatch(me, nicks)

    def _clear(self, state: ChatState, me: Member, nicks: list[str]) -> None:
        state.unwatch(me)

    def _list(self, state: ChatState, me: Member, nicks: list[str]) -> None:
        self.send(listed(self.name, n.RPL_MONLIST, me.nick, list(me.watching.values())))
        self.reply(n.RPL_ENDOFMONLIST, "End of MONITOR list")

    def _status(self, state: ChatState, me: Member, nicks: list[str]) -> None:
        online = [m for m in map(state.nicks.get, me.watching) if m is not None]
        offline = [nick for key, nick in me.watching.items() if key not in state.nicks]
        self.send(self.watch_lines(me, online, offline, []))

    def watch_lines(self, me: Member, online: list[Member], offline: list[str], over: list[str]) -> bytes:
        """730 for who is online, 731 for who is not, 734 for what did not fit."""
        out = listed(self.name, n.RPL_MONONLINE, me.nick, [mask(m.nick, m.ident) for m in online])
        out += listed(self.name, n.RPL_MONOFFLINE, me.nick, offline)
        if over:
            out += self.session.reply(n.ERR_MONLISTFULL, str(MAX_WATCHED), ",".join(over), "Monitor list is full")
        return out


#: MONITOR's subcommands (under the hub lock).
_SUBCOMMANDS: dict[str, Callable[[Monitor, ChatState, Member, list[str]], None]] = {
    "+": Monitor._add, "-": Monitor._remove, "C": Monitor._clear, "L": Monitor._list, "S": Monitor._status}
