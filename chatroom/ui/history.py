"""What was typed, for Up and Ctrl-R: kept across runs in the data directory (unless
the config turns it off), and never a line that carries a secret (``/oper TOKEN``, an
alias of it: see ``client.commands.holds_secret``).  prompt_toolkit's histories with
one rule added."""

from __future__ import annotations

from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from chatroom.client.commands import holds_secret
from chatroom.client.config import ClientConfig, data_dir

__all__ = ["input_history"]


class _MemoryHistory(InMemoryHistory):
    """What was typed in this run, without secrets (see ``holds_secret``)."""

    def __init__(self, aliases: dict[str, str]) -> None:
        super().__init__()
        self.aliases = aliases

    def append_string(self, string: str) -> None:
        if not holds_secret(string, self.aliases):
            super().append_string(string)


class _FileHistory(FileHistory):
    """What was typed, across runs, without secrets (see ``holds_secret``)."""

    def __init__(self, path: str, aliases: dict[str, str]) -> None:
        super().__init__(path)
        self.aliases = aliases

    def append_string(self, string: str) -> None:
        if not holds_secret(string, self.aliases):
            super().append_string(string)


def input_history(config: ClientConfig) -> History:
    """What was typed: kept across runs in the data directory (Up, Ctrl-R), unless off.
    Never a ``/oper TOKEN`` line (or an alias of it, or a room key), in the file or in this run's Up."""
    if not config.input_history:
        return _MemoryHistory(config.aliases)
    path = data_dir() / "input_history"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)  # private: it holds what you wrote
    except OSError:
        return _MemoryHistory(config.aliases)
    return _FileHistory(str(path), config.aliases)
