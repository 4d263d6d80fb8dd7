"""The door interface: how another protocol on the server's port is plugged in.

The server's own protocol is the framed one; every other (a browser's HTTP and
WebSocket, IRC) is a *door*: it says from a connection's first bytes whether the
connection is its own (``claims``: yes, no, or cannot tell yet -- see ``sniff.py``),
and then serves it (``serve``) through the port it is given: the connection's
protocol state, the hub, and the one gate for secrets and bans, the same for every
door.  The composition root (``chatroom/app.py``) registers the doors; ``server/``
imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from chatroom.server.hub import Batch
    from chatroom.server.outbox import Outbox
    from chatroom.server.session import Event
    from chatroom.server.tcp import ChatServer, Connection

__all__ = ["Door", "DoorPort"]


class DoorPort(Protocol):
    """What a door may use of the connection it serves (``ChatHandler`` is one)."""

    @property
    def conn(self) -> Connection: ...  # the socket's outbox, the protocol state, the member
    @property
    def server(self) -> ChatServer: ...  # the hub, the config, the cluster strategy
    @property
    def batch(self) -> Batch: ...  # what this connection queues under the hub lock

    def flush_batch(self) -> None: ...  # the batch ends: flushed, overflowed members dropped
    def wait_for(self, behind: list[Outbox]) -> None: ...  # backpressure: the room's readers catch up
    def recv_more(self, size: int) -> bytes: ...  # the next bytes; b"" at the end
    def act_all(self, events: list[Event]) -> None: ...  # carry out the session's decisions
    def gate(self, what: str, right: bool) -> bool | None: ...  # the one gate for secrets
    def ghost_leaving(self, nick: str, timeout: float = 1.0) -> bool: ...  # a taken nick's holder hung up
    def nick_ban(self, nick: str) -> str | None: ...  # the one question about bans
    def describe(self) -> str: ...  # for log lines
    def about(self, event: str, room: str | None = None) -> dict[str, object]: ...  # a log line's extra


@dataclass(frozen=True)
class Door:
    """One door: ``name`` (for logs and the sniffer), ``claims(prefix)`` (True: mine;
    False: not mine; None: cannot tell yet), and ``serve(handler, first)``, which
    serves the connection from its first bytes until it ends (the handler's
    ``finish`` then does the rest: the same for every door)."""

    name: str
    claims: Callable[[bytes], bool | None]
    serve: Callable[[DoorPort, bytes], None]
