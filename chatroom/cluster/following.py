"""Following the rooms' logs: the cluster's *reader* thread, and ``catch_up`` -- a
sender's own appends applied in the log's order.  A part of
:class:`~chatroom.cluster.node.Cluster`.

Every entry of a room's log is applied here once, in order (``mirror.apply``): the
reader's blocking ``XREAD`` brings what any server appended; a server's own appends,
answered with the id of the entry before each, are applied at once when that entry was
the last applied here, else parked (``parking.py``) until the reader gets there."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import redis

from chatroom.cluster import mirror
from chatroom.cluster.store import PREFIX, ClusterDown, EntryId, RedisStore, key, parse_id
from chatroom.text import fold

if TYPE_CHECKING:
    from chatroom.cluster.parking import Parking
    from chatroom.server.hub import Batch, Hub
    from chatroom.server.members import Room
    from chatroom.server.room import ChatState

__all__ = ["Following", "BLOCK_MS", "READ_COUNT"]

log = logging.getLogger("chatroom.cluster")

_decode = msgspec.json.Decoder(dict).decode

#: How long the reader waits in one XREAD: it also picks up new rooms this often, and a
#: stopping server waits for it to notice (with 1,000 ms every stop took ~0.7 s more; an
#: idle server now asks Redis five times a second, which Redis does not feel).
BLOCK_MS = 200
#: Entries one XREAD may return.
READ_COUNT = 1000


class Following:
    """The reader and the catching up: a mixin of ``Cluster``."""

    if TYPE_CHECKING:  # what the cluster's node (node.py) holds and provides
        server: str
        store: RedisStore
        parking: Parking
        on_control: Callable[[dict[str, Any]], None]
        _stopped: threading.Event
        _inbox_id: str
        _control_id: str

        def _hub(self) -> Hub: ...
        def _down(self, exc: Exception, what: str) -> ClusterDown: ...
        def _up(self) -> None: ...

    def catch_up(self, room: str, upto: EntryId, batch: Batch,
                 known: list[tuple[EntryId, EntryId, dict[str, Any]]] = (),  # type: ignore[assignment]
                 pending: set[str] | None = None) -> None:
        """Apply ``room``'s log here up to entry ``upto``, in order, if not done yet.
        ``known``: entries this server just appended, with the id of the entry before
        each: applied at once when that one was the last applied here (the usual case:
        no read from Redis), else parked until it is (``parking.py``).  ``pending``: the
        rooms of that append still counted in flight (this one is not, once parked)."""
        hub, rk = self._hub(), fold(room)
        with hub.locked(batch) as state:
            target = state.rooms.get(rk)
            if target is None:
                return
            self.parking.park(rk, known, target.last_id)
            if pending is not None and rk in pending:
                pending.discard(rk)
                self.parking.end((rk,))
            self._apply_parked(state, target, batch)
            if target.last_id >= upto:
                return
        waiting = target
        if self.parking.wait(rk, lambda: waiting.last_id >= upto):
            return  # (another of this server's appends came back, and applied ours after its own)
        with hub.locked(batch) as state:
            target = state.rooms.get(rk)
            if target is None:
                return
            self._apply_parked(state, target, batch)
            if target.last_id >= upto:
                return
            after = target.last_id
        entries = self.store.entries(room, after, upto)  # (another server's entries in between: read back)
        with hub.locked(batch) as state:
            target = state.rooms.get(rk)
            if target is None:
                return
            for entry_id, body in entries:
                hub.deliver(mirror.apply(state, target, entry_id, body), batch)
            self._apply_parked(state, target, batch)

    def _apply_parked(self, state: ChatState, room: Room, batch: Batch) -> None:
        """The parked entries that follow what ``room`` has applied, in order (under
        the hub lock)."""
        rk, hub = fold(room.name), self._hub()
        entry = self.parking.next_after(rk, room.last_id)
        while entry is not None:
            hub.deliver(mirror.apply(state, room, *entry), batch)
            entry = self.parking.next_after(rk, room.last_id)
        self.parking.applied(rk, room.last_id)

    def _read_forever(self) -> None:
        from chatroom.server.hub import Batch  # (a cycle at import time: hub imports the room)

        batch = Batch()
        while not self._stopped.is_set():
            try:
                self._read_once(batch)
                self._up()
            except redis.RedisError as exc:
                self._down(exc, "following the rooms")
                self._stopped.wait(0.5)
            except Exception:  # noqa: BLE001 -- a bug must not stop the cluster's reader
                log.exception("cluster reader: unexpected error")
                self._stopped.wait(0.5)
            finally:
                self._flush(batch)

    def _read_once(self, batch: Batch) -> None:
        hub = self._hub()
        with hub.lock:
            rooms = {key("log", rk): f"{r.last_id[0]}-{r.last_id[1]}" for rk, r in hub.state.rooms.items()}
        inbox, control = key("inbox", self.server), key("control")
        streams = {**rooms, inbox: self._inbox_id, control: self._control_id}
        for stream, entries in self.store.follow(streams, READ_COUNT, BLOCK_MS):
            if stream == inbox:
                self._inbox_id = entries[-1][0].decode()
                self._on_inbox([_decode(m) for _, m in entries], batch)
            elif stream == control:
                self._control_id = entries[-1][0].decode()
                for _, message in entries:
                    self.on_control(_decode(message))
            else:
                rk = stream[len(PREFIX) + len("log:"):]
                with hub.locked(batch) as state:
                    room = state.rooms.get(rk)
                    if room is None:
                        continue
                    for raw_id, message in entries:
                        entry_id = parse_id(raw_id)
                        if entry_id > room.last_id:  # (not decoded when applied already: ours, mostly)
                            hub.deliver(mirror.apply(state, room, entry_id, _decode(message)), batch)
                    self._apply_parked(state, room, batch)

    def _on_inbox(self, bodies: list[dict[str, Any]], batch: Batch) -> None:
        hub = self._hub()
        for body in bodies:
            kind = body.get("t")
            if kind == "private":
                with hub.locked(batch) as state:
                    hub.deliver(mirror.apply_private(state, body), batch)
            elif kind in ("released", "kick", "mute", "room_kick"):
                self.on_control(body)

    def _flush(self, batch: Batch) -> None:
        self._hub().flush(batch)  # (and members too slow for this traffic are dropped)
