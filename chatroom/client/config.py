"""The client's settings: a TOML file in the platform's config directory.  Reading it
does no network I/O; a bad value is a clear error naming the key, never a traceback.

``~/.config/chatroom/client.toml`` on Linux (``platformdirs``), for example::

    server = "192.168.1.20:7373"   # chatroom join with no address goes here
    nick = "ann"
    rooms = ["lobby", "dev"]       # joined at start, in this order (each gets a window)
    highlight = ["release", "ann"] # words that highlight a line, besides your nick
    bell = "mentions"              # on | off | mentions
    timestamp = "%H:%M"            # strftime format of the time in front of each line
    theme = "dark"                 # dark | light
    downloads = "~/Downloads"
    input_history = true           # what you typed, kept across runs (Up, Ctrl-R)
    log = true                     # a log of each window in the data directory
    notify = false                 # desktop notifications (OSC 9 / 777) for mentions and DMs

    [aliases]                      # /j dev -> /join dev
    j = "join"
    wave = "me waves"

Command-line options win over the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from chatroom.client.commands import BELL_MODES, COMMANDS

__all__ = ["ClientConfig", "ConfigError", "config_path", "data_dir", "load_config", "parse_config"]

THEMES = ("dark", "light")


class ConfigError(Exception):
    """The config file cannot be used as it is: the message says where and why."""


@dataclass(frozen=True)
class ClientConfig:
    server: str | None = None
    nick: str | None = None
    rooms: tuple[str, ...] = ()
    highlight: tuple[str, ...] = ()
    bell: str = "mentions"
    timestamp: str = "%H:%M"
    theme: str = "dark"
    downloads: Path | None = None
    input_history: bool = True
    log: bool = True
    notify: bool = False
    aliases: dict[str, str] = field(default_factory=dict)


def config_path() -> Path:
    return Path(platformdirs.user_config_dir("chatroom", appauthor=False)) / "client.toml"


def data_dir() -> Path:
    """Where the client keeps its input history and window logs."""
    return Path(platformdirs.user_data_dir("chatroom", appauthor=False))


def load_config(path: Path | None = None) -> ClientConfig:
    """The settings in ``path`` (default: :func:`config_path`); defaults if there is no file."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ClientConfig()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    return parse_config(text, str(path))


def parse_config(text: str, where: str = "client.toml") -> ClientConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None
    known = set(ClientConfig.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return ClientConfig(**_values(raw, where))  # type: ignore[arg-type]


def _values(raw: dict[str, object], where: str) -> dict[str, object]:
    values: dict[str, object] = {}
    for key in ("server", "nick", "timestamp"):
        if key in raw:
            values[key] = _string(raw, key, where)
    for key in ("rooms", "highlight"):
        if key in raw:
            values[key] = _strings(raw, key, where)
    for key in ("input_history", "log", "notify"):
        if key in raw:
            values[key] = _flag(raw, key, where)
    for key, choices in (("bell", BELL_MODES), ("theme", THEMES)):
        if key in raw:
            value = _string(raw, key, where)
            if value not in choices:
                raise ConfigError(f"{where}: {key} must be one of {', '.join(choices)} (not {value!r})")
            values[key] = value
    if "downloads" in raw:
        values["downloads"] = Path(_string(raw, "downloads", where)).expanduser()
    if "aliases" in raw:
        values["aliases"] = _aliases(raw["aliases"], where)
    return values


def _string(raw: dict[str, object], key: str, where: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def _flag(raw: dict[str, object], key: str, where: str) -> bool:
    if not isinstance(raw[key], bool):
        raise ConfigError(f"{where}: {key} must be true or false")
    return bool(raw[key])


def _strings(raw: dict[str, object], key: str, where: str) -> tuple[str, ...]:
    value = raw[key]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: {key} must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _aliases(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [aliases] must be a table of NAME = \"command\"")
    out: dict[str, str] = {}
    for name, target in value.items():
        if not isinstance(target, str) or not target.strip():
            raise ConfigError(f"{where}: alias {name!r} must be a command, e.g. \"join\"")
        if name.lower() in COMMANDS:
            raise ConfigError(f"{where}: alias {name!r} would hide the command /{name.lower()}")
        command = target.strip().lstrip("/").split()[0].lower()
        if command not in COMMANDS:
            raise ConfigError(f"{where}: alias {name!r} names no command (/{command})")
        out[name.lower()] = target.strip().lstrip("/")
    return out
