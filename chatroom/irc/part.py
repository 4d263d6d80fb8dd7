"""What each part of the IRC door -- ``asking.py``, ``channels.py``, ``chathistory.py``,
``monitor.py``, ``multiline.py``, ``person.py``, ``speaking.py`` -- uses of the door
itself, declared once for the type checker (``door.py`` defines them all)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatroom.errors import Refused
    from chatroom.irc.lines import IrcLine
    from chatroom.irc.session import IrcSession
    from chatroom.server.doors import DoorPort
    from chatroom.server.hub import Hub
    from chatroom.server.members import Delivery, Member
    from chatroom.server.tcp import ChatServer

__all__ = ["DoorPart"]


class DoorPart:
    """A part of :class:`~chatroom.irc.door.IrcDoor`."""

    if TYPE_CHECKING:
        handler: DoorPort
        server: ChatServer
        hub: Hub
        session: IrcSession
        name: str

        def member(self) -> Member: ...
        def send(self, data: bytes) -> None: ...
        def reply(self, numeric: str, *params: str) -> None: ...
        def deliver(self, deliveries: list[Delivery]) -> None: ...
        def refused(self, line: IrcLine, exc: Refused) -> None: ...
        def failed(self, line: IrcLine, exc: Exception) -> None: ...
        def need(self, line: IrcLine, count: int) -> bool: ...
