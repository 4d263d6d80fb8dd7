#!/usr/bin/env python3
"""Benchmark chatroom's server against two baselines, side by side: ngircd (a C IRC
server, from Debian's packages) and the tutorial design (scripts/naive_server.py).

The servers run as subprocesses on 127.0.0.1 (free ports); this process is the load
generator: one selector loop over every client socket, so it never blocks on a server
that stops reading.  It speaks chatroom's frames to chatroom and the tutorial server,
and IRC to ngircd (NICK/USER, JOIN #lobby, PRIVMSG: the same 100-byte texts).  Runs
alternate between the servers and medians are reported, so the figures are ratios
measured in the same run on this noisy, shared machine.  ngircd runs with its flood
penalties off (MaxPenaltyTime = 0), no DNS or ident lookups; it is installed with
apt-get if missing (root), or left out of the table with a note.  An IRC server does
not echo a message to its sender; chatroom does: deliveries are counted as received.

Scenarios (100-byte messages, one room):
  saturation  N members, S senders each send M messages as fast as they can;
              deliveries/s = messages x members / time, and end-to-end latency
  paced       a fixed offered load in deliveries/s; p50/p99 latency
  slow        one extra member never reads; the others' deliveries/s as a fraction
              of the same run without it
  scale       10,000 members join (--quick: 1,000; --scale-members N), each server given at
              most 180 s for it (ngircd tells every member of every join: it gets so far);
              one broadcast reaches all; join time, server RSS per member, server threads
  web         chatroom only: the same room with every member a browser (frames in
              WebSocket messages on /ws) against every member a terminal client:
              deliveries/s, and CPU per delivery and p99 at a paced load
  files       chatroom only (the tutorial server shares no files): chat latency
              between two members while 20 MiB files stream to three receivers,
              against the same chat with no transfer; and the transfer rate

  --cluster   (instead of the above) one room spread over 1, 2 and 3 servers of a
              cluster sharing it through Redis (redis-server from Debian's packages,
              started by the bench on a free loopback port, append-only file fsynced
              before each reply), against one server alone in the same run: saturation
              deliveries/s, paced p50/p99 latency, and Redis's share of the CPU

  --compare REV  (instead of the baselines) chatroom as it is against chatroom at commit
              REV (git archive of it, run from a temporary directory), alternating in
              one run: the cost of a change against its parent, on the same machine at
              the same time (scenarios saturation, paced, slow, scale)

Usage: python scripts/bench.py [--quick] [--cluster] [--compare REV] [--json FILE]
Every loop is bounded in count and time; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CHAT = b'{"type":"chat"'
TS = re.compile(rb'"text":"T(\d+\.\d+) ')
IRC_TS = re.compile(rb' :T(\d+\.\d+) ')
PREFIX = 4
#: The load generator's one receive buffer (a read's bytes are counted where they lie).
RECV_BUF = bytearray(1 << 18)


# ----------------------------------------------------------------------------- servers


class Server:
    """A server subprocess on 127.0.0.1 with a free port; ``kind`` is what it speaks
    ("framed": chatroom's protocol, or "irc")."""

    kind = "framed"

    def __init__(self, name: str, argv: list[str], stdout: Any = subprocess.PIPE, cwd: Path = ROOT) -> None:
        self.name = name
        # Its log (warnings and errors) is kept, to show when a run goes wrong.
        self.log = tempfile.TemporaryFile()
        # (``python -m chatroom`` imports the package of its working directory first.)
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=stdout, stderr=self.log, text=True)
        self.port = self.wait_ready()

    def log_tail(self, size: int = 1500) -> str:
        """The end of what the server wrote to its stderr."""
        self.log.seek(0, os.SEEK_END)
        self.log.seek(max(0, self.log.tell() - size))
        return self.log.read().decode(errors="replace")

    def wait_ready(self) -> int:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            match = re.search(r"serving on 127\.0\.0\.1:(\d+)", line)
            if match:
                return int(match.group(1))
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"{self.name} did not start")

    def status(self) -> dict[str, int]:
        fields = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "Threads"):
                    fields[key] = int(value.split()[0])
        return fields

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


NGIRCD_CONF = """\
[Global]
Name = {name}
Info = chatroom benchmark baseline
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = bench
PidFile = {dir}/ngircd.pid
ServerUID = {uid}
ServerGID = {gid}
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 31
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 600
[Options]
DNS = no
Ident = no
PAM = no
[Operator]
Name = {oper}
Password = {password}
"""


def ngircd_path() -> str | None:
    """Debian's ngircd, installed now if it is missing and we may (root, apt-get)."""
    found = shutil.which("ngircd") or ("/usr/sbin/ngircd" if Path("/usr/sbin/ngircd").exists() else None)
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("  installing ngircd (Debian) for the C baseline...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "-qq", "ngircd"], ["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "ngircd"]):
        if subprocess.run(cmd, env=env, capture_output=True, timeout=600).returncode == 0 and "install" in cmd:
            break
    return shutil.which("ngircd") or ("/usr/sbin/ngircd" if Path("/usr/sbin/ngircd").exists() else None)


class Ngircd(Server):
    """ngircd on 127.0.0.1 with a config of our own (a temporary directory)."""

    kind = "irc"

    def __init__(self, binary: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="chatroom-bench-ngircd-")
        with socket.socket() as probe:  # a free port (ngircd cannot be told to pick one)
            probe.bind((HOST, 0))
            self.chosen = probe.getsockname()[1]
        conf = Path(self.dir) / "ngircd.conf"
        conf.write_text(NGIRCD_CONF.format(name="bench.invalid", port=self.chosen, dir=self.dir, uid=os.getuid(),
                                           gid=os.getgid(), oper="bench", password="bench"))
        os.chmod(self.dir, 0o755)
        # Its log goes nowhere: a pipe nobody reads would fill and stop it.
        super().__init__("ngircd", [binary, "--nodaemon", "--config", str(conf)], stdout=subprocess.DEVNULL)

    def wait_ready(self) -> int:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with socket.create_connection((HOST, self.chosen), timeout=1):
                    return self.chosen
            except OSError:
                time.sleep(0.05)  # polling for the listener, bounded by the deadline
        self.stop()
        raise RuntimeError("ngircd did not start")

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class ChatroomIrc(Server):
    """chatroom spoken to through its IRC door (its own process, like every server here)."""

    kind = "irc"


class ChatroomWeb(Server):
    """chatroom spoken to as browsers speak to it: its frames in WebSocket messages on
    ``/ws`` (the load generator uses websockets' sans-I/O client, as the door does)."""

    kind = "web"


def chatroom_argv(*store: str) -> list[str]:
    # The load generator is one address with thousands of connections: no per-address limit.
    return [sys.executable, "-m", "chatroom", "serve", "--port", "0", "--rate", "0", "--max-clients", "10000",
            "--max-per-address", "0", "--log-level", "WARNING", *store]


