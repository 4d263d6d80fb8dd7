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
    servers = ["10.0.0.5:7373"]    # more servers at once, each with its own windows (/connect)

    [aliases]                      # /j dev -> /join dev
    j = "join"
    wave = "me waves"

    [bindings]                     # a key -> a command (f1-f12, alt-b ... alt-z)
    f5 = "join dev"

Command-line options win over the file.  While the client runs, ``/set KEY VALUE``
changes a setting (checked as the file's are), ``/set`` lists them, ``/alias`` and
``/bind`` change the two tables, ``/save`` writes them back (keeping the file's comments
and layout) and ``/reload`` reads the file again.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs
import tomlkit

from chatroom.client.commands import BELL_MODES, COMMANDS
from chatroom.client.ignoring import parse_rule

__all__ = ["ClientConfig", "ConfigError", "config_path", "data_dir", "load_config", "parse_config", "set_setting",
           "setting_lines", "save_config", "set_alias", "set_binding", "BINDABLE"]

THEMES = ("dark", "light")

#: Keys that ``[bindings]`` (and ``/bind``) may give a command: the function keys and
#: Alt with a letter (Alt-A is the hotlist's).
BINDABLE = (*(f"f{n}" for n in range(1, 13)), *(f"alt-{c}" for c in "bcdefghijklmnopqrstuvwxyz"))


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
    servers: tuple[str, ...] = ()  # more servers to connect to at start, each with its windows
    ignore: tuple[str, ...] = ()  # "MASK [KIND...]": whom not to show (/ignore keeps it here)
    aliases: dict[str, str] = field(default_factory=dict)
    bindings: dict[str, str] = field(default_factory=dict)


def config_path() -> Path:
    return Path(platformdirs.user_config_dir("chatroom", appauthor=False)) / "client.toml"


def data_dir() -> Path:
    """Where the client keeps its input history and window logs."""
    return Path(platformdirs.user_data_dir("chatroom", appauthor=False))


def load_config(path: Path | None = None) -> ClientConfig:
    """The settings in ``path`` (default: :func:`config_path`, where no file means the
    defaults); a file named on purpose that does not exist is an error."""
    named, path = path is not None, path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if named:
            raise ConfigError(f"{path}: no such file") from None
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
    _check_timestamp(str(values.get("timestamp", "%H:%M")), where)
    _check_ignores(values.get("ignore", ()), where)  # type: ignore[arg-type]
    for key in ("rooms", "highlight", "servers", "ignore"):
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
        values["downloads"] = _folder(raw, "downloads", where)
    return values | _tables(raw, where)


def _folder(raw: dict[str, object], key: str, where: str) -> Path:
    folder = Path(_string(raw, key, where)).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{where}: {key} is {folder}, which is not a folder")
    return folder


def _check_ignores(rules: tuple[str, ...], where: str) -> None:
    for rule in rules:
        try:
            parse_rule(rule)
        except ValueError as exc:
            raise ConfigError(f"{where}: ignore {rule!r}: {exc}") from None


def _check_timestamp(fmt: str, where: str) -> None:
    """A strftime format that shows something and is not too long for a line's start."""
    import time

    try:
        shown = time.strftime(fmt, time.localtime(0))
    except ValueError as exc:
        raise ConfigError(f"{where}: timestamp {fmt!r} is not a time format ({exc})") from None
    if not shown.strip() or len(shown) > 30 or shown == fmt:  # (nothing in it changes with the time)
        raise ConfigError(f"{where}: timestamp {fmt!r} is not a time format (like \"%H:%M\")")


def _tables(raw: dict[str, object], where: str) -> dict[str, object]:
    """``[aliases]`` and ``[bindings]`` (a binding may name an alias)."""
    values: dict[str, object] = {}
    if "aliases" in raw:
        values["aliases"] = _aliases(raw["aliases"], where)
    if "bindings" in raw:
        values["bindings"] = _bindings(raw["bindings"], where, values.get("aliases", {}))
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


def _bindings(value: object, where: str, aliases: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [bindings] must be a table of KEY = \"command\"")
    out: dict[str, str] = {}
    for key, target in value.items():
        key = str(key).lower()
        if key not in BINDABLE:
            raise ConfigError(f"{where}: {key!r} cannot be bound (keys: f1-f12, alt-b ... alt-z)")
        if not isinstance(target, str) or not target.strip():
            raise ConfigError(f"{where}: binding {key!r} must be a command, e.g. \"join dev\"")
        command = target.strip().lstrip("/").split()[0].lower()
        if command not in COMMANDS and command not in aliases:
            raise ConfigError(f"{where}: binding {key!r} names no command (/{command})")
        out[key] = target.strip().lstrip("/")
    return out


# ---------------------------------------------------------------------- at run time

#: The settings /set may change (the two tables have /alias and /bind).
_SCALARS = tuple(f.name for f in fields(ClientConfig) if f.name not in ("aliases", "bindings"))


def _raw(config: ClientConfig) -> dict[str, Any]:
    """``config`` as the TOML values the file would hold (defaults left out)."""
    default = ClientConfig()
    raw: dict[str, Any] = {}
    for f in fields(ClientConfig):
        value = getattr(config, f.name)
        if value == getattr(default, f.name):
            continue
        raw[f.name] = (list(value) if isinstance(value, tuple) else str(value) if isinstance(value, Path)
                       else dict(value) if isinstance(value, dict) else value)
    return raw


def set_setting(config: ClientConfig, key: str, text: str) -> ClientConfig:
    """``/set KEY VALUE``: the settings with ``key`` changed, checked as the file's are
    (a bad value is a ConfigError saying why).  ``text`` is a TOML value (``true``,
    ``["dev", "lobby"]``), or else plain text."""
    key = key.lower()
    if key not in _SCALARS:
        raise ConfigError(f"/set: no setting {key!r} (settings: {', '.join(_SCALARS)}; /alias and /bind "
                          "change the two tables)")
    try:
        value: Any = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text  # plain text: a string
    raw = _raw(config)
    raw[key] = value
    return ClientConfig(**_values(raw, "/set"))  # type: ignore[arg-type]


def set_alias(config: ClientConfig, name: str, target: str) -> ClientConfig:
    """``/alias NAME COMMAND`` (an empty ``target``: the alias goes)."""
    aliases = dict(config.aliases)
    aliases.pop(name.lower(), None)
    if target.strip():
        aliases.update(_aliases({name: target}, "/alias"))
    return replace(config, aliases=aliases)


def set_binding(config: ClientConfig, key: str, target: str) -> ClientConfig:
    """``/bind KEY COMMAND`` (an empty ``target``: the binding goes)."""
    bindings = dict(config.bindings)
    bindings.pop(key.lower(), None)
    if target.strip():
        bindings.update(_bindings({key: target}, "/bind", config.aliases))
    return replace(config, bindings=bindings)


def setting_lines(config: ClientConfig) -> list[str]:
    """What ``/set`` alone shows: every setting as the file would say it."""
    lines = []
    for key in _SCALARS:
        value = getattr(config, key)
        shown = (list(value) if isinstance(value, tuple) else str(value) if isinstance(value, Path) else value)
        lines.append(f"{key} = {tomlkit.item(shown).as_string() if shown is not None else '(not set)'}")
    lines += [f"alias {name} = {target!r}" for name, target in config.aliases.items()]
    lines += [f"bind {key} = {target!r}" for key, target in config.bindings.items()]
    return lines


def save_keys(config: ClientConfig, keys: tuple[str, ...], path: Path | None = None) -> Path:
    """Write only ``keys`` of ``config`` to the file (what /ignore keeps across runs),
    leaving the rest of it -- and the other settings changed in this run -- alone."""
    path = path or config_path()
    saved = load_config(path) if path.exists() else ClientConfig()
    return save_config(replace(saved, **{key: getattr(config, key) for key in keys}), path)


def save_config(config: ClientConfig, path: Path | None = None) -> Path:
    """Write ``config`` to ``path`` (default: :func:`config_path`), keeping the file's
    comments and layout: each setting is updated where it is, added at the end, or taken
    out when it is back to its default.  Written whole to a new file, then renamed."""
    path = path or config_path()
    try:
        doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    except Exception as exc:  # noqa: BLE001 -- tomlkit's parse errors have no common base here
        raise ConfigError(f"{path}: cannot read it to update it ({exc})") from None
    raw = _raw(config)
    for f in fields(ClientConfig):
        if f.name in raw:
            doc[f.name] = raw[f.name]
        elif f.name in doc:
            del doc[f.name]
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".toml.new")
    temp.write_text(tomlkit.dumps(doc), encoding="utf-8")
    os.replace(temp, path)
    return path
