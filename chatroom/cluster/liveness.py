"""A cluster server's liveness: its heartbeat, its lease, and what happens to servers
that stop beating -- a mixin of ``Cluster`` (``node.py``).

Every ``beat`` seconds a server records that it is alive, renews its *lease*
(``lease:{server}``, lapsing when the others would take it for dead: the grace plus
three beats) and the nick claims and sessions of its members, and retires servers
silent for longer than that: it deletes their lease first, then their members leave
their rooms and their nicks are free.

Every write of a server checks its lease inside Redis (``store.py``).  A server that
finds its lease gone (it was paused, or cut off from Redis, that long) is *fenced*: it
refuses everything with ``unavailable``, the server drops its connections and forgets
its rooms (``ChatServer._start_afresh``), and it joins again under a new id with a new
lease.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import redis

from chatroom.cluster.store import ClusterDown, Fenced, RedisStore, claim_keys, key

if TYPE_CHECKING:
    from chatroom.server.hub import Hub
    from chatroom.server.members import Member

__all__ = ["Liveness"]

log = logging.getLogger("chatroom.cluster")

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict).decode


class Liveness:
    """Heartbeat, lease, fencing and retirement: a mixin of ``Cluster``."""

    if TYPE_CHECKING:  # what the cluster's node (node.py) holds and provides
        server: str
        redis: Any
        store: RedisStore
        hub: Hub | None
        beat: float
        grace: float
        ttl: int
        name: str
        address: str
        fenced: bool
        _fence_lock: threading.Lock
        _stopped: threading.Event
        _ahead: dict[tuple[str, str], Any]
        _ahead_lock: threading.Lock
        on_control: Callable[[dict[str, Any]], None]

        def connect(self) -> None: ...
        def _down(self, exc: Exception, what: str) -> ClusterDown: ...
        def _up(self) -> None: ...

    def _beat_forever(self) -> None:
        while not self._stopped.wait(self.beat):
            if self.fenced:
                continue  # (joining again: ``_rejoin``)
            try:
                self._beat()
                self._retire_dead()
                self._up()
            except Fenced:
                self._fence("its lease had lapsed at the heartbeat")
            except redis.RedisError as exc:
                self._down(exc, "the heartbeat")
            except Exception:  # noqa: BLE001 -- a bug must not stop the heartbeat
                log.exception("cluster heartbeat: unexpected error")

    def _beat(self) -> None:
        """This server is alive; its members' nicks and sessions are still held."""
        if not self.redis.set(self.store.lease, "1", xx=True, ex=self._lease_ttl()):
            raise Fenced("this server's lease lapsed")
        record = _encode({"beat": time.time(), "name": self.name, "address": self.address})
        members: list[Member] = []
        if self.hub is not None:
            with self.hub.lock:
                members = [m for m in self.hub.state.nicks.values() if m.server is None]
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key("servers"), self.server, record)
            for member in members:
                for k in claim_keys(member.nick):
                    pipe.expire(k, self.ttl)
                if member.token:
                    pipe.expire(key("session", member.token), self.ttl)
            pipe.execute()

    def servers(self) -> dict[str, dict[str, Any]]:
        """Every server of the cluster that beat lately: id -> name, address, beat."""
        out = {}
        for server, raw in self.redis.hgetall(key("servers")).items():
            record = _decode(raw)
            if time.time() - record.get("beat", 0) < self._dead_after():
                out[server.decode()] = record
        return out

    def _dead_after(self) -> float:
        return self.grace + 3 * self.beat

    def _lease_ttl(self) -> int:
        """Seconds a lease lasts unrenewed: as long as the others wait before they retire
        a silent server (they delete its lease then, too)."""
        return max(1, math.floor(self._dead_after()))

    def _fence(self, why: str) -> None:
        """This server's lease is gone (``why``): refuse everything, and join again."""
        with self._fence_lock:
            if self.fenced:
                return
            self.fenced = True
        log.error("this server (%s) lost its lease in the cluster: %s -- it was paused or cut off from Redis for "
                  "over %.0f s, and the other servers let its members go. Dropping its connections (their clients "
                  "go to another server) and joining again as a new server", self.server, why, self._dead_after())
        threading.Thread(target=self._rejoin, name="chatroom-cluster-rejoin", daemon=True).start()

    def _rejoin(self) -> None:
        """Drop everything this server held (the server does: ``on_control``), then take
        a new id and a new lease."""
        self.on_control({"t": "fenced"})
        with self._ahead_lock:
            self._ahead.clear()
        while not self._stopped.is_set():
            try:
                self.server = secrets.token_hex(4)
                self.connect()
                break
            except redis.RedisError as exc:
                self._down(exc, "joining the cluster again")
                self._stopped.wait(1.0)
        self.fenced = False
        log.warning("joined the cluster again as server %s", self.server)

    def _retire_dead(self) -> None:
        """Servers silent for longer than the grace: their members leave their rooms
        (one server does it: whoever sets the ``retire`` key first)."""
        now = time.time()
        for raw_server, raw in self.redis.hgetall(key("servers")).items():
            server = raw_server.decode()
            if server == self.server or now - _decode(raw).get("beat", 0) < self._dead_after():
                continue
            if not self.redis.set(key("retire", server), self.server, nx=True, ex=60):
                continue
            self.redis.delete(key("lease", server))  # it writes nothing more, even if it wakes up now
            gone = self._members_leave(server, now)
            for pattern in ("nick:*", "alike:*", "session:*"):  # its nicks are free, its sessions over
                for k in self.redis.scan_iter(match=key(pattern), count=1000):
                    raw_record = self.redis.get(k)
                    if raw_record is not None and _decode(raw_record).get("server") == server:
                        self.store.release_if(k, raw_record)
            self.redis.hdel(key("servers"), server)
            log.warning("server %s stopped beating %.0f s ago: %d member(s) left its rooms", server,
                        now - _decode(raw).get("beat", 0), gone)

    def _members_leave(self, server: str, now: float) -> int:
        """Every member of the dead ``server`` leaves each room (``connection lost``),
        its nick free in the same transaction.  Returns how many departures."""
        gone = 0
        for rk_raw, name_raw in self.redis.hgetall(key("rooms")).items():
            rk, name = rk_raw.decode(), name_raw.decode()
            for nk, info_raw in self.redis.hgetall(key("members", rk)).items():
                info = _decode(info_raw)
                if info.get("server") == server:
                    self._leave(server, rk, name, nk, info["nick"], now)
                    gone += 1
        return gone

    def _leave(self, server: str, rk: str, room: str, nk: bytes, nick: str, now: float) -> None:
        leave = {"t": "leave", "room": room, "nick": nick, "reason": "connection lost", "server": server, "ts": now}
        # Its nick is free in the same transaction that says it left: whoever sees it
        # leave may take the nick at once.
        held = [(k, raw) for k in claim_keys(nick)
                if (raw := self.redis.get(k)) is not None and _decode(raw).get("server") == server]

        def leave_and_free(pipe: Any) -> None:
            self.store.append_event(pipe, room, leave)
            pipe.hdel(key("members", rk), nk)
            for k, raw in held:
                self.store.release_if_in(pipe, k, raw)

        self.store.transact(leave_and_free)