def checkout(rev: str) -> Path:
    """The tree of commit ``rev`` in a temporary directory (``git archive``: no worktree
    left behind in the clone)."""
    import io
    import tarfile

    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev], capture_output=True,
                             timeout=120)
    if archive.returncode != 0:
        raise SystemExit(f"bench.py: --compare {rev}: {archive.stderr.decode(errors='replace').strip()}")
    where = Path(tempfile.mkdtemp(prefix="chatroom-bench-rev-"))
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(where, filter="data")
    return where


def start_compared(rev: str, tree: Path) -> dict[str, Server]:
    """This tree's chatroom and the one of ``rev``, both with history in memory."""
    return {"chatroom": Server("chatroom", chatroom_argv("--memory")),
            f"chatroom@{rev}": Server(f"chatroom@{rev}", chatroom_argv("--memory"), cwd=tree)}


def start_servers() -> dict[str, Server]:
    servers: dict[str, Server] = {
        # History in memory: the baselines keep none, so this compares the relay itself.
        "chatroom": Server("chatroom", chatroom_argv("--memory")),
    }
    # The same server through its IRC door, driven by the IRC load generator: against
    # ngircd, the same protocol on both sides.
    servers["chatroom-irc"] = ChatroomIrc("chatroom-irc", chatroom_argv("--memory"))
    binary = ngircd_path()
    if binary:
        servers["ngircd"] = Ngircd(binary)
    else:
        print("  ngircd is not installed and cannot be installed here: no C baseline in this run", flush=True)
    servers["naive"] = Server("naive", [sys.executable, "scripts/naive_server.py", "--port", "0"])
    return servers


# ----------------------------------------------------------------------------- clients


def frame(header: bytes) -> bytes:
    return len(header).to_bytes(4, "big") + header


def hello(nick: str) -> bytes:
    return frame(json.dumps({"type": "hello", "version": "1.0", "nick": nick}).encode())


def irc_register(nick: str, ngircd: bool = False) -> bytes:
    # For ngircd: an operator with user mode F, its "relaxed flood protection", so that
    # a client with more than 3 commands waiting is not throttled (its penalties off).
    # (chatroom's IRC door runs with --rate 0 instead; a wrong OPER there is throttled.)
    oper = f"OPER bench bench\r\nMODE {nick} +F\r\n" if ngircd else ""
    return f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n{oper}JOIN {IRC_CHANNEL}\r\n".encode()


IRC_CHANNEL = "#lobby"
IRC_CHAT = b" PRIVMSG "
IRC_JOINED = re.compile(rb" 366 ")  # RPL_ENDOFNAMES: the JOIN is complete


