"""``chatroom serve``: start a server as the options say, print where it is, announce
it on the LAN, and run until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import errno
import gc
import logging
import signal
import sqlite3
import ssl
import sys
import threading
from typing import TYPE_CHECKING

from chatroom import __version__
from chatroom.cli.common import Exit, data_dir_of, fail, open_tracer, secret_from, setup_logging
from chatroom.cli.server_file import read_secret_file
from chatroom.logfmt import about
from chatroom.redact import redacted_url
from chatroom.tls import hex_fingerprint

if TYPE_CHECKING:
    from chatroom.discovery import Announcer
    from chatroom.server.tcp import ChatServer, ServerConfig
    from chatroom.trace import Tracer

__all__ = ["cmd_serve", "GC_YOUNG_THRESHOLD"]

log = logging.getLogger("chatroom")


def cmd_serve(args: argparse.Namespace) -> int:
    from chatroom.cli import build_parser
    from chatroom.cli.server_file import describe, settings_in_effect

    try:
        settings = settings_in_effect(build_parser(), args.argv)
    except Exit as exc:
        return fail(str(exc), exc.status)
    settings.args.argv = args.argv
    args = settings.args
    if args.print_config:
        print(describe(settings, build_parser()), flush=True)
        return 0
    setup_logging(args)
    try:
        password, op_password = _serve_secrets(args)
        cert, key = _serve_certificate(args)
        config = server_config(args, password=password, op_password=op_password, cert=cert, key=key)
        tracer = open_tracer(args.trace)
        server = _start_server(args, config, tracer)
    except Exit as exc:
        return fail(str(exc), exc.status)
    if settings.path is not None:
        log.info("settings: %s", settings.path)
    _print_welcome(args, server, config)
    _tune_collector()
    try:
        _run(args, server, config)
    finally:
        if tracer is not None:
            tracer.close()
    print("chatroom: server stopped", flush=True)
    return 0


def _run(args: argparse.Namespace, server: ChatServer, config: ServerConfig) -> None:
    """Serve until Ctrl-C or SIGTERM; SIGHUP reads the settings again -- unless the
    server runs in a terminal, where SIGHUP means the terminal went away (closed, or its
    tmux pane killed): then it stops, as a program in a terminal should."""
    stop, hangup = threading.Event(), threading.Event()
    in_terminal = _in_terminal()

    def on_signal(signum: int, frame: object) -> None:
        if signum == getattr(signal, "SIGHUP", None) and not in_terminal:
            hangup.set()
        else:
            stop.set()

    signals = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, on_signal) for sig in signals}
    thread = server.serve_in_thread()
    announcer = _announce(args, server, config)
    running = args
    try:
        while not stop.wait(0.2) and thread.is_alive():
            if hangup.is_set():
                hangup.clear()
                running = reload_settings(running, server)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if announcer is not None:
            announcer.stop()  # goodbyes first, while the rooms still exist
        server.stop()


def _in_terminal() -> bool:
    """Whether the server was started in a terminal (its input is one)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError):
        return False


def server_config(args: argparse.Namespace, *, password: str | None, op_password: str | None, cert: str | None,
                  key: str | None) -> ServerConfig:
    """The server's settings from the options in effect (secrets and the certificate
    read or made already: they are not the options' business)."""
    from chatroom.server.tcp import ServerConfig

    return ServerConfig(
        host=args.host, port=args.port, name=args.name, max_clients=args.max_clients,
        max_text=args.max_text, history_size=args.history, outbox_limit=args.outbox_limit,
        rate=args.rate, burst=args.burst, ping_interval=args.ping_interval,
        pong_timeout=args.pong_timeout, handshake_timeout=args.handshake_timeout,
        data_dir=None if args.memory or args.cluster else str(data_dir_of(args.data_dir)), sync=args.sync,
        cluster=args.cluster, cluster_beat=args.cluster_beat, cluster_replicas=args.cluster_replicas,
        resume_grace=args.resume_grace, keep_messages=args.keep_messages, keep_days=args.keep_days,
        retention_interval=args.retention_interval,
        password=password, op_password=op_password, tls_cert=cert, tls_key=key,
        max_file_size=args.max_file_size, max_per_address=args.max_per_address,
        frame_timeout=args.frame_timeout, irc_port=args.irc_port, web_port=args.web_port,
        web_hosts=tuple(args.web_host), metrics_from=tuple(args.metrics_from),
    )


