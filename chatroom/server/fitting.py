"""Fitting what the server sends into the frame limits (no I/O): a resume's replay
in pages that fit, a welcome or a page shrunk until it fits."""

from __future__ import annotations

import math
import time
from typing import Any

import msgspec

from chatroom.errors import LocalProtocolError
from chatroom.protocol import (
    Found,
    History,
    Joined,
    Members,
    Welcome,
    encode_message,
)
from chatroom.server.bans import Ban
from chatroom.server.wire import Outgoing

__all__ = ["REPLAY_MAX_MESSAGES", "fitted", "replay_frames", "shrunk", "how_long"]


#: A resume replays at most this many messages (and at most half the outbox limit in
#: bytes, so the replay itself cannot make the client "too slow"); the client fetches
#: the rest with fetch_history {after}.
REPLAY_MAX_MESSAGES = 10_000


def replay_frames(room: str, chats: list[Any], max_header: int, budget: int) -> tuple[list[Outgoing], int]:
    """``chats`` as ``history {replay: true}`` frames, oldest first, each within the
    header limit, together within ``budget`` bytes (at least one frame).  Returns the
    frames and how many messages they hold: a prefix of ``chats``, with no holes."""
    frames: list[Outgoing] = []
    used = count = 0
    while count < len(chats):
        n = min(100, len(chats) - count)
        while True:
            page = History(room=room, messages=tuple(chats[count:count + n]), replay=True)
            try:
                data = encode_message(page, max_header=max_header)
                break
            except LocalProtocolError:
                if n == 1:
                    raise
                n //= 2
        if frames and used + len(data) > budget:
            break
        frames.append(Outgoing(page, data))
        used += len(data)
        count += n
    return frames, count


def fitted(msg: Welcome | Joined | History | Members | Found, max_header: int, *, forward: bool = False
           ) -> Outgoing:
    """``msg`` framed, dropping its oldest history, then the tail of its member list,
    until it fits the header limit (100 long messages, or 200 members with long away
    texts, can exceed 64 KiB; the client pages back for more history, and
    ``member_count`` still says how many are there)."""
    while True:
        try:
            return Outgoing.of(msg, max_header)
        except LocalProtocolError:
            msg = shrunk(msg, forward=forward)


def shrunk(msg: Welcome | Joined | History | Members | Found, *, forward: bool = False
            ) -> Welcome | Joined | History | Members | Found:
    """``msg`` with half of its history (the oldest, or for a ``forward`` page the
    newest: a page never has a hole) or, with no history left, half of its member list
    gone; raise LocalProtocolError when nothing is left to drop."""
    if isinstance(msg, History | Found):
        if not msg.messages:
            raise LocalProtocolError(f"an empty {msg.TYPE} page does not fit the header limit")
        half = len(msg.messages) // 2
        kept = msg.messages[:half] if forward else msg.messages[half + 1:]
        return msgspec.structs.replace(msg, messages=kept, complete=False)
    history = getattr(msg, "history", ())
    if history:
        return msgspec.structs.replace(msg, history=history[len(history) // 2 + 1:])
    if msg.members:
        return msgspec.structs.replace(msg, members=msg.members[: len(msg.members) // 2])
    raise LocalProtocolError(f"{msg.TYPE} does not fit the header limit even without history and members")


def how_long(ban: Ban) -> str:
    return "" if ban.until is None else f" for {math.ceil((ban.until - time.time()) / 60)} more minutes"
