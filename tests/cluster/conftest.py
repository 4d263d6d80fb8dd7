from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator

import pytest

from chatroom.server.tcp import ChatServer
from tests.cluster.redis_server import RedisServer
from tests.terminal import ServerProcess


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own, on a free loopback port (stopped after)."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CHATROOM_REQUIRE_TOOLS"):
            pytest.fail("redis-server is missing (.ci/run installs it)")
        pytest.skip("redis-server is not installed")
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def cluster(redis_server: RedisServer, make_server: Callable[..., ChatServer]) -> Callable[..., ChatServer]:
    """``cluster()``: one more server of a cluster on ``redis_server`` (in this process)."""

    def start(**overrides: object) -> ChatServer:
        return make_server(**{"cluster": redis_server.url, "cluster_beat": 0.2, "rate": 0, **overrides})

    return start


@pytest.fixture
def cluster_process(redis_server):
    """``chatroom serve --cluster`` as subprocesses of this test's Redis."""
    started: list[ServerProcess] = []

    def start(*extra: str) -> ServerProcess:
        server = ServerProcess("--cluster", redis_server.url, "--rate", "0", *extra)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
