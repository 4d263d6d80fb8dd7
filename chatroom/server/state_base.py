"""What :class:`~chatroom.server.room.ChatState` holds, as its parts see it (no I/O).

``ChatState`` is one object in several modules: its membership (``room.py``),
messages (``speech.py``), changes of members and rooms (``changes.py``), moderation
(``moderation.py``), queries (``queries.py``), a
cluster's remote members (``remote.py``) and recognising resends (``resends.py``).
The parts inherit this base, which only names -- for the type checker -- the state
and helpers they share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatroom.protocol import Chat, Private
    from chatroom.server.bans import BanList
    from chatroom.server.members import Delivery, Member, Room
    from chatroom.server.nicks import NickIndex
    from chatroom.server.remote import Peers

__all__ = ["StateBase"]


class StateBase:
    """The shared state of ``ChatState`` 's parts."""

    if TYPE_CHECKING:  # (declared for the type checker: ChatState sets and defines them)
        history_size: int
        peers: Peers | None
        published: list[dict[str, Any]] | None
        bans: BanList
        rooms: dict[str, Room]
        nicks: NickIndex
        watchers: dict[str, dict[int, Member]]
        sessions: dict[str, Member]
        sent: dict[tuple[str, str], Chat | Private]
        _sent_before: dict[tuple[str, str], Chat | Private]
        unsaved: list[Chat]
        said_room: int
        max_text: int
        store: Any
        said_private: int
        dirty: dict[str, Room]
        rooms_made: int

        def members(self) -> Iterable[Member]: ...
        def missed(self, room: Room, last_seq: int | None, limit: int | None = None) -> list[Chat]: ...
        def room_of(self, member: Member, name: str | None) -> Room: ...
        def _check_not_muted(self, member: Member, now: float) -> None: ...
        def _clean_message(self, text: str) -> str: ...
        def _remember(self, member: Member, msg_id: str, msg: Chat | Private, sender: str | None = None) -> None: ...
        def _remember_id(self, key: tuple[str, str], msg: Chat | Private) -> None: ...
        def _room_for_join(self, name: str) -> Room: ...
        def _room(self, name: str) -> Room: ...
        def _publish(self, member: Member, room: Room, kind: str, **fields: Any) -> None: ...
        def _forget_room(self, room: Room) -> None: ...
        def remote(self, info: dict[str, Any]) -> Member | None: ...
        def lock_topic(self, op: Member, room_name: str | None, locked: bool) -> Room: ...
        def _check_nick_free(self, nick: str, me: Member | None = None) -> None: ...
        def _publish_session(self, member: Member) -> None: ...
        def depart(self, member: Member, room: Room, reason: str, now: float) -> list[Delivery]: ...
        def runs(self, member: Member, room: Room) -> bool: ...
        def check_voice(self, member: Member, room: Room) -> None: ...
        def check_say(self, member: Member, text: str, now: float, room_name: str | None,
                      room: Room | None = None) -> tuple[Room, str]: ...
        def roles_renamed(self, member: Member, old: str) -> None: ...
