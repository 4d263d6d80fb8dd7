"""Operators and what they may do (no I/O): kick, mute, ban, the ban list's
records.  A part of :class:`~chatroom.server.room.ChatState`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from chatroom.errors import Refused
from chatroom.protocol import ErrorCode, ModAction, Notice
from chatroom.server.bans import Ban, looks_like_address, person_key
from chatroom.server.members import Delivery, Member, Sanction, address_ip
from chatroom.server.state_base import StateBase
from chatroom.text import (
    clean_line,
    nick_key,
)

if TYPE_CHECKING:
    pass


__all__ = ["Moderation"]


class Moderation(StateBase):
    """Server operators and moderation: a mixin of ``ChatState``."""

    # ------------------------------------------------------------------ moderation

    def moderate(self, op: Member, action: ModAction, target: str, reason: str, duration: float | None,
                 now: float, handshaking: Callable[[str], int] = lambda address: 0,
                 room_name: str | None = None) -> Sanction:
        """Carry out an operator's ``action`` on ``target`` (a nick, or an address for a
        ban).  ``handshaking(ip)``: connections from that address that have no member
        yet (the server knows them; they count as sharing an address)."""
        if not op.op:
            raise Refused(ErrorCode.NOT_OPERATOR, "only operators can do that (see /op)")
        target, reason = clean_line(target).strip(), clean_line(reason).strip()
        if action is ModAction.BANS:
            bans = self.bans.all(now)
            return Sanction("bans:\n" + "\n".join(f"  {b.describe(now)}" for b in bans) if bans else "nobody is banned")
        if action in (ModAction.LOCK, ModAction.UNLOCK):
            return self._lock(op, room_name, action is ModAction.LOCK)
        if action is ModAction.UNBAN:
            return self._unban(target, now)
        member = self.nicks.get(nick_key(target)) if target else None
        if action is ModAction.BAN:
            return self._ban(op, member, target, reason, duration, now, handshaking)
        if member is None:
            return Sanction(f"nobody is called {target}")
        if action is ModAction.KICK:
            why = f"kicked by {op.nick}" + (f": {reason}" if reason else "")
            return Sanction(f"kicked {member.nick}", [member], code=ErrorCode.KICKED.value, why=why, ended=[member])
        return self._mute(op, member, action is ModAction.MUTE, reason, duration, now)

    def _lock(self, op: Member, room_name: str | None, locked: bool) -> Sanction:
        room = self.lock_topic(op, room_name, locked)
        return Sanction(f"the topic of {room.name} is now {'locked' if locked else 'open'}")

    def _unban(self, target: str, now: float) -> Sanction:
        lifted = self.bans.matching(target)
        for ban in lifted:
            self.bans.remove(ban.target)
        return Sanction(f"unbanned {', '.join(b.describe(now) for b in lifted)}" if lifted
                        else f"no ban matches {target}", lifted=lifted)

    def mute(self, member: Member, until: float, notice: str | None = None) -> list[Delivery]:
        """``member`` (one of ours) may not speak until ``until`` (0: again now), as an
        operator of another server of the cluster decided; ``notice`` tells it why."""
        member.muted_until = until
        if notice and member.sink is not None:
            return [Delivery((member,), Notice(text=notice, to=member.nick))]
        return []

    def _mute(self, op: Member, member: Member, mute: bool, reason: str, duration: float | None,
              now: float) -> Sanction:
        member.muted_until = (now + duration if duration else float("inf")) if mute else 0.0
        verb = "muted" if mute else "unmuted"
        how = f" for {duration:g} s" if mute and duration else ""
        return Sanction(f"{verb} {member.nick}",
                        notice=(member, f"{op.nick} {verb} you{how}" + (f": {reason}" if reason else "")))

    def _ban_member(self, op: Member, member: Member, reason: str, until: float | None, why: str,
                    handshaking: Callable[[str], int]) -> Ban | Sanction:
        """A ban of ``member``'s address, or (done here) of the person when others share
        it, or why not: an operator is never banned."""
        if member.op:
            return Sanction(f"{member.nick} is an operator: operators cannot be banned")
        address = address_ip(member.address)
        sharing = sum(1 for m in self.members() if m is not member and address_ip(m.address) == address)
        sharing += handshaking(address)
        if not sharing:
            return Ban(address, until, member.nick, reason, op.nick)
        # banning the address would ban them too: ban the person
        ban = Ban(person_key(member.nick), until, member.nick, reason, op.nick)
        self.bans.add(ban)
        return Sanction(f"banned {member.nick} (the person, not the address {address}: {sharing} other "
                        "connection(s) share it)", [member], code=ErrorCode.BANNED.value, why=why, added=ban,
                        ended=[member])

    def _ban(self, op: Member, member: Member | None, target: str, reason: str, duration: float | None,
             now: float, handshaking: Callable[[str], int]) -> Sanction:
        """Ban ``member``'s address -- or the person, when others share that address --
        or an address given as ``target``.  An operator is never banned."""
        until = now + duration if duration else None
        why = "banned by " + op.nick + (f": {reason}" if reason else "")
        if member is not None:
            decided = self._ban_member(op, member, reason, until, why, handshaking)
        elif looks_like_address(target):
            decided = (Sanction(f"an operator is connected from {target}: not banned")
                       if any(m.op and address_ip(m.address) == target for m in self.members())
                       else Ban(target, until, "", reason, op.nick))
        else:
            decided = Sanction(f"nobody is called {target}, and it is not an address")
        if isinstance(decided, Sanction):
            return decided
        ban = decided
        self.bans.add(ban)
        held = [m for m in self.members() if address_ip(m.address) == ban.target]
        how = f" for {duration:g} s" if duration else ""
        return Sanction(f"banned {ban.target}{how}", address=ban.target, code=ErrorCode.BANNED.value, why=why,
                        added=ban, ended=held)
