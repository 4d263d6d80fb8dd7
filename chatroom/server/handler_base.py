"""What a connection's handler provides to its parts (no I/O here).

``ChatHandler`` is one object in several modules: its pump (``handler.py``),
admission (``admission.py``) and an admitted member's requests (``requests.py``).
The parts inherit this base, which only names -- for the type checker -- what the
pump holds and does for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket

    from chatroom.protocol import Found, History, Joined, Members, Message, Welcome
    from chatroom.server.connection import Connection
    from chatroom.server.hub import Batch
    from chatroom.server.outbox import Outbox
    from chatroom.server.session import Event
    from chatroom.server.tcp import ChatServer

__all__ = ["HandlerBase"]


class HandlerBase:
    """The pump's side of ``ChatHandler``, as its parts see it."""

    if TYPE_CHECKING:  # (declared for the type checker: ChatHandler sets and defines them)
        server: ChatServer
        request: socket.socket
        conn: Connection
        batch: Batch

        def act(self, event: Event) -> None: ...
        def describe(self) -> str: ...
        def about(self, event: str, room: str | None = None) -> dict[str, object]: ...
        def flush_batch(self) -> None: ...
        def wait_for(self, behind: list[Outbox]) -> None: ...
        def send(self, msg: Message) -> None: ...
        def send_error(self, code: str, message: str, *, msg_id: str | None = None, fatal: bool = False,
                       suggestion: str | None = None) -> None: ...
        def send_fitted(self, msg: Welcome | Joined | History | Members | Found, *, forward: bool = False) -> None: ...
        def internal_error(self, msg: Message, exc: Exception) -> None: ...
        def gate(self, what: str, right: bool) -> bool | None: ...
        def wait_turn(self, what: str) -> bool: ...
