"""A cluster's shared rooms in Redis: one stream per room, read and written here.

Keys (``chatroom:`` first; one Redis database per cluster):

- ``log:{room}`` -- the room's log, a stream.  A message has the entry id ``<seq>-0``:
  its sequence number *is* the id, so history, paging and resume read ranges of ids.
  Everything else said about the room (joins, leaves, nick and topic changes) is an
  entry ``<seq>-<n>`` (n >= 1): after message ``seq`` and before ``seq + 1``, in one
  order that every server applies.
- ``seq:{room}`` -- the room's last sequence number; ``INCR`` and ``XADD`` in one Lua
  script make it atomic and contiguous, whichever server's member speaks.
- ``room:{room}`` (hash: name, topic, locked, modes), ``members:{room}`` (hash: nick key ->
  record of the member and the server that has it), ``rooms`` (room key -> name).
- ``nick:{nick key}`` -- who holds the nick (server and session), with a time to live
  the holder renews; ``session:{token}`` -- a session's nick and rooms, for another
  server to take it over.
- ``servers`` (hash: server id -> record with its last heartbeat), ``inbox:{server}``
  (private messages and hand-overs for one server), ``control`` (bans, kicks, mutes
  for every server), ``bans`` (hash), ``op_token``.

Each entry has one field, ``m``: a JSON object whose ``t`` says what it is.  Keys of
rooms and nicks are the folded names the rest of the server uses.  No Redis cluster
(sharding) is assumed: the scripts touch the keys they compute.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import msgspec
import redis

from chatroom.cluster import scripts
from chatroom.errors import Refused
from chatroom.protocol import Chat, ErrorCode, RoomInfo
from chatroom.server.bans import Ban
from chatroom.server.members import RoomSnapshot
from chatroom.server.search import SEARCH_DEPTH, search_in
from chatroom.server.store import RoomRecord
from chatroom.text import fold, lookalike_key, nick_key

__all__ = ["RedisStore", "ClusterDown", "Fenced", "Unreplicated", "WAIT_MS", "claim_keys", "PREFIX", "EntryId",
           "parse_id"]

PREFIX = "chatroom:"

EntryId = tuple[int, int]

#: Entries read per round trip when the log is scanned for messages.
CHUNK = 500

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict).decode

#: How long a message's client id is remembered to recognise a resend.
SENT_TTL = 86_400

#: How long an append waits for ``--cluster-replicas`` replicas before it answers
#: ``unconfirmed`` (the message is on the master, not yet on enough replicas).
WAIT_MS = 1000


class _Answers(list[Any]):
    """A pipeline's answers, and how many replicas had them (WAIT)."""

    replicated = 0


class Unreplicated(redis.RedisError):
    """Appended on the master, but fewer replicas than required confirmed it in time:
    a failover now could lose it (``unconfirmed``).  ``placed``: what ``append_chats``
    would have returned."""

    def __init__(self, placed: list[tuple[int, EntryId, bool, int]], replicated: int, wanted: int) -> None:
        super().__init__(f"on {replicated} of {wanted} replica(s) after {WAIT_MS} ms")
        self.placed = placed


def claim_keys(nick: str) -> tuple[str, str]:
    """The Redis keys a nick is held under: its key and its look-alike key."""
    return key("nick", nick_key(nick)), key("alike", lookalike_key(nick))


class Fenced(redis.RedisError):
    """This server's lease in the cluster lapsed: Redis refused a write of it."""


def _fenced(exc: redis.ResponseError) -> bool:
    return "FENCED this server has no lease" in str(exc)  # (in a pipeline, after "Command # n ...")


class ClusterDown(Refused):
    """Redis cannot be reached: what was asked was not done (``unavailable``)."""

    def __init__(self, what: str = "that") -> None:
        super().__init__(ErrorCode.UNAVAILABLE, f"the chat's shared store (Redis) is unreachable: {what} was not "
                                                "done; try again in a moment")


T = TypeVar("T")


