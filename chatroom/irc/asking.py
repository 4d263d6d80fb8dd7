"""The IRC door's answers to questions about the chat: NAMES, WHO, WHOIS, LIST,
LUSERS, MOTD, ISON and USERHOST.  A part of :class:`~chatroom.irc.door.IrcDoor`: what
is asked is read under the hub lock, and the lines are the pure functions of
``replies.py``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chatroom import __version__
from chatroom.errors import Refused
from chatroom.irc import numerics as n
from chatroom.irc.lines import IrcLine
from chatroom.irc.part import DoorPart
from chatroom.irc.replies import (
    ison_line,
    list_lines,
    lusers_lines,
    names_lines,
    userhost_line,
    who_lines,
    who_matches,
    whois_lines,
)
from chatroom.protocol import PROTOCOL_VERSION
from chatroom.text import fold, nick_key, without_hash

if TYPE_CHECKING:
    from chatroom.server.members import Member

__all__ = ["Asking"]


class Asking(DoorPart):
    """Questions, answered to this connection alone."""

    def on_names(self, line: IrcLine) -> None:
        with self.hub.locked(self.handler.batch) as state:
            me = self.member()
            mine = [f"#{r.name}" for r in me.rooms.values()]
            asked = line.params[0].split(",") if line.params else mine
            several = len(asked) > 1
            for name in asked:
                room = state.rooms.get(fold(without_hash(name)))
                if room is not None and room.modes.secret and room.key not in me.rooms:
                    room = None  # (a secret channel is not seen from outside)
                self.send(b"".join(names_lines(self.session, room, name, end=None if several else "")))
            if several:
                self.reply(n.RPL_ENDOFNAMES, line.params[0] if line.params else "*", "End of /NAMES list")

    def on_who(self, line: IrcLine) -> None:
        """WHO #channel, WHO nick, or WHO of a mask (``*``, ``ann*``); WHOX with
        ``%fields[,token]``."""
        mask = line.params[0] if line.params else "*"
        whox = line.params[1] if len(line.params) > 1 and line.params[1].startswith("%") else ""
        with self.hub.locked(self.handler.batch) as state:
            room = state.rooms.get(fold(without_hash(mask))) if mask.startswith("#") else None
            people: list[Member] = []
            if not mask.startswith("#"):
                person = state.nicks.get(nick_key(mask))
                people = [person] if person is not None else who_matches(mask, state.members(), self.member())
            out = who_lines(self.session, mask, room, people, whox, time.time())
        self.send(b"".join(out))

    def on_whois(self, line: IrcLine) -> None:
        if not line.params:
            self.reply(n.ERR_NONICKNAMEGIVEN, "No nickname given")
            return
        nick, now = line.params[-1], time.time()
        self.server.chat.look_ahead(nick=nick)
        try:
            with self.hub.locked(self.handler.batch) as state:
                user = state.whois(self.member(), nick, now)
                out = whois_lines(self.session, user, state.nicks.get(nick_key(user.nick)), now)
        except Refused:
            out = [self.session.reply(n.ERR_NOSUCHNICK, nick, "No such nick"),
                   self.session.reply(n.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")]
        self.send(b"".join(out))

    def on_list(self, line: IrcLine) -> None:
        self.server.chat.look_ahead(rooms=True)
        with self.hub.locked(self.handler.batch) as state:
            rooms = tuple(r for r in state.list_rooms(self.member()).rooms if r.members)  # (IRC: no empty channel)
        self.send(b"".join(list_lines(self.session, rooms, line.params[0] if line.params else "")))

    def on_whowas(self, line: IrcLine) -> None:
        """WHOWAS nick [count]: who had that nick lately (newest first; a count of 0 or
        less: all of them)."""
        if not line.params or not line.params[0]:
            self.reply(n.ERR_NONICKNAMEGIVEN, "No nickname given")
            return
        nick = line.params[0]
        count = line.params[1] if len(line.params) > 1 else ""
        most = int(count) if count.lstrip("-").isdigit() and int(count) > 0 else None
        with self.hub.locked(self.handler.batch) as state:
            found = [g for g in state.gone if fold(g[0]) == fold(nick)][:most]
        for was, user, realname, at in found:
            self.reply(n.RPL_WHOWASUSER, was, user, "chatroom", "*", realname)
            self.reply(n.RPL_WHOISSERVER, was, self.session.server, time.strftime("%c", time.localtime(at)))
        if not found:
            self.reply(n.ERR_WASNOSUCHNICK, nick, "There was no such nickname")
        self.reply(n.RPL_ENDOFWHOWAS, nick, "End of WHOWAS")

    def on_lusers(self, line: IrcLine | None) -> None:
        with self.hub.locked(self.handler.batch) as state:  # (other threads change these as we count)
            out = lusers_lines(self.session, list(state.members()), len(state.rooms), state.most_members)
        self.send(b"".join(out))

    def on_motd(self, line: IrcLine | None) -> None:
        self.reply(n.ERR_NOMOTD, "MOTD File is missing")

    def on_version(self, line: IrcLine | None) -> None:
        self.reply(n.RPL_VERSION, f"chatroom-{__version__}.", self.session.server,
                   f"chatroom {__version__}, protocol {PROTOCOL_VERSION} (also IRC, and browsers)")

    def on_time(self, line: IrcLine | None) -> None:
        self.reply(n.RPL_TIME, self.session.server, time.strftime("%A %B %d %Y -- %H:%M:%S %z"))

    def on_admin(self, line: IrcLine | None) -> None:
        name = self.session.server
        self.reply(n.RPL_ADMINME, name, "Administrative info")
        self.reply(n.RPL_ADMINLOC1, f"a chatroom server: {name}")
        self.reply(n.RPL_ADMINLOC2, "run by whoever started it on this network")
        self.reply(n.RPL_ADMINEMAIL, "ask in #lobby")

    def on_info(self, line: IrcLine | None) -> None:
        for text in (f"chatroom {__version__}: a LAN chat room", "framed clients, IRC clients and browsers share "
                     "its rooms", "see IRC.md for what the IRC door speaks"):
            self.reply(n.RPL_INFO, text)
        self.reply(n.RPL_ENDOFINFO, "End of /INFO list")

    def on_stats(self, line: IrcLine) -> None:
        """STATS u (how long the server has run); any other letter: only its end (there
        are no links, and what an operator would count is in /metrics)."""
        if not line.params:
            self.reply(n.ERR_NEEDMOREPARAMS, "STATS", "Not enough parameters")
            return
        letter = line.params[0][:1]
        if letter == "u":
            up = int(time.time() - self.server.started)
            days, rest = divmod(up, 86400)
            clock = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
            self.reply(n.RPL_STATSUPTIME, f"Server Up {days} days {clock}")
        self.reply(n.RPL_ENDOFSTATS, letter or "*", "End of /STATS report")

    def on_ison(self, line: IrcLine) -> None:
        with self.hub.locked(self.handler.batch) as state:
            out = ison_line(self.session, state.nicks, " ".join(line.params).split())
        self.send(out)

    def on_userhost(self, line: IrcLine) -> None:
        with self.hub.locked(self.handler.batch) as state:
            out = userhost_line(self.session, state.nicks, line.params)
        self.send(out)
