"""The IRC door's commands about oneself: AWAY, MODE nick (invisible, bot), SETNAME,
OPER and NICK.  A part of :class:`~chatroom.irc.door.IrcDoor`: the rules are the
core's, as for every door; this reads IRC's lines and writes IRC's replies."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chatroom.auth import secrets_match
from chatroom.errors import Refused
from chatroom.irc import numerics as n
from chatroom.irc.lines import IrcLine, format_line, plain_text
from chatroom.irc.modes import user_modes
from chatroom.irc.part import DoorPart
from chatroom.irc.wire import IrcText, mask
from chatroom.server.chat_path import claimed
from chatroom.server.hub import append_entry
from chatroom.server.members import owner_of
from chatroom.server.wire import Outgoing
from chatroom.text import clean_line, fold

if TYPE_CHECKING:
    from chatroom.server.members import Delivery, Member

__all__ = ["Person"]


class Person(DoorPart):
    """What a person says of itself, over IRC."""

    def on_away(self, line: IrcLine) -> None:
        message = plain_text(line.params[0]) if line.params else ""
        with self.hub.locked(self.handler.batch) as state:
            try:
                self.deliver(state.set_away(self.member(), message or None, time.time()))
            except Refused:
                pass  # "back" while not away: IRC says 305 all the same
        if message:
            self.reply(n.RPL_NOWAWAY, "You have been marked as being away")
        else:
            self.reply(n.RPL_UNAWAY, "You are no longer marked as being away")

    def user_mode(self, target: str, modes: str) -> None:
        """MODE nick [+i|-i|+B|-B]: invisible (LUSERS counts it apart, WHO masks skip
        it outside shared rooms) and bot (IRCv3: a ``bot`` tag on its messages, 335 in
        WHOIS, ``B`` in WHO); operator (+o) comes with OPER."""
        if fold(target) != fold(self.session.nick):
            self.reply(n.ERR_USERSDONTMATCH, "Cannot change mode for other users")
            return
        member = self.member()
        have = ("i" if member.invisible else "") + ("B" if member.bot else "")
        if not modes:
            self.reply(n.RPL_UMODEIS, "+" + have + ("o" if member.op else ""))
            return
        now, changed, unknown = user_modes(modes, have)
        member.invisible, member.bot = "i" in now, "B" in now
        if unknown:
            self.reply(n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
        if changed:
            self.send(format_line("MODE", member.nick, changed, source=member.nick))

    def on_setname(self, line: IrcLine) -> None:
        """SETNAME :real name (IRCv3 setname): the new real name, told to whoever asked
        for ``setname`` and shares a channel (the client too)."""
        realname = clean_line(line.params[0]).strip()[:100] if line.params else ""
        if not realname:
            self.send(format_line("FAIL", "SETNAME", "INVALID_REALNAME", "A real name is 1-100 characters",
                                  source=self.name))
            return
        with self.hub.locked(self.handler.batch):
            member = self.member()
            member.realname = realname
            told = {member.key: member} if member.hears_setname else {}
            for room in member.rooms.values():
                told.update((m.key, m) for m in room.everyone() if m.hears_setname and m.sink is not None)
            line_out = format_line("SETNAME", realname, source=mask(member.nick, member.ident), trailing=True)
            for m in told.values():  # (IRC clients only: a line, not a message of the rooms)
                append_entry(self.handler.batch.entries, m.sink.me, Outgoing(IrcText(line_out), b""))

    def on_oper(self, line: IrcLine) -> None:
        if not self.need(line, 2):
            return
        right = self.handler.gate("operator token", secrets_match(line.params[1], self.server.op_token))
        if right is None:
            return
        if not right:
            self.reply(n.ERR_PASSWDMISMATCH, "Password incorrect")
            return
        with self.hub.locked(self.handler.batch) as state:
            state.make_operator(self.member())
        self.reply(n.RPL_YOUREOPER, "You are now a chatroom operator: an operator of every channel, and KILL")
        self.send(format_line("MODE", self.session.nick, "+o", source=self.session.nick))

    def renamed(self, member: Member, old: str, deliveries: list[Delivery]) -> None:
        """Under the lock: the NICK line to us once, and to everyone sharing a room."""
        if not member.rooms or all(d.recipients == (member,) for d in deliveries):
            self.send(format_line("NICK", member.nick, source=mask(old, member.ident)))  # in no room: told alone
        else:
            deliveries = deliveries[:1] + [  # once is enough for us (and for those in several rooms with us)
                Delivery(tuple(m for m in d.recipients if m is not member), d.message) for d in deliveries[1:]]
        self.deliver([d for d in deliveries if d.recipients != (member,) or member.rooms])

    def on_nick(self, line: IrcLine) -> None:
        if not line.params or not line.params[0]:
            self.reply(n.ERR_NONICKNAMEGIVEN, "No nickname given")
            return
        member = self.member()
        old = member.nick
        if line.params[0] == old:
            return  # already so: nothing changes, nobody is told
        with claimed(self.server.chat, line.params[0], owner_of(member.key, member.token), replacing=old), \
                self.hub.locked(self.handler.batch) as state:
            deliveries = state.rename(member, line.params[0], time.time())
            self.renamed(member, old, deliveries)
        self.session.nick = member.nick


