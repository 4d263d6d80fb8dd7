"""The ``chatroom`` command: ``serve`` a room, ``join`` one.

``main(argv=None)`` parses arguments and returns an exit status; every expected failure
(port in use, connection refused, nick taken...) is one line on stderr, not a traceback.
"""

from __future__ import annotations

import argparse
import errno
import gc
import logging
import os
import secrets
import signal
import sqlite3
import ssl
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from chatroom import __version__
from chatroom.redact import redacted_url

if TYPE_CHECKING:
    from chatroom.client.connection import ChatClient
    from chatroom.discovery import Announcer
    from chatroom.server.tcp import ChatServer, ServerConfig
    from chatroom.trace import Tracer

__all__ = ["main", "build_parser"]

log = logging.getLogger("chatroom")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _size(text: str) -> int:
    """'100M', '2G', '500k', '1048576' -> bytes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("ib").removesuffix("b")
    number, unit = (text[:-1], units[text[-1]]) if text[-1:] in units else (text, 1)
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 100M, 2G or 500K") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return int(value * unit)


def build_parser() -> argparse.ArgumentParser:
    from chatroom.protocol import DEFAULT_PORT
    from chatroom.server.tcp import ServerConfig

    defaults = ServerConfig()
    parser = argparse.ArgumentParser(
        prog="chatroom",
        description="A LAN chat room: host one with 'serve', talk in it with 'join'.",
    )
    parser.add_argument("--version", action="version", version=f"chatroom {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="host a chat server", description="Host a chat server.")
    serve.add_argument("--host", default=defaults.host,
                       help="address to listen on (default %(default)s; 0.0.0.0 shares it on the LAN)")
    serve.add_argument("--port", type=_positive_int, default=DEFAULT_PORT,
                       help="TCP port (default %(default)s; 0 picks a free one)")
    serve.add_argument("--irc-port", type=_positive_int, default=None, metavar="PORT",
                       help="also listen for IRC clients on this port (e.g. 6667; 0 picks a free one); "
                            "they are welcome on --port too")
    serve.add_argument("--web-port", type=_positive_int, default=None, metavar="PORT",
                       help="also serve browsers on this port (e.g. 8080; 0 picks a free one); they are welcome "
                            "on --port too")
    serve.add_argument("--web-host", action="append", default=[], metavar="NAME",
                       help="a host name browsers may use for the page (repeatable), besides this machine's "
                            "addresses, its host name and localhost; other names are refused (DNS rebinding)")
    serve.add_argument("--name", default="", help="server name shown to clients (default: host name)")
    serve.add_argument("--max-clients", type=_positive_int, default=defaults.max_clients,
                       help="connections accepted at once (default %(default)s)")
    serve.add_argument("--max-per-address", type=_positive_int, default=defaults.max_per_address, metavar="N",
                       help="connections from one address (0: no limit; default %(default)s)")
    serve.add_argument("--frame-timeout", type=float, default=defaults.frame_timeout, metavar="SECONDS",
                       help="a frame left unfinished this long drops its sender as too slow (default %(default)s)")
    serve.add_argument("--max-text", type=_positive_int, default=defaults.max_text,
                       help="characters in one message (default %(default)s)")
    serve.add_argument("--history", type=_positive_int, default=defaults.history_size,
                       help="messages replayed on joining a room (default %(default)s)")
    serve.add_argument("--outbox-limit", type=_positive_int, default=defaults.outbox_limit,
                       help="bytes queued for one client before it is dropped as too slow "
                            "(default %(default)s)")
    serve.add_argument("--rate", type=float, default=defaults.rate,
                       help="messages per second per client, sustained; 0 turns limiting off "
                            "(default %(default)s)")
    serve.add_argument("--burst", type=float, default=defaults.burst,
                       help="messages a client may send at once (default %(default)s)")
    serve.add_argument("--ping-interval", type=float, default=defaults.ping_interval,
                       help="seconds of silence before a client is pinged (default %(default)s)")
    serve.add_argument("--pong-timeout", type=float, default=defaults.pong_timeout,
                       help="seconds to wait for the answer to a ping (default %(default)s)")
    serve.add_argument("--handshake-timeout", type=float, default=defaults.handshake_timeout,
                       help="seconds a new connection has to say hello (default %(default)s)")
    store = serve.add_mutually_exclusive_group()
    store.add_argument("--data-dir", default=None,
                       help="where the room history database lives (default: $XDG_DATA_HOME/chatroom, "
                            "i.e. ~/.local/share/chatroom)")
    store.add_argument("--memory", action="store_true",
                       help="keep history in memory only, the newest 10,000 messages per room (a throwaway "
                            "demo: gone when the server stops)")
    store.add_argument("--cluster", default=os.environ.get("CHATROOM_CLUSTER") or None, metavar="redis://HOST:PORT/DB",
                       help="share rooms, history and nicks with the other servers using this Redis (default: "
                            "$CHATROOM_CLUSTER; none: this server alone, history in SQLite)")
    serve.add_argument("--sync", choices=["normal", "full"], default="normal",
                       help="normal: an acknowledged message survives the server crashing; "
                            "full: it also survives a power cut (slower). Default %(default)s")
    serve.add_argument("--resume-grace", type=float, default=defaults.resume_grace,
                       help="seconds a dropped client keeps its nick and room to resume (default %(default)s)")
    serve.add_argument("--keep-messages", type=_positive_int, default=None,
                       help="retention: keep only the newest N messages per room (default: all)")
    serve.add_argument("--keep-days", type=float, default=None,
                       help="retention: delete messages older than this many days (default: never)")
    serve.add_argument("--password", action="store_true",
                       help="require a room password: read from $CHATROOM_PASSWORD, or asked for")
    serve.add_argument("--op-password", action="store_true",
                       help="choose the operator token (from $CHATROOM_OP_PASSWORD, or asked for) instead of "
                            "a random one printed at start")
    serve.add_argument("--tls", action="store_true",
                       help="encrypt with TLS; without --cert/--key a self-signed certificate is made once "
                            "and kept in the data directory")
    serve.add_argument("--cert", default=None, help="PEM certificate for --tls")
    serve.add_argument("--key", default=None, help="PEM private key for --tls")
    serve.add_argument("--max-file-size", type=_size, default=defaults.max_file_size, metavar="SIZE",
                       help="largest file people may share through the server, e.g. 20M or 2G "
                            "(default 100M; 0 turns file sharing off)")
    serve.add_argument("--no-announce", action="store_true",
                       help="do not announce the rooms on the LAN (mDNS); a server on 127.0.0.1 never does")
    serve.add_argument("--trace", nargs="?", const="-", default=None, metavar="FILE",
                       help="show every recv() and frame on the wire (to stdout, or to FILE): for teaching")
    _add_logging(serve)
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="a server and chatting bots on this machine, then join them",
                          description="Start a server on 127.0.0.1 with a few bots holding a conversation, "
                                      "then the full-screen client for you. Ctrl-C or /quit stops everything.")
    demo.add_argument("--bots", type=_positive_int, default=4, help="how many bots (1-8, default %(default)s)")
    demo.add_argument("--rate", type=float, default=3.0,
                      help="seconds between bot lines (default %(default)s)")
    demo.add_argument("--no-client", action="store_true",
                      help="only the server and bots (for a projector; students join from their terminals)")
    demo.add_argument("--port", type=_positive_int, default=0, help="TCP port (default: a free one)")
    demo.add_argument("--host", default="127.0.0.1",
                      help="address to listen on (default: this machine only; 0.0.0.0: the whole LAN, so that "
                           "students can open the printed address in a browser)")
    demo.add_argument("--nick", default=None, help="your nick (default: your login name)")
    demo.set_defaults(func=cmd_demo)

    rooms = sub.add_parser("rooms", help="list the rooms announced on the LAN",
                           description="Look for rooms on the LAN (mDNS/DNS-SD) for a moment and list them.")
    rooms.add_argument("--seconds", type=float, default=2.0, help="how long to look (default %(default)s)")
    rooms.set_defaults(func=cmd_rooms)

    logcmd = sub.add_parser("log", help="print a room's transcript from the history database",
                            description="Print a room's transcript (the server need not be running).")
    logcmd.add_argument("room", nargs="?", default="lobby", help="the room (default: lobby)")
    logcmd.add_argument("--since", default=None,
                        help="only messages since: an ISO date/time (2026-11-21 or 2026-11-21T14:00), "
                             "or an age such as 30m, 2h, 3d")
    logcmd.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    logcmd.add_argument("--data-dir", default=None, help="as given to 'chatroom serve' (default: the same default)")
    logcmd.set_defaults(func=cmd_log)

    bans = sub.add_parser("bans", help="list or lift bans, with the server up or down",
                          description="List the bans a server keeps in its data directory, or lift one.")
    bans.add_argument("--data-dir", default=None, help="as given to 'chatroom serve' (default: the same default)")
    bans.add_argument("--unban", metavar="NICK|ADDRESS", default=None,
                      help="lift the ban of this address, or of the person or address banned under this nick "
                           "(a running server forgets it at its next restart; /unban lifts it at once)")
    bans.set_defaults(func=cmd_bans)

    join = sub.add_parser("join", help="join a chat room", description="Join a chat room.")
    join.add_argument("address", nargs="?", default=None,
                      help=f"HOST[:PORT] of the server (port {DEFAULT_PORT} if not given); without it, a server "
                           f"on this machine (127.0.0.1:{DEFAULT_PORT}), else the rooms announced on the LAN")
    join.add_argument("--nick", default=None, help="your nick (default: your login name)")
    join.add_argument("--room", default=None, help="room to join (default: lobby)")
    join.add_argument("--plain", action="store_true",
                      help="no full screen: send lines from stdin, print one line per message")
    join.add_argument("--tls", action="store_true",
                      help="use TLS (automatic when the server requires it); the certificate is trusted on first "
                           "use, like SSH, and a changed one is refused")
    join.add_argument("--fingerprint", default=None, metavar="SHA256",
                      help="the server certificate's fingerprint, as 'chatroom serve --tls' printed it: "
                           "pinned up front instead of trusting on first use")
    join.add_argument("--forget-pin", action="store_true",
                      help="forget the certificate remembered for this server first (when its host really "
                           "made a new one, or turned TLS off); without it, a server once met over TLS is "
                           "never spoken to in plaintext")
    join.add_argument("--trace", metavar="FILE", default=None,
                      help="write every recv() and frame on the wire to FILE (the screen is busy)")
    join.add_argument("--downloads", metavar="DIR", default=None,
                      help="where files you /accept are saved (default: the platform's Downloads folder; on "
                           "Linux the XDG user-dirs setting)")
    join.add_argument("--config", metavar="FILE", default=None,
                      help="the client's settings (default: client.toml in the platform's config directory, "
                           "e.g. ~/.config/chatroom/client.toml): server, nick, rooms, highlight words, bell, "
                           "timestamp, theme, downloads, aliases...")
    join.set_defaults(func=cmd_join)
    return parser


def _add_logging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default %(default)s")
    parser.add_argument("--log-file", help="write the log here instead of stderr")


def _setup_logging(args: argparse.Namespace) -> None:
    handler: logging.Handler = (
        logging.FileHandler(args.log_file, encoding="utf-8") if args.log_file else logging.StreamHandler()
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(args.log_level)


def _fail(message: str, status: int = 1) -> int:
    print(f"chatroom: {message}", file=sys.stderr)
    return status


class _Exit(Exception):
    """A command-line failure already worded for the user: print it, exit with ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def cmd_serve(args: argparse.Namespace) -> int:
    from chatroom.server.tcp import ServerConfig

    _setup_logging(args)
    try:
        password, op_password = _serve_secrets(args)
        cert, key = _serve_certificate(args)
        config = ServerConfig(
            host=args.host, port=args.port, name=args.name, max_clients=args.max_clients,
            max_text=args.max_text, history_size=args.history, outbox_limit=args.outbox_limit,
            rate=args.rate, burst=args.burst, ping_interval=args.ping_interval,
            pong_timeout=args.pong_timeout, handshake_timeout=args.handshake_timeout,
            data_dir=None if args.memory or args.cluster else str(_data_dir(args.data_dir)), sync=args.sync,
            cluster=args.cluster,
            resume_grace=args.resume_grace, keep_messages=args.keep_messages, keep_days=args.keep_days,
            password=password, op_password=op_password, tls_cert=cert, tls_key=key,
            max_file_size=args.max_file_size, max_per_address=args.max_per_address,
            frame_timeout=args.frame_timeout, irc_port=args.irc_port, web_port=args.web_port,
            web_hosts=tuple(args.web_host),
        )
        tracer = _open_tracer(args.trace)
        server = _start_server(args, config, tracer)
    except _Exit as exc:
        return _fail(str(exc), exc.status)
    _print_welcome(args, server, config)
    _tune_collector()
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    thread = server.serve_in_thread()
    announcer = _announce(args, server, config)
    try:
        while not stop.wait(0.5) and thread.is_alive():
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if announcer is not None:
            announcer.stop()  # goodbyes first, while the rooms still exist
        server.stop()
        if tracer is not None:
            tracer.close()
    print("chatroom: server stopped", flush=True)
    return 0


