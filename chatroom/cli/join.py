"""``chatroom join`` and ``chatroom rooms``: find a server (the address given, this
machine, or the LAN), join it in the full-screen or plain client."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from chatroom import __version__
from chatroom.cli.common import fail, open_tracer, secret_from

if TYPE_CHECKING:
    from chatroom.client.config import ClientConfig
    from chatroom.client.connection import ChatClient
    from chatroom.discovery import RoomAd
    from chatroom.tls import KnownServers
    from chatroom.trace import Tracer

__all__ = ["cmd_rooms", "cmd_join"]

log = logging.getLogger("chatroom")


def cmd_rooms(args: argparse.Namespace) -> int:
    from chatroom.discovery import browse, describe

    try:
        ads = browse(args.seconds)
    except Exception as exc:  # noqa: BLE001 -- zeroconf raises what the OS gives it: say so, never hang
        return fail(f"could not look for rooms on the LAN ({exc}); join by address: chatroom join HOST[:PORT]")
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
    from chatroom.discovery import browse, one_per_room

    try:
        heard = browse(2.0)
    except Exception as exc:  # noqa: BLE001 -- zeroconf raises what its OS gives it: say so, never hang
        return f"could not look for rooms on the LAN ({exc}); join by address: chatroom join HOST[:PORT]"
    ads = one_per_room(heard)
    if args.room:
        ads = [ad for ad in ads if ad.room.casefold() == args.room.casefold()] or ads
    if not ads:
        return "no rooms found on the LAN; join one by address: chatroom join HOST[:PORT] (127.0.0.1 for this machine)"
    ad = ads[0] if len(ads) == 1 else _pick(ads)
    if isinstance(ad, str):
        return ad
    return [(address, a.port) for a in _servers_of(ad, heard) for address in a.addresses], ad.room, ad.tls is not None


def _servers_of(ad: RoomAd, heard: list[RoomAd]) -> list[RoomAd]:
    """``ad`` first, then every other server of its cluster announcing the same room."""
    if not ad.cluster:
        return [ad]
    return [ad] + [other for other in heard if other is not ad and other.cluster == ad.cluster
                   and other.room.casefold() == ad.room.casefold()]


def _pick(ads: list[RoomAd]) -> RoomAd | str:
    """Several rooms on the LAN: the user picks one (or, with no terminal, is told how)."""
    from chatroom.discovery import choose, describe

    print("\n".join(describe(ads)))
    if not sys.stdin.isatty():
        return "several rooms found: say which with chatroom join HOST[:PORT] --room ROOM"
    while (picked := choose(ads, input("join which room (number or name)? "))) is None:
        print("type one of the numbers, or a room's name")
    return picked


def default_nick() -> str:
    import getpass

    from chatroom.text import MAX_NICK_LENGTH

    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = ""
    nick = "".join(ch for ch in login if ch.isalnum() or ch in "_-.")[:MAX_NICK_LENGTH]
    return nick or "guest"


def refusal_advice(code: str, message: str, args: argparse.Namespace) -> str:
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
    from chatroom.tls import KnownServers, default_known_servers

    logging.getLogger().addHandler(logging.NullHandler())
    try:
        config = load_config(Path(args.config).expanduser() if args.config else None)
    except ConfigError as exc:
        return fail(f"the client's settings: {exc}", 2)
    _settle_args(args, config)
    where = _join_addresses(args)
    if isinstance(where, int):
        return where
    if args.trace == "-":
        return fail("--trace needs a file for 'join' (the screen is busy): --trace trace.log", 2)
    try:
        tracer = open_tracer(args.trace)
    except OSError as exc:
        return fail(f"cannot write the trace to {args.trace}: {exc.strerror or exc}")
    known_servers = KnownServers(default_known_servers())
    if args.forget_pin:
        _forget_pins(known_servers, where)
    try:
        return _join_one_of(where, args.nick or config.nick or default_nick(), args, tracer, known_servers)
    finally:
        if tracer is not None:
            tracer.close()


def _settle_args(args: argparse.Namespace, config: ClientConfig) -> None:
    """The client's settings file fills in what the command line did not say."""
    args.config_values = config
    args.address = args.address or config.server  # the command line wins over the file
    args.rooms = [args.room] if args.room else list(config.rooms)
    args.room = args.rooms[0] if args.rooms else None
    args.downloads = args.downloads or config.downloads


