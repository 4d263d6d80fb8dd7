"""Running a room from the client (protocol 1.5): the commands' requests, the keys a
user gave for rooms and the proofs made with them, and the roles shown in a room's
member list.  No I/O.

A room's key never crosses the wire: ``/mode +k KEY`` sends a salt and the key derived
from it (``SALT:VERIFIER``), and joining proves the key against the server's challenge
(``auth.client_proof``), then checks the server's own proof in ``joined``.
"""

from __future__ import annotations

import os

from chatroom.auth import NONCE_BYTES, client_proof, derive_key, proofs_match, server_proof
from chatroom.client.commands import Command
from chatroom.protocol import (
    Challenge,
    Join,
    Joined,
    MemberInfo,
    Message,
    ModeChange,
    RoomMode,
    RoomModesInfo,
    SetMode,
    channel_modes,
)
from chatroom.text import fold

__all__ = ["RoomKeys", "room_mode_request", "with_roles", "verifier_of", "modes_text"]

#: /op and friends: the mode each gives (or takes back).
_ROLE_COMMANDS = {"op": (RoomMode.OPERATOR, True), "deop": (RoomMode.OPERATOR, False),
                  "voice": (RoomMode.VOICE, True), "devoice": (RoomMode.VOICE, False)}


def verifier_of(key: str) -> str:
    """``SALT:VERIFIER`` for a key (a fresh salt): what ``/mode +k`` sends."""
    salt = os.urandom(16)
    return f"{salt.hex()}:{derive_key(key, salt).hex()}"


def room_mode_request(cmd: Command, room: str) -> Message | None:
    """The request of a room operator's command (/op /deop /voice /devoice /mode /ban
    /unban /bans /lock /unlock), about ``room``; None if it is not one."""
    name, args = cmd.name, cmd.args
    if name in _ROLE_COMMANDS:
        mode, on = _ROLE_COMMANDS[name]
        return SetMode(room=room, changes=tuple(ModeChange(mode=mode, on=on, arg=nick) for nick in args[:6]))
    if name in ("ban", "unban"):
        return SetMode(room=room, changes=(ModeChange(mode=RoomMode.BAN, on=name == "ban", arg=args[0]),))
    if name == "bans":
        return SetMode(room=room, bans=True)
    if name in ("lock", "unlock"):
        return SetMode(room=room, changes=(ModeChange(mode=RoomMode.TOPIC_LOCK, on=name == "lock"),))
    if name == "mode":
        if not args:
            return SetMode(room=room)
        asked = channel_modes(args[0], list(args[1:]))
        return SetMode(room=room, changes=tuple(_change(m, on, arg) for m, on, arg in asked.changes),
                       bans=asked.ban_list)
    return None


def _change(mode: RoomMode, on: bool, arg: str | None) -> ModeChange:
    if mode is RoomMode.KEY and on:
        return ModeChange(mode=mode, arg=verifier_of(arg or ""))
    return ModeChange(mode=mode, on=on, arg=arg)


class RoomKeys:
    """The keys the user gave for rooms (``/join ROOM KEY``, ``/mode +k KEY``), and the
    proofs of the joins in flight."""

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}
        self._expected: dict[str, bytes] = {}

    def remember(self, room: str, key: str) -> None:
        self._keys[fold(room.lstrip("#"))] = key

    def answer(self, challenge: Challenge) -> Join | None:
        """The join that proves the key asked for by ``challenge`` (None: no key known)."""
        room = challenge.room or ""
        key = self._keys.get(fold(room))
        if key is None:
            return None
        verifier = derive_key(key, bytes.fromhex(challenge.salt))
        mine, theirs = os.urandom(NONCE_BYTES), bytes.fromhex(challenge.nonce)
        self._expected[fold(room)] = server_proof(verifier, mine, theirs)
        return Join(room=room, nonce=mine.hex(), proof=client_proof(verifier, theirs, mine).hex())

    def proved(self, joined: Joined) -> bool:
        """Whether the server proved it knows the key of the room just joined (True when
        no key was proved for it)."""
        expected = self._expected.pop(fold(joined.room), None)
        if expected is None:
            return True
        return joined.proof is not None and proofs_match(bytes.fromhex(joined.proof), expected)


def with_roles(members: dict[str, MemberInfo], msg: RoomModesInfo) -> dict[str, MemberInfo] | None:
    """A room's member list after ``msg`` (a new dict; None when no role changed)."""
    changed = None
    for change in msg.changes:
        if change.mode not in (RoomMode.OPERATOR, RoomMode.VOICE) or change.arg not in members:
            continue
        changed = dict(members) if changed is None else changed
        info = changed[change.arg]
        role = info.role
        if change.mode is RoomMode.OPERATOR:
            role = "@" if change.on else ("+" if role == "+" else None)
        elif role != "@":
            role = "+" if change.on else None
        changed[change.arg] = MemberInfo(nick=info.nick, idle=info.idle, away=info.away, op=info.op,
                                         address=info.address, role=role)
    return changed


_WORDS = {RoomMode.MODERATED: "moderated", RoomMode.TOPIC_LOCK: "topic locked", RoomMode.INVITE_ONLY: "invite-only",
          RoomMode.SECRET: "secret", RoomMode.KEY: "has a key", RoomMode.LIMIT: "limit"}


def modes_text(msg: RoomModesInfo) -> str:
    """``msg`` for people: who changed what, or what the room's modes are."""
    if msg.nick:
        parts = [("+" if c.on else "-") + _word(c) for c in msg.changes]
        return f"{msg.nick} set {msg.room}: {', '.join(parts)}"
    now = ", ".join(_word(c) for c in msg.changes) or "no modes"
    text = f"{msg.room}: {now}"
    if msg.bans is not None:
        bans = [f"  {b.mask} (by {b.by or '?'})" for b in msg.bans]
        text += "\nbans:\n" + "\n".join(bans) if bans else "\nnobody is banned from it"
    return text


def _word(change: ModeChange) -> str:
    if change.mode in (RoomMode.OPERATOR, RoomMode.VOICE, RoomMode.BAN):
        return f"{change.mode.value} {change.arg}"
    word = _WORDS.get(change.mode, change.mode.value)
    return f"{word} {change.arg}" if change.mode is RoomMode.LIMIT and change.arg else word
