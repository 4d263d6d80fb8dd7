"""Settings changed while the client runs: ``/set``, ``/save``, ``/reload``, ``/alias``
and ``/bind``.  The rules are the settings file's (``config.py``: a bad value gets the
file's one-line error); the front end that holds the settings applies them
(:class:`SettingsHost`); nothing here draws or touches the network."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from chatroom.client.commands import Command
from chatroom.client.config import (
    ClientConfig,
    ConfigError,
    load_config,
    save_config,
    save_keys,
    set_alias,
    set_binding,
    set_setting,
    setting_lines,
)

__all__ = ["SettingsHost", "SettingsCommands", "SETTINGS_COMMANDS"]

#: The commands this module carries out.
SETTINGS_COMMANDS = ("set", "save", "reload", "alias", "bind")


class SettingsHost(Protocol):
    """The front end's side: the settings in use, and applying new ones."""

    config: ClientConfig
    config_file: Path | None  # where /save writes and /reload reads (None: the default place)

    def apply_settings(self, config: ClientConfig) -> None: ...


class SettingsCommands:
    """``/set`` and friends, for ``host``; ``show(text, error)`` answers."""

    def __init__(self, host: SettingsHost, show: Callable[[str, bool], None]) -> None:
        self.host = host
        self.show = show

    def run(self, cmd: Command) -> None:
        try:
            getattr(self, f"_{cmd.name}")(cmd)
        except ConfigError as exc:
            self.show(str(exc), True)

    def keep_ignores(self, rules: tuple[str, ...]) -> None:
        """/ignore's rules, in use and in client.toml at once (across runs)."""
        config = replace(self.host.config, ignore=rules)
        self.host.apply_settings(config)
        save_keys(config, ("ignore",), self.host.config_file)

    def _change(self, config: ClientConfig, said: str) -> None:
        self.host.apply_settings(config)
        self.show(f"{said} (for this run: /save keeps it)", False)

    def _set(self, cmd: Command) -> None:
        lines = setting_lines(self.host.config)
        if not cmd.args:
            self.show("settings:\n" + "\n".join(f"  {line}" for line in lines), False)
            return
        key, _, value = cmd.rest.partition(" ")
        if not value.strip():
            found = [line for line in lines if line.split(" = ")[0] == key.lower()]
            self.show(found[0] if found else f"/set: no setting {key!r} (/set lists them)", not found)
            return
        new = set_setting(self.host.config, key, value.strip())
        self._change(new, next(line for line in setting_lines(new) if line.split(" = ")[0] == key.lower()))

    def _save(self, cmd: Command) -> None:
        path = save_config(self.host.config, self.host.config_file)
        self.show(f"settings saved to {path}", False)

    def _reload(self, cmd: Command) -> None:
        self.host.apply_settings(load_config(self.host.config_file))
        self.show("settings read again from the file", False)

    def _alias(self, cmd: Command) -> None:
        self._table(cmd, "alias", self.host.config.aliases, set_alias)

    def _bind(self, cmd: Command) -> None:
        self._table(cmd, "bind", self.host.config.bindings, set_binding)

    def _table(self, cmd: Command, what: str, table: dict[str, str],
               change: Callable[[ClientConfig, str, str], ClientConfig]) -> None:
        """/alias or /bind: alone, the list; ``NAME``: remove it; ``NAME COMMAND``: set it."""
        if not cmd.args:
            self.show("\n".join(f"  {name} = /{target}" for name, target in table.items()) or f"no {what}s", False)
            return
        name, _, target = cmd.rest.partition(" ")
        if not target.strip() and name.lower() not in table:
            self.show(f"/{what}: {name} is not set", True)
            return
        self._change(change(self.host.config, name, target),
                     f"{what} {name} = /{target.strip().lstrip('/')}" if target.strip() else f"{what} {name} removed")