#: The collector's first threshold in a server process (CPython 3.11's default: 700).
GC_YOUNG_THRESHOLD = 50_000


def _tune_collector() -> None:
    """Every socket call allocates a tuple for its arguments, so a message to 100
    members made CPython run a young-generation collection every few messages (3-4 %
    of the server's time at chat rates, by perf).  Collect the young generation less
    often, and leave what start-up built (modules, the server) out of full
    collections.  Only here: a process that is a server, not every embedder."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def _serve_secrets(args: argparse.Namespace) -> tuple[str | None, str | None]:
    password = op_password = None
    if args.password:
        password = _secret("CHATROOM_PASSWORD", "room password")
        if password is None:
            raise _Exit("--password: set CHATROOM_PASSWORD, or run in a terminal to be asked", 2)
    if args.op_password:
        op_password = _secret("CHATROOM_OP_PASSWORD", "operator token")
        if op_password is None:
            raise _Exit("--op-password: set CHATROOM_OP_PASSWORD, or run in a terminal to be asked", 2)
    return password, op_password


def _serve_certificate(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The PEM certificate and key for --tls: given, or self-signed and kept."""
    if not (args.tls or args.cert or args.key):
        return None, None
    if bool(args.cert) != bool(args.key):
        raise _Exit("--cert and --key go together (or give neither for a self-signed certificate)", 2)
    if args.cert:
        return args.cert, args.key
    import socket as _socket

    from chatroom.tls import ensure_certificate

    tls_dir = _data_dir(args.data_dir) / "tls"
    try:
        cert_path, key_path = ensure_certificate(tls_dir, _socket.gethostname())
    except OSError as exc:
        raise _Exit(f"cannot keep a certificate in {tls_dir}: {exc.strerror or exc}") from None
    return str(cert_path), str(key_path)


