"""What every ``chatroom`` subcommand shares: argument types, logging, one-line
failures, secrets from the environment or a prompt, the data directory, a trace."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatroom.trace import Tracer

__all__ = ["positive_int", "byte_size", "network", "setup_logging", "fail", "Exit", "secret_from", "data_dir_of",
           "open_tracer"]

log = logging.getLogger("chatroom")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def byte_size(text: str) -> int:
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


def setup_logging(args: argparse.Namespace) -> None:
    from chatroom.logfmt import formatter

    handler: logging.Handler = (
        logging.FileHandler(args.log_file, encoding="utf-8") if args.log_file else logging.StreamHandler()
    )
    handler.setFormatter(formatter(getattr(args, "log_format", "text")))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(args.log_level)


def network(text: str) -> str:
    """An address or a network (``192.0.2.7``, ``10.0.0.0/8``, ``::1``), written the
    standard way."""
    import ipaddress

    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address or a network like 10.0.0.0/8") from None


def fail(message: str, status: int = 1) -> int:
    print(f"chatroom: {message}", file=sys.stderr)
    return status


class Exit(Exception):
    """A command-line failure already worded for the user: print it, exit with ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def secret_from(variable: str, what: str, *, confirm: bool = True) -> str | None:
    """A secret from the environment, or asked for in the terminal (None: neither)."""
    import getpass

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


def data_dir_of(given: str | None) -> Path:
    from chatroom.server.store import default_data_dir

    return Path(given).expanduser() if given else default_data_dir()


def open_tracer(target: str | None) -> Tracer | None:
    if target is None:
        return None
    from chatroom.trace import Tracer

    if target == "-":
        return Tracer(sys.stdout)
    return Tracer(open(target, "a", encoding="utf-8"), close_out=True)