def reload_settings(running: argparse.Namespace, server: ChatServer) -> argparse.Namespace:
    """SIGHUP: read server.toml and the command line again; take what can change live,
    say in the log what changed and what needs a restart, and read the ban list again.
    Returns the options now in effect (a bad file changes nothing)."""
    from chatroom.cli import build_parser
    from chatroom.cli.server_file import settings_in_effect

    try:
        new = settings_in_effect(build_parser(), running.argv).args
    except Exit as exc:
        log.error("SIGHUP: %s; nothing changed", exc, extra=about("reload_failed"))
        return running
    new.argv = running.argv
    config = server.config
    server.reconfigure(server_config(new, password=config.password, op_password=config.op_password,
                                     cert=config.tls_cert, key=config.tls_key))
    logging.getLogger().setLevel(new.log_level)
    reloadable = _reloadable()
    differ = sorted(key for key, value in vars(new).items()
                    if key not in _NOT_SETTINGS and value != getattr(running, key, value))
    live = [f"{key} {_shown(getattr(running, key))} -> {_shown(getattr(new, key))}"
            for key in differ if key in reloadable]
    restart = [key for key in differ if key not in reloadable]
    bans = server.reload_bans()
    log.info("SIGHUP: settings read again: %s; ban list read again (%d ban(s))%s",
             ", ".join(live) if live else "nothing that can change live changed", bans,
             f"; needs a restart to change: {', '.join(restart)}" if restart else "", extra=about("reloaded"))
    for key in restart:  # keep what runs; say it again at the next SIGHUP
        setattr(new, key, getattr(running, key))
    return new


def _shown(value: object) -> str:
    return "(not set)" if value is None else str(value)


_NOT_SETTINGS = frozenset({"argv", "func", "command", "config", "print_config"})

def _reloadable() -> frozenset[str]:
    """Options that a running server takes on SIGHUP: ``ServerConfig.LIVE`` by their
    option names, and the log level."""
    from chatroom.server.config import ServerConfig

    return frozenset({"history" if name == "history_size" else name for name in ServerConfig.LIVE} | {"log_level"})


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
    if args.password_file:
        password = read_secret_file(args.password_file, "room password")
    elif args.password:
        password = secret_from("CHATROOM_PASSWORD", "room password")
        if password is None:
            raise Exit("--password: set CHATROOM_PASSWORD, or run in a terminal to be asked", 2)
    if args.op_password_file:
        op_password = read_secret_file(args.op_password_file, "operator token")
    elif args.op_password:
        op_password = secret_from("CHATROOM_OP_PASSWORD", "operator token")
        if op_password is None:
            raise Exit("--op-password: set CHATROOM_OP_PASSWORD, or run in a terminal to be asked", 2)
    return password, op_password


