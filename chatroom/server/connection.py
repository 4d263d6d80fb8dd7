"""One client connection as the server keeps it: socket, outbox, protocol state,
and the one way to close it."""

from __future__ import annotations

import _thread
import itertools
import socket
import time

from chatroom.protocol import (
    FrameDecoder,
    Message,
)
from chatroom.server.config import ServerConfig
from chatroom.server.hub import Hub
from chatroom.server.members import Member
from chatroom.server.outbox import Flusher, Outbox
from chatroom.server.session import (
    CloseReason,
    RoomKey,
    ServerSession,
)
from chatroom.server.wire import FRAMED, Outgoing, WireFormat

__all__ = ["Connection"]


class Connection:
    """One client connection: its socket, outbox and protocol state."""

    _ids = itertools.count(1)

    def __init__(self, sock: socket.socket, address: str, hub: Hub, flusher: Flusher,
                 config: ServerConfig, password: RoomKey | None = None) -> None:
        self.id = next(self._ids)
        self.sock = sock
        self.address = address
        self.ip = address.rsplit(":", 1)[0]
        self.outbox = Outbox(sock, flusher, hub.lock, config.outbox_limit)
        self.outbox.owner = self
        #: The protocol state (no I/O): phase, limits, deadlines, close reason.
        self.session = ServerSession(config.session_limits(), time.monotonic(), password)
        self.member: Member | None = None
        #: Held while its handler runs (``threads.py``): ``stop()`` joins it by this.
        self.ended = _thread.allocate_lock()
        self.ended.acquire()
        #: Deliveries name recipients by objects with a ``sink`` (members); a connection
        #: is its own sink, and ``me`` is its cached one-element recipient tuple.
        self.sink: Connection | None = self
        self.me: tuple[Connection, ...] = (self,)
        self._wire: WireFormat = FRAMED
        #: Ending idle is normal for it (a browser's keep-alive connection that fetched
        #: pages and said no hello): logged quietly, not as a dropped client.
        self.idle_ok = False

    @property
    def wire(self) -> WireFormat:
        """How this connection's messages are encoded (the hub encodes once per format)."""
        return self._wire

    @wire.setter
    def wire(self, wire: WireFormat) -> None:
        if wire is self._wire:  # (the IRC door sets it after every command: most change nothing)
            return
        self._wire = wire
        Member.sink_changes += 1  # the hub's flattened fan-out lists notice

    @property
    def closing(self) -> bool:
        return self.session.closed

    @property
    def decoder(self) -> FrameDecoder:
        return self.session.decoder

    def __repr__(self) -> str:
        who = self.member.nick if self.member else "-"
        return f"<Connection #{self.id} {who}@{self.address} {self.session.phase.value}>"

    def close(self, reason: CloseReason, detail: str = "", last: Message | None = None) -> bool:
        """The one way to close: the session records ``reason``, then ``last`` (an
        error saying why) is sent, and the reader is woken.  Any thread.  False if it
        was already closing (the first reason wins, and nothing is sent).  The reason
        comes first: a client may hang up the moment it reads why, and its reader
        must not take that for a lost connection (which would hold a kicked or banned
        session for a resume)."""
        first = self.session.close(reason, detail)
        if first and last is not None:
            self.send_now(Outgoing.of(last))
        self.wake()
        return first

    def send_now(self, out: Outgoing) -> None:
        """Out of band, ahead of anything queued: keepalive, a last error, the goodbye."""
        data = self.wire.encode((out,))
        if data:
            self.outbox.send_now(data)

    def release(self) -> None:
        """The connection has ended and its outbox is closed: let go of everything it
        held, now.  A connection refers to itself (its ``sink``, its ``me`` tuple, its
        outbox's ``owner``); left in place, those cycles would keep its buffers -- up to
        a whole frame's body in the decoder -- until the cycle collector runs, which a
        server process runs rarely (``cli._tune_collector``).  Memory must not depend on
        when a collector runs: break them, and drop the decoder's buffer too.  Under the
        hub lock (the fan-out reads ``sink`` and ``owner`` there)."""
        self.session.decoder.close()
        member, self.member = self.member, None
        if member is not None and member.sink is self:  # (a removed member: a held one has None)
            member.sink = None
        self.outbox.owner = None
        self.me = ()
        self.sink = None

    def wake(self) -> None:
        """Wake the reader of a closed session.  Only the reading half is shut: a last
        error frame queued just before (kicked, banned, timed out) still goes out; the
        reader's ``finish`` lets the outbox drain, briefly, before the socket closes."""
        try:
            self.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
