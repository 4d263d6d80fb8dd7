"""A Redis password given in --cluster's URL is never printed or logged."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chatroom.redact import redacted_url
from tests.cluster.redis_server import RedisServer
from tests.polling import wait_until


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("redis://:hunter2@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("redis://default:p@ss@127.0.0.1:6379/0", "redis://default:***@127.0.0.1:6379/0"),
    ("redis://hunter2@127.0.0.1/0", "redis://***@127.0.0.1/0"),
    ("redis://127.0.0.1:6379/0?password=hunter2&db=1", "redis://127.0.0.1:6379/0?password=***&db=1"),
    ("rediss://:hunter2@127.0.0.1:6380/0", "rediss://:***@127.0.0.1:6380/0"),
])
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


def test_the_server_prints_and_logs_the_cluster_url_with_the_password_masked(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        if os.environ.get("CHATROOM_REQUIRE_TOOLS"):
            pytest.fail("redis-server is missing (.ci/run installs it)")
        pytest.skip("redis-server is not installed")
    password = "correct-horse-7f3a"
    redis_server = RedisServer(password=password).start()
    log_file = tmp_path / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatroom", "serve", "--port", "0", "--cluster", redis_server.url, "--no-announce",
         "--log-file", str(log_file), "--log-level", "INFO"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        printed = []
        while not any(line.startswith("cluster:") for line in printed):
            line = proc.stdout.readline()
            assert line, f"the server ended: {printed}"
            printed.append(line)
        assert ":***@127.0.0.1" in "".join(printed)
        redis_server.kill()  # an outage: the server says so in its log (its heartbeat fails)
        wait_until(lambda: log_file.exists() and "cannot reach Redis" in log_file.read_text(), 20,
                   "the outage in the log")
        logged = log_file.read_text()
        assert ":***@127.0.0.1" in logged
        assert password not in "".join(printed) + logged
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        redis_server.close()
    assert password not in out
