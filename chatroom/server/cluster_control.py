"""What another server of a cluster asks of this one, and what this one does when the
cluster has let it go: a mixin of ``ChatServer`` (``tcp.py``).  The cluster's reader
thread calls :meth:`ClusterControl.on_cluster` with each control message: a ban or an
unban for every server; a kick, a mute, or a session taken over, for the server that
has the member; and ``fenced`` from this server's own cluster part when its lease
lapsed (``chatroom/cluster/liveness.py``)."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from chatroom.logfmt import about
from chatroom.protocol import Error, ErrorCode
from chatroom.server.bans import Ban
from chatroom.server.session import CloseReason
from chatroom.text import fold, nick_key

if TYPE_CHECKING:
    from chatroom.server.connection import Connection
    from chatroom.server.hub import Batch, Hub
    from chatroom.server.room import ChatState

__all__ = ["ClusterControl"]

log = logging.getLogger("chatroom.server")


class ClusterControl:
    """A mixin of ``ChatServer``: the cluster's control messages carried out here."""

    if TYPE_CHECKING:  # what ChatServer holds and provides
        hub: Hub
        _cluster_batch: Batch
        _conns: dict[int, Connection]
        _conns_lock: threading.Lock
        _conns_gone: threading.Condition

        def connections(self) -> list[Connection]: ...
        def _new_state(self) -> ChatState: ...
        def _disconnect(self, victims: list[Connection], code: str, why: str) -> None: ...

    def on_cluster(self, body: dict[str, Any]) -> None:
        """What another server of the cluster asks of this one (the cluster's reader
        thread): a ban or unban for every server; a kick, a mute, or a session taken
        over, for the server that has the member."""
        kind, batch = body.get("t"), self._cluster_batch
        if kind == "fenced":
            self._start_afresh()
        elif kind == "ban":
            self._banned_elsewhere(body)
        elif kind == "unban":
            with self.hub.lock:
                self.hub.state.bans.remove(body["target"])
        elif kind == "released":
            with self.hub.locked(batch) as state:
                ghost = state.let_go(body["token"], body["server"])
            if ghost is not None:
                ghost.member = None  # its reader ends quietly: the member lives on elsewhere
                ghost.close(CloseReason.REPLACED)
        elif kind in ("kick", "mute"):
            self._sanctioned_elsewhere(kind, body, batch)
        elif kind == "room_kick":
            self._kicked_out_elsewhere(body, batch)
        self.hub.flush(batch)

    def _start_afresh(self) -> None:
        """The cluster took this server for dead (its lease lapsed) and let its members
        go: drop every connection -- their clients go to another server of their list,
        or come back here in a moment -- and forget the rooms and members it had, as a
        restart would, without telling the cluster anything (it is not ours to tell)."""
        refusal = Error(code=ErrorCode.UNAVAILABLE.value, fatal=True,
                        message="this server lost its place in the cluster (it was paused or cut off from the others "
                                "too long): connect to another server, or to this one again in a moment")
        conns = self.connections()
        for conn in conns:
            conn.close(CloseReason.SHUTDOWN, last=refusal)
        with self._conns_lock:
            self._conns_gone.wait_for(lambda: not self._conns, timeout=5.0)
        self.hub.forget_unpublished()
        with self.hub.lock:
            self.hub.state = self._new_state()
        log.warning("dropped %d connection(s) and forgot this server's rooms: it joins the cluster again", len(conns),
                    extra=about("fenced"))

    def _banned_elsewhere(self, body: dict[str, Any]) -> None:
        ban = Ban.from_record(body)
        with self.hub.lock:
            self.hub.state.bans.add(ban)
        victims = [c for c in self.connections() if c.member is not None and c.member.server is None
                   and ban.matches(c.ip, c.member.nick)]
        self._disconnect(victims, ErrorCode.BANNED.value, f"banned by {body.get('by', '?')}"
                         + (f": {body['reason']}" if body.get("reason") else ""))

    def _kicked_out_elsewhere(self, body: dict[str, Any], batch: Batch) -> None:
        """An operator of a room, on another server, kicked a member of ours out of it:
        the same reducer as here (``ChatState.kicked_out``); the room hears it through
        the room's log, as a leave."""
        with self.hub.locked(batch) as state:
            member = state.nicks.get(nick_key(body["nick"]))
            room = member.rooms.get(fold(body["room"])) if member is not None and member.server is None else None
            if member is not None and room is not None:
                self.hub.deliver(state.kicked_out(member, room, body["why"], time.time()), batch)

    def _sanctioned_elsewhere(self, kind: str, body: dict[str, Any], batch: Batch) -> None:
        """An operator on another server kicked or muted a member of ours: the same
        rules as here (``ChatState.mute``, ``remove``), then the connection."""
        with self.hub.locked(batch) as state:
            member = state.nicks.get(nick_key(body["nick"]))
            if member is None or member.server is not None:
                return
            if kind == "mute":
                until = float(body.get("until") or 0.0)
                self.hub.deliver(state.mute(member, float("inf") if until < 0 else until, body.get("notice")), batch)
                return
            if member.sink is None:
                self.hub.deliver(state.remove(member, body["why"], time.time()), batch)
        if member.sink is not None:
            self._disconnect([member.sink], ErrorCode.KICKED.value, body["why"])