def _forget_pins(known_servers: KnownServers, where: list[tuple[str, int]]) -> None:
    for host, port in where:
        if known_servers.forget(f"{host}:{port}"):
            print(f"forgot the certificate remembered for {host}:{port}", file=sys.stderr)


def _join_one_of(addresses: list[tuple[str, int]], nick: str, args: argparse.Namespace, tracer: Tracer | None,
                 known_servers: KnownServers) -> int:
    """Every address in turn until one answers, starting at a random one (a class
    given the same list spreads over a cluster's servers instead of all landing on
    the first); the others are kept for reconnects."""
    from chatroom.client.connection import ChatClient

    start = secrets.randbelow(len(addresses))
    addresses = addresses[start:] + addresses[:start]
    for i, (host, port) in enumerate(addresses):
        try:
            client = ChatClient(host, port, nick, room=args.room, tracer=tracer, alternates=addresses,
                                password=os.environ.get("CHATROOM_PASSWORD") or None, tls=args.tls,
                                fingerprint=args.fingerprint, known_servers=known_servers,
                                downloads=Path(args.downloads).expanduser() if args.downloads else None)
        except ValueError as exc:
            return fail(f"--fingerprint: {exc}", 2)
        status = _run_client(client, args, last=i == len(addresses) - 1)
        if status != _TRY_NEXT:
            return status
    return 1


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
                return fail(f"bad address {text!r}: {exc}", 2)
        return out
    if _listening("127.0.0.1", DEFAULT_PORT):
        return [("127.0.0.1", DEFAULT_PORT)]  # a server on this machine: no need to look further
    found = _discover(args)
    if isinstance(found, str):
        return fail(found)
    addresses, room, tls = found
    args.room = args.room or room
    args.tls = args.tls or tls
    return addresses


_TRY_NEXT = -1


def _connect(client: ChatClient) -> bool:
    """Connect, asking for the room's password if it needs one and none was given.
    False: it needs one and there is nobody to ask."""
    from chatroom.errors import HandshakeRefused
    from chatroom.protocol import ErrorCode

    try:
        client.connect()
    except HandshakeRefused as exc:
        if exc.code != ErrorCode.AUTH_REQUIRED or client.password is not None:
            raise
        client.password = secret_from("CHATROOM_PASSWORD", "room password", confirm=False)
        if client.password is None:
            return False
        client.connect()
    return True


def _run_client(client: ChatClient, args: argparse.Namespace, last: bool = True) -> int:
    from chatroom.client.connection import CertificateChanged
    from chatroom.errors import ConnectionFailed, HandshakeRefused

    try:
        if not _connect(client):
            return fail("this room needs a password: set CHATROOM_PASSWORD, or run in a terminal to be asked")
    except ConnectionFailed as exc:
        if not last and not isinstance(exc, CertificateChanged):
            return _TRY_NEXT
        return fail(str(exc))
    except HandshakeRefused as exc:
        return fail(refusal_advice(exc.code, exc.message, args))
    from chatroom.protocol import Join

    for room in args.rooms[1:]:  # the config's other rooms
        client.send(Join(room=room))
    if args.plain:
        from chatroom.ui.plain import run_plain

        return run_plain(client)
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        client.close()
        return fail("the full-screen client needs a terminal: use --plain for pipes and scripts", 2)
    from chatroom.ui.tui import ChatApp

    ChatApp(client, args.config_values).run()
    return 0