def _start_server(args: argparse.Namespace, config: ServerConfig, tracer: Tracer | None) -> ChatServer:
    from chatroom.app import build_server
    from chatroom.server.datadir import DataDirError

    try:
        return build_server(config, tracer=tracer)
    except DataDirError as exc:
        raise _Exit(str(exc)) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise _Exit(f"port {args.port} on {args.host} is already in use: stop the other server "
                        "or choose another with --port (0 picks a free one)") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise _Exit(f"{args.host} is not an address of this machine") from None
        if exc.errno == errno.EACCES:
            raise _Exit(f"not allowed to listen on port {args.port}: use a port above 1024") from None
        raise _Exit(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    except OverflowError:
        raise _Exit(f"port {args.port} is out of range (0-65535)") from None
    except sqlite3.Error as exc:
        raise _Exit(f"cannot open the history database in {config.data_dir}: {exc}") from None
    except Exception as exc:
        import redis

        if isinstance(exc, redis.RedisError):
            raise _Exit(f"cannot reach Redis at {redacted_url(config.cluster or '')}: {exc} (is redis-server running "
                        "there?)") from None
        raise
    except (ssl.SSLError, ValueError) as exc:
        raise _Exit(f"cannot use the TLS certificate {config.tls_cert} / key {config.tls_key}: {exc}") from None


def _print_welcome(args: argparse.Namespace, server: ChatServer, config: ServerConfig) -> None:
    from chatroom.netaddr import local_ipv4_addresses

    port = server.port
    print(f"chatroom {__version__}: serving on {args.host}:{port}", flush=True)
    if args.host in ("0.0.0.0", ""):
        addresses = local_ipv4_addresses()
        if addresses:
            print("people on your network can join with:", flush=True)
            for address in addresses:
                print(f"  chatroom join {address}:{port}", flush=True)
            print("or in a browser:", flush=True)
            for address in addresses:
                print(f"  {'https' if server.tls_context else 'http'}://{address}:{port}/", flush=True)
    else:
        print(f"join with: chatroom join {args.host}:{port}", flush=True)
        print(f"or in a browser: {'https' if server.tls_context else 'http'}://{args.host}:{port}/", flush=True)
    if server.web_listener is not None:
        scheme = "https" if server.tls_context else "http"
        for host in _addresses_to_give(args.host):
            print(f"browsers: {scheme}://{host}:{server.web_listener.port}/", flush=True)
    if server.irc_listener is not None:
        print(f"IRC clients: /connect {args.host} {server.irc_listener.port} (or the port above)", flush=True)
    if server.cluster is not None:
        others = len(server.cluster.servers()) - 1
        print(f"cluster: {redacted_url(config.cluster or '')} (server {server.cluster.server}; {others} other "
              "server(s) now)", flush=True)
        print(f"history: in Redis; an acknowledged message is in {server.cluster.durability}", flush=True)
    else:
        print(f"history: {config.data_dir or 'in memory only (--memory)'}", flush=True)
    if config.password:
        print("this room needs a password", flush=True)
    if server.tls_fingerprint:
        print(f"TLS certificate fingerprint (people joining can compare it): {server.tls_fingerprint}", flush=True)
    if not config.op_password:
        print(f"operator token (type /op TOKEN in a client; shown only now): {server.op_token}", flush=True)
    print("press Ctrl-C to stop", flush=True)


def _addresses_to_give(host: str) -> list[str]:
    """The addresses people can use to reach a server listening on ``host``."""
    if host in ("0.0.0.0", ""):
        from chatroom.netaddr import local_ipv4_addresses

        return local_ipv4_addresses() or ["127.0.0.1"]
    return [host]


def _announce(args: argparse.Namespace, server: ChatServer, config: ServerConfig) -> Announcer | None:
    from chatroom.discovery import Announcer, should_announce
    from chatroom.netaddr import local_ipv4_addresses

    if args.no_announce or not should_announce(args.host):
        return None
    addresses = [args.host] if args.host not in ("0.0.0.0", "") else local_ipv4_addresses()
    if not addresses:
        return None
    announcer = Announcer(addresses, server.port, server.room_counts, password=bool(config.password),
                          tls=server.tls_fingerprint, on_event=lambda text: print(f"chatroom: {text}", flush=True),
                          cluster=server.cluster.cluster_id if server.cluster is not None else None)
    announcer.start()
    return announcer


def cmd_rooms(args: argparse.Namespace) -> int:
    from chatroom.discovery import browse, describe

    try:
        ads = browse(args.seconds)
    except Exception as exc:  # noqa: BLE001 -- zeroconf raises what the OS gives it: say so, never hang
        return _fail(f"could not look for rooms on the LAN ({exc}); join by address: chatroom join HOST[:PORT]")
    if not ads:
        print("no rooms found on the LAN; join one by address: chatroom join HOST[:PORT]")
        return 1
    print("\n".join(describe(ads)))
    return 0


def _listening(host: str, port: int) -> bool:
    """Does something accept connections at host:port (loopback: answers at once)?"""
    import socket as _socket

    try:
        with _socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _discover(args: argparse.Namespace) -> tuple[list[tuple[str, int]], str | None, bool] | str:
    """Find a room on the LAN for 'join' with no address: (addresses, room, tls) --
    every server announcing that room of the same cluster, this one's first -- or a
    message saying why not."""
    from chatroom.discovery import browse, choose, describe, one_per_room

    try:
        heard = browse(2.0)
    except Exception as exc:  # noqa: BLE001 -- zeroconf raises what its OS gives it: say so, never hang
        return f"could not look for rooms on the LAN ({exc}); join by address: chatroom join HOST[:PORT]"
    ads = one_per_room(heard)
    if args.room:
        ads = [ad for ad in ads if ad.room.casefold() == args.room.casefold()] or ads
    if not ads:
        return "no rooms found on the LAN; join one by address: chatroom join HOST[:PORT] (127.0.0.1 for this machine)"
    ad = ads[0]
    if len(ads) > 1:
        print("\n".join(describe(ads)))
        if not sys.stdin.isatty():
            return "several rooms found: say which with chatroom join HOST[:PORT] --room ROOM"
        while (picked := choose(ads, input("join which room (number or name)? "))) is None:
            print("type one of the numbers, or a room's name")
        ad = picked
    same = [ad] + [other for other in heard if other is not ad and ad.cluster and other.cluster == ad.cluster
                   and other.room.casefold() == ad.room.casefold()]
    return [(address, a.port) for a in same for address in a.addresses], ad.room, ad.tls is not None


def _open_tracer(target: str | None) -> Tracer | None:
    if target is None:
        return None
    from chatroom.trace import Tracer

    if target == "-":
        return Tracer(sys.stdout)
    return Tracer(open(target, "a", encoding="utf-8"), close_out=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from chatroom.client.connection import ChatClient
    from chatroom.demo import Demo

    logging.getLogger().addHandler(logging.NullHandler())
    logging.getLogger("chatroom").setLevel(logging.WARNING)
    if args.rate <= 0:
        return _fail("--rate is the number of seconds between bot lines: give a positive number", 2)
    if not args.no_client and (not sys.stdin.isatty() or not sys.stdout.isatty()):
        return _fail("the demo's client needs a terminal: run it in one, or use --no-client", 2)
    try:
        demo = Demo(bots=args.bots, interval=args.rate, host=args.host, port=args.port)
    except OSError as exc:
        return _fail(f"cannot start the demo server on port {args.port}: {exc.strerror or exc}")
    demo.start()
    try:
        if args.no_client:
            print(f"chatroom demo: {len(demo.bots)} bots chatting on {args.host}:{demo.port}", flush=True)
            for host in _addresses_to_give(args.host):
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

        client = ChatClient("127.0.0.1", demo.port, args.nick or _default_nick())
        try:
            client.connect()
        except HandshakeRefused as exc:
            return _fail(_refusal_advice(exc.code, exc.message, args))
        addresses = ", ".join(f"http://{host}:{demo.port}/" for host in _addresses_to_give(args.host))
        ChatApp(client, banner=f"others can join from a browser at {addresses}").run()
        return 0
    finally:
        demo.stop()
        print("chatroom demo: stopped", flush=True)


def _secret(variable: str, what: str, *, confirm: bool = True) -> str | None:
    """A secret from the environment, or asked for in the terminal (None: neither)."""
    import getpass
    import os

    value = os.environ.get(variable)
    if value:
        return value
    if not sys.stdin.isatty():
        return None
    while True:
        first = getpass.getpass(f"{what}: ")
        if not first:
            print(f"the {what} cannot be empty", file=sys.stderr)
            continue
        if not confirm or getpass.getpass(f"{what} again: ") == first:
            return first
        print("they differ; again", file=sys.stderr)


def _data_dir(given: str | None) -> Path:
    from chatroom.server.store import default_data_dir

    return Path(given).expanduser() if given else default_data_dir()


def cmd_bans(args: argparse.Namespace) -> int:
    import time

    from chatroom.server.bans import BanList
    from chatroom.server.store import DB_NAME, HistoryStore
    from chatroom.text import clean_line

    path = _data_dir(args.data_dir) / DB_NAME
    if not path.exists():
        return _fail(f"no database at {path} (has a server run with that --data-dir?)")
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
                return _fail(f"no ban matches {clean_line(args.unban)}")
            print("unbanned " + ", ".join(clean_line(b.describe(now)) for b in lifted))
            return 0
        store.close()
    except sqlite3.Error as exc:
        return _fail(f"cannot use {path}: {exc}")
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

    path = _data_dir(args.data_dir) / DB_NAME
    if not path.exists():
        return _fail(f"no history database at {path} (has a server run with that --data-dir?)")
    try:
        since = _parse_since(args.since) if args.since else None
    except ValueError as exc:
        return _fail(str(exc), 2)
    try:
        store = HistoryStore(path, read_only=True)
        record = store.room(args.room)
        if record is None:
            known = ", ".join(r.name for r in store.rooms()) or "none"
            return _fail(f"no room called {args.room!r} in {path} (rooms: {known})")
        chats = list(store.transcript(args.room, since))
        store.close()
    except sqlite3.Error as exc:
        return _fail(f"cannot read {path}: {exc}")
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


def _default_nick() -> str:
    import getpass

    from chatroom.text import MAX_NICK_LENGTH

    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = ""
    nick = "".join(ch for ch in login if ch.isalnum() or ch in "_-.")[:MAX_NICK_LENGTH]
    return nick or "guest"


def _refusal_advice(code: str, message: str, args: argparse.Namespace) -> str:
    from chatroom.protocol import ErrorCode

    if code == ErrorCode.NICK_TAKEN:
        return f"{message}: choose another with --nick NAME"
    if code == ErrorCode.INVALID_NICK:
        return f"that nick cannot be used ({message}): choose another with --nick NAME"
    if code == ErrorCode.SERVER_FULL:
        return "the server is full: try again later, or ask its host to raise --max-clients"
    if code == ErrorCode.TOO_MANY_CONNECTIONS:
        return f"{message} (or ask the server's host to raise --max-per-address)"
    if code == ErrorCode.VERSION_MISMATCH:
        return f"{message} (this is chatroom {__version__})"
    if code == ErrorCode.INVALID_ROOM:
        return f"cannot join that room: {message}"
    if code == ErrorCode.AUTH_FAILED:
        return f"{message} (the password comes from $CHATROOM_PASSWORD or the prompt)"
    if code == ErrorCode.BANNED:
        return message
    return message


def cmd_join(args: argparse.Namespace) -> int:
    from chatroom.client.config import ConfigError, load_config
    from chatroom.client.connection import ChatClient
    from chatroom.tls import KnownServers, default_known_servers

    logging.getLogger().addHandler(logging.NullHandler())
    try:
        config = load_config(Path(args.config).expanduser() if args.config else None)
    except ConfigError as exc:
        return _fail(f"the client's settings: {exc}", 2)
    args.config_values = config
    args.address = args.address or config.server  # the command line wins over the file
    args.rooms = [args.room] if args.room else list(config.rooms)
    args.room = args.rooms[0] if args.rooms else None
    args.downloads = args.downloads or config.downloads
    where = _join_addresses(args)
    if isinstance(where, int):
        return where
    addresses = where
    nick = args.nick or config.nick or _default_nick()
    if args.trace == "-":
        return _fail("--trace needs a file for 'join' (the screen is busy): --trace trace.log", 2)
    try:
        tracer = _open_tracer(args.trace)
    except OSError as exc:
        return _fail(f"cannot write the trace to {args.trace}: {exc.strerror or exc}")
    known_servers = KnownServers(default_known_servers())
    if args.forget_pin:
        for host, port in addresses:
            if known_servers.forget(f"{host}:{port}"):
                print(f"forgot the certificate remembered for {host}:{port}", file=sys.stderr)
    try:
        # Every address in turn, starting at a random one (a class given the same list
        # spreads over a cluster's servers instead of all landing on the first).
        start = secrets.randbelow(len(addresses))
        addresses = addresses[start:] + addresses[:start]
        for i, (host, port) in enumerate(addresses):  # the others are kept for reconnects
            try:
                client = ChatClient(host, port, nick, room=args.room, tracer=tracer, alternates=addresses,
                                    password=os.environ.get("CHATROOM_PASSWORD") or None, tls=args.tls,
                                    fingerprint=args.fingerprint,
                                    known_servers=known_servers,
                                    downloads=Path(args.downloads).expanduser() if args.downloads else None)
            except ValueError as exc:
                return _fail(f"--fingerprint: {exc}", 2)
            status = _run_client(client, args, last=i == len(addresses) - 1)
            if status != _TRY_NEXT:
                return status
        return 1
    finally:
        if tracer is not None:
            tracer.close()


def _join_addresses(args: argparse.Namespace) -> list[tuple[str, int]] | int:
    """Where to join: the typed address, a server on this machine, or what the LAN
    announces (which may also set ``args.room`` and ``args.tls``).  An int: the exit
    status of a failure already reported."""
    from chatroom.client.connection import parse_address
    from chatroom.protocol import DEFAULT_PORT

    if args.address is not None:  # HOST[:PORT], or several servers of one cluster: A:PORT,B:PORT
        out = []
        for text in args.address.split(","):
            try:
                out.append(parse_address(text.strip(), DEFAULT_PORT))
            except ValueError as exc:
                return _fail(f"bad address {text!r}: {exc}", 2)
        return out
    if _listening("127.0.0.1", DEFAULT_PORT):
        return [("127.0.0.1", DEFAULT_PORT)]  # a server on this machine: no need to look further
    found = _discover(args)
    if isinstance(found, str):
        return _fail(found)
    addresses, room, tls = found
    args.room = args.room or room
    args.tls = args.tls or tls
    return addresses


_TRY_NEXT = -1


def _run_client(client: ChatClient, args: argparse.Namespace, last: bool = True) -> int:
    from chatroom.client.connection import CertificateChanged
    from chatroom.errors import ConnectionFailed, HandshakeRefused
    from chatroom.protocol import ErrorCode

    try:
        try:
            client.connect()
        except HandshakeRefused as exc:
            if exc.code != ErrorCode.AUTH_REQUIRED or client.password is not None:
                raise
            client.password = _secret("CHATROOM_PASSWORD", "room password", confirm=False)
            if client.password is None:
                return _fail("this room needs a password: set CHATROOM_PASSWORD, or run in a terminal to be asked")
            client.connect()
    except ConnectionFailed as exc:
        if not last and not isinstance(exc, CertificateChanged):
            return _TRY_NEXT
        return _fail(str(exc))
    except HandshakeRefused as exc:
        return _fail(_refusal_advice(exc.code, exc.message, args))
    from chatroom.protocol import Join

    for room in args.rooms[1:]:  # the config's other rooms
        client.send(Join(room=room))
    if args.plain:
        from chatroom.ui.plain import run_plain

        return run_plain(client)
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        client.close()
        return _fail("the full-screen client needs a terminal: use --plain for pipes and scripts", 2)
    from chatroom.ui.tui import ChatApp

    ChatApp(client, args.config_values).run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `chatroom log | head -1`: the reader is gone; end quietly.  Python would try to
        # flush stdout again at exit and complain, so point it at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