def _serve_certificate(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The PEM certificate and key for --tls: given, or self-signed and kept."""
    if not (args.tls or args.cert or args.key):
        return None, None
    if bool(args.cert) != bool(args.key):
        raise Exit("--cert and --key go together (or give neither for a self-signed certificate)", 2)
    if args.cert:
        return args.cert, args.key
    import socket as _socket

    from chatroom.tls import ensure_certificate

    tls_dir = data_dir_of(args.data_dir) / "tls"
    try:
        cert_path, key_path = ensure_certificate(tls_dir, _socket.gethostname())
    except OSError as exc:
        raise Exit(f"cannot keep a certificate in {tls_dir}: {exc.strerror or exc}") from None
    return str(cert_path), str(key_path)


def _start_server(args: argparse.Namespace, config: ServerConfig, tracer: Tracer | None) -> ChatServer:
    from chatroom.app import build_server
    from chatroom.server.datadir import DataDirError

    try:
        return build_server(config, tracer=tracer)
    except DataDirError as exc:
        raise Exit(str(exc)) from None
    except OSError as exc:
        raise Exit(_cannot_listen(args, exc)) from None
    except OverflowError:
        raise Exit(f"port {args.port} is out of range (0-65535)") from None
    except sqlite3.Error as exc:
        raise Exit(f"cannot open the history database in {config.data_dir}: {exc}") from None
    except Exception as exc:
        import redis

        if isinstance(exc, redis.RedisError):
            raise Exit(f"cannot reach Redis at {redacted_url(config.cluster or '')}: {exc} (is redis-server running "
                        "there?)") from None
        raise
    except (ssl.SSLError, ValueError) as exc:
        raise Exit(f"cannot use the TLS certificate {config.tls_cert} / key {config.tls_key}: {exc}") from None


def _cannot_listen(args: argparse.Namespace, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (f"port {args.port} on {args.host} is already in use: stop the other server or choose another with "
                "--port (0 picks a free one)")
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{args.host} is not an address of this machine"
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on port {args.port}: use a port above 1024"
    return f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"


def _print_welcome(args: argparse.Namespace, server: ChatServer, config: ServerConfig) -> None:
    print(f"chatroom {__version__}: serving on {args.host}:{server.port}", flush=True)
    _print_addresses(args.host, server)
    _print_storage(server, config)
    if config.password:
        print("this room needs a password", flush=True)
    if server.tls_fingerprint:
        print(f"TLS certificate fingerprint (people joining can compare it): {server.tls_fingerprint}", flush=True)
        print(f"  for IRC clients: irssi -tls_pinned_cert {hex_fingerprint(server.tls_fingerprint, colons=True)}; "
              f"WeeChat tls_fingerprint {hex_fingerprint(server.tls_fingerprint)}", flush=True)
    if not config.op_password:
        print(f"operator token (type /oper TOKEN in a client; shown only now): {server.op_token}", flush=True)
    print("press Ctrl-C to stop", flush=True)


def _print_addresses(host: str, server: ChatServer) -> None:
    """What people type to join: every address of this machine when it listens on all."""
    from chatroom.netaddr import local_ipv4_addresses

    port, scheme = server.port, "https" if server.tls_context else "http"
    if host in ("0.0.0.0", ""):
        addresses = local_ipv4_addresses()
        if addresses:
            print("people on your network can join with:", flush=True)
            for address in addresses:
                print(f"  chatroom join {address}:{port}", flush=True)
            print("or in a browser:", flush=True)
            for address in addresses:
                print(f"  {scheme}://{address}:{port}/", flush=True)
    else:
        print(f"join with: chatroom join {host}:{port}", flush=True)
        print(f"or in a browser: {scheme}://{host}:{port}/", flush=True)
    if server.web_listener is not None:
        for name in addresses_to_give(host):
            print(f"browsers: {scheme}://{name}:{server.web_listener.port}/", flush=True)
    if server.irc_listener is not None:
        print(f"IRC clients: /connect {host} {server.irc_listener.port} (or the port above)", flush=True)


def _print_storage(server: ChatServer, config: ServerConfig) -> None:
    if server.cluster is not None:
        others = len(server.cluster.servers()) - 1
        print(f"cluster: {redacted_url(config.cluster or '')} (server {server.cluster.server}; {others} other "
              "server(s) now)", flush=True)
        print(f"history: in Redis; an acknowledged message is in {server.cluster.durability}", flush=True)
    else:
        print(f"history: {config.data_dir or 'in memory only (--memory)'}", flush=True)


def addresses_to_give(host: str) -> list[str]:
    """The addresses people can use to reach a server listening on ``host``."""
    if host in ("0.0.0.0", ""):
        from chatroom.netaddr import local_ipv4_addresses

        return local_ipv4_addresses() or ["127.0.0.1"]
    return [host]


def _announce(args: argparse.Namespace, server: ChatServer, config: ServerConfig) -> Announcer | None:
    from chatroom.discovery import Announcer, should_announce
    from chatroom.netaddr import local_ipv4_addresses

    if not args.announce or not should_announce(args.host):
        return None
    addresses = [args.host] if args.host not in ("0.0.0.0", "") else local_ipv4_addresses()
    if not addresses:
        return None
    announcer = Announcer(addresses, server.port, server.room_counts, password=bool(config.password),
                          tls=server.tls_fingerprint, on_event=lambda text: print(f"chatroom: {text}", flush=True),
                          cluster=server.cluster.cluster_id if server.cluster is not None else None)
    announcer.start()
    return announcer
