"""The cluster strategy, as the server sees it: an interface, not an import.

A server alone keeps its rooms in its own store; a server of a cluster shares them
with the others through Redis (``chatroom.cluster``, chosen by the composition root,
``chatroom/app.py``).  The server and its doors talk to that strategy only through
:class:`ClusterLink`; ``server/`` imports nothing of ``chatroom.cluster``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from chatroom.server.chat_path import ChatPath
from chatroom.server.remote import Peers

if TYPE_CHECKING:
    from chatroom.protocol import Moderate
    from chatroom.server.hub import Hub
    from chatroom.server.members import Sanction
    from chatroom.server.room import ChatState
    from chatroom.server.store import Store

__all__ = ["ClusterLink"]


class ClusterLink(ChatPath, Peers, Protocol):
    """This server's part in a cluster.  Every call that reaches Redis may raise
    ``Refused`` (``unavailable``) when it cannot."""

    address: str  # where this server listens (set once bound): other servers tell clients
    durability: str  # what an acknowledged message survives, in words
    cluster_id: str  # the same for every server of the cluster
    fenced: bool  # its lease lapsed: it refuses everything until it has joined again

    @property
    def store(self) -> Store: ...  # the rooms' shared history

    def shared_op_token(self, mine: str) -> str: ...
    def start(self, hub: Hub, on_control: Callable[[dict[str, Any]], None]) -> None: ...
    def stop(self) -> None: ...
    def prepare(self, events: list[dict[str, Any]], state: ChatState) -> object: ...  # under the lock: no I/O
    def publish(self, prepared: object) -> None: ...  # outside it, in order
    def forward(self, sanction: Sanction, msg: Moderate) -> None: ...
    def servers(self) -> dict[str, dict[str, Any]]: ...
    def room_sizes(self) -> dict[str, tuple[str, int]]: ...
