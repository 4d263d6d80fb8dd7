"""Backpressure: a flood slows its sender to the pace of the room's readers; only a
reader that stopped reading is dropped as too slow (server/pace.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

from chatroom.protocol import PROTOCOL_VERSION, Chat, FrameDecoder, Hello, Say, decode_message, encode_message
from chatroom.server.outbox import Flusher, Outbox
from chatroom.server.pace import RESUME, STALL, burst_room, keep_pace, to_wait_for, waited_for
from tests.irc.client import IrcClient
from tests.polling import wait_until
from tests.terminal import ROOT, chatroom_env
from tests.wire import WireClient

LIMIT = 64 * 1024


def outbox_pair(flusher: Flusher, limit: int = LIMIT) -> tuple[Outbox, socket.socket]:
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return Outbox(ours, flusher, threading.RLock(), limit), theirs


def fill(outbox: Outbox, size: int) -> None:
    with outbox.producer_lock:
        for _ in range(size // 1024):
            assert outbox.put(b"x" * 1024)
    outbox.flush()


def stop_reading(stop: threading.Event, thread: threading.Thread, outbox: Outbox, reader_end: socket.socket,
                 flusher: Flusher) -> None:
    """A test's reader thread stopped, its outbox pair closed, the flusher stopped."""
    stop.set()
    outbox.close()
    reader_end.close()
    thread.join(5)
    flusher.stop()


