"""``chatroom demo``, ``chatroom bans``, ``chatroom log``: a classroom demo, and the
server's ban list and history read from its data directory."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from chatroom.cli.common import data_dir_of, fail
from chatroom.cli.join import default_nick, refusal_advice
from chatroom.cli.serve import addresses_to_give
from chatroom.text import clean_line, clean_text

if TYPE_CHECKING:
    from chatroom.demo import Demo
    from chatroom.protocol import Chat
    from chatroom.server.store import RoomRecord
    pass

__all__ = ["cmd_demo", "cmd_bans", "cmd_log"]

log = logging.getLogger("chatroom")


def cmd_demo(args: argparse.Namespace) -> int:
    from chatroom.demo import Demo

    logging.getLogger().addHandler(logging.NullHandler())
    logging.getLogger("chatroom").setLevel(logging.WARNING)
    if args.rate <= 0:
        return fail("--rate is the number of seconds between bot lines: give a positive number", 2)
    if not args.no_client and (not sys.stdin.isatty() or not sys.stdout.isatty()):
        return fail("the demo's client needs a terminal: run it in one, or use --no-client", 2)
    try:
        demo = Demo(bots=args.bots, interval=args.rate, host=args.host, port=args.port)
    except OSError as exc:
        return fail(f"cannot start the demo server on port {args.port}: {exc.strerror or exc}")
    demo.start()
    try:
        return _demo_alone(demo, args) if args.no_client else _demo_with_client(demo, args)
    finally:
        demo.stop()
        print("chatroom demo: stopped", flush=True)


def _demo_alone(demo: Demo, args: argparse.Namespace) -> int:
    """The demo with no client of ours: say where to join, run until Ctrl-C."""
    print(f"chatroom demo: {len(demo.bots)} bots chatting on {args.host}:{demo.port}", flush=True)
    for host in addresses_to_give(args.host):
        print(f"join with: chatroom join {host}:{demo.port}   or in a browser: http://{host}:{demo.port}/",
              flush=True)
    print("press Ctrl-C to stop", flush=True)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _demo_with_client(demo: Demo, args: argparse.Namespace) -> int:
    """The demo with the full-screen client joined to it."""
    from chatroom.client.connection import ChatClient
    from chatroom.errors import HandshakeRefused
    from chatroom.ui.tui import ChatApp

    client = ChatClient("127.0.0.1", demo.port, args.nick or default_nick())
    try:
        client.connect()
    except HandshakeRefused as exc:
        return fail(refusal_advice(exc.code, exc.message, args))
    hosts = addresses_to_give(args.host)
    browsers = ", ".join(f"http://{host}:{demo.port}/" for host in hosts)
    ChatApp(client, banner=f"join from another terminal: chatroom join {hosts[0]}:{demo.port} -- "
                           f"or from a browser: {browsers}").run()
    return 0


def cmd_bans(args: argparse.Namespace) -> int:
    import time

    from chatroom.server.bans import BanList
    from chatroom.server.store import DB_NAME, HistoryStore
    from chatroom.text import clean_line

    path = data_dir_of(args.data_dir) / DB_NAME
    if not path.exists():
        return fail(f"no database at {path} (has a server run with that --data-dir?)")
    now = time.time()
    try:
        store = HistoryStore(path)
        bans = BanList(store.bans())
        if args.unban is not None:
            lifted = bans.matching(args.unban)
            for ban in lifted:
                store.delete_ban(ban.target)
            store.close()
            if not lifted:
                return fail(f"no ban matches {clean_line(args.unban)}")
            print("unbanned " + ", ".join(clean_line(b.describe(now)) for b in lifted))
            return 0
        store.close()
    except sqlite3.Error as exc:
        return fail(f"cannot use {path}: {exc}")
    active = bans.all(now)
    print("\n".join(clean_line(b.describe(now)) for b in active) if active else "nobody is banned")
    return 0


def _parse_since(text: str) -> float:
    """An ISO date/time, or an age like 30m / 2h / 3d, as a Unix time."""
    import datetime
    import re
    import time

    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if match:
        seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return time.time() - seconds
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither a date/time (2026-11-21T14:00) nor an age (2h, 3d)") from None
    return moment.timestamp()


def cmd_log(args: argparse.Namespace) -> int:
    from chatroom.server.store import DB_NAME, HistoryStore

    path = data_dir_of(args.data_dir) / DB_NAME
    if not path.exists():
        return fail(f"no history database at {path} (has a server run with that --data-dir?)")
    try:
        since = _parse_since(args.since) if args.since else None
    except ValueError as exc:
        return fail(str(exc), 2)
    try:
        store = HistoryStore(path, read_only=True)
        record = store.room(args.room)
        if record is None:
            known = ", ".join(r.name for r in store.rooms()) or "none"
            return fail(f"no room called {args.room!r} in {path} (rooms: {known})")
        chats = list(store.transcript(args.room, since))
        store.close()
    except sqlite3.Error as exc:
        return fail(f"cannot read {path}: {exc}")
    _LOG_FORMATS[args.format](sys.stdout, record, chats)
    return 0


def _stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _log_json(out: TextIO, record: RoomRecord, chats: list[Chat]) -> None:
    for c in chats:
        out.write(json.dumps({"room": c.room, "seq": c.seq, "ts": c.ts, "nick": c.nick, "text": c.text,
                              "action": c.action}, ensure_ascii=False) + "\n")


def _log_markdown(out: TextIO, record: RoomRecord, chats: list[Chat]) -> None:
    out.write(f"# {clean_line(record.name)}\n\n")
    if record.topic:
        out.write(f"*{clean_line(record.topic)}*\n\n")
    for c in chats:
        body = clean_text(c.text).replace("\n", "  \n")
        who = f"*{clean_line(c.nick)} {body}*" if c.action else f"**{clean_line(c.nick)}**: {body}"
        out.write(f"- `{_stamp(c.ts)}` {who}\n")


def _log_text(out: TextIO, record: RoomRecord, chats: list[Chat]) -> None:
    for c in chats:
        body = clean_text(c.text).replace("\n", "\n" + " " * 22)
        who = f"* {clean_line(c.nick)} {body}" if c.action else f"<{clean_line(c.nick)}> {body}"
        out.write(f"[{_stamp(c.ts)}] {who}\n")


#: ``chatroom log --format``.
_LOG_FORMATS: dict[str, Callable[[TextIO, RoomRecord, list[Chat]], None]] = {
    "json": _log_json, "markdown": _log_markdown, "text": _log_text}
