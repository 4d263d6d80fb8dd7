"""The chat path of a server in a cluster (see ``chatroom.server.chat_path``): a
message is checked under the hub lock, appended to its room's log in Redis outside
it, then applied here in the log's order; a private message to another server's
member goes to that server's inbox.  A refusal says what is known: ``unavailable``
when nothing was sent, ``unconfirmed`` when Redis may have stored it.  A part of
:class:`~chatroom.cluster.node.Cluster`."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager as ContextManager
from typing import TYPE_CHECKING, Any

import msgspec
import redis

from chatroom.cluster.store import ClusterDown, EntryId, Fenced, RedisStore, Unreplicated, key
from chatroom.errors import Refused
from chatroom.protocol import Chat, ErrorCode, Private
from chatroom.server.chat_path import Answer, LocalChat, Resent, SayResult, ToSay, no_run
from chatroom.server.members import Member
from chatroom.text import fold, nick_key

if TYPE_CHECKING:
    from chatroom.cluster.parking import Parking
    from chatroom.server.hub import Batch, Hub

__all__ = ["ClusterChat"]

log = logging.getLogger("chatroom.cluster")

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict).decode


class ClusterChat:
    """The cluster's chat path: a mixin of ``Cluster``."""

    if TYPE_CHECKING:  # what the cluster's node (node.py) holds and provides
        server: str
        redis: Any
        store: RedisStore
        _down_since: float | None
        fenced: bool
        _local: LocalChat

        def _hub(self) -> Hub: ...
        def _down(self, exc: Exception, what: str) -> ClusterDown: ...
        def _unconfirmed(self, exc: Exception, what: str) -> Refused: ...
        def _up(self) -> None: ...
        def _fence(self, why: str) -> None: ...
        parking: Parking

        def catch_up(self, room: str, upto: EntryId, batch: Batch,
                     known: list[tuple[EntryId, EntryId, dict[str, Any]]] = ...,
                     pending: set[str] | None = None) -> None: ...

    def run(self, batch: Batch) -> ContextManager[object]:
        return no_run()  # (each message goes to Redis first: never under the lock)

    def say_many(self, batch: Batch, member: Member, items: Sequence[ToSay], now: float,
                 answer: Answer | None = None) -> list[SayResult]:
        """Several messages of one member (a burst read at once).  Checked under the
        hub lock (a resend this server knows is answered from memory), appended to the
        rooms' logs in one round trip outside it, then applied here in the logs' order;
        ``answer`` under the lock after that.  A resend this server did not know (its
        first answer was lost with another server) is recognised by the log."""
        hub = self._hub()
        results: list[SayResult] = []  # (a Chat here: to be appended, stamped then)
        bodies: list[tuple[str, dict[str, Any], int]] = []  # (room, body, the highest number seen there)
        with hub.locked(batch) as state:
            for item in items:
                text, action, msg_id, room_name = item.text, item.action, item.id, item.room
                try:
                    if msg_id is not None:
                        earlier = state.already_sent(member, msg_id, text, action=action, room_name=room_name)
                        if earlier is not None:
                            results.append(Resent(earlier))
                            continue
                    room, clean = state.check_say(member, text, now, room_name)
                except Exception as exc:  # noqa: BLE001 -- Refused, or a bug: either costs one message
                    results.append(exc)
                    continue
                body = _extras({"t": "chat", "room": room.name, "nick": member.nick, "text": clean, "ts": now,
                                "server": self.server, "action": action or None, "id": msg_id}, item.tags, item.notice)
                bodies.append((room.name, body, room.next_seq - 1))
                results.append(Chat(room=room.name, seq=0, ts=now, nick=member.nick, text=clean, action=action,
                                    id=msg_id))
            member.last_active = now
        said = self._append(batch, bodies, results) if bodies else results  # (no Chat to stamp)
        with hub.locked(batch) as state:
            state.said_room += sum(1 for r in said if type(r) is Chat)
            if answer is not None:
                answer(said)
        return said

    def _append(self, batch: Batch, bodies: list[tuple[str, dict[str, Any], int]],
                results: list[SayResult]) -> list[SayResult]:
        """Append ``bodies`` (the unstamped ``Chat`` s among ``results``) to their rooms'
        logs and apply them here: ``results`` with each stamped (or refused)."""
        self._hub().publish_pending()  # what this server decided before (a join) goes to the log first
        pending = {fold(name) for name in {name for name, _, _ in bodies}}  # (in flight: others here may wait)
        self.parking.begin(pending)
        try:
            placed, refusal = self._place(bodies)
            if placed is None:  # nothing was stored (or nothing is known): every Chat gets the refusal
                assert refusal is not None
                return [refusal if isinstance(r, Chat) else r for r in results]
            stamped, known, newest = self._stamped(results, placed, bodies)
            try:
                for room_name, upto in newest.items():
                    self.catch_up(room_name, upto, batch, known.get(room_name, []), pending)
            except redis.RedisError as exc:  # stored all the same: acknowledged; the reader applies them later
                self._down(exc, "reading the room's log back")
        finally:
            self.parking.end(pending)
        if refusal is not None:  # stored, but not on enough replicas: the sender hears it is unconfirmed
            return [refusal if isinstance(r, Chat | Resent) else r for r in stamped]
        return stamped

    def _place(self, bodies: list[tuple[str, dict[str, Any], int]]
               ) -> tuple[list[tuple[int, EntryId, bool, int]] | None, Refused | None]:
        """The Redis step: where each body went (None: nowhere, or unknown), and what
        the sender is told instead of an ack (None: an ack)."""
        if self._down_since is not None or self.fenced:  # known down: refused without a try: surely not stored
            return None, ClusterDown("your message")
        started = time.perf_counter()
        try:
            placed = self.store.append_chats(bodies)
        except Unreplicated as exc:  # in the log, but not yet on enough replicas: it goes on, unconfirmed
            log.warning("a message is on Redis's master but on too few replicas (%s): answered unconfirmed", exc)
            return exc.placed, Refused(ErrorCode.UNCONFIRMED, f"stored, but not yet on {self.store.replicas} "
                                       "replica(s) of the chat's store: a failover now could lose it; send it again "
                                       "with the same id")
        except Fenced:  # (the script refused before writing anything)
            self._fence("a message was refused")
            return None, ClusterDown("your message")
        except redis.RedisError as exc:
            return None, self._unconfirmed(exc, "your message")
        self._up()
        self._hub().store_timer(time.perf_counter() - started)
        return placed, None

    @staticmethod
    def _stamped(results: list[SayResult], placed: list[tuple[int, EntryId, bool, int]],
                 bodies: list[tuple[str, dict[str, Any], int]]
                 ) -> tuple[list[SayResult], dict[str, list[tuple[EntryId, EntryId, dict[str, Any]]]],
                            dict[str, EntryId]]:
        """``results`` with each Chat given its number (or marked Resent); and, per room,
        the new entries (before, id, body) and the newest id, for ``catch_up``."""
        stamped: list[SayResult] = []
        known: dict[str, list[tuple[EntryId, EntryId, dict[str, Any]]]] = {}
        entries = iter(zip(placed, bodies, strict=True))
        newest: dict[str, EntryId] = {}
        for r in results:
            if isinstance(r, Chat):
                (seq, before, resent, lost), (_, body, _floor) = next(entries)
                if lost:
                    log.warning("the log of %s in Redis had lost its last %d message(s) (Redis lost the tail of its "
                                "data: a crash with appendfsync everysec?); numbering goes on at %d, never reusing a "
                                "number that was shown", body["room"], lost, seq)
                chat = msgspec.structs.replace(r, seq=seq)
                if not resent:
                    known.setdefault(chat.room, []).append((before, (seq, 0), body))
                newest[chat.room] = max(newest.get(chat.room, (0, 0)), (seq, 0))
                r = Resent(chat) if resent else chat
            stamped.append(r)
        return stamped, known, newest

    def direct(self, batch: Batch, member: Member, to: str, text: str, now: float,
               msg_id: str | None, tags: dict[str, str] | None = None, notice: bool = False
               ) -> tuple[Private | Resent, str | None]:
        """A private message: to a member of another server, into that server's inbox
        (echoed to the sender here); to one of this server's, as on a server alone."""
        hub = self._hub()
        with hub.locked(batch) as state:
            if msg_id is not None:
                earlier = state.already_sent(member, msg_id, text, private=True)
                if earlier is not None:
                    return Resent(earlier), None
            local = state.nicks.get(nick_key(to))
            if local is not None and local.server is None:
                return self._local.direct(batch, member, to, text, now, msg_id, tags, notice)
            text = state.check_direct(member, text, now)
        if self.fenced:
            raise ClusterDown("your message")
        try:
            holder = self.redis.get(key("nick", nick_key(to)))
            record = _decode(holder) if holder else None
            if record is None or record.get("server") == self.server:  # nobody: the room rules say so
                return self._local.direct(batch, member, to, text, now, msg_id, tags, notice)
            msg = Private(nick=member.nick, to=record.get("nick", to), text=text, ts=now, id=msg_id, tags=tags,
                          notice=notice or None)
            body = _extras({"t": "private", "nick": msg.nick, "to": msg.to, "text": msg.text, "ts": now,
                            "id": msg_id}, tags, notice)
        except redis.RedisError as exc:  # (nothing was sent yet)
            raise self._down(exc, "your message") from exc
        try:
            self.redis.xadd(key("inbox", record["server"]), {"m": _encode(body)}, maxlen=10_000, approximate=True)
        except redis.RedisError as exc:
            raise self._unconfirmed(exc, "your message") from exc
        with hub.locked(batch) as state:
            hub.deliver(state.sent_elsewhere(member, msg), batch)
        return msg, None


def _extras(body: dict[str, Any], tags: dict[str, str] | None, notice: bool) -> dict[str, Any]:
    """A log or inbox entry with what only some messages carry (client tags, sent as a
    NOTICE), and without the fields that say nothing (None)."""
    if tags:
        body["tags"] = tags
    if notice:
        body["notice"] = True
    return {k: v for k, v in body.items() if v is not None}
