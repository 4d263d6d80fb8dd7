"""The client at the edges: pipes that deliver, final refusals that stop, a network
thread that cannot die, holes it fills itself; and the places people run it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chatroom.client.connection import ChatClient, ConnState, StateChanged
from chatroom.client.transfers import Phase, Transfers
from chatroom.protocol import (
    Ack,
    Chat,
    Error,
    ErrorCode,
    FileEvent,
    FileOffer,
    FileUpdate,
    History,
    MemberInfo,
    Members,
    ModAction,
    Moderate,
    Notice,
    OfferFile,
    Op,
    Say,
)
from chatroom.server.tcp import CloseReason
from tests.polling import Events, wait_until
from tests.wire import WireClient

ROOT = Path(__file__).resolve().parents[2]


def chatroom_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    env.pop("CHATROOM_PASSWORD", None)
    return env


def run_chatroom(*args: str, stdin: str = "", timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatroom", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=chatroom_env(**env), cwd=str(ROOT))


# ----------------------------------------------------------------------------- pipes


def test_the_readmes_pipe_delivers_every_line_in_order_with_default_settings(make_server):
    """`seq 1 60 | chatroom join --plain`: 29 of 60 got through before; the client now
    paces itself to the server's advertised rate and burst (defaults: 4/s, 20)."""
    server = make_server()  # the defaults: rate limiting on
    watcher = WireClient(server.port)
    watcher.hello("watcher")
    lines = "".join(f"{n}\n" for n in range(1, 61))
    result = run_chatroom("join", f"127.0.0.1:{server.port}", "--plain", "--nick", "ci", stdin=lines)
    assert result.returncode == 0, result.stderr
    assert "not acknowledged" not in result.stderr and "refused" not in result.stderr
    assert "slow down" not in result.stdout
    got = [c.text for c in watcher.collect(Chat, 60, timeout=30)]
    assert got == [str(n) for n in range(1, 61)]
    assert not [m for m in watcher.inbox if isinstance(m, Chat)]  # nothing twice
    watcher.close()


def test_a_paste_of_many_lines_is_paced_never_refused(make_server):
    server = make_server(rate=40, burst=10)
    client = ChatClient("127.0.0.1", server.port, "paster")
    try:
        client.connect()
        for n in range(150):
            client.say(f"line {n}")
        assert client.wait_acked(30)
        assert client.refused == 0
        assert not any(c.session.limiter._strikes for c in server.connections())  # never even refused once
    finally:
        client.close()


def test_the_plain_client_says_what_was_not_delivered_and_exits_non_zero(make_server):
    server = make_server(max_text=10)
    result = run_chatroom("join", f"127.0.0.1:{server.port}", "--plain", "--nick", "ci",
                          stdin="short\nthis line is far too long for the server\n")
    assert result.returncode == 1
    assert "1 message(s) were refused" in result.stderr


def test_plain_mode_replaces_what_the_output_cannot_encode_instead_of_dropping_the_line(make_server):
    from chatroom.ui.plain import run_plain

    server = make_server()
    bob = WireClient(server.port)
    bob.hello("bob")
    client = ChatClient("127.0.0.1", server.port, "ann")
    client.connect()
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii", write_through=True)  # like Windows' redirected output
    status = run_plain(client, stdin=io.StringIO("/msg bob caf\u00e9 \u2603\n"), stdout=out, stderr=io.StringIO())
    assert status == 0
    text = raw.getvalue().decode("ascii")
    assert "bob" in text and "caf? ?" in text  # the DM line (with its arrow) is there, replaced
    bob.close()


