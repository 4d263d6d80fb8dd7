"""Rooms run by their operators: who may change a room, speak in it and come in.
No I/O; the same rules for every door (framed, IRC, web) and the cluster.

* Whoever makes a room (by joining a room that did not exist) becomes its operator.
  Operators make others operators or voiced, and give it up; a server operator is an
  operator of every room.  Roles are kept by nick, saved with the room.
* Modes (``RoomMode``): *moderated* (only operators and voiced members speak),
  *topic_lock*, *key* (a password for the room, proved as the server password is --
  the key never crosses the wire from a chatroom client), *invite_only*, *limit*,
  *secret* (not listed, not announced), and *ban* masks.
* Coming in: operators and server operators always may; then a ban (unless invited),
  invite-only (unless invited), the limit, and the key (unless invited) are checked,
  in IRC's order (474, 473, 471, 475).  An invitation is used up by the join.

A change is a rule (``set_modes``: checked here, then published to the cluster) and a
reducer (``modes_set``: the one place another server's change is applied).  A part
of :class:`~chatroom.server.room.ChatState`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from chatroom.auth import client_proof, proofs_match, server_proof
from chatroom.errors import Refused
from chatroom.protocol import (
    Challenge,
    ErrorCode,
    Invited,
    ModeChange,
    Parted,
    Presence,
    PresenceEvent,
    RoomMode,
    RoomModesInfo,
)
from chatroom.server.members import Delivery, Member, Room, address_ip
from chatroom.server.room_modes import MAX_ROOM_BANS, RoomBan, RoomModes, normal_mask
from chatroom.server.state_base import StateBase
from chatroom.text import clean_line, fold, nick_key

__all__ = ["Roles", "KeyNeeded", "KeyAttempt", "who_forms"]

_HEX = re.compile(r"(?:[0-9a-f]{2}){1,128}")  # whole bytes, as bytes.fromhex reads them

#: What a joiner offers for a room's key: a chatroom client's (its nonce, its proof)
#: after a challenge, or (IRC, in clear over its connection) the key derived with the
#: room's salt by the door, outside the hub lock.
KeyAttempt = tuple[bytes, bytes] | bytes | None


class KeyNeeded(Refused):
    """The room has a key: ``challenge`` is what the joiner must prove it with."""

    def __init__(self, message: str, challenge: Challenge | None) -> None:
        super().__init__(ErrorCode.KEY_NEEDED, message)
        self.challenge = challenge


def who_forms(member: Member) -> tuple[str, ...]:
    """The ``nick!user@host`` forms a room ban is matched against: the host as IRC
    clients see it (``chatroom``) and the real address (a server operator's ban)."""
    user = member.ident or member.nick
    return (f"{member.nick}!{user}@chatroom", f"{member.nick}!{user}@{address_ip(member.address)}")


class Roles(StateBase):
    """Room operators, modes and invitations: a mixin of ``ChatState``."""

    # ------------------------------------------------------------------ asking

    @staticmethod
    def runs(member: Member, room: Room) -> bool:
        """Whether ``member`` may run ``room``: one of its operators, or a server operator."""
        return member.op or fold(member.nick) in room.modes.operators

    def room_modes(self, member: Member, room_name: str, now: float, *, bans: bool = False) -> RoomModesInfo:
        """What ``room_name`` 's modes are (and its bans), for ``member``."""
        room = self._existing(room_name)
        listed = tuple(b.info() for b in room.modes.bans) if bans else None
        return RoomModesInfo(room=room.name, changes=room.modes.flags(room.topic_locked), bans=listed,
                             created=room.created or None)

    # ------------------------------------------------------------------ the rule

    def set_modes(self, member: Member, room_name: str, changes: Iterable[ModeChange],
                  now: float) -> tuple[list[Delivery], list[tuple[ModeChange, Refused]]]:
        """``member`` changes ``room_name`` 's modes: the changes that changed something
        are told to the room in one ``modes``; each refused one (an unknown nick, a bad
        limit...) is returned with why, and does not undo the others (as in IRC)."""
        room = self._existing(room_name)
        if not self.runs(member, room):
            raise Refused(ErrorCode.NOT_ROOM_OPERATOR, f"only the operators of {room.name} may change its modes")
        done: list[ModeChange] = []
        refused: list[tuple[ModeChange, Refused]] = []
        for change in changes:
            try:
                applied = self._change(room, change, member.nick, now)
            except Refused as exc:
                refused.append((change, exc))
                continue
            if applied is not None:
                done.append(applied)
        if not done:
            return [], refused
        room.modes_changed()
        self.dirty[room.key] = room
        self._publish(member, room, "modes", modes=room.modes.dump(room.topic_locked),
                      changes=[[c.mode.value, c.on, c.arg] for c in done])
        return self._tell_modes(room, tuple(done), member.nick, now), refused

    def _change(self, room: Room, change: ModeChange, by: str, now: float) -> ModeChange | None:
        """Apply one change; what to tell (None: nothing changed), or ``Refused``."""
        mode, on, modes = change.mode, change.on, room.modes
        if mode in (RoomMode.OPERATOR, RoomMode.VOICE):
            return self._role(room, change)
        if mode is RoomMode.TOPIC_LOCK:
            if room.topic_locked == on:
                return None
            room.topic_locked = on
            return change
        if mode in (RoomMode.MODERATED, RoomMode.INVITE_ONLY, RoomMode.SECRET):
            attr = mode.value
            if getattr(modes, attr) == on:
                return None
            setattr(modes, attr, on)
            return change
        return _SPECIAL[mode](modes, change, by, now)

    def _role(self, room: Room, change: ModeChange) -> ModeChange | None:
        target = self.nicks.get(nick_key(change.arg or ""))
        if target is None:
            raise Refused(ErrorCode.NO_SUCH_NICK, f"nobody is called {clean_line(change.arg or '')[:40]}")
        if target.key not in room.members:
            raise Refused(ErrorCode.NOT_IN_ROOM, f"{target.nick} is not in {room.name}")
        keys = room.modes.operators if change.mode is RoomMode.OPERATOR else room.modes.voiced
        key = fold(target.nick)
        if (key in keys) == change.on:
            return None
        (keys.add if change.on else keys.discard)(key)
        room.roster_changed()
        return ModeChange(mode=change.mode, on=change.on, arg=target.nick)

    def _tell_modes(self, room: Room, changes: tuple[ModeChange, ...], nick: str, now: float) -> list[Delivery]:
        listeners = tuple(m for m in room.everyone() if m.hears_roles)
        if not listeners:
            return []
        return [Delivery(listeners, RoomModesInfo(room=room.name, changes=changes, nick=nick, ts=now))]

    # ------------------------------------------------------------------ the reducers

    def modes_set(self, room: Room, dumped: str, changes: list[list[object]], nick: str,
                  now: float) -> list[Delivery]:
        """Another server's change of ``room`` 's modes: the room's modes as it saved
        them (``dumped``), and what changed, told here as there."""
        room.modes, room.topic_locked = RoomModes.load(dumped)
        room.modes_changed()
        room.roster_changed()
        told = tuple(ModeChange(mode=RoomMode(str(m)), on=bool(on), arg=None if arg is None else str(arg))
                     for m, on, arg in changes)
        return self._tell_modes(room, told, nick, now)

    def made_creator(self, member: Member, room: Room) -> None:
        """``member`` made ``room`` by joining it: its first operator."""
        room.modes.operators.add(fold(member.nick))
        room.roster_changed()
        self.dirty[room.key] = room
        self._publish(member, room, "modes", modes=room.modes.dump(room.topic_locked), changes=[])  # (told by its join)

    def roles_renamed(self, member: Member, old: str) -> None:
        """``member`` (once ``old``) keeps its roles in its rooms under its new nick."""
        was, now_key = fold(old), fold(member.nick)
        for room in member.rooms.values():
            for keys in (room.modes.operators, room.modes.voiced):
                if was in keys and was != now_key:
                    keys.discard(was)
                    keys.add(now_key)
                    self.dirty[room.key] = room

    # ------------------------------------------------------------------ coming in, speaking

    def check_entry(self, member: Member, room: Room, key: KeyAttempt,
                    nonce: Callable[[], bytes]) -> str | None:
        """Whether ``member`` may come into ``room`` (``Refused`` if not); returns the
        server's proof for a key proved by a chatroom client.  An invitation is used up."""
        if self.runs(member, room):
            return None
        modes, me = room.modes, fold(member.nick)
        invited = me in room.invited
        ban = None if invited else modes.banned(who_forms(member))
        if ban is not None:
            raise Refused(ErrorCode.BANNED_FROM_ROOM, f"you are banned from {room.name} ({ban.mask}, by {ban.by})")
        if modes.invite_only and not invited:
            raise Refused(ErrorCode.INVITE_ONLY, f"{room.name} is invite-only: ask one of its operators")
        if modes.limit and len(room.members) >= modes.limit:
            raise Refused(ErrorCode.ROOM_FULL, f"{room.name} is full ({modes.limit} members)")
        proof = None if invited or not modes.keyed else self._check_key(member, room, key, nonce)
        room.invited.discard(me)
        return proof

    def _check_key(self, member: Member, room: Room, key: KeyAttempt, nonce: Callable[[], bytes]) -> str | None:
        verifier = bytes.fromhex(room.modes.key_verifier)
        wrong = f"that is not the key of {room.name}"
        if isinstance(key, bytes):  # derived by the door from a key given in clear
            if proofs_match(key, verifier):
                return None
            raise KeyNeeded(wrong, None)
        sent = member.key_nonces.pop(room.key, None)
        if key is not None and sent is not None:
            client_nonce, proof = key
            if proofs_match(proof, client_proof(verifier, sent, client_nonce)):
                return server_proof(verifier, client_nonce, sent).hex()
        fresh = nonce()  # a new challenge: one proof each
        member.key_nonces[room.key] = fresh
        if len(member.key_nonces) > 8:  # (challenges never answered: keep a few)
            member.key_nonces.pop(next(iter(member.key_nonces)))
        raise KeyNeeded(wrong if key is not None else f"{room.name} has a key",
                        Challenge(nonce=fresh.hex(), salt=room.modes.key_salt, room=room.name))

    def check_voice(self, member: Member, room: Room) -> None:
        """Whether ``member`` may speak in ``room`` (a moderated room, or one whose bans
        match it): ``Refused`` if not.  Asked only when the room has either."""
        if self.runs(member, room) or fold(member.nick) in room.modes.voiced:
            return
        if room.modes.moderated:
            raise Refused(ErrorCode.MODERATED, f"{room.name} is moderated: only its operators and voiced members "
                                               "speak (that message was not sent)")
        if room.modes.banned(who_forms(member)) is not None:
            raise Refused(ErrorCode.BANNED_FROM_ROOM, f"you are banned from {room.name}: that message was not sent")

    def invite(self, member: Member, nick: str, room_name: str, now: float) -> tuple[Invited, list[Delivery]]:
        """``member`` invites ``nick`` into one of its rooms (its operators only, when it
        is invite-only).  The invitee is told, and the room's other operators; the
        inviter's door answers the inviter (an IRC client wants 341, not the INVITE)."""
        room = self.room_of(member, room_name)
        if room.modes.invite_only and not self.runs(member, room):
            raise Refused(ErrorCode.NOT_ROOM_OPERATOR, f"{room.name} is invite-only: only its operators invite")
        target = self.nicks.get(nick_key(nick))
        if target is None:
            raise Refused(ErrorCode.NO_SUCH_NICK, f"nobody is called {clean_line(nick)[:40]}")
        if target.key in room.members:
            raise Refused(ErrorCode.INVALID_ROOM, f"{target.nick} is already in {room.name}")
        room.invited.add(fold(target.nick))
        if len(room.invited) > 1000:  # (a list of the invited, not a way to fill the server's memory)
            room.invited.pop()
        told = Invited(room=room.name, nick=member.nick, to=target.nick, ts=now)
        ops = tuple(m for m in room.everyone() if m is not member and self.runs(m, room) and m.hears_invites)
        return told, [Delivery(((target,) if target.hears_roles else ()) + ops, told)]

    def room_kick(self, member: Member, nick: str, room_name: str, reason: str, now: float) -> list[Delivery]:
        """An operator of a room sends ``nick`` out of it (not off the server)."""
        room = self._existing(room_name)
        if not self.runs(member, room):
            raise Refused(ErrorCode.NOT_ROOM_OPERATOR, f"only the operators of {room.name} may kick from it")
        target = self.nicks.get(nick_key(nick))
        if target is None or target.key not in room.members:
            raise Refused(ErrorCode.NOT_IN_ROOM, f"{clean_line(nick)[:40]} is not in {room.name}")
        reason = clean_line(reason).strip()[:100]
        why = f"kicked by {member.nick}" + (f": {reason}" if reason else "")
        if target.server is not None:  # another server's member: that server sends it out (and tells the room)
            if self.published is not None:
                self.published.append({"t": "order", "to": target.server,
                                       "body": {"t": "room_kick", "nick": target.nick, "room": room.name, "why": why}})
            return []
        return self.kicked_out(target, room, why, now)

    def kicked_out(self, target: Member, room: Room, why: str, now: float) -> list[Delivery]:
        """``target`` (one of ours) is sent out of ``room`` (``why``: ``kicked by NICK...``),
        as an operator here or on another server of the cluster decided."""
        told = self.depart(target, room, why, now)
        told.append(Delivery((target,), Parted(room=room.name, reason=why)))
        if target.hears_own_leave:  # (an IRC client sees its own KICK line)
            told.append(Delivery((target,), Presence(room=room.name, event=PresenceEvent.LEAVE, nick=target.nick,
                                                     reason=why, ts=now)))
        return told

    def _existing(self, room_name: str) -> Room:
        room = self.rooms.get(fold(room_name.removeprefix("#")))
        if room is None:
            raise Refused(ErrorCode.NO_SUCH_ROOM, f"there is no room {clean_line(room_name)[:40]}")
        return room


def _key(modes: RoomModes, change: ModeChange, by: str, now: float) -> ModeChange | None:
    if not change.on:
        if not modes.keyed:
            return None
        modes.key_salt = modes.key_verifier = ""
        return change
    salt, _, verifier = (change.arg or "").partition(":")
    if not (_HEX.fullmatch(salt) and _HEX.fullmatch(verifier) and len(verifier) == 64):
        raise Refused(ErrorCode.INVALID_FIELD, "a key is set as SALT:VERIFIER (hex; see PROTOCOL.md)")
    modes.key_salt, modes.key_verifier = salt, verifier
    return ModeChange(mode=RoomMode.KEY)  # (the verifier is never told)


def _limit(modes: RoomModes, change: ModeChange, by: str, now: float) -> ModeChange | None:
    if not change.on:
        if not modes.limit:
            return None
        modes.limit = 0
        return change
    try:
        limit = int(change.arg or "")
    except ValueError:
        raise Refused(ErrorCode.INVALID_FIELD, "a limit is a number of members") from None
    if not 0 < limit < 1_000_000:
        raise Refused(ErrorCode.INVALID_FIELD, "a limit is a positive number of members")
    if modes.limit == limit:
        return None
    modes.limit = limit
    return ModeChange(mode=RoomMode.LIMIT, arg=str(limit))


def _ban(modes: RoomModes, change: ModeChange, by: str, now: float) -> ModeChange | None:
    mask = normal_mask(clean_line(change.arg or ""))
    known = [b for b in modes.bans if b.mask.casefold() == mask.casefold()]
    if change.on:
        if known:
            return None
        if len(modes.bans) >= MAX_ROOM_BANS:
            raise Refused(ErrorCode.INVALID_FIELD, f"a room keeps at most {MAX_ROOM_BANS} bans")
        modes.bans.append(RoomBan(mask, by, now))
        return ModeChange(mode=RoomMode.BAN, arg=mask)
    if not known:
        return None
    modes.bans = [b for b in modes.bans if b not in known]
    return ModeChange(mode=RoomMode.BAN, on=False, arg=known[0].mask)


_SPECIAL: dict[RoomMode, Callable[[RoomModes, ModeChange, str, float], ModeChange | None]] = {
    RoomMode.KEY: _key, RoomMode.LIMIT: _limit, RoomMode.BAN: _ban,
}
