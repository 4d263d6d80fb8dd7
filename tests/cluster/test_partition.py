"""A server cut off from Redis by a network partition, in two throw-away network
namespaces of the test's own: nothing acknowledged is lost or doubled, the others let
its members go, and when the cut heals it is fenced -- no nick held twice, every member
list the same.

    namespace A (10.200.0.1)                namespace B (10.200.0.2)
      server A  ------- veth, cut -------     Redis, server B
      ann (a client)                          bob, then a second "ann"

The cut is a firewall rule in namespace A that drops every packet to and from B
(iptables; ``.ci/run`` installs it): connections stay open and go silent, as when a
switch or a Wi-Fi link fails, rather than being refused.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from chatroom.text import nick_key
from tests.netns import ADDRESS_A, ADDRESS_B, NetnsPair
from tests.polling import wait_until
from tests.terminal import ROOT, chatroom_env

REDIS_PORT = 6390
PORT = 7373


class InNamespace:
    """A process in a namespace whose stdout lines are read as they come."""

    def __init__(self, pair: NetnsPair, pid: int, args: list[str], what: str) -> None:
        self.what = what
        self.proc = pair.python_in(pid, args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, env=chatroom_env(), cwd=str(ROOT))
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def line(self, pred: Callable[[str], bool], timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{self.what}: nothing matching within {timeout} s") from None
            if not line and self.proc.poll() is not None:
                raise AssertionError(f"{self.what} ended")
            if pred(line):
                return line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Client(InNamespace):
    def __init__(self, pair: NetnsPair, pid: int, host: str, nick: str) -> None:
        super().__init__(pair, pid, ["-m", "tests.ns_client", host, str(PORT), nick], f"client {nick}")

    def expect(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 20) -> dict[str, Any]:
        found = self.line(lambda line: line.startswith("{") and pred(json.loads(line)), timeout)
        return json.loads(found)  # type: ignore[no-any-return]

    def say(self, msg_id: str, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"say {msg_id} {text}\n")
        self.proc.stdin.flush()


def serve(pair: NetnsPair, pid: int, host: str, redis_host: str) -> InNamespace:
    server = InNamespace(pair, pid, ["-m", "chatroom", "serve", "--host", host, "--port", str(PORT), "--cluster",
                                     f"redis://{redis_host}:{REDIS_PORT}/0", "--resume-grace", "1",
                                     "--cluster-beat", "0.3", "--no-announce", "--rate", "0"], f"server on {host}")
    server.line(lambda line: "serving on" in line)
    return server


def cut(pair: NetnsPair, on: bool) -> None:
    """Drop every packet between namespace A and B (a firewall rule in A), or stop."""
    if not on:
        pair.run_in(pair.pid_a, ["iptables", "-F"])
        return
    pair.run_in(pair.pid_a, ["iptables", "-A", "OUTPUT", "-d", ADDRESS_B, "-j", "DROP"])
    pair.run_in(pair.pid_a, ["iptables", "-A", "INPUT", "-s", ADDRESS_B, "-j", "DROP"])


def redis_cli(pair: NetnsPair, *args: str) -> str:
    return pair.run_in(pair.pid_b, ["redis-cli", "-p", str(REDIS_PORT), *args]).stdout.strip()


def records(pair: NetnsPair, name: str) -> dict[str, dict[str, Any]]:
    """A Redis hash of JSON records (one line each), field -> record."""
    lines = pair.run_in(pair.pid_b, ["redis-cli", "-p", str(REDIS_PORT), "--raw", "HGETALL", name]).stdout.splitlines()
    return {field: json.loads(value) for field, value in zip(lines[::2], lines[1::2], strict=True)}


def poll(pred: Callable[[], bool], what: str, timeout: float = 20) -> None:
    # (each look runs redis-cli in the namespace, a subprocess: not too often)
    wait_until(pred, timeout, what, interval=0.1)


def test_a_server_cut_off_from_redis_is_let_go_and_fenced_when_the_cut_heals(netns):
    for tool in ("redis-server", "iptables"):
        if shutil.which(tool) is None:
            if os.environ.get("CHATROOM_REQUIRE_TOOLS"):
                pytest.fail(f"{tool} is missing (.ci/run installs it)")
            pytest.skip(f"{tool} is not installed")
    redis = netns.python_in(netns.pid_b, ["-c", "import os, sys; os.execvp('redis-server', sys.argv[1:])",
                                          "redis-server", "--bind", ADDRESS_B, "127.0.0.1", "--port",
                                          str(REDIS_PORT), "--save", "", "--appendonly", "no",
                                          "--protected-mode", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started: list[InNamespace] = []
    try:
        def pong() -> bool:
            try:
                return redis_cli(netns, "PING") == "PONG"
            except subprocess.CalledProcessError:
                return False  # not listening yet

        poll(pong, "Redis in namespace B")
        server_a = serve(netns, netns.pid_a, ADDRESS_A, ADDRESS_B)
        started.append(server_a)
        server_b = serve(netns, netns.pid_b, ADDRESS_B, "127.0.0.1")
        started.append(server_b)
        ann = Client(netns, netns.pid_a, ADDRESS_A, "ann")
        started.append(ann)
        ann.expect(lambda m: m["TYPE"] == "welcome")
        bob = Client(netns, netns.pid_b, ADDRESS_B, "bob")
        started.append(bob)
        bob.expect(lambda m: m["TYPE"] == "welcome")
        ann.say("a1", "before the cut")
        assert bob.expect(lambda m: m["TYPE"] == "chat")["text"] == "before the cut"
        ann.expect(lambda m: m["TYPE"] == "ack" and m["id"] == "a1")
        old_a = next(sid for sid, rec in records(netns, "chatroom:servers").items()
                     if rec["address"] == f"{ADDRESS_A}:{PORT}")

        cut(netns, True)  # the partition
        ann.say("a2", "during the cut")  # not stored: said so, never acknowledged
        refusal = ann.expect(lambda m: m["TYPE"] in ("error", "ack") and m.get("id") == "a2")
        assert refusal["TYPE"] == "error" and refusal["code"] in ("unavailable", "unconfirmed")
        # The others take server A for dead: ann leaves, and "ann" is free for someone else.
        bob.expect(lambda m: m["TYPE"] == "presence" and m["event"] == "leave" and m["nick"] == "ann", timeout=30)
        other_ann = Client(netns, netns.pid_b, ADDRESS_B, "ann")
        started.append(other_ann)
        other_ann.expect(lambda m: m["TYPE"] == "welcome")

        cut(netns, False)  # the cut heals
        # Server A finds its lease gone: the first ann is sent away, not served on.
        gone = ann.expect(lambda m: m["TYPE"] == "error" and m.get("fatal"), timeout=30)
        assert gone["code"] == "unavailable"
        ann.expect(lambda m: m["TYPE"] == "eof")
        poll(lambda: any(rec["address"] == f"{ADDRESS_A}:{PORT}" and sid != old_a
                         for sid, rec in records(netns, "chatroom:servers").items()),
             "server A to join the cluster again under a new id", timeout=30)

        # One ann, on server B; the member list as everyone sees it.
        servers = records(netns, "chatroom:servers")
        b_ids = {sid for sid, rec in servers.items() if rec["address"] == f"{ADDRESS_B}:{PORT}"}
        holder = json.loads(redis_cli(netns, "GET", f"chatroom:nick:{nick_key('ann')}"))
        assert holder["server"] in b_ids
        members = records(netns, "chatroom:members:lobby")
        assert sorted(m["nick"] for m in members.values()) == ["ann", "bob"]
        assert all(m["server"] in b_ids for m in members.values())
        cy = Client(netns, netns.pid_a, ADDRESS_A, "cy")  # server A serves again, in the same room
        started.append(cy)
        welcome = cy.expect(lambda m: m["TYPE"] == "welcome")
        assert sorted(m["nick"] for m in welcome["members"]) == ["ann", "bob", "cy"]
        bob.say("b1", "after the heal")
        assert cy.expect(lambda m: m["TYPE"] == "chat")["text"] == "after the heal"
        # Nothing acknowledged lost, nothing twice: the room's log.
        log = [json.loads(line)["text"] for line in
               netns.run_in(netns.pid_b, ["sh", "-c", f"redis-cli -p {REDIS_PORT} --raw XRANGE chatroom:log:lobby - + "
                                                      "| grep '\"t\":\"chat\"'"]).stdout.splitlines()]
        assert log == ["before the cut", "after the heal"]
    finally:
        for proc in reversed(started):
            proc.stop()
        redis.kill()
        redis.wait()
