"""The IRC door's commands that run a channel: MODE #chan, KICK, INVITE, KILL, and
JOIN with a key.  A part of :class:`~chatroom.irc.door.IrcDoor`: the rules are the
core's (``server/roles.py``), the same for every door; this reads IRC's lines and
writes IRC's numerics.

A key arrives in clear (IRC has no other way; use TLS): it is derived here, outside
the hub lock (PBKDF2 takes a tenth of a second), and only the derived key reaches the
room, which keeps nothing else.
"""

from __future__ import annotations

import functools
import os
import time
from typing import TYPE_CHECKING

from chatroom.auth import derive_key
from chatroom.errors import Refused
from chatroom.irc import numerics as n
from chatroom.irc.lines import IrcLine, plain_text
from chatroom.irc.modes import LETTER_OF, channel_modes, mode_line_parts
from chatroom.irc.part import DoorPart
from chatroom.irc.wire import channel
from chatroom.protocol import ErrorCode, ModAction, ModeChange, Moderate, RoomMode
from chatroom.server.roles import KeyNeeded
from chatroom.text import fold, without_hash

if TYPE_CHECKING:
    from chatroom.server.members import Room

__all__ = ["Channels", "valid_key"]

#: The longest key taken (RFC 2812 says 23; modern servers take more).
MAX_KEY = 64


@functools.lru_cache(maxsize=64)
def _derived(key: str, salt: str) -> bytes:
    """A key given in clear, derived with a room's salt: remembered for the next JOIN
    with it, so that joining and parting in a loop costs no PBKDF2 each time (a wrong
    key is slowed by the guessing gate instead)."""
    return derive_key(key, bytes.fromhex(salt))


def valid_key(key: str) -> bool:
    """A key IRC can carry in a JOIN: printable ASCII, no space or comma."""
    return 0 < len(key) <= MAX_KEY and all(0x21 <= ord(ch) < 0x7F and ch != "," for ch in key)