def test_a_sender_waits_for_a_slow_reader_until_it_has_caught_up():
    flusher = Flusher()
    flusher.start()
    stop = threading.Event()
    outbox, reader_end = outbox_pair(flusher)
    read = []

    def slow_reader() -> None:
        while not stop.is_set() and (data := reader_end.recv(1024)):
            read.append(len(data))
            stop.wait(0.001)  # a slow reader: 1 KiB a millisecond at most

    thread = threading.Thread(target=slow_reader, daemon=True)
    try:
        fill(outbox, LIMIT * 3 // 4)
        assert outbox.behind()
        thread.start()
        keep_pace([outbox], stopped=threading.Event())
        assert outbox.caught_up() and len(outbox) * 4 <= LIMIT
        assert sum(read) > LIMIT // 4  # it was read, not given up on
    finally:
        stop_reading(stop, thread, outbox, reader_end, flusher)


def test_a_stalled_reader_is_not_waited_for():
    flusher = Flusher()
    flusher.start()
    stalled, stalled_end = outbox_pair(flusher)
    try:
        fill(stalled, LIMIT * 3 // 4)
        began = time.monotonic()
        waited = keep_pace([stalled], stopped=threading.Event())
        assert waited < 10 and not stalled.caught_up() and stalled.stalled_at is not None  # given up on
        assert time.monotonic() - stalled.seen_at >= STALL  # (judged over STALL from when its socket filled)
        assert keep_pace([stalled], stopped=threading.Event()) < STALL  # and not waited for again
        assert to_wait_for((), stalled) == []  # (nor as a sender's own outbox)
        assert time.monotonic() - began < 10
        stopped = threading.Event()
        stopped.set()
        stalled.stalled_at = stalled.taken() - RESUME  # as if it had taken RESUME bytes since: the stop ends the wait
        assert keep_pace([stalled], stopped=stopped) < STALL
        assert to_wait_for((), stalled) == [stalled]  # behind and not stalled: its sender waits for it
    finally:
        stalled.close()
        stalled_end.close()
        flusher.stop()


def test_a_reader_that_trickles_bytes_is_stalled_too_and_one_back_from_a_pause_is_waited_for_again():
    """A reader that takes a few bytes now and then -- to hold its room's senders, or
    hung but for a keepalive -- is judged stalled like one that takes nothing; one that
    reads again after a pause is waited for again as soon as it has taken RESUME bytes."""
    flusher = Flusher()
    flusher.start()
    outbox, reader_end = outbox_pair(flusher)
    stop = threading.Event()
    pace = {"chunk": 16, "delay": 0.05}  # 320 bytes a second: far under SLACK per STALL

    def reader() -> None:
        while not stop.is_set() and reader_end.recv(pace["chunk"]):
            if pace["delay"]:
                stop.wait(pace["delay"])

    thread = threading.Thread(target=reader, daemon=True)
    try:
        fill(outbox, LIMIT * 3 // 4)
        thread.start()
        waited = keep_pace([outbox], stopped=threading.Event())
        assert waited < 10 and not outbox.caught_up()  # given up on, though it reads
        assert outbox.stalled_at is not None
        assert not waited_for(outbox) and to_wait_for((), outbox) == []
        pace.update(chunk=65536, delay=0)  # it reads at full speed again
        wait_until(lambda: waited_for(outbox), what="the reader to take RESUME bytes")
        keep_pace([outbox], stopped=threading.Event())
        assert outbox.caught_up()  # waited for until it caught up
    finally:
        stop_reading(stop, thread, outbox, reader_end, flusher)


class _Member:
    """What ``pace`` reads of a room's member: its connection's outbox."""

    def __init__(self, outbox: Outbox | None) -> None:
        self.sink = self
        self.outbox = outbox


def test_a_reader_behind_is_waited_for_while_it_reads_however_far_behind_the_rest_of_its_room():
    """One reader behind in a room that keeps up: waited for while it reads (three
    members reading at half the pace of the seven flooding them were dropped as too
    slow when only a room lagging as a whole was waited for); one that stopped, not --
    judged from the moment its socket filled, so it costs the room STALL at most; a
    sender's own outbox whenever it is behind and its reader reads."""
    flusher = Flusher()
    flusher.start()
    pairs = [outbox_pair(flusher) for _ in range(4)]
    (stopped_reader, _), (slow_reader, slow_end), (keeping_up, _), (own, _) = pairs
    room = tuple(_Member(outbox) for outbox, _ in pairs)
    stop = threading.Event()

    def read_slowly() -> None:  # 4 KiB every 50 ms: far behind, yet reading (twice SLACK in STALL)
        while not stop.wait(0.05) and slow_end.recv(4096):
            pass

    thread = threading.Thread(target=read_slowly, daemon=True)
    try:
        fill(stopped_reader, LIMIT * 3 // 4)
        # The flusher tries the socket once more before it watches it, and notes it full
        # again then: the reader's progress is counted from that last look.
        wait_until(lambda: flusher.backlog == 1, what="the flusher watching the stopped reader")
        full = stopped_reader.seen_at
        assert full > 0  # its socket filled: its progress is counted from then
        assert waited_for(stopped_reader, clock=lambda: full + STALL / 2)  # too soon to tell
        # took nothing in STALL: stalled (a millisecond past it: full + STALL - full can
        # round below STALL once the monotonic clock is in the tens of thousands)
        assert not waited_for(stopped_reader, clock=lambda: full + STALL + 0.001)
        assert to_wait_for(room, own) == []
        fill(slow_reader, LIMIT * 3 // 4)
        thread.start()
        assert to_wait_for(room, own) == [slow_reader]  # though the rest of the room keeps up
        fill(own, LIMIT * 3 // 4)
        assert to_wait_for(room, own) == [slow_reader, own]  # its own too, when behind
        waited = keep_pace([slow_reader], stopped=threading.Event())
        assert slow_reader.caught_up() and slow_reader.stalled_at is None  # waited for until it caught up
        assert waited > 2 * STALL  # (over several STALLs: ~32 KiB at 80 KiB/s)
        assert not keeping_up.behind()
    finally:
        stop.set()
        for outbox, end in pairs:
            outbox.close()
            end.close()
        thread.join(5)
        flusher.stop()


def test_a_senders_first_burst_looks_at_everyone_in_its_rooms():
    """Before a sender has spoken (nothing fanned out yet: ``Batch.spoke_to`` empty),
    its burst looks at its rooms' members: a sender whose thread first ran when the
    room's outboxes were nearly full had its burst land unlooked-at and overflow them."""
    a, b = _Member(None), _Member(None)
    member = SimpleNamespace(rooms={"lobby": SimpleNamespace(everyone=lambda: (a, b)),
                                    "news": SimpleNamespace(everyone=lambda: (b,))})
    assert burst_room((), member) == (a, b, b)
    assert burst_room((a,), member) == (a,)  # once it has spoken: where it spoke


class Reader:
    """A member reading (a slow one through a 4 KiB receive buffer), ``delay`` seconds between
    reads of ``chunk`` bytes (0: as fast as it can; None: never, after its welcome)."""

    def __init__(self, port: int, nick: str, chunk: int = 1024, delay: float | None = 0.0) -> None:
        self.sock = socket.socket()
        if delay != 0.0:  # a slow or stalled reader: the kernel holds little for it
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(30)
        self.chunk, self.delay = chunk, delay
        self.decoder = FrameDecoder()
        self.chats = 0
        self.eof = False
        self.stop = threading.Event()
        self.sock.sendall(encode_message(Hello(version=PROTOCOL_VERSION, nick=nick)))
        while not self.chats and not self._read(65536, welcome=True):
            pass
        self.thread = threading.Thread(target=self._run, daemon=True)
        if delay is not None:
            self.thread.start()

    def _read(self, size: int, welcome: bool = False) -> bool:
        data = self.sock.recv(size)
        if not data:
            self.eof = True
            return True
        for frame in self.decoder.feed(data):
            msg = decode_message(frame)
            if welcome and msg.TYPE == "welcome":
                return True
            self.chats += isinstance(msg, Chat)
        return False

    def _run(self) -> None:
        try:
            while not self.stop.is_set() and not self.eof:
                self._read(self.chunk)
                if self.delay:
                    self.stop.wait(self.delay)
        except OSError:
            self.eof = True

    def close(self) -> None:
        self.stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes its thread's recv()
        except OSError:
            pass
        self.sock.close()
        if self.thread.is_alive():
            self.thread.join(5)


def flood(port: int, count: int, size: int = 300) -> tuple[WireClient, threading.Thread]:
    """A sender that writes ``count`` messages as fast as TCP lets it (reading its own
    acks and echoes in another thread, as a real client does)."""
    sender = WireClient(port)
    sender.hello("flood")
    text = "x" * size
    data = b"".join(encode_message(Say(text=f"{n} {text}", id=f"f{n}")) for n in range(count))

    def drain() -> None:
        try:
            while sender.sock.recv(65536):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    writer = threading.Thread(target=sender.sock.sendall, args=(data,), daemon=True)
    writer.start()
    return sender, writer


def slow_readers(server, n: int) -> tuple[list[subprocess.Popen[str]], list[int], list[bool]]:
    """``n`` slow readers in the room: each a process of its own, reading 16 KiB every 5
    ms at most through a 4 KiB receive buffer -- equally slow, their pace set by that
    rather than by who gets the CPU on a loaded machine (threads here would share one
    GIL and drift apart, and a reader far behind the rest of its room is dropped: by
    design).  Counting: a line per 100 chats, so that the pipe to this process (whose
    threads wait for the GIL behind the flood) cannot fill and stop a reader's reading
    for it.  Returns the processes, their chat counts and whether each saw the end."""
    readers = [subprocess.Popen([sys.executable, "-m", "tests.ns_client", "127.0.0.1", str(server.port),
                                 f"slow{i}", "16384", "0.005", "count"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, cwd=str(ROOT), env=chatroom_env()) for i in range(n)]
    counts, ended = [0] * n, [False] * n

    def count(i: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if '"TYPE": "count"' in line:
                counts[i] = json.loads(line)["chats"]
            ended[i] = ended[i] or '"TYPE": "eof"' in line

    for i, proc in enumerate(readers):
        threading.Thread(target=count, args=(i, proc), daemon=True).start()
    wait_until(lambda: len(server.connections()) == n, what="the readers in the room")
    return readers, counts, ended


def test_a_flood_into_a_room_of_slow_readers_slows_the_sender_and_drops_nobody(make_server):
    server = make_server(rate=0)  # (the default outbox: 1 MiB)
    readers, counts, ended = slow_readers(server, 3)
    count_ = 2000  # 6 MB to each: more than the kernel's buffers and the outbox together
    # The sender a process of its own too (its echoes read there, not by a thread of this
    # process queued for the GIL behind the flood with the server's).
    sender = subprocess.Popen([sys.executable, "-m", "tests.ns_client", "127.0.0.1", str(server.port), "flood",
                               "65536", "0", "count"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                              cwd=str(ROOT), env=chatroom_env())
    wait_until(lambda: len(server.connections()) == 4, what="the sender in the room")
    text = "x" * 3000

    def write() -> None:
        assert sender.stdin is not None
        for n in range(count_):
            sender.stdin.write(f"say f{n} {n} {text}\n")
        sender.stdin.flush()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        wait_until(lambda: all(c >= count_ for c in counts) or any(ended), timeout=90,
                   what="every slow reader to get the flood")
        assert counts == [count_] * 3 and not any(ended), server.closed_by_reason()
        assert "too slow" not in server.closed_by_reason()
        writer.join(10)
        assert not writer.is_alive()
    finally:
        for p in [sender, *readers]:
            p.terminate()
            p.wait(10)


def test_a_sender_that_reads_its_own_echoes_slowly_is_slowed_to_its_reading_not_dropped(make_server):
    """Alone in its room, a sender floods and reads what comes back -- its echoes and
    acks -- slowly: its own outbox fills faster than it reads.  Its server thread waits
    for it as for any reader behind (``pace.to_wait_for``), so its writes are slowed
    by TCP.  When a sender never waited for its own outbox, the bench's 100-member,
    10-sender flood had senders dropped as too slow (1 run in 10): the whole room
    lagged, the other senders waited, and a sender's own burst overflowed its own."""
    server = make_server(rate=0)  # (the default outbox: 1 MiB)
    sender = subprocess.Popen([sys.executable, "-m", "tests.ns_client", "127.0.0.1", str(server.port), "flood",
                               "16384", "0.005", "count"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              cwd=str(ROOT), env=chatroom_env())
    echoes, ended = [0], [False]

    def count() -> None:
        assert sender.stdout is not None
        for line in sender.stdout:
            if '"TYPE": "count"' in line:
                echoes[0] = json.loads(line)["chats"]
            ended[0] = ended[0] or '"TYPE": "eof"' in line

    threading.Thread(target=count, daemon=True).start()
    wait_until(lambda: len(server.connections()) == 1, what="the sender in the room")
    count_ = 2000  # 6 MB of echoes: more than the kernel's buffers and the outbox together
    text = "x" * 3000

    def write() -> None:  # (in a thread: a sender cut off would stop reading its stdin)
        assert sender.stdin is not None
        sender.stdin.write("".join(f"say f{n} {n} {text}\n" for n in range(count_)))
        sender.stdin.flush()

    threading.Thread(target=write, daemon=True).start()
    try:
        wait_until(lambda: echoes[0] >= count_ or ended[0], timeout=90, what="the sender to get its echoes")
        assert echoes[0] == count_ and not ended[0], server.closed_by_reason()
        assert "too slow" not in server.closed_by_reason()
    finally:
        sender.terminate()
        sender.wait(10)


def test_many_senders_flooding_a_room_of_slow_readers_are_slowed_and_nobody_is_dropped(make_server):
    """Eight senders flood at once, into a room where everyone reads slowly (the
    senders too).  Each looks whether its room is behind right before
    its burst lands (``pace.to_wait_for``), under the hub lock, so an outbox passes its
    high-water mark by one burst at most.  When they looked only after their bursts,
    eight bursts in flight (64 KiB reads of short messages: ~110 KB to every outbox
    each) filled the readers' outboxes past the limit -- readers that kept up with the
    rest of the room were dropped as too slow."""
    server = make_server(rate=0)  # (the default outbox: 1 MiB)
    readers = slow_readers(server, 3)
    senders = []
    for k in range(8):
        sender = WireClient(server.port)
        sender.hello(f"flood{k}")
        senders.append(sender)
    flood_slow_room(server, readers, senders, lambda k, n: encode_message(Say(text=f"{k}-{n} " + "x" * 100,
                                                                              id=f"f{n}")))


#: Chats each of the eight senders floods with: 24,000 chats, ~5.5 MB to every reader,
#: past its kernel buffers and outbox.
EACH = 3000


def flood_slow_room(server, readers: tuple[list[subprocess.Popen[str]], list[int], list[bool]],
                    senders: list[WireClient] | list[IrcClient], chat: Callable[[int, int], bytes]) -> None:
    """``senders`` each send ``EACH`` chats at once (``chat(sender, n)``: its bytes) into
    the room of the ``slow_readers``, reading what comes back as slowly; every reader
    must get every chat, and nobody may be dropped as too slow."""
    procs, counts, ended = readers
    writers, done = [], threading.Event()
    for k, sender in enumerate(senders):
        data = b"".join(chat(k, n) for n in range(EACH))
        threading.Thread(target=_drain, args=(sender.sock, done), daemon=True).start()
        writers.append(threading.Thread(target=sender.sock.sendall, args=(data,), daemon=True))
    for w in writers:
        w.start()
    try:
        total = len(senders) * EACH
        wait_until(lambda: all(c >= total for c in counts) or any(ended), timeout=120,
                   what="every slow reader to get every flood")
        assert counts == [total] * len(procs) and not any(ended), server.closed_by_reason()
        assert "too slow" not in server.closed_by_reason()
    finally:
        done.set()
        for sender in senders:
            sender.close()
        for p in procs:
            p.terminate()
            p.wait(10)

def _drain(sock: socket.socket, stop: threading.Event) -> None:
    """Read (and drop) what a flooding sender gets back -- the room's chats and its own
    acks -- as slowly as the slow readers: 16 KiB every 5 ms."""
    try:
        while sock.recv(16384) and not stop.wait(0.005):
            pass
    except OSError:
        pass


def test_a_reader_that_stopped_reading_is_dropped_and_the_others_get_everything(make_server):
    server = make_server(rate=0)
    readers = [Reader(server.port, f"fast{i}", chunk=65536) for i in range(3)]
    stalled = Reader(server.port, "stalled", delay=None)  # its welcome, then never a read again
    count = 2000
    sender, writer = flood(server.port, count, size=3000)
    try:
        wait_until(lambda: all(r.chats >= count or r.eof for r in readers), timeout=60,
                   what="every reading member to get the flood")
        assert [r.chats for r in readers] == [count] * 3, server.closed_by_reason()
        wait_until(lambda: server.closed_by_reason().get("too slow", 0) == 1, what="the stalled reader dropped")
        writer.join(10)
        assert not writer.is_alive()
    finally:
        sender.close()
        stalled.close()
        for r in readers:
            r.close()


def test_many_irc_senders_flooding_a_room_of_slow_readers_are_slowed_and_nobody_is_dropped(make_server):
    """The same flood through the IRC door: each IRC sender's burst of PRIVMSGs looks
    whether its room is behind under the hub lock, right before it lands
    (``IrcDoor.burst_behind``), as a framed sender's does.  When the door looked only
    after each read's run, readers were dropped as too slow beside two CPU hogs (CI;
    1 run in 4 of this test alone)."""
    server = make_server(rate=0, max_per_address=0)
    readers = slow_readers(server, 3)
    senders = []
    for k in range(8):
        sender = IrcClient(server.port)
        sender.register(f"flood{k}")
        sender.join("#lobby")
        senders.append(sender)
    flood_slow_room(server, readers, senders, lambda k, n: f"PRIVMSG #lobby :{k}-{n} {'x' * 100}\r\n".encode())
