"""One server's part in a cluster: its Redis connection, the nick claims it holds,
the rooms it follows, and the two threads that keep it in step.

- A message is appended to its room's log (``RedisStore.append_chat``: the sequence
  number is assigned there, atomically) *before* anyone sees it or its acknowledgement;
  then every entry of the log up to it is applied here in order (``catch_up``), so the
  sender's own echo and ack come after whatever the other servers' members said first.
- What this server's members do besides talking (join, leave, nick, away, topic) is
  applied here at once, and published as the hub lock is released (``publish``).
- The *reader* thread follows, with one blocking ``XREAD``, the logs of the rooms this
  server has members in, its inbox and the cluster's control stream: a message crosses
  the network once per server, and reaches the members here through their outboxes
  (``following.py``).
- The *heartbeat* thread records that this server is alive, renews its nick claims and
  sessions, and retires servers that stopped beating long ago (their members leave).

**Fencing.**  Each server holds a *lease* in Redis (``lease:{server}``), renewed by its
heartbeat, lapsing when the others would take it for dead (the grace plus three beats)
and deleted when they retire it.  Every write of this server checks it inside Redis:
the message script, nick claims, and each transaction (WATCHed).  A server that finds
its lease gone -- it was paused, or cut off from Redis, for that long, and the others
have let its members go -- refuses everything with ``unavailable``, drops its
connections (their clients go to another server), forgets its rooms, and joins the
cluster again as a new server with a new lease.  So no nick is held twice, and no
member list keeps someone the others saw leave.

When Redis cannot be reached, messages are refused with ``unavailable`` (never accepted
and lost), one log line says so, and both threads retry until it is back.
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

from chatroom.cluster.chat import ClusterChat
from chatroom.cluster.following import Following
from chatroom.cluster.liveness import Liveness
from chatroom.cluster.parking import Parking
from chatroom.cluster.redis_url import redis_client
from chatroom.cluster.store import ClusterDown, Fenced, RedisStore, claim_keys, key
from chatroom.errors import Refused
from chatroom.protocol import ErrorCode, ModAction, Moderate, RoomInfo, User
from chatroom.redact import redacted_url
from chatroom.server.chat_path import LocalChat
from chatroom.server.members import RoomSnapshot, Sanction
from chatroom.server.room import ChatState
from chatroom.server.speech import MAX_FLOOR_JUMP
from chatroom.text import MAX_NICK_LENGTH, clean_line, fold, nick_key, nick_problem, without_hash

if TYPE_CHECKING:
    from chatroom.server.hub import Batch, Hub

__all__ = ["Cluster", "ClusterDown"]

log = logging.getLogger("chatroom.cluster")

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict).decode

#: Events that write the member's record into the room's member list.
_RECORDED = frozenset({"join", "nick", "away", "op", "reconnected"})


class Cluster(ClusterChat, Following, Liveness):
    """This server in a cluster of servers sharing rooms through the Redis at ``url``.

    ``grace``: how long a session is kept for a resume (the server's resume grace);
    ``beat``: seconds between heartbeats.  A server whose heartbeat is older than
    ``grace`` plus three beats is gone: its members leave the rooms.
    """

    keeps_sessions_on_stop = True  # (ChatPath) they resume on another server, which takes them over

    def __init__(self, url: str, *, history_size: int = 100, grace: float = 120.0, beat: float = 2.0,
                 name: str = "", address: str = "", replicas: int = 0) -> None:
        self.shown_url = redacted_url(url)  # what logs may say (no password)
        # (Any: redis-py annotates every reply as bytes | str | more; with decode_responses
        # off, as here, they are bytes, lists and dicts of bytes, read as such.)
        self.redis: Any = redis_client(url, socket_timeout=2.0, socket_connect_timeout=1.0)
        self.store = RedisStore(self.redis, replicas=replicas)
        self.server = secrets.token_hex(4)  # this server's id: new at every start
        self.history_size = history_size
        self.grace = grace
        self.beat = beat
        self.name = name
        self.address = address
        self.ttl = int(grace + 30)  # nick claims and sessions outlive a dead server by the grace
        self.hub: Hub | None = None
        self.on_control: Callable[[dict[str, Any]], None] = lambda body: None
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._down_since: float | None = None
        #: The lease lapsed: everything is refused until this server has joined again.
        self.fenced = False
        self._fence_lock = threading.Lock()
        self._inbox_id = "$"
        self._control_id = "$"
        self._wake = False
        #: What look_ahead fetched before the hub lock, for the next load/whois/rooms under it.
        self._ahead: dict[tuple[str, str], Any] = {}
        self._ahead_lock = threading.Lock()  # (a dict, read and written by any thread)
        #: This server's appends that came back out of the log's order (``parking.py``).
        self.parking = Parking()
        self.durability = "unknown"
        self.cluster_id = ""  # the same for every server of the cluster (discovery groups them)

    # ------------------------------------------------------------------ start and stop

    def connect(self) -> None:
        """Check that Redis answers, take a lease, and say what an acknowledgement means
        with its settings (raises ``redis.RedisError`` if it does not answer)."""
        self.redis.ping()
        self.store.lease = key("lease", self.server)
        self.redis.set(self.store.lease, "1", ex=self._lease_ttl())
        self._inbox_id = self._last_id(key("inbox", self.server))
        self._control_id = self._last_id(key("control"))
        self.durability = self._durability()
        self.redis.set(key("cluster_id"), secrets.token_hex(6), nx=True)
        self.cluster_id = (self.redis.get(key("cluster_id")) or b"").decode()
        self._beat()

    def shared_op_token(self, mine: str) -> str:
        """The operator token of the whole cluster: the first server's (or the one
        every server was given)."""
        self.redis.set(key("op_token"), mine, nx=True)
        current = self.redis.get(key("op_token"))
        return current.decode() if current else mine

    def start(self, hub: Hub, on_control: Callable[[dict[str, Any]], None]) -> None:
        self.hub, self.on_control = hub, on_control
        self._local = LocalChat(hub)  # (a private message to a member of this server)
        for target, name in ((self._read_forever, "chatroom-cluster-reader"),
                             (self._beat_forever, "chatroom-cluster-heartbeat")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopped.set()
        for thread in self._threads:
            thread.join(timeout=3.0)

    # ------------------------------------------------------------------ Peers (see chatroom.server.room)

    def claim(self, nick: str, owner: str) -> None:
        """Hold ``nick`` cluster-wide under both look-alike keys (``server/nicks.py``):
        either one held by someone else means it is taken."""
        record = _encode({"server": self.server, "owner": owner, "nick": nick})
        if self.fenced:
            raise ClusterDown("joining")
        try:
            taken = [k for k in claim_keys(nick) if not self.store.claim_key(k, record, owner, self.ttl)]
            if not taken:
                return
            for k in claim_keys(nick):
                if k not in taken:
                    self.store.release_key(k, owner)
            suggestion = self._free_nick(nick)
        except Fenced as exc:
            self._fence("a nick claim was refused")
            raise ClusterDown("joining") from exc
        except redis.RedisError as exc:
            raise self._down(exc, "joining") from exc
        raise Refused(ErrorCode.NICK_TAKEN, f"the nick {nick} is taken; try {suggestion}", suggestion)

    def release(self, nick: str, owner: str) -> None:
        try:
            for k in claim_keys(nick):
                self.store.release_key(k, owner)
        except redis.RedisError as exc:  # it expires by itself
            self._down(exc, "releasing a nick")

    def look_ahead(self, *, room: str | None = None, nick: str | None = None, rooms: bool = False) -> None:
        """Fetch, outside the hub lock, what ``load``, ``whois`` and ``rooms`` will be
        asked under it (each answer is used once, by the next such call)."""
        hub = self._hub()
        if room is not None and fold(without_hash(room)) not in hub.state.rooms:  # (a dict read)
            self._keep(("room", fold(without_hash(room))), self._fetch_room(without_hash(room)))
        if nick is not None and nick_key(nick) not in hub.state.nicks:
            self._keep(("user", nick_key(nick)), self._fetch_user(nick))
        if rooms:
            self._keep(("rooms", ""), self._fetch_rooms())

    def _keep(self, what: tuple[str, str], value: object) -> None:
        with self._ahead_lock:
            if len(self._ahead) > 256:  # fetched and never asked for (a refused join): drop them
                self._ahead.clear()
            self._ahead[what] = value

    def _kept(self, what: tuple[str, str]) -> tuple[bool, Any]:
        with self._ahead_lock:
            if what in self._ahead:
                return True, self._ahead.pop(what)
        return False, None

    def load(self, name: str) -> RoomSnapshot:
        found, snap = self._kept(("room", fold(name)))
        return snap if found else self._fetch_room(name)  # (not looked ahead for: a blocking read)

    def _fetch_room(self, name: str) -> RoomSnapshot:
        try:
            snap = self.store.snapshot(name, self.history_size)
        except redis.RedisError as exc:
            raise self._down(exc, "joining that room") from exc
        self._wake = True  # the reader should follow it now, not at its next turn
        return snap

    def rooms(self) -> list[RoomInfo]:
        found, infos = self._kept(("rooms", ""))
        return infos if found else self._fetch_rooms()

    def _fetch_rooms(self) -> list[RoomInfo]:
        try:
            return self.store.room_infos()
        except redis.RedisError as exc:
            raise self._down(exc, "listing the rooms") from exc

    def whois(self, nick: str) -> User | None:
        found, user = self._kept(("user", nick_key(nick)))
        return user if found else self._fetch_user(nick)

    def _fetch_user(self, nick: str) -> User | None:
        """A member of another server, from the cluster's records (its idle time is not
        shared: 0)."""
        try:
            raw = self.redis.get(key("nick", nick_key(nick)))
            if raw is None:
                return None
            claim = _decode(raw)
            session = self.redis.get(key("session", claim.get("owner", "")))
            rooms = _decode(session).get("rooms", []) if session else []
            info = _decode(self.redis.hget(key("members", fold(rooms[0])), nick_key(nick)) or b"{}") if rooms else {}
        except redis.RedisError as exc:
            raise self._down(exc, "that") from exc
        return User(nick=claim.get("nick", nick), rooms=tuple(rooms), away=info.get("away"), op=bool(info.get("op")),
                    address=info.get("address"))

    # ------------------------------------------------------------------ what this server's members do

    def prepare(self, events: list[dict[str, Any]], state: ChatState) -> object:
        """Under the hub lock, no I/O: ``events`` (``ChatState.published``) with the
        member records they need read now, as plain data for :meth:`publish`."""
        out: list[tuple[dict[str, Any], bytes | None]] = []
        for event in events:
            nick = event.get("new_nick") or event.get("nick")
            member = state.nicks.get(nick_key(nick)) if nick and event["t"] in _RECORDED else None
            record = None if member is None else _encode(
                {"nick": member.nick, "server": self.server, "op": member.op, "away": member.away,
                 "since": member.joined_at, "address": member.address})
            out.append((event, record))
        return out

    def publish(self, prepared: object) -> None:
        """Tell the other servers what :meth:`prepare` made ready, in one transaction.
        Outside the hub lock (``Hub.publish_pending``).  If Redis is unreachable they
        are lost to the other servers (this server carries on): presence, not messages."""
        now = time.time()
        events: list[tuple[dict[str, Any], bytes | None]] = prepared  # type: ignore[assignment]

        def fill(pipe: Any) -> None:
            for event, record in events:
                self._queue_event(pipe, event, record, now)
            if self._wake:
                pipe.xadd(key("inbox", self.server), {"m": b'{"t":"wake"}'}, maxlen=1000, approximate=True)

        try:
            self.store.transact(fill)
            self._wake = False
            self._up()
        except Fenced:
            self._fence(f"telling the other servers of {len(events)} change(s) was refused")
        except redis.RedisError as exc:
            self._down(exc, f"telling the other servers of {len(events)} change(s)")

    def _queue_event(self, pipe: Any, event: dict[str, Any], record: bytes | None, now: float) -> None:
        kind = event["t"]
        if kind == "release":  # a member of ours is gone: its nick is free (both look-alike keys)
            for k in claim_keys(event["nick"]):
                self.store.release_key_in(pipe, k, event["owner"])
            return
        if kind == "session":
            pipe.set(key("session", event["token"]), _encode({**event, "server": self.server}), ex=self.ttl)
            return
        if kind == "session_end":
            pipe.delete(key("session", event["token"]))
            return
        if kind == "order":  # for the server that has the member (a room kick): its inbox
            pipe.xadd(key("inbox", event["to"]), {"m": _encode(event["body"])}, maxlen=10_000, approximate=True)
            return
        room = event["room"]
        body = {**event, "server": self.server, "ts": now}
        self.store.append_event(pipe, room, body)
        self._remember_event(pipe, kind, room, event, record)

    @staticmethod
    def _remember_event(pipe: Any, kind: str, room: str, event: dict[str, Any], record: bytes | None) -> None:
        """What a room's event changes of what Redis keeps of the room: its members, its
        name, topic and lock (what a server that starts following it loads)."""
        rk = fold(room)
        nick = event.get("new_nick") or event["nick"]
        if kind == "leave":
            pipe.hdel(key("members", rk), nick_key(nick))
        elif kind in ("join", "nick", "away", "op", "reconnected"):
            if kind == "nick":
                pipe.hdel(key("members", rk), nick_key(event["nick"]))
            if record is not None:
                pipe.hset(key("members", rk), nick_key(nick), record)
            if kind == "join":
                pipe.hset(key("rooms"), rk, room)
                pipe.hsetnx(key("room", rk), "name", room)
        elif kind == "topic":
            pipe.hset(key("room", rk), mapping={"name": room, "topic": event["topic"]})
        elif kind == "lock":
            pipe.hset(key("room", rk), "locked", "1" if event["locked"] else "0")
        elif kind == "modes":
            pipe.hset(key("room", rk), "modes", event["modes"])

    def adopt(self, token: str, conn_key: int, address: str, batch: Batch) -> bool:
        """A client resumes a session this server does not have: take it over from the
        server that had it (dead, or alive: that one lets go).  False if the cluster
        does not know the session either."""
        hub = self._hub()
        if self.fenced:
            raise ClusterDown("resuming")
        try:
            taken = self._take_session(token)
        except Fenced as exc:
            self._fence("taking over a session was refused")
            raise ClusterDown("resuming") from exc
        except redis.RedisError as exc:
            raise self._down(exc, "resuming") from exc
        if taken is None:
            return False
        session, previous = taken
        with hub.locked(batch) as state:
            state.take_over(token, session["nick"], session.get("rooms", []), conn_key, address, time.time(),
                            self.grace)
        log.info("took over the session of %s from server %s", clean_line(session["nick"]),
                 previous.get("server") if previous else "?")
        return True

    def _take_session(self, token: str) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """In Redis: the session of ``token`` and the claim on its nick, now this
        server's (the server that had it is told to let go): (session, the claim as it
        was), or None if the session is over."""
        raw = self.redis.get(key("session", token))
        if raw is None:
            return None
        session = _decode(raw)
        nick = session["nick"]
        holder = self.redis.get(key("nick", nick_key(nick)))
        previous = _decode(holder) if holder else None
        if previous is not None and previous.get("owner") != token:
            return None  # someone else has the nick now: the session is over
        record = _encode({"server": self.server, "owner": token, "nick": nick})
        if not all(self.store.claim_key(k, record, token, self.ttl) for k in claim_keys(nick)):
            return None
        if previous is not None and previous.get("server") not in (None, self.server):
            self.redis.xadd(key("inbox", previous["server"]),
                            {"m": _encode({"t": "released", "token": token, "server": self.server})},
                            maxlen=10_000, approximate=True)
        return session, previous

    def floors(self, batch: Batch, seen: dict[str, int]) -> list[tuple[str, int, int]]:
        """(ChatPath) Raised in Redis, where the numbers are given: the next message of
        such a room, from any server, comes after what the client saw.  Best effort: with
        Redis unreachable, nothing is raised (and nothing can be said either)."""
        if self.fenced:
            return []
        try:
            return self.store.raise_floors(seen, MAX_FLOOR_JUMP)
        except Fenced:
            self._fence("a resume was refused")
        except redis.RedisError as exc:
            self._down(exc, "checking the rooms' numbering")
        return []

    def forward(self, sanction: Sanction, msg: Moderate) -> None:
        """An operator here kicked or muted a member of another server: that server
        carries it out (through its inbox)."""
        orders: list[tuple[str, dict[str, Any]]] = [
            (m.server, {"t": "kick", "nick": m.nick, "why": sanction.why}) for m in sanction.victims
            if m.server is not None]
        if msg.action in (ModAction.MUTE, ModAction.UNMUTE) and sanction.notice is not None:
            member, text = sanction.notice
            if member.server is not None:
                until = member.muted_until if math.isfinite(member.muted_until) else -1.0
                orders.append((member.server, {"t": "mute", "nick": member.nick, "until": until, "notice": text}))
        try:
            for server, body in orders:
                self.redis.xadd(key("inbox", server), {"m": _encode(body)}, maxlen=10_000, approximate=True)
        except redis.RedisError as exc:
            raise self._down(exc, "that") from exc

    def room_sizes(self) -> dict[str, tuple[str, int]]:
        """fold(name) -> (name, members in the whole cluster), for every room with members."""
        return self.store.room_sizes()

    # ------------------------------------------------------------------ health

    def _down(self, exc: Exception, what: str) -> ClusterDown:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.error("cannot reach Redis at %s (%s): %s failed; messages are refused until it is back",
                      self.shown_url, exc, what)
        return ClusterDown("your message" if what == "your message" else what)

    def _unconfirmed(self, exc: Exception, what: str) -> Refused:
        """A write that Redis may have done before it failed (a timeout, a connection
        dropped mid-way): say so, rather than "not done" (PROTOCOL.md, ``unconfirmed``)."""
        self._down(exc, what)
        return Refused(ErrorCode.UNCONFIRMED, f"the chat's shared store (Redis) stopped answering: {what} may or may "
                                              "not have been stored; send it again with the same id")

    def _up(self) -> None:
        if self._down_since is not None:
            log.warning("Redis is back after %.1f s", time.monotonic() - self._down_since)
            self._down_since = None

    @property
    def healthy(self) -> bool:
        return self._down_since is None

    # ------------------------------------------------------------------ helpers

    def _hub(self) -> Hub:
        assert self.hub is not None, "Cluster.start() first"
        return self.hub

    def _last_id(self, stream: str) -> str:
        last = self.redis.xrevrange(stream, count=1)
        return last[0][0].decode() if last else "0-0"

    def _free_nick(self, nick: str) -> str:
        candidates = []
        for n in range(2, 10):
            candidate = nick[: MAX_NICK_LENGTH - len(str(n))] + str(n)
            if nick_problem(candidate) is None:
                candidates.append(candidate)
        with self.redis.pipeline(transaction=False) as pipe:
            for candidate in candidates:
                pipe.exists(key("nick", nick_key(candidate)))
            taken = pipe.execute()
        return next((c for c, t in zip(candidates, taken, strict=True) if not t), nick[: MAX_NICK_LENGTH - 1] + "_")

    def _durability(self) -> str:
        """What an acknowledged message survives, from Redis's own settings."""
        try:
            config = self.redis.config_get("append*")
        except redis.ResponseError:  # CONFIG may be renamed or disabled
            return "unknown (CONFIG is not available)"
        if config.get("appendonly") != "yes":
            return "Redis's memory only: lost if Redis stops (appendonly is off)"
        policy = config.get("appendfsync")
        if policy == "always":
            return "Redis's append-only file, on disk (appendfsync always)"
        if policy == "everysec":
            return "Redis's append-only file, written; on disk within a second (appendfsync everysec)"
        return "Redis's append-only file, written; on disk when the OS decides (appendfsync no)"