class Channels(DoorPart):
    """Running channels, over IRC."""

    if TYPE_CHECKING:  # (the door's: see door.py)
        def join(self, room: str, key: bytes | None = None) -> None: ...

    # ------------------------------------------------------------------ JOIN with keys

    def join_with_key(self, chan: str, key: str | None) -> None:
        """JOIN ``chan`` [``key``]: the key derived with the room's salt, then the join."""
        room = self.hub.state.rooms.get(fold(without_hash(chan)))  # (a dict read: the salt)
        salt = room.modes.key_salt if room is not None else ""
        derived = None
        if salt and key:
            right = self.handler.gate("room key", True)  # (a guesser waits its turn first)
            if right is None:
                return
            derived = _derived(key, salt)
        try:
            self.join(chan[1:], derived)
        except KeyNeeded as exc:
            if derived is not None:
                self.handler.gate("room key", False)
            self.reply(n.ERR_BADCHANNELKEY, chan, exc.message)

    # ------------------------------------------------------------------ MODE #chan

    def channel_mode(self, room: Room, modes: str, args: list[str]) -> None:
        chan = channel(room.name)
        asked = channel_modes(modes, args)
        for letter in asked.unknown:
            self.reply(n.ERR_UNKNOWNMODE, letter, "is not a mode chatroom has")
        for letter in asked.missing:
            self.reply(n.ERR_NEEDMOREPARAMS, "MODE", f"+{letter} needs a parameter")
        if asked.ban_list:
            self.ban_list(room)
        changes = [c for c in (self._checked(chan, *change) for change in asked.changes) if c is not None]
        if changes:
            self.set_modes(room, changes)

    def _checked(self, chan: str, mode: RoomMode, on: bool, arg: str | None) -> ModeChange | None:
        """One change as the core takes it (a key derived here, outside the lock), or
        None when its value is refused (696)."""
        if mode is RoomMode.KEY and on:
            return self._key_change(chan, arg or "")
        if mode is RoomMode.LIMIT and on and not ((arg or "").isdigit() and int(arg or "0") > 0):
            self.reply(n.ERR_INVALIDMODEPARAM, chan, "l", arg or "*", "A limit is a positive number")
            return None
        return ModeChange(mode=mode, on=on, arg=arg)

    def _key_change(self, chan: str, key: str) -> ModeChange | None:
        if not valid_key(key):
            self.reply(n.ERR_INVALIDMODEPARAM, chan, "k", "*", "A key is 1-64 printable characters, no space")
            return None
        salt = os.urandom(16)
        return ModeChange(mode=RoomMode.KEY, arg=f"{salt.hex()}:{derive_key(key, salt).hex()}")

    def set_modes(self, room: Room, changes: list[ModeChange]) -> None:
        """The changes in one MODE line to the channel; each refused one answered alone
        (it does not undo the others, as in IRC)."""
        chan = channel(room.name)
        try:
            with self.hub.locked(self.handler.batch) as state:
                deliveries, refused = state.set_modes(self.member(), room.name, changes, time.time())
                self.deliver(deliveries)
        except Refused:  # (not an operator of the room)
            self.reply(n.ERR_CHANOPRIVSNEEDED, chan, "You're not a channel operator")
            return
        for change, exc in refused:
            if exc.code == ErrorCode.NOT_IN_ROOM:  # (the target of +o/+v)
                self.reply(n.ERR_USERNOTINCHANNEL, change.arg or "*", chan, "They aren't on that channel")
            elif exc.code == ErrorCode.NO_SUCH_NICK:
                self.reply(n.ERR_NOSUCHNICK, change.arg or "*", "No such nick")
            else:
                self.reply(n.ERR_INVALIDMODEPARAM, chan, LETTER_OF[change.mode], change.arg or "*", exc.message)

    def channel_modes_is(self, room: Room) -> None:
        """324 (the modes now, with the limit; the key only as ``*``) and 329."""
        chan = channel(room.name)
        letters, args = mode_line_parts(room.modes.flags(room.topic_locked))
        self.reply(n.RPL_CHANNELMODEIS, chan, "+n" + letters.lstrip("+"), *args)
        if room.created:
            self.reply(n.RPL_CREATIONTIME, chan, str(int(room.created)))

    def ban_list(self, room: Room) -> None:
        chan = channel(room.name)
        for ban in room.modes.bans:
            self.reply(n.RPL_BANLIST, chan, ban.mask, ban.by or self.name, str(int(ban.at)))
        self.reply(n.RPL_ENDOFBANLIST, chan, "End of channel ban list")

    # ------------------------------------------------------------------ KICK, INVITE, KILL

    def on_kick(self, line: IrcLine) -> None:
        if not self.need(line, 2):
            return
        chan, reason = line.params[0], plain_text(line.params[2]) if len(line.params) > 2 else ""
        room = self.hub.state.rooms.get(fold(without_hash(chan)))  # (a dict read)
        if room is None or not chan.startswith("#"):
            self.reply(n.ERR_NOSUCHCHANNEL, chan, "No such channel")
            return
        for target in line.params[1].split(","):
            with self.hub.locked(self.handler.batch) as state:
                member = self.member()
                if member.key not in room.members and not member.op:
                    self.reply(n.ERR_NOTONCHANNEL, chan, "You're not on that channel")
                    return
                if not state.runs(member, room):
                    self.reply(n.ERR_CHANOPRIVSNEEDED, chan, "You're not a channel operator")
                    return
                try:
                    self.deliver(state.room_kick(member, target, room.name, reason, time.time()))
                except Refused:
                    self.reply(n.ERR_USERNOTINCHANNEL, target, chan, "They aren't on that channel")

    def on_invite(self, line: IrcLine) -> None:
        if not self.need(line, 2):
            return
        nick, chan = line.params[0], line.params[1]
        room = self.hub.state.rooms.get(fold(without_hash(chan)))
        if room is None:
            self.reply(n.ERR_NOSUCHCHANNEL, chan, "No such channel")
            return
        member = self.member()
        if member.key not in room.members:
            self.reply(n.ERR_NOTONCHANNEL, chan, "You're not on that channel")
            return
        try:
            with self.hub.locked(self.handler.batch) as state:
                told, deliveries = state.invite(member, nick, room.name, time.time())
                self.deliver([d for d in deliveries if d.recipients])
        except Refused as exc:
            numeric = {ErrorCode.NOT_ROOM_OPERATOR: n.ERR_CHANOPRIVSNEEDED, ErrorCode.NO_SUCH_NICK: n.ERR_NOSUCHNICK,
                       ErrorCode.INVALID_ROOM: n.ERR_USERONCHANNEL}.get(ErrorCode(exc.code), n.ERR_NOSUCHCHANNEL)
            params = [nick, chan] if numeric == n.ERR_USERONCHANNEL else [chan] if numeric == \
                n.ERR_CHANOPRIVSNEEDED else [nick]
            self.reply(numeric, *params, exc.message)
            return
        self.reply(n.RPL_INVITING, told.to, channel(room.name))

    def on_kill(self, line: IrcLine) -> None:
        """KILL nick [reason]: a server operator's kick off the server."""
        if not self.need(line, 1):
            return
        member = self.member()
        if not member.op:
            self.reply(n.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
            return
        reason = plain_text(line.params[1]) if len(line.params) > 1 else ""
        text = self.server.moderate(member, Moderate(action=ModAction.KICK, target=line.params[0], reason=reason),
                                    self.handler.batch)
        self.send(self.session.notice(text))
