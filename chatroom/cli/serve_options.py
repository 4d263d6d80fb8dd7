"""``chatroom serve``'s options, grouped by topic as ``--help`` shows them.

Every option ``--foo-bar`` is also the key ``foo_bar`` of ``server.toml``
(``server_file.py``), so this table is the one list of what a server can be told.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from chatroom.cli.common import byte_size, network, positive_int

if TYPE_CHECKING:
    from chatroom.server.config import ServerConfig

__all__ = ["add_serve_options", "NOT_IN_FILE", "SECRET_KEYS"]

#: Options that are about reading the file, not settings in it.
NOT_IN_FILE = frozenset({"config", "print_config"})

#: Keys whose values are secrets: the file may only say where they come from.
SECRET_KEYS = frozenset({"password", "op_password"})


def add_serve_options(serve: argparse.ArgumentParser) -> None:
    from chatroom.protocol import DEFAULT_PORT
    from chatroom.server.config import ServerConfig

    defaults = ServerConfig()
    _listening(serve.add_argument_group("where it listens"), defaults.host, DEFAULT_PORT)
    _security(serve.add_argument_group(
        "password, TLS and operators",
        "secrets never come from the command line or server.toml in clear: from the environment, a prompt, or a "
        "file only its owner can read"))
    _limits(serve.add_argument_group("limits"), defaults)
    _storage(serve.add_argument_group("history and storage"), defaults)
    _running(serve.add_argument_group("running it (config file, logs, metrics)"))


def _listening(group: argparse._ArgumentGroup, host: str, port: int) -> None:
    group.add_argument("--host", default=host,
                       help="address to listen on (default %(default)s; 0.0.0.0 shares it on the LAN)")
    group.add_argument("--port", type=positive_int, default=port,
                       help="TCP port (default %(default)s; 0 picks a free one)")
    group.add_argument("--irc-port", type=positive_int, default=None, metavar="PORT",
                       help="also listen for IRC clients on this port (e.g. 6667; 0 picks a free one); "
                            "they are welcome on --port too")
    group.add_argument("--web-port", type=positive_int, default=None, metavar="PORT",
                       help="also serve browsers on this port (e.g. 8080; 0 picks a free one); they are welcome "
                            "on --port too")
    group.add_argument("--web-host", action="append", default=[], metavar="NAME",
                       help="a host name browsers may use for the page (repeatable), besides this machine's "
                            "addresses, its host name and localhost; other names are refused (DNS rebinding)")
    group.add_argument("--name", default="", help="server name shown to clients (default: host name)")
    group.add_argument("--announce", action=argparse.BooleanOptionalAction, default=True,
                       help="announce the rooms on the LAN (mDNS; default yes); a server on 127.0.0.1 never does")


def _security(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--password", action=argparse.BooleanOptionalAction, default=False,
                       help="require a room password: read from $CHATROOM_PASSWORD, or asked for")
    group.add_argument("--password-file", default=None, metavar="FILE",
                       help="require a room password, read from FILE (its first line; only its owner may read it)")
    group.add_argument("--op-password", action=argparse.BooleanOptionalAction, default=False,
                       help="choose the operator token (from $CHATROOM_OP_PASSWORD, or asked for) instead of "
                            "a random one printed at start")
    group.add_argument("--op-password-file", default=None, metavar="FILE",
                       help="the operator token, read from FILE (its first line; only its owner may read it)")
    group.add_argument("--tls", action=argparse.BooleanOptionalAction, default=False,
                       help="encrypt with TLS; without --cert/--key a self-signed certificate is made once "
                            "and kept in the data directory")
    group.add_argument("--cert", default=None, metavar="FILE", help="PEM certificate for --tls")
    group.add_argument("--key", default=None, metavar="FILE", help="PEM private key for --tls")


def _limits(group: argparse._ArgumentGroup, d: ServerConfig) -> None:
    group.add_argument("--max-clients", type=positive_int, default=d.max_clients, metavar="N",
                       help="connections accepted at once (default %(default)s)")
    group.add_argument("--max-per-address", type=positive_int, default=d.max_per_address, metavar="N",
                       help="connections from one address (0: no limit; default %(default)s)")
    group.add_argument("--max-text", type=positive_int, default=d.max_text, metavar="N",
                       help="characters in one message (default %(default)s)")
    group.add_argument("--max-file-size", type=byte_size, default=d.max_file_size, metavar="SIZE",
                       help="largest file people may share through the server, e.g. 20M or 2G "
                            "(default 100M; 0 turns file sharing off)")
    group.add_argument("--rate", type=float, default=d.rate, metavar="PER_SECOND",
                       help="messages per second per client, sustained; 0 turns limiting off (default %(default)s)")
    group.add_argument("--burst", type=float, default=d.burst, metavar="N",
                       help="messages a client may send at once (default %(default)s)")
    group.add_argument("--outbox-limit", type=positive_int, default=d.outbox_limit, metavar="BYTES",
                       help="bytes queued for one client before it is dropped as too slow (default %(default)s)")
    group.add_argument("--frame-timeout", type=float, default=d.frame_timeout, metavar="SECONDS",
                       help="a frame left unfinished this long drops its sender as too slow (default %(default)s)")
    group.add_argument("--ping-interval", type=float, default=d.ping_interval, metavar="SECONDS",
                       help="seconds of silence before a client is pinged (default %(default)s)")
    group.add_argument("--pong-timeout", type=float, default=d.pong_timeout, metavar="SECONDS",
                       help="seconds to wait for the answer to a ping (default %(default)s)")
    group.add_argument("--handshake-timeout", type=float, default=d.handshake_timeout, metavar="SECONDS",
                       help="seconds a new connection has to say hello (default %(default)s)")


def _storage(group: argparse._ArgumentGroup, d: ServerConfig) -> None:
    store = group.add_mutually_exclusive_group()
    store.add_argument("--data-dir", default=None, metavar="DIR",
                       help="where the room history database lives (default: $XDG_DATA_HOME/chatroom, "
                            "i.e. ~/.local/share/chatroom)")
    store.add_argument("--memory", action="store_true",
                       help="keep history in memory only, the newest 10,000 messages per room (a throwaway "
                            "demo: gone when the server stops)")
    store.add_argument("--cluster", default=os.environ.get("CHATROOM_CLUSTER") or None, metavar="redis://HOST:PORT/DB",
                       help="share rooms, history and nicks with the other servers using this Redis (default: "
                            "$CHATROOM_CLUSTER; none: this server alone, history in SQLite)")
    group.add_argument("--cluster-beat", type=float, default=d.cluster_beat, metavar="SECONDS",
                       help="--cluster: seconds between this server's heartbeats; a server silent for the resume "
                            "grace plus three beats is taken for dead and loses its lease (default %(default)s)")
    group.add_argument("--cluster-replicas", type=positive_int, default=d.cluster_replicas, metavar="N",
                       help="--cluster: acknowledge a message only once N Redis replicas have it too (Redis's WAIT; "
                            "then a failover loses no acknowledged message), else answer unconfirmed after 1 s "
                            "(default %(default)s: once the master has it)")
    group.add_argument("--sync", choices=["normal", "full"], default="normal",
                       help="normal: an acknowledged message survives the server crashing; "
                            "full: it also survives a power cut (slower). Default %(default)s")
    group.add_argument("--history", type=positive_int, default=d.history_size, metavar="N",
                       help="messages replayed on joining a room (default %(default)s)")
    group.add_argument("--resume-grace", type=float, default=d.resume_grace, metavar="SECONDS",
                       help="seconds a dropped client keeps its nick and room to resume (default %(default)s)")
    group.add_argument("--keep-messages", type=positive_int, default=None, metavar="N",
                       help="retention: keep only the newest N messages per room (default: all)")
    group.add_argument("--keep-days", type=float, default=None, metavar="DAYS",
                       help="retention: delete messages older than this many days (default: never); what "
                            "recognises a resent message goes with it")
    group.add_argument("--retention-interval", type=float, default=d.retention_interval, metavar="SECONDS",
                       help="seconds between retention passes (default %(default)s)")


def _running(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--config", default=None, metavar="FILE",
                       help="settings file (default: server.toml in the platform's config directory, e.g. "
                            "~/.config/chatroom/server.toml); each option --foo-bar is the key foo_bar, and the "
                            "command line wins. SIGHUP re-reads it")
    group.add_argument("--print-config", action="store_true",
                       help="print the settings in effect (file, command line, defaults; secrets masked) and exit")
    group.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                       help="default %(default)s")
    group.add_argument("--log-file", default=None, metavar="FILE", help="write the log here instead of stderr")
    group.add_argument("--log-format", default="text", choices=["text", "json"],
                       help="text lines, or one JSON object per line (time, level, event, peer, room, nick, "
                            "message); default %(default)s")
    group.add_argument("--metrics-from", action="append", type=network, default=[], metavar="ADDRESS[/BITS]",
                       help="serve GET /metrics (Prometheus text) to these addresses or networks (repeatable; "
                            "default: nobody). GET /healthz is open to all")
    group.add_argument("--trace", nargs="?", const="-", default=None, metavar="FILE",
                       help="show every recv() and frame on the wire (to stdout, or to FILE): for teaching")
