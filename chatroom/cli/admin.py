"""``chatroom demo``, ``chatroom bans``, ``chatroom log``: a classroom demo, and the
server's ban list and history read from its data directory."""

from __future__ import annotations

import argparse
import logging
import signal
import sqlite3
import sys
import threading
from typing import TYPE_CHECKING

from chatroom.cli.common import data_dir_of, fail
from chatroom.cli.join import default_nick, refusal_advice
from chatroom.cli.serve import addresses_to_give

if TYPE_CHECKING:
    pass

__all__ = ["cmd_demo", "cmd_bans", "cmd_log"]

log = logging.getLogger("chatroom")


def cmd_demo(args: argparse.Namespace) -> int:
    from chatroom.client.connection import ChatClient
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
        if args.no_client:
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
        from chatroom.errors import HandshakeRefused
        from chatroom.ui.tui import ChatApp

        client = ChatClient("127.0.0.1", demo.port, args.nick or default_nick())
        try:
            client.connect()
        except HandshakeRefused as exc:
            return fail(refusal_advice(exc.code, exc.message, args))
        addresses = ", ".join(f"http://{host}:{demo.port}/" for host in addresses_to_give(args.host))
        ChatApp(client, banner=f"others can join from a browser at {addresses}").run()
        return 0
    finally:
        demo.stop()
        print("chatroom demo: stopped", flush=True)


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
    import json
    import time

    from chatroom.server.store import DB_NAME, HistoryStore
    from chatroom.text import clean_line, clean_text

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
    out = sys.stdout
    if args.format == "json":
        for c in chats:
            out.write(json.dumps({"room": c.room, "seq": c.seq, "ts": c.ts, "nick": c.nick, "text": c.text,
                                  "action": c.action}, ensure_ascii=False) + "\n")
        return 0

    def stamp(ts: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))

    if args.format == "markdown":
        out.write(f"# {clean_line(record.name)}\n\n")
        if record.topic:
            out.write(f"*{clean_line(record.topic)}*\n\n")
        for c in chats:
            body = clean_text(c.text).replace("\n", "  \n")
            who = f"*{clean_line(c.nick)} {body}*" if c.action else f"**{clean_line(c.nick)}**: {body}"
            out.write(f"- `{stamp(c.ts)}` {who}\n")
        return 0
    for c in chats:
        body = clean_text(c.text).replace("\n", "\n" + " " * 22)
        who = f"* {clean_line(c.nick)} {body}" if c.action else f"<{clean_line(c.nick)}> {body}"
        out.write(f"[{stamp(c.ts)}] {who}\n")
    return 0