def _reading(method: Callable[..., T]) -> Callable[..., T]:
    """A read the client asked for (history, search): Redis down is ``unavailable``."""

    @functools.wraps(method)
    def reading(self: RedisStore, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except redis.RedisError as exc:
            raise ClusterDown("reading the history") from exc

    return reading


def parse_id(raw: bytes | str) -> EntryId:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, n = text.partition("-")
    return int(ms), int(n or 0)


def _as_sent(reply: Any, **options: Any) -> Any:
    """A reply as Redis sent it (a redis-py response callback that does nothing)."""
    return reply


def _message(fields: list[bytes]) -> bytes:
    """The ``m`` field of an entry's flat field list (every entry here has it alone)."""
    if fields[0] == b"m":
        return fields[1]
    return dict(zip(fields[::2], fields[1::2], strict=True))[b"m"]


def _chat(room: str, entry_id: EntryId, body: dict[str, Any]) -> Chat:
    return Chat(room=body.get("room", room), seq=entry_id[0], ts=body["ts"], nick=body["nick"], text=body["text"],
                action=bool(body.get("action")), id=body.get("id"))


def key(kind: str, name: str = "") -> str:
    return f"{PREFIX}{kind}:{name}" if name else f"{PREFIX}{kind}"


class RedisStore:
    """The ``Store`` of a server in a cluster (see ``chatroom.server.store.Store``), plus
    what a cluster needs of the rooms' logs.  Thread-safe: redis-py's pool."""

    path = None

    def __init__(self, client: redis.Redis, *, replicas: int = 0) -> None:
        self.redis: Any = client  # (replies are bytes: see Cluster.redis)
        #: ``serve --cluster-replicas``: a message counts as stored once this many replicas
        #: have it too (Redis's WAIT, after each round trip of appends).
        self.replicas = replicas
        #: How long a message's client id (and a digest of its text) is kept to recognise
        #: a resend: a day, or less when retention keeps messages for less.
        self.sent_ttl = SENT_TTL
        # Replies of stream reads as Redis sends them (see ``follow``, ``_scan``): only
        # this store reads streams.
        for command in ("XREAD", "XRANGE", "XREVRANGE"):
            client.set_response_callback(command, _as_sent)
        self._say = client.register_script(scripts.SAY)
        self._event = client.register_script(scripts.EVENT)
        self._release = client.register_script(scripts.RELEASE)
        self._release_if = client.register_script(scripts.RELEASE_IF)
        self._claim = client.register_script(scripts.CLAIM)
        self._floor = client.register_script(scripts.FLOOR)
        #: This server's lease key (``node.py``): every write of this server's checks it.
        self.lease = key("lease", "none")

    def healthy(self) -> bool:
        """Redis answers a ping now (GET /healthz)."""
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self.redis.close()

    # ------------------------------------------------------------------ reading

    def follow(self, streams: dict[str, str], count: int, block_ms: int) -> list[tuple[str, list[tuple[bytes, bytes]]]]:
        """New entries of ``streams`` (key -> the id read up to), waiting up to
        ``block_ms`` for one: (key, [(entry id, its message)]) per stream that has any.
        From XREAD's reply as Redis sent it: redis-py would make a dict of each entry's
        fields, and most entries a server reads are its own, skipped unread (1/20 of a
        busy cluster server's CPU went to that)."""
        reply = self.redis.execute_command("XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", *streams,
                                           *streams.values())
        if not reply:
            return []
        pairs = reply.items() if isinstance(reply, dict) else reply  # (RESP3: a map; RESP2: [key, entries] pairs)
        return [(name.decode(), [(entry_id, _message(fields)) for entry_id, fields in entries])
                for name, entries in pairs]

    # ------------------------------------------------------------------ writing

    def append_chats(self, chats: list[tuple[str, dict[str, Any], int]]) -> list[tuple[int, EntryId, bool, int]]:
        """Put several messages (room, body, floor) in their rooms' logs, in this order,
        in one round trip: (sequence number, id of the entry before it, whether it was
        a resend of one already there, how many numbers were skipped because the log
        had lost its tail -- see ``scripts.SAY``) each.  ``floor``: the highest number of the
        room the caller has seen."""
        calls: list[tuple[list[Any], list[Any]]] = []  # one script per run of one room's messages
        room_key = None
        for room, body, floor in chats:
            rk = fold(room)
            if rk != room_key:
                room_key = rk
                calls.append(([self.lease, key("seq", rk), key("log", rk)], [floor, self.sent_ttl]))
            keys, args = calls[-1]
            args[0] = max(args[0], floor)
            if body.get("id") is not None:
                keys.append(key("sent", f"{fold(body['nick'])}:{body['id']}"))
                what = f"{'action' if body.get('action') else 'say'}\0{rk}\0{body['text']}".encode()
                args += [_encode(body), hashlib.sha1(what).hexdigest()]
            else:
                keys.append(key("log", rk))
                args += [_encode(body), ""]
        answers = self._run_script(self._say, calls, wait=self.replicas)
        placed: list[tuple[int, EntryId, bool, int]] = []
        for run in answers:  # [the entry before the run, numbers skipped, each one's number (a resend's: < 0)]
            before, lost = parse_id(run[0]), run[1]
            for seq in run[2:]:
                if seq < 0:
                    placed.append((-seq, (0, 0), True, 0))
                else:
                    placed.append((seq, before, False, lost))
                    before, lost = (seq, 0), 0
        if self.replicas and answers.replicated < self.replicas:
            raise Unreplicated(placed, answers.replicated, self.replicas)
        return placed

    def append_event(self, pipe: Any, room: str, body: dict[str, Any]) -> None:
        """Queue an entry for ``room``'s log on ``pipe`` (see ``transact``)."""
        rk = fold(room)
        pipe.evalsha(self._event.sha, 2, key("seq", rk), key("log", rk), _encode(body))

    def transact(self, fill: Callable[[Any], None], *, fenced: bool = True) -> list[Any]:
        """Run what ``fill(pipe)`` queues as one transaction -- only while this server
        holds its lease (``fenced``: WATCHed, so a lease that lapses before EXEC aborts
        it; raises :class:`Fenced` when there is none).  If Redis lost our scripts (it
        restarted), they are loaded and it runs again: no script ran, and the rest of
        what a transaction here holds is idempotent (HSET, HDEL, SET, DEL)."""
        for attempt in range(4):
            with self.redis.pipeline(transaction=True) as pipe:
                if fenced:
                    pipe.watch(self.lease)
                    if not pipe.exists(self.lease):
                        raise Fenced("this server has no lease in the cluster")
                    pipe.multi()
                fill(pipe)
                try:
                    done: list[Any] = pipe.execute()
                    return done
                except redis.exceptions.WatchError:  # the lease was renewed meanwhile, or lapsed: look again
                    continue
                except (redis.exceptions.NoScriptError, redis.exceptions.ExecAbortError):
                    if attempt == 3:
                        raise
                    self._load_scripts()
        raise redis.exceptions.WatchError("the lease kept changing")

    def _run_script(self, script: Any, calls: list[tuple[list[Any], list[Any]]], wait: int = 0) -> _Answers:
        """One script, several times, in one round trip (EVALSHA in a pipeline: no
        SCRIPT EXISTS first, as redis-py's scripts in pipelines do); with ``wait``, then
        Redis's WAIT for that many replicas (at most ``WAIT_MS``), in the same trip."""
        for attempt in (1, 2):
            with self.redis.pipeline(transaction=False) as pipe:
                for keys, args in calls:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                if wait:
                    pipe.execute_command("WAIT", wait, WAIT_MS)
                try:
                    done: list[Any] = pipe.execute()
                    answers = _Answers(done[:len(calls)])
                    answers.replicated = int(done[-1]) if wait else 0
                    return answers
                except redis.exceptions.NoScriptError:
                    if attempt == 2:
                        raise
                    self._load_scripts()
                except redis.ResponseError as exc:
                    if _fenced(exc):
                        raise Fenced(str(exc)) from exc
                    raise
        raise AssertionError("unreachable")

    def _load_scripts(self) -> None:
        for script in (self._say, self._event, self._release, self._release_if, self._claim, self._floor):
            self.redis.script_load(script.script)

    def raise_floors(self, seen: dict[str, int], most: int) -> list[tuple[str, int, int]]:
        """See ``scripts.FLOOR``: (room, number, how many were skipped) for each room that had
        lost the tail of its log."""
        calls = [([self.lease, key("seq", fold(room)), key("rooms")], [seq, fold(room), most])
                 for room, seq in seen.items()]
        skipped = self._run_script(self._floor, calls)
        return [(room, seq, int(n)) for (room, seq), n in zip(seen.items(), skipped, strict=True) if int(n)]

    def claim_key(self, name: str, record: bytes, owner: str, ttl: int) -> bool:
        """Hold the claim ``name`` for ``owner`` (see ``scripts.CLAIM``); raises :class:`Fenced`
        without a lease."""
        try:
            return bool(self._claim(keys=[self.lease, name], args=[record, owner, ttl]))
        except redis.ResponseError as exc:
            if _fenced(exc):
                raise Fenced(str(exc)) from exc
            raise

    def release_key(self, name: str, owner: str) -> None:
        """Delete the claim ``name`` (a nick's key or look-alike key) if ``owner`` holds it."""
        self._release(keys=[name], args=[owner])

    def release_key_in(self, pipe: Any, name: str, owner: str) -> None:
        """``release_key`` as part of a transaction (``transact``)."""
        pipe.evalsha(self._release.sha, 1, name, owner)

    def release_if(self, name: str | bytes, value: bytes) -> None:
        """Delete key ``name`` if it still holds ``value``."""
        self._release_if(keys=[name], args=[value])

    def release_if_in(self, pipe: Any, name: str | bytes, value: bytes) -> None:
        """``release_if`` as part of a transaction (``transact``)."""
        pipe.evalsha(self._release_if.sha, 1, name, value)

    def save(self, chats: Iterable[Chat], rooms: Iterable[tuple[Any, ...]]) -> None:
        """Nothing to do: in a cluster, messages are in the log before anyone sees them
        (``append_chat``), and topics travel as log entries."""

    def prune(self, *, keep: int | None = None, max_age: float | None = None, now: float | None = None) -> int:
        """Retention: trim each room's log to its newest ``keep`` messages and none older
        than ``max_age`` seconds.  Returns how many entries went."""
        deleted = 0
        cutoff = None if max_age is None else (now if now is not None else time.time()) - max_age
        for rk in self.redis.hkeys(key("rooms")):
            rk = rk.decode()
            log = key("log", rk)
            if keep is not None:
                last = int(self.redis.get(key("seq", rk)) or 0)
                if last > keep:
                    deleted += self.redis.xtrim(log, minid=f"{last - keep + 1}-0", approximate=False)
            if cutoff is not None:
                oldest_kept = None
                for entry_id, message in self._scan(log, "-", "+", reverse=False):
                    if entry_id[1] == 0 and _decode(message)["ts"] >= cutoff:
                        oldest_kept = entry_id
                        break
                if oldest_kept is not None:
                    deleted += self.redis.xtrim(log, minid=f"{oldest_kept[0]}-0", approximate=False)
                else:
                    deleted += self.redis.xtrim(log, maxlen=0, approximate=False)
        return deleted

    def save_ban(self, address: str, until: float | None, nick: str, reason: str, by: str) -> None:
        record = {"target": address, "until": until, "nick": nick, "reason": reason, "by": by}
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key("bans"), address, _encode(record))
            pipe.xadd(key("control"), {"m": _encode({"t": "ban", **record})}, maxlen=10_000, approximate=True)
            pipe.execute()

    def delete_ban(self, address: str) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(key("bans"), address)
            pipe.xadd(key("control"), {"m": _encode({"t": "unban", "target": address})}, maxlen=10_000,
                      approximate=True)
            pipe.execute()

    def bans(self) -> list[Ban]:
        return [Ban(**_decode(v)) for v in self.redis.hvals(key("bans"))]

    # ------------------------------------------------------------------ reading

    def snapshot(self, name: str, history_size: int) -> RoomSnapshot:
        """``name`` as the cluster has it, consistent with its log's last entry."""
        rk = fold(name)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(key("room", rk))
            pipe.get(key("seq", rk))
            pipe.xrevrange(key("log", rk), count=1)
            pipe.hvals(key("members", rk))
            record, seq, last, members = pipe.execute()
        last_id = parse_id(last[0][0]) if last else (0, 0)
        recent = self._chats(name, "+" if not last else f"{last_id[0]}-{last_id[1]}", "-", history_size,
                             reverse=True)[::-1]
        return RoomSnapshot(
            name=record.get(b"name", name.encode()).decode(),
            next_seq=int(seq or 0) + 1,
            topic=record.get(b"topic", b"").decode(),
            locked=record.get(b"locked") == b"1",
            modes=record.get(b"modes", b"").decode(),
            last_id=last_id,
            recent=recent,
            members=[_decode(m) for m in members],
        )

    @_reading
    def room(self, name: str) -> RoomRecord | None:
        rk = fold(name)
        record = self.redis.hgetall(key("room", rk))
        if not record:
            return None
        return RoomRecord(record[b"name"].decode(), int(self.redis.get(key("seq", rk)) or 0) + 1,
                          record.get(b"topic", b"").decode(), record.get(b"modes", b"").decode())

    @_reading
    def rooms(self) -> list[RoomRecord]:
        out = []
        for rk in sorted(self.redis.hkeys(key("rooms"))):
            record = self.room(rk.decode())
            if record is not None:
                out.append(record)
        return out

    def room_sizes(self) -> dict[str, tuple[str, int]]:
        """fold(name) -> (name, members in the whole cluster), for every room with members."""
        names = self.redis.hgetall(key("rooms"))
        with self.redis.pipeline(transaction=False) as pipe:
            for rk in names:
                pipe.hlen(key("members", rk.decode()))
            sizes = pipe.execute()
        return {rk.decode(): (name.decode(), n) for (rk, name), n in zip(names.items(), sizes, strict=True) if n}

    @_reading
    def room_infos(self) -> list[RoomInfo]:
        """Every room of the cluster with members: name, how many, topic."""
        sizes = self.room_sizes()
        with self.redis.pipeline(transaction=False) as pipe:
            for rk in sizes:
                pipe.hget(key("room", rk), "topic")
            topics = pipe.execute()
        return [RoomInfo(name=name, members=n, topic=(topic or b"").decode())
                for (name, n), topic in zip(sizes.values(), topics, strict=True)]

    @_reading
    def recent(self, room: str, limit: int) -> list[Chat]:
        return self._chats(room, "+", "-", limit, reverse=True)[::-1]

    @_reading
    def before(self, room: str, seq: int, limit: int) -> list[Chat]:
        return self._chats(room, f"({seq}-0", "-", limit, reverse=True)[::-1]

    @_reading
    def after(self, room: str, seq: int, limit: int) -> list[Chat]:
        return self._chats(room, f"({seq}-0", "+", limit, reverse=False)

    @_reading
    def oldest_seq(self, room: str) -> int | None:
        found = self._chats(room, "-", "+", 1, reverse=False)
        return found[0].seq if found else None

    @_reading
    def search(self, room: str, text: str, limit: int, before: int | None = None) -> tuple[list[Chat], bool]:
        start = "+" if before is None else f"({before}-0"  # (exclusive: numbered below it)
        return search_in(self._chats(room, start, "-", SEARCH_DEPTH, reverse=True)[::-1], text, limit)

    def recent_ids(self, limit: int) -> list[tuple[str, str, Chat]]:
        """Resent messages are recognised by the rooms' own recent history (see
        ``ChatState.apply_chat``): nothing to preload."""
        return []

    def entries(self, room: str, after: EntryId, upto: EntryId) -> list[tuple[EntryId, dict[str, Any]]]:
        """The log of ``room`` after ``after``, up to ``upto`` included."""
        start = f"({after[0]}-{after[1]}"
        return [(i, _decode(m)) for i, m in self._scan(key("log", fold(room)), start, f"{upto[0]}-{upto[1]}",
                                                      reverse=False)]

    # ------------------------------------------------------------------ internals

    def _chats(self, room: str, start: str, end: str, limit: int, *, reverse: bool) -> list[Chat]:
        """Up to ``limit`` messages of ``room`` from ``start`` towards ``end``, in that
        direction (the log's other entries skipped)."""
        out: list[Chat] = []
        if limit <= 0:
            return out
        for entry_id, message in self._scan(key("log", fold(room)), start, end, reverse=reverse):
            if entry_id[1] == 0:
                out.append(_chat(room, entry_id, _decode(message)))
                if len(out) >= limit:
                    break
        return out

    def _scan(self, log: str, start: str, end: str, *, reverse: bool) -> Iterator[tuple[EntryId, bytes]]:
        """The entries of ``log`` from ``start`` to ``end``: (id, message)."""
        while True:
            batch = self.redis.execute_command("XREVRANGE" if reverse else "XRANGE", log, start, end, "COUNT", CHUNK)
            for raw_id, fields in batch:
                yield parse_id(raw_id), _message(fields)
            if len(batch) < CHUNK:
                return
            last = batch[-1][0].decode()
            start = f"({last}"
