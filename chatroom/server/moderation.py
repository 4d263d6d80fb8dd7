"""Operators and what they may do (no I/O): kick, mute, ban, the ban list's
records.  A part of :class:`~chatroom.server.room.ChatState`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from chatroom.errors import Refused
from chatroom.protocol import (
    Chat,
    ErrorCode,
    ModAction,
    Private,
)
from chatroom.server.bans import Ban, BanList, looks_like_address, person_key
from chatroom.server.members import Member, Room, Sanction, address_ip
from chatroom.server.nicks import NickIndex
from chatroom.text import (
    clean_line,
    nick_key,
)

if TYPE_CHECKING:
    from chatroom.server.remote import Peers

__all__ = ["Moderation"]


class Moderation:
    """Server operators and moderation: a mixin of ``ChatState``."""

    if TYPE_CHECKING:  # what ChatState (room.py) holds and provides
        history_size: int
        peers: Peers | None
        published: list[dict[str, Any]] | None
        bans: BanList
        rooms: dict[str, Room]
        nicks: NickIndex
        sessions: dict[str, Member]
        sent: dict[tuple[str, str], Chat | Private]
        store: Any

        def members(self) -> Iterable[Member]: ...
        def room_of(self, member: Member, name: str | None) -> Room: ...
        def _check_not_muted(self, member: Member, now: float) -> None: ...
        def _clean_message(self, text: str) -> str: ...
        def _remember(self, member: Member, msg_id: str, msg: Chat | Private, sender: str | None = None) -> None: ...
        def _room_for_join(self, name: str) -> Room: ...
        def _room(self, name: str) -> Room: ...
        def _publish(self, member: Member, room: Room, kind: str, **fields: Any) -> None: ...
        def _forget_room(self, room: Room) -> None: ...
        def remote(self, info: dict[str, Any]) -> Member | None: ...

    # ------------------------------------------------------------------ moderation

    def make_operator(self, member: Member) -> None:
        member.op = True
        for room in member.rooms.values():
            room.roster_changed()
            self._publish(member, room, "op")

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
            room = self.room_of(op, room_name)
            room.topic_locked = action is ModAction.LOCK
            self._publish(op, room, "lock", locked=room.topic_locked)
            return Sanction(f"the topic of {room.name} is now {'locked' if room.topic_locked else 'open'}")
        if action is ModAction.UNBAN:
            lifted = self.bans.matching(target)
            for ban in lifted:
                self.bans.remove(ban.target)
            return Sanction(f"unbanned {', '.join(b.describe(now) for b in lifted)}" if lifted
                            else f"no ban matches {target}", lifted=lifted)
        member = self.nicks.get(nick_key(target)) if target else None
        if action is ModAction.BAN:
            return self._ban(op, member, target, reason, duration, now, handshaking)
        if member is None:
            return Sanction(f"nobody is called {target}")
        if action is ModAction.KICK:
            why = f"kicked by {op.nick}" + (f": {reason}" if reason else "")
            return Sanction(f"kicked {member.nick}", [member], code=ErrorCode.KICKED.value, why=why, ended=[member])
        mute = action is ModAction.MUTE
        member.muted_until = (now + duration if duration else float("inf")) if mute else 0.0
        verb = "muted" if mute else "unmuted"
        how = f" for {duration:g} s" if mute and duration else ""
        return Sanction(f"{verb} {member.nick}",
                        notice=(member, f"{op.nick} {verb} you{how}" + (f": {reason}" if reason else "")))

    def _ban(self, op: Member, member: Member | None, target: str, reason: str, duration: float | None,
             now: float, handshaking: Callable[[str], int]) -> Sanction:
        """Ban ``member``'s address -- or the person, when others share that address --
        or an address given as ``target``.  An operator is never banned."""
        until = now + duration if duration else None
        why = "banned by " + op.nick + (f": {reason}" if reason else "")
        if member is not None:
            if member.op:
                return Sanction(f"{member.nick} is an operator: operators cannot be banned")
            address = address_ip(member.address)
            sharing = sum(1 for m in self.members() if m is not member and address_ip(m.address) == address)
            sharing += handshaking(address)
            if sharing:  # banning the address would ban them too: ban the person
                ban = Ban(person_key(member.nick), until, member.nick, reason, op.nick)
                self.bans.add(ban)
                return Sanction(f"banned {member.nick} (the person, not the address {address}: {sharing} other "
                                "connection(s) share it)", [member], code=ErrorCode.BANNED.value, why=why,
                                added=ban, ended=[member])
            ban = Ban(address, until, member.nick, reason, op.nick)
        elif looks_like_address(target):
            if any(m.op and address_ip(m.address) == target for m in self.members()):
                return Sanction(f"an operator is connected from {target}: not banned")
            ban = Ban(target, until, "", reason, op.nick)
        else:
            return Sanction(f"nobody is called {target}, and it is not an address")
        self.bans.add(ban)
        held = [m for m in self.members() if address_ip(m.address) == ban.target]
        how = f" for {duration:g} s" if duration else ""
        return Sanction(f"banned {ban.target}{how}", address=ban.target, code=ErrorCode.BANNED.value, why=why,
                        added=ban, ended=held)
