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
from chatroom.cli.common import positive_int
from chatroom.cli.join import cmd_join, cmd_rooms
from chatroom.cli.serve import cmd_serve
from chatroom.cli.serve_options import add_serve_options

__all__ = ["main", "build_parser"]

log = logging.getLogger("chatroom")


def build_parser() -> argparse.ArgumentParser:
    from chatroom.protocol import DEFAULT_PORT, PROTOCOL_VERSION

    parser = argparse.ArgumentParser(
        prog="chatroom",
        description="A LAN chat room: host one with 'serve', talk in it with 'join'.",
    )
    parser.add_argument("--version", action="version", version=f"chatroom {__version__} (protocol {PROTOCOL_VERSION})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="host a chat server",
                           description="Host a chat server. Every option --foo-bar can also be the line foo_bar = "
                                       "VALUE in server.toml (see --config); the command line wins.")
    add_serve_options(serve)
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
                           "(a running server forgets it when it reads its ban list again: at SIGHUP or a "
                           "restart; /unban lifts it at once)")
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

    completion = sub.add_parser(
        "completion", help="print a shell completion script",
        description="Print the script that makes your shell complete chatroom's commands and options, e.g. "
                    "'chatroom completion bash > ~/.local/share/bash-completion/completions/chatroom', "
                    "'chatroom completion zsh > \"${fpath[1]}/_chatroom\"', or "
                    "'chatroom completion fish > ~/.config/fish/completions/chatroom.fish'.")
    completion.add_argument("shell", choices=["bash", "zsh", "fish"])
    completion.set_defaults(func=cmd_completion)
    return parser


def cmd_completion(args: argparse.Namespace) -> int:
    """argcomplete's script for ``args.shell``: the shell runs ``chatroom`` itself to
    complete, so the completions are always those of the installed version."""
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode(["chatroom"], shell=args.shell))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # a shell asking for completions (``chatroom completion``)
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    args.argv = argv  # serve reads them again with server.toml's values (and on SIGHUP)
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
