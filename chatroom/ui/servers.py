"""Several servers at once in the full-screen client: ``/connect HOST[:PORT]`` opens
another server's rooms in windows of their own (the status bar names the server of
each), ``/disconnect`` leaves the server of the window on screen, and ``servers = [...]``
in client.toml connects to them at start.  Commands go to the server of the window on
screen.  (A comma list given to ``chatroom join`` is one cluster's servers: failover,
not this.)  A part of :class:`~chatroom.ui.tui.ChatApp`."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from chatroom.client.connection import ChatClient, parse_address
from chatroom.errors import ChatroomError
from chatroom.protocol import DEFAULT_PORT

if TYPE_CHECKING:
    import asyncio

    from chatroom.client.config import ClientConfig
    from chatroom.client.windows import Windows

__all__ = ["Servers"]


class Servers:
    """The connections of one full-screen client (a mixin of ``ChatApp``)."""

    if TYPE_CHECKING:  # (ChatApp's)
        windows: Windows
        config: ClientConfig
        _loop: asyncio.AbstractEventLoop | None

        def on_event(self, event: object, client: ChatClient | None = None) -> None: ...
        def _say(self, text: str, error: bool) -> None: ...

    clients: list[ChatClient]

    @property
    def client(self) -> ChatClient:
        """The connection of the window on screen (the first one's windows have no owner)."""
        owner = self.windows.active.owner
        return owner if isinstance(owner, ChatClient) else self.clients[0]

    def owner_of(self, client: ChatClient) -> ChatClient | None:
        """How the windows know ``client``: None for the first connection."""
        return None if client is self.clients[0] else client

    @staticmethod
    def server_name(client: ChatClient) -> str:
        return client.session.server or f"{client.host}:{client.port}"

    def attach(self, client: ChatClient) -> None:
        """Events of ``client`` (any thread) go to its windows."""
        client.on_event = lambda event: self.on_event(event, client)

    def connect_more(self, address: str) -> str | None:
        """``/connect``: another server, in the background (the answer comes as lines
        and windows).  None, or why not."""
        try:
            host, port = parse_address(address.strip(), DEFAULT_PORT)
        except ValueError as exc:
            return f"/connect: bad address {address!r}: {exc}"
        if any((c.host, c.port) == (host, port) for c in self.clients):
            return f"/connect: already connected to {host}:{port}"
        nick = self.clients[0].nick
        client = ChatClient(host, port, nick, downloads=self.clients[0].files.downloads)
        self._say(f"connecting to {host}:{port}...", False)
        threading.Thread(target=self._connect, args=(client,), name="chatroom-connect", daemon=True).start()
        return None

    def _connect(self, client: ChatClient) -> None:
        try:
            client.connect()
        except (ChatroomError, OSError) as exc:
            why = f"/connect: {client.host}:{client.port}: {exc}"
            self._later(lambda: self._say(why, True))
            return
        self._later(lambda: self._added(client))

    def _added(self, client: ChatClient) -> None:
        self.clients.append(client)
        self.attach(client)  # (its welcome, kept meanwhile, comes now: its windows open)

    def _later(self, fn: object) -> None:
        loop = self._loop
        if loop is not None and callable(fn):
            loop.call_soon_threadsafe(fn)

    def disconnect_here(self) -> str | None:
        """``/disconnect``: the server of the window on screen (not the first one)."""
        client = self.client
        if client is self.clients[0]:
            return "/disconnect leaves a server added with /connect; /quit leaves this one"
        self.clients.remove(client)
        threading.Thread(target=client.close, args=("quit",), name="chatroom-disconnect", daemon=True).start()
        self.windows.close_all_of(client)
        self._say(f"left {self.server_name(client)}", False)
        return None