def read_frame(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed during join")
            buf += chunk
        return buf

    return exactly(int.from_bytes(exactly(4), "big"))


def read_until(sock: socket.socket, pattern: re.Pattern[bytes], deadline: float) -> bytes:
    """IRC: read lines until one matches (the end of a JOIN's names), bounded in time."""
    buf = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed during join")
        buf += chunk
        if pattern.search(buf):
            return buf
        buf = buf[-512:]
    raise TimeoutError("no end of join")


@dataclass(eq=False)
class Member:
    sock: socket.socket
    parse: bool = False  # measures latency (the send times in its stream)
    irc: bool = False  # lines of IRC instead of frames
    ws: Any = None  # a websockets ClientProtocol: frames inside WebSocket messages
    chats: int = 0
    expected: int = 0
    tail: bytes = b""
    ping_tail: bytes = b""  # (drain's: a keepalive cut in two by a read is answered too)
    latencies: list[float] = field(default_factory=list)
    # sending
    remaining: int = 0
    out: bytearray = field(default_factory=bytearray)
    sent: int = 0
    done_at: float = 0.0
    reset: bool = False  # the server closed this sender's connection during the run

    def feed(self, buf: bytearray, n: int, now: float) -> None:
        # Counted as it comes, in C, for every kind of member; a member that measures
        # latency finds the send times in the stream with one regex too.  A chat's
        # header (or IRC line) is in the stream as it is: a browser member's WebSocket
        # frames from the server are neither masked nor compressed, each chatroom frame
        # one message.  (Unwrapping with websockets' parser cost ~10 us a message in
        # this process and made the generator, not the server, the limit of the
        # browsers' row; decoding the frames of the two latency members in Python was
        # a fifth of all deliveries in the 10-member rows, and a third of the
        # generator's CPU there.)  A send time cut in two by a read is not measured.
        # The first ``n`` bytes of ``buf`` (the one receive buffer) are new: searched
        # where they lie, never copied (joining each read to the last one's tail
        # copied every byte once more), and a marker cut in two by a read is found in
        # the join of the two ends.
        marker = IRC_CHAT if self.irc else CHAT
        k = len(marker) - 1
        self.chats += buf.count(marker, 0, n) + (self.tail + buf[:min(n, k)]).count(marker)
        if self.parse:
            # A burst's messages share one send time: each time seen is converted
            # once, and its latency counted once per message (it was a float and a
            # match object per message, a quarter of the generator's CPU at 10 members).
            pattern = IRC_TS if self.irc else TS
            for sent, count in Counter(pattern.findall(buf, 0, n)).items():
                self.latencies += [now - float(sent)] * count
        self.tail = bytes(buf[n - k:n]) if n >= k else (self.tail + buf[:n])[-k:]


def join_one(server: Server, nick: str, *, rcvbuf: int = 0) -> socket.socket:
    """Connect and start joining (the answer is read by ``finish_join``)."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(30)
    sock.connect((HOST, server.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if server.kind == "web":
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        ws = ClientProtocol(parse_uri(f"ws://{HOST}:{server.port}/ws"), origin=f"http://{HOST}:{server.port}",
                            max_size=None)
        ws.send_request(ws.connect())
        sock.sendall(b"".join(ws.data_to_send()))
        WS_CLIENTS[sock] = ws
        WS_HELLOS[sock] = hello(nick)  # sent when the handshake is answered
        return sock
    sock.sendall(irc_register(nick, isinstance(server, Ngircd)) if server.kind == "irc" else hello(nick))
    return sock


#: The WebSocket client of each socket of a "web" server (until its Member holds it).
WS_CLIENTS: dict[socket.socket, Any] = {}
WS_HELLOS: dict[socket.socket, bytes] = {}


def finish_join(server: Server, sock: socket.socket) -> None:
    if server.kind == "irc":
        read_until(sock, IRC_JOINED, time.monotonic() + 120)
        return
    if server.kind == "web":
        ws, deadline = WS_CLIENTS[sock], time.monotonic() + 120
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed during join")
            ws.receive_data(chunk)
            for event in ws.events_received():
                if getattr(event, "data", b"")[PREFIX:].startswith(b'{"type":"welcome"'):
                    return
            if sock in WS_HELLOS and ws.state.name == "OPEN":
                ws.send_binary(WS_HELLOS.pop(sock))
                sock.sendall(b"".join(ws.data_to_send()))
        raise TimeoutError("no welcome over the WebSocket")
    while not read_frame(sock).startswith(b'{"type":"welcome"'):
        pass


def outgoing(member: Member, data: bytes) -> bytes:
    """What a sender writes for ``data`` (frames): each frame its own WebSocket message
    for a browser-like member."""
    if member.ws is None:
        return data
    pos = 0
    while pos < len(data):
        end = pos + PREFIX + int.from_bytes(data[pos:pos + PREFIX], "big")
        member.ws.send_binary(data[pos:end])
        pos = end
    return b"".join(member.ws.data_to_send())


#: Members arrive this many at a time (a class walking in), each waiting for its own
#: welcome (or the end of its JOIN).
JOIN_WAVE = 20


def join_members(server: Server, n: int, tag: str, parse_every: int,
                 parse_at: frozenset[int] = frozenset(), deadline: float = math.inf) -> list[Member]:
    """``n`` members join, JOIN_WAVE at a time; those already in read what the joins
    announce (every 100 arrivals).  Every ``parse_every``-th member -- or, if given,
    those at the ``parse_at`` positions -- decodes its frames for latency.  No wave
    starts after ``deadline`` (time.monotonic()): then fewer than ``n`` joined."""
    members: list[Member] = []
    irc = server.kind == "irc"
    for start in range(0, n, JOIN_WAVE):
        if time.monotonic() > deadline:
            break
        wave = [join_one(server, f"{tag}{i}") for i in range(start, min(n, start + JOIN_WAVE))]
        for i, sock in enumerate(wave, start):
            finish_join(server, sock)
            sock.setblocking(False)
            parse = i in parse_at if parse_at else i % parse_every == 0
            members.append(Member(sock, parse=parse, irc=irc, ws=WS_CLIENTS.pop(sock, None)))
        if start // JOIN_WAVE % 5 == 4:
            drain(members)
    drain(members)
    return members


#: A server's keepalive in each kind of stream, and the answer a client gives.  Members
#: that only listen are asked after half a minute of silence (chatroom's --ping-interval,
#: ngircd's PingTimeout) and let go if they do not answer: joining 10,000 IRC members
#: takes longer than that, and a generator that never answered lost the first half.
PINGS = {False: (b'{"type":"ping"', frame(b'{"type":"pong","token":"bench"}')),
         True: (b"PING ", b"PONG :bench\r\n")}


def drain(members: list[Member]) -> None:
    """Read (and drop) what is waiting for each member, without blocking; a keepalive
    is answered, as a client does."""
    for m in members:
        ping, pong = PINGS[m.irc]
        try:
            while chunk := m.sock.recv(1 << 18):
                if m.ws is not None:  # through the WebSocket parser, which must stay in step
                    m.ws.receive_data(chunk)
                    m.ws.events_received()
                elif ping in m.ping_tail + chunk[:len(ping) - 1] or ping in chunk:
                    m.sock.send(pong)
                m.ping_tail = chunk[-(len(ping) - 1):]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            pass


def close_members(members: list[Member]) -> None:
    for m in members:
        try:
            m.sock.close()
        except OSError:
            pass


def say_frames(count: int, serial: int, irc: bool = False) -> bytes:
    """``count`` say frames (or IRC PRIVMSG lines) with the send time in the text, 100
    bytes of text each.  The text is made once per call (one time for the whole burst);
    only the ids differ: the generator's own cost per message is a few byte joins."""
    text = f"T{time.time():.6f} ".ljust(100, "x")
    if irc:
        return f"PRIVMSG {IRC_CHANNEL} :{text}\r\n".encode() * count
    tail = f'","text":"{text}"}}'.encode()
    return b"".join([frame(b'{"type":"say","id":"%d%b' % (k, tail)) for k in range(serial, serial + count)])


def set_expected(members: list[Member], senders: list[Member], per_sender: int) -> int:
    """What each member should receive: every sender's messages -- but for IRC, not
    its own (an IRC server does not echo them).  Returns the total."""
    total = 0
    for m in members:
        m.expected = per_sender * (len(senders) - (m.irc and m in senders))
        total += m.expected
    return total


def pump(members: list[Member], senders: list[Member], deadline: float,
         rate_per_sender: float = 0.0) -> tuple[float, float]:
    """Run the load until every member has its ``expected`` chats or the deadline passes.

    Returns (start, end) times.  ``rate_per_sender`` > 0 paces each sender (messages/s).
    """
    sel = selectors.DefaultSelector()
    for m in members:
        sel.register(m.sock, selectors.EVENT_READ, m)
    start = time.monotonic()
    # Senders are spread evenly over one period, so a paced load is smooth, not bursts.
    period = 1.0 / rate_per_sender if rate_per_sender else 0.0
    next_send = {id(s): start + i * period / len(senders) for i, s in enumerate(senders)}
    want_write: set[int] = set()  # senders whose socket was full, waiting to be writable
    writable: set[int] = set()
    pending = len(members)
    for m in members:  # nothing to wait for (an IRC sender alone: its messages do not come back)
        if m.chats >= m.expected:
            m.done_at = start
            pending -= 1
    serial = 0
    while pending and time.monotonic() < deadline:
        now = time.monotonic()
        timeout = 0.05
        for s in senders:
            if s.remaining and not s.out:
                if rate_per_sender:
                    if now >= next_send[id(s)]:
                        s.out += outgoing(s, say_frames(1, serial, s.irc))
                        serial += 1
                        s.remaining -= 1
                        next_send[id(s)] += 1.0 / rate_per_sender
                    else:
                        timeout = min(timeout, next_send[id(s)] - now)
                else:
                    batch = min(s.remaining, 64)
                    s.out += outgoing(s, say_frames(batch, serial, s.irc))
                    serial += batch
                    s.remaining -= batch
            # A sender whose socket was full is tried again only once the selector
            # says it is writable: trying it on every turn of this loop (each try an
            # exception made with its error text) spun the generator at a full core
            # whenever the server was the slower side -- a core taken from the server
            # under test on two cores.
            if s.out and (id(s) not in want_write or id(s) in writable):
                writable.discard(id(s))
                try:
                    sent = s.sock.send(s.out)
                    del s.out[:sent]
                except BlockingIOError:
                    pass
                except OSError:  # the server cut this sender off: the run ends incomplete, the bench goes on
                    s.reset = True
                    s.remaining = 0
                    s.out.clear()
                if s.out and id(s) not in want_write:
                    sel.modify(s.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, s)
                    want_write.add(id(s))
            if not s.out and id(s) in want_write:
                sel.modify(s.sock, selectors.EVENT_READ, s)
                want_write.discard(id(s))
        if not rate_per_sender and any(s.remaining and not s.out for s in senders):
            timeout = 0  # a sender has room for its next burst: make it at once
        for key, events in sel.select(max(0.0, timeout)):
            m: Member = key.data
            if events & selectors.EVENT_WRITE:
                writable.add(id(m))
            if events & selectors.EVENT_READ:
                try:
                    got = m.sock.recv_into(RECV_BUF)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    got = 0
                if not got:
                    sel.unregister(m.sock)
                    if not m.done_at:
                        pending -= 1
                    continue
                m.feed(RECV_BUF, got, time.time())
                if not m.done_at and m.chats >= m.expected:
                    m.done_at = time.monotonic()
                    pending -= 1
    sel.close()
    finished = [m.done_at for m in members if m.done_at]
    end = max(finished) if len(finished) == len(members) else time.monotonic()
    return start, end


def report_resets(server: Server, senders: list[Member], tag: str) -> None:
    """Say so when the server cut senders off (that run is incomplete), with its log."""
    cut = sum(s.reset for s in senders)
    if cut:
        print(f"  ! {server.name} ({tag}): {cut} of {len(senders)} senders were cut off by the server; "
              f"the end of its log:\n{server.log_tail()}", flush=True)


def settle(members: list[Member], seconds: float = 0.5) -> None:
    """Drain the join announcements so a measurement starts from a quiet room."""
    for m in members:
        m.expected = 1 << 30
    pump(members, [], deadline=time.monotonic() + seconds)
    for m in members:
        m.chats = 0
        m.latencies.clear()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


# ----------------------------------------------------------------------------- scenarios


def run_saturation(server: Server, n: int, s: int, total_deliveries: int, tag: str, *,
                   stalled: bool = False, time_limit: float = 30.0) -> dict[str, float]:
    # Latency from two receivers: the middle one and the last to join (served last in
    # every fan-out).  Decoding frames in Python is the load generator's dearest work;
    # when it did so for every tenth member, the generator -- on the same two cores --
    # bounded these runs for every server (rows of 100 and 500 members read the same
    # for chatroom and ngircd).  Every member is counted, at C speed.
    members = join_members(server, n, tag, parse_every=n, parse_at=frozenset({n // 2, n - 1}))
    stall_sock = None
    if stalled:
        stall_sock = join_one(server, f"{tag}stalled", rcvbuf=4096)
        finish_join(server, stall_sock)  # its welcome; then it never reads again
    try:
        settle(members)
        per_sender = max(1, total_deliveries // (n * s))
        senders = members[:s]
        for snd in senders:
            snd.remaining = per_sender
        expected = set_expected(members, senders, per_sender)
        cpu, mine = server.cpu_seconds(), own_cpu_seconds()
        start, end = pump(members, senders, time.monotonic() + time_limit)
        cpu, mine, wall = server.cpu_seconds() - cpu, own_cpu_seconds() - mine, time.monotonic() - start
        report_resets(server, senders, tag)
        delivered = sum(min(m.chats, m.expected) for m in members)
        latencies = [x for m in members for x in m.latencies]
        return {
            "deliveries_per_s": delivered / max(end - start, 1e-9),
            "cpu_us_per_delivery": cpu / max(delivered, 1) * 1e6,
            # The load generator's own CPU over the run, as a share of one core: near 1.0,
            # it (not the server) may be what bounds the row.
            "generator_busy": mine / max(wall, 1e-9),
            "complete": float(delivered == expected),
            "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
        }
    finally:
        close_members(members)
        if stall_sock:
            stall_sock.close()


def run_paced(server: Server, n: int, s: int, offered: float, seconds: float, tag: str) -> dict[str, float]:
    # Latency from 50 receivers spread over the room (parsing all 500 in Python would
    # make the load generator, not the server, the bottleneck); the rest are counted.
    members = join_members(server, n, tag, parse_every=max(1, n // 50))
    try:
        settle(members)
        messages_per_s = offered / n
        per_sender_rate = messages_per_s / s
        per_sender = max(1, int(per_sender_rate * seconds))
        senders = members[:s]
        for snd in senders:
            snd.remaining = per_sender
        set_expected(members, senders, per_sender)
        cpu = server.cpu_seconds()
        start, end = pump(members, senders, time.monotonic() + seconds + 15, per_sender_rate)
        cpu = server.cpu_seconds() - cpu
        report_resets(server, senders, tag)
        latencies = [x for m in members for x in m.latencies]
        delivered = sum(min(m.chats, m.expected) for m in members)
        return {
            "cpu_us_per_delivery": cpu / max(delivered, 1) * 1e6,
            "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
            "complete": float(all(m.chats >= m.expected for m in members)),
        }
    finally:
        close_members(members)


#: How long a server may take to let the scale scenario's members join: ngircd tells
#: every member of every join (5,000 took it 344 s, and 10,000 would take four times
#: as long), so it is measured as far as it gets.
SCALE_JOIN_LIMIT = 180.0


def run_scale(server: Server, n: int, tag: str) -> dict[str, float]:
    before = server.status()
    t0 = time.monotonic()
    members = join_members(server, n, tag, parse_every=n, deadline=t0 + SCALE_JOIN_LIMIT)
    join_s = time.monotonic() - t0
    n = len(members)
    try:
        settle(members, 1.0)  # RSS of the steady state, not of queued announcements
        after = server.status()
        members[0].remaining = 1
        set_expected(members, members[:1], 1)
        start, end = pump(members, members[:1], time.monotonic() + 30)
        return {
            "join_s": join_s,
            "joined": float(n),
            "broadcast_ms": (end - start) * 1000,
            "reached": float(sum(m.chats >= m.expected for m in members)),
            "rss_per_client_kib": (after["VmRSS"] - before["VmRSS"]) / n,
            "threads": float(after["Threads"]),
        }
    finally:
        close_members(members)


def file_load(port: int, seconds: float, size: int, receivers: int) -> None:
    """``--file-load``: in its own process (so its hashing and disk writes do not
    share a GIL with the chat being measured), offer a file of ``size`` bytes to
    ``receivers`` members again and again for ``seconds``.  Prints a JSON summary."""
    import queue
    import shutil

    sys.path.insert(0, str(ROOT))
    from chatroom.client.connection import ChatClient
    from chatroom.client.transfers import TransferChanged

    work = Path(tempfile.mkdtemp(prefix="chatroom-bench-files-"))
    source = work / "payload.bin"
    source.write_bytes(os.urandom(size))
    events: dict[str, queue.Queue[object]] = {}
    clients: dict[str, ChatClient] = {}
    try:
        for nick in ["fsender", *(f"frecv{i}" for i in range(receivers))]:
            events[nick] = queue.Queue()
            clients[nick] = ChatClient(HOST, port, nick, downloads=work / nick, on_event=events[nick].put)
            clients[nick].connect()

        def wait(nick: str, whats: tuple[str, ...], deadline: float) -> TransferChanged:
            while True:
                e = events[nick].get(timeout=max(0.01, deadline - time.monotonic()))
                if isinstance(e, TransferChanged) and e.what in whats:
                    return e

        start = time.monotonic()
        moved = transfers = 0
        print("ready", flush=True)
        while time.monotonic() - start < seconds and transfers < 1000:
            deadline = time.monotonic() + 60
            offer = clients["fsender"].files.offer(source)
            for nick in clients:
                if nick != "fsender":
                    clients[nick].files.accept(wait(nick, ("offered",), deadline).transfer.id)
            for nick in clients:
                if nick != "fsender":
                    saved = wait(nick, ("saved", "failed"), deadline)
                    if saved.what == "saved" and saved.transfer.path:
                        moved += size
                        saved.transfer.path.unlink()
            for _ in range(receivers):
                wait("fsender", ("received", "failed"), deadline)
            clients["fsender"].files.cancel(offer.id)  # the chatters in the room never answer it
            transfers += 1
        elapsed = time.monotonic() - start
        print(json.dumps({"bytes_per_receiver_per_s": moved / receivers / elapsed, "transfers": transfers}),
              flush=True)
    finally:
        for c in clients.values():
            c.close()
        shutil.rmtree(work, ignore_errors=True)


def run_page_flood(port: int, total: int, rate: float, tag: str) -> dict[str, float]:
    """A real page (headless Chromium, as in tests/web) in a room while ``total``
    messages arrive at ``rate`` per second: its longest main-thread stall (long tasks
    and a timer's lateness), the lines it keeps, its JavaScript heap before and after
    (collected), and whether it got everything without the server dropping it."""
    sys.path.insert(0, str(ROOT))
    from chatroom.protocol import Say, encode_message
    from tests.web.browser import Browser

    page = Browser(f"http://{HOST}:{port}/?nick={tag}page")
    sender = socket.create_connection((HOST, port))
    try:
        page.wait("document.getElementById('rooms').textContent.includes('you are in lobby')", what="the page")
        from chatroom.protocol import PROTOCOL_VERSION, Hello

        sender.sendall(encode_message(Hello(version=PROTOCOL_VERSION, nick=f"{tag}flood")))

        def drain() -> None:  # the sender reads what comes back (its echoes and acks), as a client does
            try:
                while sender.recv(1 << 16):
                    pass
            except OSError:
                pass

        import threading

        threading.Thread(target=drain, daemon=True).start()
        page.eval("window.stall = 0; new PerformanceObserver((l) => { for (const e of l.getEntries()) "
                  "window.stall = Math.max(window.stall, e.duration); }).observe({ type: 'longtask' });"
                  "window.late = 0; (() => { let t = performance.now(); setInterval(() => { const now = "
                  "performance.now(); window.late = Math.max(window.late, now - t - 50); t = now; }, 50); })(); true")
        page.call("HeapProfiler.collectGarbage")
        before = page.call("Runtime.getHeapUsage")["usedSize"]
        t0 = time.monotonic()
        sent = 0
        while sent < total:  # in 20 ms steps, as the offered rate allows
            due = min(total, int((time.monotonic() - t0) * rate) + 1)
            if due > sent:
                sender.sendall(b"".join(encode_message(Say(id=f"p{i}", text=f"{tag} flood {i} " + "x" * 60))
                                        for i in range(sent, due)))
                sent = due
            time.sleep(0.02)  # pacing the offered load
        last = f"{tag} flood {total - 1} " + "x" * 60
        page.wait(f"Array.from(document.querySelectorAll('#rooms li .text')).some((s) => s.textContent === {last!r})",
                  timeout=120, what="the last line")
        page.call("HeapProfiler.collectGarbage")
        after = page.call("Runtime.getHeapUsage")["usedSize"]
        return {
            "stall_ms": max(page.eval("window.stall"), page.eval("window.late")),
            "lines_kept": float(page.eval("document.querySelector('#rooms ol:not([hidden])').childElementCount")),
            "heap_kib_before": before / 1024, "heap_kib_after": after / 1024,
            "connected": float(page.eval("document.getElementById('state').textContent") == "connected"),
        }
    finally:
        sender.close()
        page.close()


def run_chat_latency(port: int, seconds: float, rate: float, tag: str, *, files: bool) -> dict[str, float]:
    """Chat between two members at ``rate`` messages/s for ``seconds``; with
    ``files``, a --file-load process streams files through the same server."""
    sys.path.insert(0, str(ROOT))
    from chatroom.client.connection import ChatClient
    from chatroom.protocol import Chat

    sent: dict[str, float] = {}
    latencies: list[float] = []

    def on_event(event: object) -> None:
        if isinstance(event, Chat) and event.text in sent:
            latencies.append(time.monotonic() - sent[event.text])

    talker = ChatClient(HOST, port, f"{tag}talk", on_event=lambda e: None)
    listener = ChatClient(HOST, port, f"{tag}listen", on_event=on_event)
    load = None
    summary: dict[str, float] = {}
    try:
        talker.connect()
        listener.connect()
        if files:
            load = subprocess.Popen([sys.executable, __file__, "--file-load", str(port), str(seconds)],
                                    cwd=ROOT, stdout=subprocess.PIPE, text=True)
            assert load.stdout is not None
            load.stdout.readline()  # "ready"
        count = int(seconds * rate)
        t0 = time.monotonic()
        for i in range(count):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the offered load
            text = f"{tag} {i}"
            sent[text] = time.monotonic()
            talker.say(text)
        deadline = time.monotonic() + 10
        while len(latencies) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        if load is not None:
            out, _ = load.communicate(timeout=120)
            summary = json.loads(out.strip().splitlines()[-1])
    finally:
        if load is not None and load.poll() is None:
            load.kill()
        talker.close()
        listener.close()
    return {"p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
            "max_ms": max(latencies) * 1000, "received": float(len(latencies)), **summary}


# ----------------------------------------------------------------------------- main


def join_spread(servers: list[Server], n: int, tag: str, parse_every: int) -> list[Member]:
    """``n`` members of one room, spread round-robin over ``servers`` (a cluster)."""
    members: list[Member] = []
    for start in range(0, n, JOIN_WAVE):
        wave = [(servers[i % len(servers)], join_one(servers[i % len(servers)], f"{tag}{i}"))
                for i in range(start, min(n, start + JOIN_WAVE))]
        for i, (server, sock) in enumerate(wave, start):
            finish_join(server, sock)
            sock.setblocking(False)
            members.append(Member(sock, parse=(i % parse_every == 0)))
        drain(members)
    return members


def run_cluster_once(servers: list[Server], redis_pid: int | None, n: int, s: int, work: float, tag: str,
                     paced: float | None = None) -> dict[str, float]:
    """Saturation (``paced`` None: ``work`` deliveries) or a paced load (``paced``
    deliveries/s for ``work`` seconds) over one room spread over ``servers``."""
    # Latency from 50 members at a paced load; under saturation from two (decoding in
    # Python is the generator's dearest work: with 50 it bounded the row of one server).
    members = join_spread(servers, n, tag, parse_every=max(1, n // 50) if paced else max(1, n // 2))
    try:
        settle(members)
        senders = [members[i] for i in range(s)]  # round-robin: the senders are on every server
        if paced is None:
            per_sender, rate = max(1, int(work) // (n * s)), 0.0
            deadline = time.monotonic() + 60
        else:
            rate = paced / n / s
            per_sender, deadline = max(1, int(rate * work)), time.monotonic() + work + 15
        for snd in senders:
            snd.remaining = per_sender
        set_expected(members, senders, per_sender)
        cpu = [srv.cpu_seconds() for srv in servers]
        redis_cpu = _pid_cpu(redis_pid) if redis_pid else 0.0
        start, end = pump(members, senders, deadline, rate)
        cpu_servers = sum(srv.cpu_seconds() for srv in servers) - sum(cpu)
        cpu_redis = (_pid_cpu(redis_pid) - redis_cpu) if redis_pid else 0.0
        delivered = sum(min(m.chats, m.expected) for m in members)
        latencies = [x for m in members for x in m.latencies]
        return {
            "deliveries_per_s": delivered / max(end - start, 1e-9),
            "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
            "redis_cpu_share": cpu_redis / max(cpu_redis + cpu_servers, 1e-9),
            "cpu_us_per_delivery": (cpu_servers + cpu_redis) / max(delivered, 1) * 1e6,
            "complete": float(all(m.chats >= m.expected for m in members)),
        }
    finally:
        close_members(members)


def _pid_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def cluster_main(quick: bool, repeat: int, json_path: str, fsync: str = "always") -> int:
    """``--cluster``: see the module docstring."""
    sys.path.insert(0, str(ROOT))
    import redis

    from tests.cluster.redis_server import RedisServer

    try:
        store = RedisServer(fsync=fsync).start()
        # A replica, for the row whose acknowledgements wait for one (--cluster-replicas 1).
        replica = RedisServer(fsync=fsync, replica_of=store).start()
    except RuntimeError as exc:
        print(f"no cluster benchmark: {exc}")
        return 1
    n, s = 100, 10
    saturation = 1_000_000 if quick else 2_000_000
    paced, seconds = 5_000, (3.0 if quick else 5.0)
    setups = [("alone", 0, 0), ("cluster x1", 1, 0), ("cluster x2", 2, 0), ("cluster x3", 3, 0),
              ("x1 +replica", 1, 1)]
    runs: dict[str, dict[str, list[dict[str, float]]]] = {name: {"saturation": [], "paced": []}
                                                          for name, _, _ in setups}
    counter = iter(range(10**9))
    try:
        for r in range(repeat):
            for name, k, replicas in setups[r % len(setups):] + setups[:r % len(setups)]:
                redis.Redis(port=store.port).flushall()
                extra = ["--cluster-replicas", str(replicas)] if replicas else []
                servers = ([Server(name, chatroom_argv("--memory"))] if k == 0 else
                           [Server(f"{name}/{i}", chatroom_argv("--cluster", store.url, *extra)) for i in range(k)])
                pid = store.proc.pid if k and store.proc else None
                try:
                    runs[name]["saturation"].append(run_cluster_once(servers, pid, n, s, saturation,
                                                                     f"k{next(counter)}x"))
                    runs[name]["paced"].append(run_cluster_once(servers, pid, n, s, seconds, f"q{next(counter)}x",
                                                                paced=paced))
                finally:
                    for srv in servers:
                        srv.stop()
    finally:
        replica.close()
        store.close()
    figures = {name: {kind: median_of(r) for kind, r in by.items()} for name, by in runs.items()}
    base = figures["alone"]
    print(f"\nRedis: appendonly yes, appendfsync {fsync}")
    print(f"one room, N={n} members, S={s} senders, spread round-robin over the servers; medians of {repeat}")
    print(f"{'setup':<12}{'sat. deliv/s':>14}{'vs alone':>10}{'paced p50':>11}{'p99':>9}{'vs alone':>10}"
          f"{'us/deliv':>10}{'redis cpu':>11}")
    for name, _, _ in setups:
        sat, pac = figures[name]["saturation"], figures[name]["paced"]
        print(f"{name:<12}{sat['deliveries_per_s']:>14,.0f}"
              f"{sat['deliveries_per_s'] / base['saturation']['deliveries_per_s']:>9.2f}x"
              f"{pac['p50_ms']:>9.1f}ms{pac['p99_ms']:>7.1f}ms"
              f"{base['paced']['p99_ms'] / pac['p99_ms']:>9.2f}x{pac['cpu_us_per_delivery']:>10.1f}"
              f"{sat['redis_cpu_share']:>10.0%}")
    print(f"(paced: {paced:,} deliveries/s offered for {seconds:g} s; 'vs alone' > 1 is better than one server "
          "alone; redis cpu: Redis's share of all CPU used by the servers and Redis under saturation; x1 +replica: "
          "one server whose acks wait for a Redis replica, --cluster-replicas 1)")
    Path(json_path).write_text(json.dumps({"quick": quick, "repeat": repeat, "cluster": figures}, indent=2))
    print(f"raw figures: {json_path}")
    return 0


def own_cpu_seconds() -> float:
    """This process's CPU time (the load generator's), user and system."""
    t = os.times()
    return t.user + t.system


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median of each figure, and its spread over the runs as ``KEY~``: (largest -
    smallest) / median, so a reader sees how far one run could be from another."""
    figures: dict[str, float] = {}
    for k in runs[0]:
        values = [r[k] for r in runs]
        mid = figures[k] = statistics.median(values)
        figures[f"{k}~"] = (max(values) - min(values)) / mid if mid else float("nan")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="chatroom vs the tutorial server, side by side")
    parser.add_argument("--quick", action="store_true", help="fewer, smaller runs (development)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per scenario (median)")
    parser.add_argument("--json", default=str(ROOT / "bench-results.json"), help="raw figures go here")
    parser.add_argument("--only", help="comma-separated scenario names "
                                       "(saturation,paced,slow,durable,web,scale,files)")
    parser.add_argument("--cluster", action="store_true", help="one room over 1-3 servers sharing it through Redis")
    parser.add_argument("--redis-fsync", choices=["always", "everysec"], default="always",
                        help="--cluster: Redis's appendfsync (default %(default)s: what the README documents)")
    parser.add_argument("--compare", metavar="REV",
                        help="chatroom against itself at commit REV instead of the baselines (saturation, paced, "
                             "slow, scale)")
    parser.add_argument("--scale-members", type=int, metavar="N",
                        help="members of the scale scenario (default 1,000 with --quick, else 10,000)")
    parser.add_argument("--file-load", nargs=2, metavar=("PORT", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.file_load:
        file_load(int(args.file_load[0]), float(args.file_load[1]), 20 * 1024 * 1024, 3)
        return 0

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 50000)), hard))  # (10,000 members: both ends)

    quick = args.quick
    repeat = args.repeat or (1 if quick else 3)
    if args.cluster:
        return cluster_main(quick, repeat, args.json, args.redis_fsync)
    # Enough that a run lasts a second or more at chatroom's pace: 12 messages per sender (500
    # members, 50 senders, the old 300,000) measured a burst's start, not a flood.
    deliveries = 2_000_000 if quick else 4_000_000
    only = set(args.only.split(",")) if args.only else {"saturation", "paced", "slow", "durable", "web", "scale",
                                                         "files"}
    tree = None
    if args.compare:
        only &= {"saturation", "paced", "slow", "scale"}  # (the others start servers of their own)
        tree = checkout(args.compare)
    results: dict[str, dict[str, dict[str, float]]] = {}
    # label, unit, {server: median}, higher_is_better, {server: spread}
    rows: list[tuple[str, str, dict[str, float], bool, dict[str, float]]] = []
    alone: list[tuple[str, str, float, float, str]] = []  # chatroom against itself: label, unit, a, b, what

    def record(label: str, figures: dict[str, dict[str, float]], keys: list[tuple[str, str, bool]]) -> None:
        results[label] = figures
        for key, unit, higher in keys:
            rows.append((f"{label} {key}", unit, {name: f[key] for name, f in figures.items()}, higher,
                         {name: f.get(f"{key}~", float("nan")) for name, f in figures.items()}))

    def alternate(fn) -> dict[str, dict[str, float]]:
        """Each server ``repeat`` times, the order rotating, medians."""
        names = list(servers)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for r in range(repeat):
            for name in names[r % len(names):] + names[:r % len(names)]:
                runs[name].append(fn(servers[name]))
        return {name: median_of(runs[name]) for name in names}

    def say(label: str, figures: dict[str, dict[str, float]], key: str, fmt: str) -> None:
        print(f"  {label}: " + ", ".join(f"{name} {fmt.format(f[key])}" for name, f in figures.items()), flush=True)

    servers = start_compared(args.compare, tree) if tree is not None else start_servers()
    counter = iter(range(10**9))
    try:
        if "saturation" in only:
            for n in (10, 100, 500):
                for s in sorted({1, max(1, n // 10)}):
                    figures = alternate(
                        lambda srv, n=n, s=s: run_saturation(srv, n, s, deliveries, f"s{next(counter)}x"))
                    label = f"saturation N={n} S={s}"
                    # Server CPU per delivery too: on two shared cores the load generator takes
                    # what the server leaves, so this is each server's cost whatever bounds the row.
                    record(label, figures, [("deliveries_per_s", "/s", True), ("p99_ms", "ms", False),
                                            ("cpu_us_per_delivery", "us", False)])
                    say(label, figures, "deliveries_per_s", "{:,.0f}/s")
                    say("    the load generator busy", figures, "generator_busy", "{:.0%}")
        if "paced" in only:
            for n, s, offered in [(100, 10, 20_000), (500, 50, 20_000), (500, 50, 100_000)]:
                seconds = 2.0 if quick else 4.0
                figures = alternate(lambda srv, n=n, s=s, o=offered, t=seconds:
                                    run_paced(srv, n, s, o, t, f"p{next(counter)}x"))
                label = f"paced N={n} {offered // 1000}k/s"
                record(label, figures, [("p50_ms", "ms", False), ("p99_ms", "ms", False),
                                        ("cpu_us_per_delivery", "us", False)])
                say(f"{label} p99", figures, "p99_ms", "{:.1f} ms")
        if "slow" in only:
            n, s = 100, 10
            limit = 10.0 if quick else 15.0

            # ~24 MB to every member: far more than a stalled socket's kernel buffers
            # absorb (several MB on loopback), so a server that waits for it must show
            # it; and ~3 s of flood, not ~1 -- at 8 MB, runs of the same tree read 46 %
            # apart in their ratio (one-second runs: the first joins, the scheduler).
            volume = 24_000_000 // 150 * n

            def slow_ratio(srv: Server) -> dict[str, float]:
                free = run_saturation(srv, n, s, volume, f"f{next(counter)}x", time_limit=limit)
                stalled = run_saturation(srv, n, s, volume, f"w{next(counter)}x", stalled=True, time_limit=limit)
                return {"fraction_kept": stalled["deliveries_per_s"] / free["deliveries_per_s"],
                        "complete": stalled["complete"]}

            figures = alternate(slow_ratio)
            record(f"slow consumer N={n} S={s}", figures, [("fraction_kept", "x", True)])
            say("slow consumer: the others keep", figures, "fraction_kept", "{:.0%}")
        if "durable" in only:
            # The cost of durability: chatroom with its SQLite store (every message
            # committed before it is relayed) against chatroom in memory.
            with tempfile.TemporaryDirectory(prefix="chatroom-bench-") as data_dir:
                sqlite = Server("sqlite", chatroom_argv("--data-dir", data_dir))
                try:
                    for n, s in [(100, 1), (100, 10), (500, 50)]:
                        runs: dict[str, list[dict[str, float]]] = {"sqlite": [], "memory": []}
                        for r in range(repeat):
                            for name in (["sqlite", "memory"] if r % 2 == 0 else ["memory", "sqlite"]):
                                srv = sqlite if name == "sqlite" else servers["chatroom"]
                                runs[name].append(run_saturation(srv, n, s, deliveries, f"d{next(counter)}x"))
                        disk, mem = median_of(runs["sqlite"]), median_of(runs["memory"])
                        label = f"durable N={n} S={s}"
                        results[label] = {"sqlite": disk, "memory": mem}
                        alone.append((label, "/s", disk["deliveries_per_s"], mem["deliveries_per_s"],
                                      "SQLite vs memory"))
                        print(f"  {label}: sqlite {disk['deliveries_per_s']:,.0f}/s, "
                              f"memory {mem['deliveries_per_s']:,.0f}/s", flush=True)
                finally:
                    sqlite.stop()
        if "web" in only:
            # What a browser member costs: one server process, driven once as terminal
            # clients and once as browsers, alternating.
            web = ChatroomWeb("chatroom-web", chatroom_argv("--memory"))
            try:
                # (Three times the deliveries of the saturation rows: this row compares CPU
                # per delivery, and a run of 2 M deliveries is ~25 of the kernel's 10 ms
                # ticks of server CPU -- its spread was +-46 %.)
                for kind, fn in (("saturation", lambda srv: run_saturation(srv, 100, 10, 3 * deliveries,
                                                                           f"w{next(counter)}x")),
                                 ("paced 20k/s", lambda srv: run_paced(srv, 100, 10, 20_000, 2.0 if quick else 4.0,
                                                                       f"v{next(counter)}x"))):
                    runs = {"web": [], "framed": []}
                    for r in range(repeat):
                        for name in (["web", "framed"] if r % 2 == 0 else ["framed", "web"]):
                            srv = web if name == "web" else servers["chatroom"]
                            runs[name].append(fn(srv))
                    browser, terminal = median_of(runs["web"]), median_of(runs["framed"])
                    label = f"browsers N=100 S=10 {kind}"
                    results[label] = {"web": browser, "framed": terminal}
                    for key, unit in (("deliveries_per_s", "/s"), ("cpu_us_per_delivery", "us"), ("p99_ms", "ms")):
                        if key in browser:
                            alone.append((f"{label} {key}", unit, browser[key], terminal[key],
                                          "browsers vs terminal clients"))
                    print(f"  {label}: " + ", ".join(f"{k} {browser[k]:,.1f} vs {terminal[k]:,.1f}"
                                                     for k in ("deliveries_per_s", "cpu_us_per_delivery", "p99_ms")
                                                     if k in browser), flush=True)
                # A page in a flood (8,000 messages at 200/s; --quick: 2,000): the brief's
                # goals are no stall over 100 ms, a bounded page and a flat heap.
                total = 2000 if quick else 8000
                flood = median_of([run_page_flood(servers["chatroom"].port, total, 200.0, f"pf{next(counter)}x")
                                   for _ in range(repeat)])
                label = f"a page in a flood of {total:,} at 200/s"
                results[label] = {"web": flood}
                alone.append((f"{label}: longest stall", "ms", flood["stall_ms"], 100.0, "against the 100 ms goal"))
                alone.append((f"{label}: JS heap", "Ki", flood["heap_kib_after"], flood["heap_kib_before"],
                              "after vs before"))
                alone.append((f"{label}: lines kept", "", flood["lines_kept"], float(total), "of the lines sent"))
                print(f"  {label}: stall {flood['stall_ms']:.0f} ms, heap {flood['heap_kib_before']:,.0f} -> "
                      f"{flood['heap_kib_after']:,.0f} KiB, {flood['lines_kept']:.0f} lines kept, "
                      f"connected {bool(flood['connected'])}", flush=True)
            finally:
                web.stop()
        if "files" in only:
            seconds = 4.0 if quick else 8.0
            runs = {"alone": [], "files": []}
            for r in range(repeat):
                for mode in (["alone", "files"] if r % 2 == 0 else ["files", "alone"]):
                    runs[mode].append(run_chat_latency(servers["chatroom"].port, seconds, 50.0,
                                                       f"l{next(counter)}x", files=mode == "files"))
            quiet, busy = median_of(runs["alone"]), median_of(runs["files"])
            label = "chat during file transfers"
            results[label] = {"with_files": busy, "without": quiet}
            alone.append((f"{label} p50", "ms", busy["p50_ms"], quiet["p50_ms"], "with vs without"))
            alone.append((f"{label} p99", "ms", busy["p99_ms"], quiet["p99_ms"], "with vs without"))
            rate = busy["bytes_per_receiver_per_s"] / 1024 / 1024
            print(f"  chat p50/p99: {quiet['p50_ms']:.1f}/{quiet['p99_ms']:.1f} ms alone, "
                  f"{busy['p50_ms']:.1f}/{busy['p99_ms']:.1f} ms while {busy['transfers']:.0f} x 20 MiB went to 3 "
                  f"receivers at {rate:.0f} MiB/s each", flush=True)
        if "scale" in only:
            n = args.scale_members or (1000 if quick else 10_000)
            figures = {}
            for name, srv in servers.items():  # once each: a restart would be needed to repeat cleanly
                figures[name] = run_scale(srv, n, f"c{next(counter)}x")
            record(f"scale N={n}", figures, [("joined", "", True), ("join_s", "s", False),
                                             ("broadcast_ms", "ms", False), ("rss_per_client_kib", "KiB", False),
                                             ("threads", "", False)])
            say(f"scale N={n}: joined (in at most {SCALE_JOIN_LIMIT:.0f} s)", figures, "joined", "{:.0f}")
            say(f"scale N={n}: reached", figures, "reached", "{:.0f}")
    finally:
        for srv in servers.values():
            srv.stop()
        if tree is not None:
            shutil.rmtree(tree, ignore_errors=True)

    print_table(list(servers), rows, alone)
    Path(args.json).write_text(json.dumps({"quick": quick, "repeat": repeat, "results": results}, indent=2))
    print(f"raw figures: {args.json}")
    return 0


def spread(value: float) -> str:
    return "" if value != value else f"+-{value * 50:.0f}%"  # (half the range: +- around the median)


def print_table(names: list[str], rows: list[tuple[str, str, dict[str, float], bool, dict[str, float]]],
                alone: list[tuple[str, str, float, float, str]]) -> None:
    baselines = [name for name in names if name not in ("chatroom", "chatroom-irc")]  # (or chatroom@REV)
    # (ours, theirs, column title): chatroom against each baseline; its IRC door against ngircd
    pairs = [("chatroom", name, f"vs {name}") for name in baselines]
    if "chatroom-irc" in names and "ngircd" in names:
        pairs.append(("chatroom-irc", "ngircd", "irc/ngircd"))
    print()
    print(f"{'scenario':<44}" + "".join(f"{name:>21}" for name in names)
          + "".join(f"{title:>11}" for _, _, title in pairs))
    for label, unit, values, higher, spreads in rows:
        line = f"{label:<44}" + "".join(f"{values[name]:>13,.1f}{unit[:2]:>2}{spread(spreads[name]):>6}"
                                        for name in names)
        for ours_name, base_name, _ in pairs:
            ours, base = values[ours_name], values[base_name]
            ratio = (ours / base if higher else base / ours) if ours and base else float("nan")
            line += f"{ratio:>10.2f}x"
        print(line)
    print("(a ratio > 1 means chatroom is better: faster, or lower latency/CPU/memory; irc/ngircd: chatroom's IRC "
          "door against ngircd, both driven as IRC; +-N%: half the spread of the runs, (max - min) / 2 / median)")
    if alone:
        print()
        for label, unit, a, b, what in alone:
            print(f"{label:<44} {a:>13,.1f}{unit[:2]:>2} {b:>13,.1f}{unit[:2]:>2}   ({what})")

if __name__ == "__main__":
    sys.exit(main())
