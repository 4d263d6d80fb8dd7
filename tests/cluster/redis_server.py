"""A real redis-server for the cluster tests (and the benchmark): on a free loopback
port, in a temporary directory, with the durability the README documents (an
append-only file, fsync before each reply); stopped by its PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis


def _wait_for(answer: Callable[[], object], proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    """Until ``answer()`` is truthy without a Redis error (it listens), the process
    ends, or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if answer():
                return
        except redis.RedisError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{log.stem} did not start: {log.read_text()[-2000:] if log.exists() else ''}")
        time.sleep(0.02)  # polling for it to listen, bounded by the deadline


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``start()``, ``url``, ``stop()`` (SIGTERM: it finishes its file), ``kill()``;
    ``start()`` again brings it back on the same port and directory."""

    def __init__(self, directory: str | os.PathLike[str] | None = None, *, fsync: str = "always",
                 password: str | None = None, tls: tuple[str, str] | None = None,
                 replica_of: RedisServer | None = None) -> None:
        """``tls``: (certificate, key) -- it then speaks only TLS (``rediss://``);
        ``replica_of``: it replicates that one."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (.ci/run installs it: apt-get install redis-server)")
        self.binary = binary
        self._own_dir = directory is None
        self.dir = Path(directory or tempfile.mkdtemp(prefix="chatroom-redis-"))
        self.port = free_port()
        self.fsync = fsync
        self.password = password
        self.tls = tls
        self.replica_of = replica_of
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls[0]}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

    def _listening(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        cert, key = self.tls
        return ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", cert, "--tls-key-file", key,
                "--tls-ca-cert-file", cert, "--tls-auth-clients", "no"]

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.proc = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", *self._listening(), "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", self.fsync, "--save", "", "--daemonize", "no",
             "--logfile", str(self.dir / "redis.log"), "--protected-mode", "yes",
             *(["--requirepass", self.password, "--masterauth", self.password] if self.password else []),
             *(["--replicaof", "127.0.0.1", str(self.replica_of.port)] if self.replica_of else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.client()
        try:
            _wait_for(client.ping, self.proc, timeout, self.dir / "redis.log")
        finally:
            client.close()
        return self

    def stop(self) -> None:
        """End it politely (SIGTERM) and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class SentinelServer:
    """A Redis Sentinel watching ``master`` as the service ``name`` (quorum 1, a master
    silent for a second is down): on a free loopback port, stopped by its PID."""

    def __init__(self, master: RedisServer, name: str = "chat") -> None:
        self.binary = master.binary
        self.dir = Path(tempfile.mkdtemp(prefix="chatroom-sentinel-"))
        self.port = free_port()
        self.name = name
        (self.dir / "sentinel.conf").write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {name} 127.0.0.1 {master.port} 1\n"
            f"sentinel down-after-milliseconds {name} 1000\n"
            f"sentinel failover-timeout {name} 5000\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.name}/0"

    def start(self, timeout: float = 10.0) -> SentinelServer:
        self.proc = subprocess.Popen(
            [self.binary, str(self.dir / "sentinel.conf"), "--sentinel", "--logfile", str(self.dir / "sentinel.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        try:
            _wait_for(lambda: client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name), self.proc,
                      timeout, self.dir / "sentinel.log")
        finally:
            client.close()
        return self

    def master_port(self) -> int:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        try:
            _, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
            return int(port)
        finally:
            client.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