def test_chatroom_log_into_a_closed_pipe_ends_quietly(make_server, tmp_path):
    server = make_server(data_dir=str(tmp_path), rate=0)
    c = WireClient(server.port)
    c.hello("ann")
    for n in range(2000):
        c.send(Say(id=str(n), text=f"line {n} " + "x" * 100))
    c.collect(Chat, 2000, timeout=30)
    c.close()
    log = subprocess.Popen([sys.executable, "-m", "chatroom", "log", "--data-dir", str(tmp_path)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=chatroom_env(), cwd=str(ROOT))
    assert log.stdout is not None and log.stderr is not None
    assert log.stdout.readline()  # what `head -1` reads
    log.stdout.close()  # ... then it goes away
    err = log.stderr.read().decode()
    assert log.wait(30) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


# ----------------------------------------------------------------------------- moderation


def test_a_kick_stops_the_reconnects_and_reconnect_brings_one_back(make_server):
    server = make_server()
    op = WireClient(server.port)
    op.hello("op")
    op.send(Op(token=server.op_token))
    op.expect(Notice)
    events = Events()
    client = ChatClient("127.0.0.1", server.port, "kicked", on_event=events)
    client.BACKOFF_START = 0.05
    try:
        client.connect()
        op.send(Moderate(action=ModAction.KICK, target="kicked", reason="cool down"))
        closed = events.wait(lambda e: isinstance(e, StateChanged) and e.state is ConnState.CLOSED)
        assert "kicked by op: cool down" in closed.detail and "/reconnect" in closed.detail
        # No retry follows (it would have been within 0.05 s, with this backoff).
        time.sleep(0.5)  # the absence of an event: give a retry every chance to happen
        later = list(events.q.queue)
        assert not any(isinstance(e, StateChanged) and e.state is not ConnState.CLOSED for e in later), later
        assert client.state is ConnState.CLOSED
        client.reconnect_now()  # by hand: a kicked person may come back
        events.wait(lambda e: isinstance(e, StateChanged) and e.state is ConnState.CONNECTED)
        assert client.nick == "kicked"
    finally:
        client.close()
        op.close()


def test_operators_see_addresses_in_who():
    from chatroom.client.transcript import Transcript

    t = Transcript()
    t.add(Members(room="lobby", members=(MemberInfo(nick="ann", op=True, address="127.0.0.7:5000"),
                                         MemberInfo(nick="bob")), member_count=2))
    line = "".join(text for _, text in t.lines[-1])
    assert "ann [server op] <127.0.0.7:5000>" in line and "bob" in line


# ----------------------------------------------------------------------------- a thread that cannot die


def test_an_unexpected_file_update_cannot_kill_transfer_handling():
    sent: list[object] = []
    events: list[object] = []
    transfers = Transfers(Path("/nonexistent"), send=lambda m: sent.append(m) or True, emit=events.append,
                          next_id=lambda: "x")
    transfers.handle(FileOffer(transfer=7, name="a.txt", size=3, sha256="0" * 64, nick="bob", ts=0.0,
                               expires_in=60, room="lobby", recipients=1))
    # 'accepted' never ends a transfer, but a test server said it does: it ends as failed.
    assert transfers.handle(FileUpdate(transfer=7, event=FileEvent.ACCEPTED, nick="bob", over=True))
    assert transfers.get(7).phase is Phase.FAILED


def test_any_error_in_the_network_thread_ends_in_a_reconnect_not_a_stall(make_server):
    server = make_server(rate=0)
    talker = WireClient(server.port)
    talker.hello("talker")
    events = Events()
    client = ChatClient("127.0.0.1", server.port, "ann", on_event=events)
    client.BACKOFF_START = 0.05
    try:
        client.connect()
        real = client.files.handle
        broken = threading.Event()

        def handle_once_badly(msg: object) -> bool:
            if isinstance(msg, Chat) and msg.text == "boom" and not broken.is_set():
                broken.set()
                raise ValueError("a bug nobody foresaw")
            return real(msg)

        client.files.handle = handle_once_badly  # type: ignore[method-assign]
        talker.send(Say(id="1", text="boom"))
        events.wait(lambda e: isinstance(e, StateChanged) and e.state is ConnState.DISCONNECTED
                    and "bug" in e.detail)
        events.wait(lambda e: isinstance(e, StateChanged) and e.state is ConnState.CONNECTED)
        talker.send(Say(id="2", text="after"))
        events.wait(lambda e: (isinstance(e, Chat) and e.text == "after")
                    or (isinstance(e, History) and any(c.text == "after" for c in e.messages)))
        assert client.resumed  # the same session, with what it missed
    finally:
        client.close()
        talker.close()


def test_retry_waits_are_spread_so_a_class_does_not_retry_in_step(make_server):
    server = make_server()
    port = server.port
    waits: list[float] = []
    clients = []
    for n in range(4):
        ev = Events()
        c = ChatClient("127.0.0.1", port, f"s{n}", on_event=ev)
        c.connect()
        clients.append((c, ev))
    server.stop()
    for c, ev in clients:
        first = ev.wait(lambda e: isinstance(e, StateChanged) and e.state is ConnState.DISCONNECTED)
        waits.append(first.retry_in)
        c.close()
    assert all(ChatClient.BACKOFF_START / 2 <= w <= ChatClient.BACKOFF_START for w in waits), waits
    assert len(set(waits)) > 1, waits


@pytest.mark.parametrize("room_keeps_talking", [False, True])
def test_a_replay_too_big_for_one_go_is_completed_by_the_client_in_order(make_server, room_keeps_talking):
    """The server replays at most half an outbox; the client fetches the rest (after=)
    before it shows anything newer, so every message is shown once, in order -- also
    when the room goes on talking while it resumes and fetches."""
    server = make_server(rate=0, outbox_limit=128 * 1024, resume_grace=60)
    seen: list[int] = []
    lock = threading.Lock()

    def record(event: object) -> None:
        chats = [event] if isinstance(event, Chat) else list(event.messages) if isinstance(event, History) else []
        with lock:
            seen.extend(c.seq for c in chats if c.room == "lobby")

    client = ChatClient("127.0.0.1", server.port, "flaky", on_event=record)
    # Quiet room: stay away (1-2 s) until the room has said everything, then come back.
    # Talking room: come back at once, while it talks.
    client.BACKOFF_START = 0.05 if room_keeps_talking else 2.0
    talker = WireClient(server.port)
    talker.hello("talker")
    total = 120 if room_keeps_talking else 60
    try:
        client.connect()
        conn = next(c for c in server.connections() if c.member and c.member.nick == "flaky")
        conn.close(CloseReason.LOST)
        wait_until(lambda: client.state is not ConnState.CONNECTED, 5, "the drop")
        for n in range(total):
            talker.send(Say(id=str(n), text=f"{n} " + "\u00e9" * 3000))
            if room_keeps_talking:
                talker.collect(Chat, 1)  # at the room's pace, not all in one burst
        if not room_keeps_talking:
            talker.collect(Chat, total)
            client.reconnect_now()
        wait_until(lambda: len(set(seen)) >= total, 30, f"all {total} messages")
        talker.send(Say(id="live", text="live"))
        wait_until(lambda: len(set(seen)) >= total + 1, 10, "the live one")
        assert client.resumed
        with lock:
            assert seen == sorted(seen) and len(seen) == len(set(seen)) == total + 1
    finally:
        client.close()
        talker.close()


# ----------------------------------------------------------------------------- everywhere people run it


def test_the_server_and_cli_import_and_find_addresses_without_fcntl():
    """Windows has no fcntl; macOS no SIOCGIFADDR.  Addresses come from ifaddr."""
    code = ("import sys; sys.modules['fcntl'] = None\n"
            "import chatroom.cli, chatroom.server.tcp, chatroom.netaddr\n"
            "print(chatroom.netaddr.local_ipv4_addresses(include_loopback=True))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env=chatroom_env(), cwd=str(ROOT))
    assert result.returncode == 0, result.stderr
    assert "127.0.0.1" in result.stdout


def test_downloads_follow_the_platforms_own_setting(tmp_path):
    """On Linux that is XDG user-dirs: a file, not only an environment variable."""
    (tmp_path / ".config").mkdir()
    (tmp_path / ".config" / "user-dirs.dirs").write_text('XDG_DOWNLOAD_DIR="$HOME/T\u00e9l\u00e9chargements"\n')
    code = "from chatroom.client.transfers import default_downloads; print(default_downloads())"
    env = chatroom_env(HOME=str(tmp_path))
    for name in ("XDG_DOWNLOAD_DIR", "XDG_CONFIG_HOME"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                            cwd=str(ROOT))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "T\u00e9l\u00e9chargements")


# ----------------------------------------------------------------------------- tests that can fail


def test_the_server_applies_retention_by_itself(make_server, tmp_path):
    from chatroom.server.store import DB_NAME, HistoryStore

    server = make_server(data_dir=str(tmp_path), keep_messages=5, retention_interval=0.5, rate=0)
    c = WireClient(server.port)
    c.hello("ann")
    for n in range(20):
        c.send(Say(id=str(n), text=f"m{n}"))
    c.collect(Chat, 20)

    def kept() -> int:
        store = HistoryStore(tmp_path / DB_NAME, read_only=True)
        try:
            return len(list(store.transcript("lobby", None)))
        finally:
            store.close()

    wait_until(lambda: kept() == 5, 10, "the server's retention pass to keep the newest 5")
    c.close()


def test_retention_by_age_takes_what_recognises_resends_with_the_messages(make_server, tmp_path):
    server = make_server(data_dir=str(tmp_path), keep_days=1 / 86400, retention_interval=0.2, rate=0)
    c = WireClient(server.port)
    c.hello("ann")
    c.send(Say(id="m1", text="soon gone"))
    first = c.expect(Ack, id="m1")
    c.send(Say(id="m1", text="soon gone"))  # a resend, while the message is kept: the same one
    assert c.expect(Ack, id="m1").seq == first.seq
    wait_until(lambda: server.hub.state.remembered_ids == 0, 10, "the retention pass to forget the id")
    c.send(Say(id="m1", text="soon gone"))  # the message is gone, and nothing remembers its text
    assert c.expect(Ack, id="m1").seq > first.seq
    c.close()


def test_one_sender_has_at_most_four_offers_open(make_server):
    server = make_server(rate=0)
    sender, other = WireClient(server.port), WireClient(server.port)
    sender.hello("sender")
    other.hello("other")
    for n in range(4):
        sender.send(OfferFile(id=f"o{n}", name=f"f{n}.txt", size=10, sha256="0" * 64))
        sender.expect(FileOffer, id=f"o{n}")
    sender.send(OfferFile(id="o4", name="f4.txt", size=10, sha256="0" * 64))
    err = sender.expect(Error, id="o4")
    assert err.code == ErrorCode.TOO_MANY_TRANSFERS.value and "4 offers" in err.message
    sender.close()
    other.close()


@pytest.fixture(autouse=True)
def _no_password(monkeypatch):
    monkeypatch.delenv("CHATROOM_PASSWORD", raising=False)
