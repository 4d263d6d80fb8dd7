"""``server.toml``: every ``chatroom serve`` option as a key, the command line winning.

The file is ``server.toml`` in the platform's config directory (``platformdirs``:
``~/.config/chatroom/server.toml`` on Linux), or the one ``--config FILE`` names.  Its
keys are the option names with ``_`` for ``-`` (``--max-clients`` is ``max_clients``);
values are checked by the option's own type, so a bad value reads the same as on the
command line.  What it never holds is a secret in clear: ``password = true`` means
"from ``$CHATROOM_PASSWORD``", ``password_file`` names a file only its owner may read,
and a Redis URL with a password stays in ``$CHATROOM_CLUSTER``.

Order of precedence: command line (and ``$CHATROOM_CLUSTER``), then the file, then the
defaults.  ``SIGHUP`` makes the server read it all again (``serve.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

from chatroom.cli.common import Exit
from chatroom.cli.serve_options import NOT_IN_FILE, SECRET_KEYS
from chatroom.redact import redacted_url

__all__ = ["ServeSettings", "default_path", "settings_in_effect", "read_secret_file", "describe"]

#: Only one of these says where history lives.
_STORES = ("data_dir", "memory", "cluster")


@dataclass(frozen=True)
class ServeSettings:
    """The options in effect, and where each came from (for ``--print-config``)."""

    args: argparse.Namespace
    path: Path | None  # the file read (None: there was none)
    from_file: frozenset[str]
    from_command_line: frozenset[str]


def default_path() -> Path:
    return Path(platformdirs.user_config_dir("chatroom", appauthor=False)) / "server.toml"


def _serve_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices["serve"]
            return found
    raise LookupError("no serve command")


def _settable(serve: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """key -> option, for every option the file may set."""
    return {action.dest: action for action in serve._actions
            if action.option_strings and action.dest not in NOT_IN_FILE and action.dest != "help"}


def settings_in_effect(parser: argparse.ArgumentParser, argv: Sequence[str]) -> ServeSettings:
    """Parse ``argv`` (a ``serve`` command line) with the file's values as defaults.
    Raises :class:`Exit` with one line naming the file and the key when the file is bad."""
    plain = parser.parse_args(argv)
    serve = _serve_parser(parser)
    options = _settable(serve)
    given = frozenset(key for key, action in options.items() if getattr(plain, key) != action.default)
    path = Path(plain.config).expanduser() if plain.config else default_path()
    raw = _read(path, required=plain.config is not None)
    if raw is None:
        return ServeSettings(plain, None, frozenset(), given)
    values = _checked(raw, options, str(path))
    if given & set(_STORES):  # the command line chose where history lives: the file's choice yields
        for key in _STORES:
            values.pop(key, None)
    serve.set_defaults(**values)
    try:
        args = parser.parse_args(argv)
    finally:
        serve.set_defaults(**{key: options[key].default for key in values})
    return ServeSettings(args, path, frozenset(values) - given, given)


def _read(path: Path, *, required: bool) -> dict[str, object] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise Exit(f"{path}: no such file", 2) from None
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise Exit(f"{path}: cannot read it ({exc})", 2) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise Exit(f"{path}: not valid TOML ({exc})", 2) from None


def _checked(raw: dict[str, object], options: dict[str, argparse.Action], where: str) -> dict[str, object]:
    unknown = sorted(set(raw) - set(options))
    if unknown:
        raise Exit(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(options))})", 2)
    values = {key: _value(options[key], value, key, where) for key, value in raw.items()}
    chosen = [key for key in _STORES if values.get(key)]
    if len(chosen) > 1:
        raise Exit(f"{where}: {' and '.join(chosen)} both say where history lives: keep one", 2)
    return values


def _value(action: argparse.Action, value: object, key: str, where: str) -> object:
    if key in SECRET_KEYS and isinstance(value, str):
        variable = f"$CHATROOM_{key.upper()}"
        raise Exit(f"{where}: {key}: a secret never goes in this file in clear; write {key} = true to read it "
                   f"from {variable}, or {key}_file = \"FILE\" (a file only its owner can read)", 2)
    if action.nargs == 0:  # a flag
        if not isinstance(value, bool):
            raise Exit(f"{where}: {key} must be true or false", 2)
        return value
    if isinstance(action, argparse._AppendAction):
        return _list(action, value, key, where)
    converted = _scalar(action, value, key, where)
    if key == "cluster" and isinstance(converted, str) and urlsplit(converted).password:
        raise Exit(f"{where}: cluster: a Redis URL with a password stays out of this file: set $CHATROOM_CLUSTER "
                   "in the service's environment instead", 2)
    return converted


def _list(action: argparse.Action, value: object, key: str, where: str) -> list[object]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) and item.strip() for item in items):
        raise Exit(f"{where}: {key} must be a list of non-empty strings", 2)
    return [_scalar(action, item, key, where) for item in items]


def _scalar(action: argparse.Action, value: object, key: str, where: str) -> object:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Exit(f"{where}: {key} must be {'a string' if action.type is None else 'a number'}", 2)
    if action.type is None:
        if not isinstance(value, str):
            raise Exit(f"{where}: {key} must be a string (in quotes)", 2)
        converted: object = value
    else:
        convert = action.type
        assert callable(convert)
        try:
            converted = convert(str(value))
        except (argparse.ArgumentTypeError, ValueError) as exc:
            whole = "int" in getattr(convert, "__name__", "")
            why = (str(exc) if isinstance(exc, argparse.ArgumentTypeError)
                   else "must be a whole number" if whole else "must be a number")
            raise Exit(f"{where}: {key}: {value!r}: {why}", 2) from None
    if action.choices is not None and converted not in action.choices:
        raise Exit(f"{where}: {key} must be one of {', '.join(map(str, action.choices))} (not {value!r})", 2)
    return converted


def read_secret_file(path: str, what: str) -> str:
    """The first line of ``path``, which only its owner may read (systemd's
    ``LoadCredential`` makes exactly such a file)."""
    try:
        with open(path, encoding="utf-8") as file:
            mode = os.fstat(file.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise Exit(f"{path}: others can read this {what} file (mode {stat.filemode(mode)}): "
                           f"chmod 600 {path}", 2)
            secret = file.readline().rstrip("\r\n")
    except OSError as exc:
        raise Exit(f"{path}: cannot read the {what} ({exc.strerror or exc})", 2) from None
    except UnicodeDecodeError:
        raise Exit(f"{path}: the {what} must be UTF-8 text", 2) from None
    if not secret:
        raise Exit(f"{path}: the {what} file is empty", 2)
    return secret


def describe(settings: ServeSettings, parser: argparse.ArgumentParser) -> str:
    """The settings in effect as a ``server.toml`` would say them, each with where it came
    from; a Redis password is masked, and secrets are never read for this."""
    options = _settable(_serve_parser(parser))
    where = (f"file: {settings.path}" if settings.path is not None
             else f"no file: {default_path()} does not exist")
    lines = [f"# chatroom serve: settings in effect ({where})"]
    for key in options:
        value, source = _shown(settings, key)
        if value is None or value == []:
            lines.append(f"# {key} = (not set)".ljust(44) + f"  # {source}")
        else:
            lines.append(f"{key} = {_toml(value)}".ljust(44) + f"  # {source}")
    return "\n".join(lines)


def _shown(settings: ServeSettings, key: str) -> tuple[object, str]:
    """A setting's value as ``--print-config`` shows it (a Redis password masked, the
    data directory in effect named), and where it came from."""
    value = getattr(settings.args, key)
    source = ("command line" if key in settings.from_command_line
              else "file" if key in settings.from_file else "default")
    if key == "cluster" and value:
        value = redacted_url(value)
        if key not in settings.from_command_line and os.environ.get("CHATROOM_CLUSTER"):
            source = "$CHATROOM_CLUSTER"
    if key == "data_dir" and value is None and not (settings.args.memory or settings.args.cluster):
        from chatroom.cli.common import data_dir_of

        value = str(data_dir_of(None))
    return value, source


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)
