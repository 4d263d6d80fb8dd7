"""Tab completion in the full-screen client: /commands at the start of the line, the
room's nicks anywhere (``nick: `` at the start of a line, ``@nick`` kept)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from chatroom.client.commands import COMMANDS
from chatroom.client.connection import ChatClient

__all__ = ["ChatCompleter"]


class ChatCompleter(Completer):
    """/commands at the start of the line; nicks anywhere."""

    def __init__(self, client: ChatClient, room: Callable[[], str] | None = None,
                 here: Callable[[], ChatClient] | None = None) -> None:
        """``here``: the connection of the window on screen (with several servers: its
        nicks are the ones to complete)."""
        self._client = client
        self.here = here or (lambda: client)
        self.room = room or (lambda: client.room)

    @property
    def client(self) -> ChatClient:
        return self.here()

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        before = document.text_before_cursor
        if before.startswith("/") and " " not in before:
            return _commands_starting(before)
        word = document.get_word_before_cursor(WORD=True)
        return self._nicks_starting(word, at_start=len(before) == len(word)) if word else ()

    def _nicks_starting(self, word: str, *, at_start: bool) -> Iterable[Completion]:
        """The room's nicks that start with ``word`` (``@word`` too): at the start of
        the line, ``nick: ``."""
        at = "@" if word.startswith("@") else ""
        prefix = word[len(at):].casefold()
        view = self.client.session.view(self.room())
        for nick in sorted(view.members if view else (), key=str.casefold):
            if nick.casefold().startswith(prefix) and nick != self.client.nick:
                yield Completion(at + nick + (": " if at_start else " "), start_position=-len(word), display=nick)


def _commands_starting(before: str) -> Iterable[Completion]:
    typed = before[1:].lower()
    for name, (_args, what) in COMMANDS.items():
        if name.startswith(typed):
            yield Completion(f"/{name} ", start_position=-len(before), display=f"/{name}", display_meta=what)
