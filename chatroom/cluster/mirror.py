"""What another server of the cluster did, applied to this server's rooms.  No I/O.

Each room's shared log (see ``chatroom.cluster.store``) is applied here in its order,
under the hub lock, by whichever thread reads it first (the cluster's reader, or the
handler whose message it just appended): ``apply`` skips what is already applied, so
the room's members here see every message once and in the log's order.  A server's own
joins, leaves and renames were applied when they happened; only their messages come
back through the log (the log decides their order).  Every change goes through the same reducers as a
local one (``chatroom.server.changes``): this module only reads the log's records.
"""

from __future__ import annotations

from typing import Any

from chatroom.protocol import LARGE_ROOM, Chat, Presence, PresenceEvent, Private, TaggedChat
from chatroom.server.members import Delivery, Member, Room
from chatroom.server.room import ChatState
from chatroom.text import fold, nick_key

__all__ = ["apply", "apply_private"]


def apply(state: ChatState, room: Room, entry_id: tuple[int, int], body: dict[str, Any]) -> list[Delivery]:
    """One entry of ``room``'s log: what this server's members of it are told."""
    if entry_id <= room.last_id:
        return []
    room.last_id = entry_id
    kind = body.get("t")
    if kind == "chat":
        fields = {"room": room.name, "seq": entry_id[0], "ts": body["ts"], "nick": body["nick"], "text": body["text"],
                  "action": bool(body.get("action")), "id": body.get("id")}
        tags = body.get("tags")
        if isinstance(tags, dict) or body.get("notice"):  # (live only: a history read leaves them out, as SQLite does)
            return state.apply_chat(room, TaggedChat(**fields, tags=tags if isinstance(tags, dict) else {},
                                                     notice=bool(body.get("notice"))))
        return state.apply_chat(room, Chat(**fields))
    if state.peers is None or body.get("server") == state.peers.server:
        return []  # ours: applied when it happened
    handler = _EVENTS.get(kind or "")
    return handler(state, room, body) if handler is not None else []


def apply_private(state: ChatState, body: dict[str, Any]) -> list[Delivery]:
    """A private message from another server's member to one of ours."""
    target = state.nicks.get(nick_key(body["to"]))
    if target is None or target.server is not None:
        return []  # gone meanwhile; the sender was acknowledged when it reached this server's inbox
    msg = Private(nick=body["nick"], to=target.nick, text=body["text"], ts=body["ts"], id=body.get("id"),
                  tags=body["tags"] if isinstance(body.get("tags"), dict) else None, notice=body.get("notice") or None)
    if not state.first_time(msg):
        return []  # a resend of one that arrived (its sender was not told: ``unconfirmed``)
    return [Delivery((target,), msg)]


def _member(state: ChatState, nick: str) -> Member | None:
    member = state.nicks.get(nick_key(nick))
    return member if member is not None and member.server is not None else None


def _info(body: dict[str, Any]) -> dict[str, Any]:
    info = {"nick": body["nick"], "server": body["server"], "since": body.get("ts", 0.0)}
    info.update((k, body[k]) for k in ("op", "away", "address") if k in body)
    return info


def _join(state: ChatState, room: Room, body: dict[str, Any]) -> list[Delivery]:
    member = state.remote(_info(body))
    if member is None or fold(room.name) in member.rooms:
        return []
    return state.arrive(member, room, body["ts"])


def _leave(state: ChatState, room: Room, body: dict[str, Any]) -> list[Delivery]:
    member = _member(state, body["nick"])
    if member is None or fold(room.name) not in member.rooms:
        return []
    out = state.depart(member, room, body.get("reason", "left"), body["ts"])
    state.forget_remote(member)
    return out


def _nick(state: ChatState, room: Room, body: dict[str, Any]) -> list[Delivery]:
    new = body["new_nick"]
    member = _member(state, body["nick"]) or _member(state, new)
    if member is None:
        return []
    return state.renamed(member, body["nick"], new, body["ts"], rooms=(room,))


def _away(state: ChatState, room: Room, body: dict[str, Any]) -> list[Delivery]:
    member = _member(state, body["nick"])
    if member is None:
        return []
    return state.went_away(member, body.get("message") or None, body["ts"], rooms=(room,))


def _op(state: ChatState, room: Room, body: dict[str, Any]) -> list[Delivery]:
    member = _member(state, body["nick"])
    if member is not None:
        state.made_operator(member)
    return []


def _topic(state: ChatState, room: Room, body: dict[str, Any]) -> list[Delivery]:
    return state.topic_set(room, body["topic"], body["nick"], body["ts"])


def _lock(state: ChatState, room: Room, body: dict[str, Any]) -> list[Delivery]:
    state.topic_locked(room, bool(body.get("locked")))
    return []


def _modes(state: ChatState, room: Room, body: dict[str, Any]) -> list[Delivery]:
    return state.modes_set(room, body["modes"], body.get("changes") or [], body["nick"], body["ts"])


def _reconnected(state: ChatState, room: Room, body: dict[str, Any]) -> list[Delivery]:
    member = state.remote(_info(body))  # now on the server that says so
    if member is None:
        return []
    if fold(room.name) not in member.rooms:  # we had not heard of it here: it comes in
        return state.arrive(member, room, body["ts"])
    if len(room.members) >= LARGE_ROOM:
        return []
    others = tuple(m for m in room.everyone() if m is not member)
    event = Presence(room=room.name, event=PresenceEvent.RECONNECTED, nick=member.nick, ts=body["ts"])
    return [Delivery(others, event)] if others else []


_EVENTS = {
    "join": _join,
    "leave": _leave,
    "nick": _nick,
    "away": _away,
    "op": _op,
    "topic": _topic,
    "lock": _lock,
    "modes": _modes,
    "reconnected": _reconnected,
}
