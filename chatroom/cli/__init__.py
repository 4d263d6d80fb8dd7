"""The ``chatroom`` command: ``serve`` a room, ``join`` one.

``main(argv=None)`` parses arguments and returns an exit status; every expected failure
(port in use, connection refused, nick taken...) is one line on stderr, not a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from chatroom import __version__
from chatroom.cli.admin import cmd_bans, cmd_demo, cmd_log
from chatroom.cli.common import add_logging, byte_size, positive_int
from chatroom.cli.join import cmd_join, cmd_rooms
from chatroom.cli.serve import cmd_serve

__all__ = ["main", "build_parser"]

log = logging.getLogger("chatroom")


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
    serve.add_argument("--port", type=positive_int, default=DEFAULT_PORT,
                       help="TCP port (default %(default)s; 0 picks a free one)")
    serve.add_argument("--irc-port", type=positive_int, default=None, metavar="PORT",
                       help="also listen for IRC clients on this port (e.g. 6667; 0 picks a free one); "
                            "they are welcome on --port too")
    serve.add_argument("--web-port", type=positive_int, default=None, metavar="PORT",
                       help="also serve browsers on this port (e.g. 8080; 0 picks a free one); they are welcome "
                            "on --port too")
    serve.add_argument("--web-host", action="append", default=[], metavar="NAME",
                       help="a host name browsers may use for the page (repeatable), besides this machine's "
                            "addresses, its host name and localhost; other names are refused (DNS rebinding)")
    serve.add_argument("--name", default="", help="server name shown to clients (default: host name)")
    serve.add_argument("--max-clients", type=positive_int, default=defaults.max_clients,
                       help="connections accepted at once (default %(default)s)")
    serve.add_argument("--max-per-address", type=positive_int, default=defaults.max_per_address, metavar="N",
                       help="connections from one address (0: no limit; default %(default)s)")
    serve.add_argument("--frame-timeout", type=float, default=defaults.frame_timeout, metavar="SECONDS",
                       help="a frame left unfinished this long drops its sender as too slow (default %(default)s)")
    serve.add_argument("--max-text", type=positive_int, default=defaults.max_text,
                       help="characters in one message (default %(default)s)")
    serve.add_argument("--history", type=positive_int, default=defaults.history_size,
                       help="messages replayed on joining a room (default %(default)s)")
    serve.add_argument("--outbox-limit", type=positive_int, default=defaults.outbox_limit,
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
    serve.add_argument("--keep-messages", type=positive_int, default=None,
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
    serve.add_argument("--max-file-size", type=byte_size, default=defaults.max_file_size, metavar="SIZE",
                       help="largest file people may share through the server, e.g. 20M or 2G "
                            "(default 100M; 0 turns file sharing off)")
    serve.add_argument("--no-announce", action="store_true",
                       help="do not announce the rooms on the LAN (mDNS); a server on 127.0.0.1 never does")
    serve.add_argument("--trace", nargs="?", const="-", default=None, metavar="FILE",
                       help="show every recv() and frame on the wire (to stdout, or to FILE): for teaching")
    add_logging(serve)
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="a server and chatting bots on this machine, then join them",
                          description="Start a server on 127.0.0.1 with a few bots holding a conversation, "
                                      "then the full-screen client for you. Ctrl-C or /quit stops everything.")
    demo.add_argument("--bots", type=positive_int, default=4, help="how many bots (1-8, default %(default)s)")
    demo.add_argument("--rate", type=float, default=3.0,
                      help="seconds between bot lines (default %(default)s)")
    demo.add_argument("--no-client", action="store_true",
                      help="only the server and bots (for a projector; students join from their terminals)")
    demo.add_argument("--port", type=positive_int, default=0, help="TCP port (default: a free one)")
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
