"""A live server under seeded random input through each of its doors, while two
bystanders keep talking: nobody else's messages are lost or late, nothing reaches the
log as an error (a traceback is one), and every connection the fuzzers opened ends.

Bounded in count and time.  These runs found a say pipelined behind a hello being
refused, handler threads parked for minutes by guessers that hung up, and two
tracebacks in the web door.  The seeds are fixed (CHATROOM_FUZZ_SEED=N shifts them,
to explore); a failure names the ones that replay it.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading
import time

import pytest

from chatroom.protocol import Chat, Say
from tests.fuzzing import Fuzzer
from tests.polling import wait_until
from tests.wire import WireClient

FUZZERS = 3
CONNECTIONS = 40  # per fuzzer
SECONDS = 8.0  # per fuzzer, at most


def _play(port: int, door: str, seed: int, stop: threading.Event) -> int:
    """One fuzzer's connections, one after another; returns how many it made."""
    fuzz = Fuzzer(seed, keep_out=frozenset({"alice", "bob"}))
    deadline = time.monotonic() + SECONDS
    made = 0
    while made < CONNECTIONS and time.monotonic() < deadline and not stop.is_set():
        made += 1
        nick = f"f{seed}x{made}"
        if door == "framed":
            data = fuzz.session(nick)
        elif door == "irc":
            data = fuzz.irc_session(nick)
        else:
            data = fuzz.web_session(port, nick)
        if fuzz.rng.random() < 0.1:
            data = data[:fuzz.rng.randrange(len(data))]  # cut off anywhere
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.setblocking(False)
            sent, until = 0, time.monotonic() + 1.0
            while sent < len(data) and time.monotonic() < until:
                step = fuzz.rng.choice((1, 7, 100, 4096, len(data)))
                try:
                    sent += sock.send(data[sent:sent + step])
                except BlockingIOError:
                    stop.wait(0.005)  # the server is not reading: it may be waiting for us to read
                except OSError:
                    break  # it hung up on us
                answer = _read_some(sock)
                if answer is None:
                    break
                fuzz.learn(answer)
            until = time.monotonic() + 0.2  # what the server answers, briefly
            while time.monotonic() < until and (answer := _read_some(sock)) is not None:
                fuzz.learn(answer)
            if fuzz.rng.random() < 0.5:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
    return made


def _read_some(sock: socket.socket) -> bytes | None:
    """What is there to read now (b"" if nothing yet); None once the server closed."""
    try:
        return sock.recv(65536) or None
    except BlockingIOError:
        return b""
    except OSError:
        return None


@pytest.mark.parametrize("door", ["framed", "irc", "web"])
def test_random_input_through_every_door_hurts_nobody(make_server, caplog, door):
    caplog.set_level(logging.INFO, logger="chatroom")
    server = make_server(rate=0)
    alice, bob = WireClient(server.port), WireClient(server.port)
    alice.hello("alice")
    bob.hello("bob")
    stop, counts, crashed = threading.Event(), [], []

    def run(seed: int) -> None:
        try:
            counts.append(_play(server.port, door, seed, stop))
        except Exception as exc:  # noqa: BLE001 -- reported below, with its seed
            crashed.append(f"seed {seed}: {exc!r}")

    base = int(os.environ.get("CHATROOM_FUZZ_SEED", "0")) + 100 * ["framed", "irc", "web"].index(door)
    seeds = [base + n for n in range(FUZZERS)]
    threads = [threading.Thread(target=run, args=(seed,)) for seed in seeds]
    for t in threads:
        t.start()
    said = 0
    try:
        while any(t.is_alive() for t in threads):
            said += 1
            alice.send(Say(id=f"a{said}", text=f"still here {said}"))
            assert bob.expect(Chat, text=f"still here {said}", timeout=10).nick == "alice", f"seeds {seeds}"
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=SECONDS + 10)
    assert not crashed
    assert said > 0 and sum(counts) >= FUZZERS  # the fuzzers ran, and the room talked all along
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, f"seeds {seeds}: {errors[:5]}"
    wait_until(lambda: len(server.connections()) == 2, 10, f"the fuzzers' connections to end (seeds {seeds})")
    alice.close()
    bob.close()
