from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator

import pytest

from chatroom.app import build_server
from chatroom.protocol import PROTOCOL_VERSION
from chatroom.server.tcp import ChatServer, ServerConfig
from tests.wire import WireClient

# A server.toml or client.toml in the developer's own config directory must not change
# what the tests' servers and clients do (children inherit this too).
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="chatroom-tests-config-")


@pytest.fixture
def make_server() -> Iterator[Callable[..., ChatServer]]:
    """Start servers on 127.0.0.1:0 in a thread; stop and join them all afterwards."""
    servers: list[ChatServer] = []

    def start(**overrides: object) -> ChatServer:
        config = ServerConfig(**{"host": "127.0.0.1", "port": 0, **overrides})  # type: ignore[arg-type]
        server = build_server(config)
        server.serve_in_thread()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """One self-signed certificate for the TLS tests (made as 'serve --tls' makes it)."""
    from chatroom.tls import ensure_certificate

    cert, key = ensure_certificate(tmp_path_factory.mktemp("tls"), "test-host")
    return str(cert), str(key)


@pytest.fixture
def server(make_server: Callable[..., ChatServer]) -> ChatServer:
    return make_server()


@pytest.fixture
def connect(server: ChatServer) -> Iterator[Callable[..., WireClient]]:
    """Open raw protocol clients to ``server``; all are closed afterwards."""
    clients: list[WireClient] = []

    def open_client(nick: str | None = None, port: int | None = None, version: str = PROTOCOL_VERSION) -> WireClient:
        client = WireClient(port or server.port)
        clients.append(client)
        if nick is not None:
            client.hello(nick, version)
        return client

    yield open_client
    for client in clients:
        client.close()


@pytest.fixture
def netns():
    from tests.netns import NamespacesUnavailable, NetnsPair

    try:
        pair = NetnsPair()
    except NamespacesUnavailable as exc:
        if os.environ.get("CHATROOM_REQUIRE_NETNS"):
            pytest.fail(f"network namespaces are required here (CHATROOM_REQUIRE_NETNS): {exc}")
        pytest.skip(str(exc))
    yield pair
    pair.close()
