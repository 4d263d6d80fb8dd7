"""Who gets in, and what they are told first: the admission rules of every door.  No I/O.

A door's handler has checked the hello's secrets (the guessing gate, which waits, is
the handler's: ``chatroom.server.admission``); then, under the hub lock, it asks
:class:`Entrance` and performs what comes back -- an :class:`Entry` (the member, the
frames for the newcomer in the order they go, what the others are told, the old
connection to close) or a :class:`~chatroom.errors.Refused`.  The rules here:

- a banned nick (or a look-alike of one) is refused, with how long the ban lasts;
- a new member is welcomed into its room with the room's history, members and topic;
- a resumed session gets a welcome for its first room, a resumed ``joined`` for each
  other room (1.3), and what each room missed since the client's ``last_seq`` /
  ``seen``, oldest first, before any live message -- all replays together within half
  the outbox (so a replay cannot make the client "too slow"), at most
  ``REPLAY_MAX_MESSAGES``; the client pages for the rest.

Every frame is fitted to the header limit (``chatroom.server.fitting``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chatroom.protocol import MAX_ROOMS, PROTOCOL_VERSION, ROLES, SEVERAL_ROOMS, TYPING, Hello, Joined, Welcome, speaks
from chatroom.server.bans import BanList
from chatroom.server.fitting import REPLAY_MAX_MESSAGES, fitted, how_long, replay_frames
from chatroom.server.members import Delivery, Member, Room
from chatroom.text import fold, without_hash

if TYPE_CHECKING:
    from chatroom.server.room import ChatState
    from chatroom.server.wire import Outgoing

__all__ = ["Entrance", "Entry", "seen_rooms"]


@dataclass
class Entry:
    """What a hello that got in sets in motion."""

    member: Member
    #: For the newcomer, in order: its welcome (and resumed joins and replays).
    frames: list[Outgoing]
    #: For the others: the join, or "reconnected".
    deliveries: list[Delivery]
    #: A resumed session's previous connection (its sink), to close as replaced.
    ghost: Any = None
    #: Of a resume: how many rooms, and how many missed messages were replayed.
    rooms: int = 1
    replayed: int = 0
    first_room: str = field(default="")


@dataclass(frozen=True)
class Entrance:
    """The admission rules, with what they need of the server's settings."""

    server_name: str
    limits: dict[str, int]
    max_header: int
    outbox_limit: int

    @staticmethod
    def refusal(bans: BanList, nick: str, now: float) -> str | None:
        """Is ``nick`` (or a look-alike) banned?  The words of the refusal, or None.
        (The address was asked about when the connection came, before any door.)"""
        ban = bans.for_nick(nick, now)
        return None if ban is None else f"you are banned from this server{how_long(ban)}"

    def admit(self, state: ChatState, key: int, hello: Hello, address: str, now: float, token: str,
              proof: str | None) -> Entry:
        """A new member ``hello.nick`` in ``hello.room`` (the lobby by default).
        Raises ``Refused`` (the nick is taken, the room name is bad...)."""
        member, joined, deliveries = state.admit(
            key, hello.nick, address, now, hello.room, token=token, crowd=speaks(hello.version, 2),
            several=speaks(hello.version, SEVERAL_ROOMS),
        )
        member.hears_typing = speaks(hello.version, TYPING)
        member.hears_roles = member.hears_invites = speaks(hello.version, ROLES)
        welcome = Welcome(
            version=PROTOCOL_VERSION, server=self.server_name, nick=member.nick, room=joined.room,
            topic=joined.topic, members=joined.members, member_count=joined.member_count, history=joined.history,
            last_seq=joined.last_seq, limits=self.limits, resume_token=token, proof=proof,
        )
        return Entry(member, [fitted(welcome, self.max_header)], deliveries, first_room=joined.room)

    def resume(self, state: ChatState, key: int, hello: Hello, address: str, now: float,
               proof: str | None) -> Entry:
        """The session of ``hello.resume`` for connection ``key``, with what it missed.
        Raises ``Refused`` (unknown or expired)."""
        member, ghost, deliveries = state.resume(
            hello.resume or "", key, address, now, crowd=speaks(hello.version, 2),
            several=speaks(hello.version, SEVERAL_ROOMS),
        )
        member.hears_typing = speaks(hello.version, TYPING)  # (what the new connection's client speaks)
        member.hears_roles = member.hears_invites = speaks(hello.version, ROLES)
        rooms = list(member.rooms.values())
        replayed = self._replays(state, rooms, hello)
        frames = self._welcome_back(member, rooms, replayed, proof, now)
        return Entry(member, frames, deliveries, ghost=ghost, rooms=len(rooms),
                     replayed=sum(count for _, count in replayed), first_room=rooms[0].name if rooms else "")

    def _replays(self, state: ChatState, rooms: list[Room], hello: Hello) -> list[tuple[list[Outgoing], int]]:
        """What each room missed since the client's ``last_seq`` / ``seen``, as replay
        frames within one budget for them all (half the outbox): (frames, messages)."""
        seen = {fold(without_hash(name)): seq for name, seq in (hello.seen or {}).items()}
        budget, replayed = self.outbox_limit // 2, []
        for i, room in enumerate(rooms):
            last_seq = seen.get(fold(room.name), hello.last_seq if i == 0 else None)
            missed = state.missed(room, last_seq, REPLAY_MAX_MESSAGES)
            frames, count = replay_frames(room.name, missed, self.max_header, budget)
            budget = max(1, budget - sum(len(f.framed) for f in frames))
            replayed.append((frames, count))
        return replayed

    def _welcome_back(self, member: Member, rooms: list[Room], replayed: list[tuple[list[Outgoing], int]],
                      proof: str | None, now: float) -> list[Outgoing]:
        """The resumed welcome (its first room), then a resumed ``joined`` for each
        other room; each followed by what it missed, oldest first."""
        first = rooms[0] if rooms else None
        frames = [fitted(Welcome(
            version=PROTOCOL_VERSION, server=self.server_name, nick=member.nick,
            room=first.name if first else "", topic=first.topic if first else "",
            members=first.member_infos(now) if first else (), member_count=len(first.members) if first else 0,
            last_seq=first.next_seq - 1 if first else 0, limits=self.limits, resume_token=member.token,
            resumed=True, proof=proof, missed=replayed[0][1] if first else 0,
        ), self.max_header)]
        for i, room in enumerate(rooms):
            replay, count = replayed[i]
            if i:
                frames.append(fitted(Joined(
                    room=room.name, topic=room.topic, members=room.member_infos(now), member_count=len(room.members),
                    last_seq=room.next_seq - 1, resumed=True, missed=count), self.max_header))
            frames += replay
        return frames


def seen_rooms(hello: Hello) -> dict[str, int]:
    """What a resuming client says it has seen, room by room (at most ``MAX_ROOMS``): a
    floor for the rooms' numbering, so a store that lost its newest messages does not
    give their numbers again."""
    return {without_hash(name): seq for name, seq in list((hello.seen or {}).items())[:MAX_ROOMS]}
