"""What members say: messages to a room and to one person -- checked, numbered,
remembered for resends and history -- and what the server commits of them.  A part of
:class:`~chatroom.server.room.ChatState` (see ``state_base.py``); no I/O."""

from __future__ import annotations

from chatroom.errors import Refused
from chatroom.protocol import Chat, ErrorCode, Private, TaggedChat
from chatroom.server.members import Delivery, Member, Room
from chatroom.server.state_base import StateBase
from chatroom.text import MAX_NICK_LENGTH, clean_line, clean_text, fold, nick_key

__all__ = ["MAX_FLOOR_JUMP", "Speech"]

#: The most numbers a resuming client's word can make a room skip (``seen_by_client``):
#: a lost tail is a second of messages, not more; a client cannot push a room's
#: numbering anywhere it likes.
MAX_FLOOR_JUMP = 100_000


class Speech(StateBase):
    """Messages: ``say`` in a room, ``direct`` to one person."""

    def say(
        self, member: Member, text: str, now: float, *, action: bool = False, msg_id: str | None = None,
        room_name: str | None = None,
    ) -> tuple[Chat, list[Delivery]]:
        """Stamp ``text`` with the next sequence number of ``room_name`` (one of the
        member's rooms; None: its only one) and broadcast it."""
        chat, recipients = self.say_to(member, text, now, action=action, msg_id=msg_id, room_name=room_name)
        return chat, [Delivery(recipients, chat)]

    def say_to(
        self, member: Member, text: str, now: float, *, action: bool = False, msg_id: str | None = None,
        room_name: str | None = None, room: Room | None = None, sender: str | None = None,
        tags: dict[str, str] | None = None, notice: bool = False,
    ) -> tuple[Chat, tuple[Member, ...]]:
        """:meth:`say`, returning the chat and its recipients (the hot path's form).
        A run of messages may pass what it already looked up: ``room`` (the member's
        room called ``room_name``) and ``sender`` (``fold(member.nick)``)."""
        room, text = self.check_say(member, text, now, room_name, room)
        chat = Chat(
            room=room.name, seq=room.next_seq, ts=now, nick=member.nick, text=text, action=action, id=msg_id
        ) if tags is None and not notice else TaggedChat(room=room.name, seq=room.next_seq, ts=now, nick=member.nick,
                                                         text=text, action=action, id=msg_id, tags=tags or {},
                                                         notice=notice)
        room.next_seq += 1
        room.history.append(chat)
        room._recent = None
        self.said_room += 1
        member.last_active = now
        self.unsaved.append(chat)
        self.dirty[room.key] = room
        if msg_id is not None:
            self._remember(member, msg_id, chat, sender)
        return chat, room.everyone()

    def check_say(self, member: Member, text: str, now: float, room_name: str | None,
                  room: Room | None = None) -> tuple[Room, str]:
        """Whether ``member`` may say ``text`` in ``room_name`` (``room``, if looked up
        already) now: the room and the cleaned text, or ``Refused``."""
        if room is None:
            room = self.room_of(member, room_name)
        if member.muted_until > now:
            self._check_not_muted(member, now)
        if room.guarded:
            self.check_voice(member, room)
        return room, self._clean_message(text)

    def apply_chat(self, room: Room, chat: Chat) -> list[Delivery]:
        """A message a cluster put in ``room``'s shared log, in log order: remember and
        broadcast it here.  Already applied (its ``seq`` is below ``next_seq``): nothing."""
        if chat.seq < room.next_seq:
            return []
        room.next_seq = chat.seq + 1
        room.remember(chat)
        if chat.id is not None:
            self._remember_id((fold(chat.nick), chat.id), chat)
        author = self.nicks.get(nick_key(chat.nick))
        recipients = room.everyone()
        if author is not None:
            author.last_active = max(author.last_active, chat.ts)
            if not author.echo:
                recipients = author.others(recipients)
        return [Delivery(recipients, chat)]

    def take_unsaved(self) -> tuple[list[Chat], list[tuple[str, int, str, str]]]:
        """What the server must commit now: new messages and changed rooms."""
        chats, self.unsaved = self.unsaved, []
        rooms = [(r.name, r.next_seq, r.topic, r.modes.dump(r.topic_locked)) for r in self.dirty.values()]
        self.dirty = {}
        return chats, rooms

    def rollback(self, chats: list[Chat]) -> None:
        """Committing ``chats`` failed: forget them as if never sent."""
        for chat in chats:
            room = self.rooms.get(fold(chat.room))
            if room is not None:
                try:
                    room.history.remove(chat)
                    room.history_changed()
                except ValueError:
                    pass
                room.next_seq = min(room.next_seq, chat.seq)
            if chat.id is not None:
                key = (fold(chat.nick), chat.id)
                for ids in (self.sent, self._sent_before):
                    if ids.get(key) is chat:
                        del ids[key]

    def seen_by_client(self, name: str, seq: int) -> int:
        """A resuming client says it has seen message ``seq`` of room ``name``.  If the
        room's numbering is behind that, the store lost its newest messages (a power cut
        with ``--sync normal``): numbering goes on after ``seq``, so that no number a
        client has shown is given to another message.  Only for a room that exists, and
        by at most ``MAX_FLOOR_JUMP``.  Returns how many numbers were skipped."""
        room = self.rooms.get(fold(name))
        if room is None and self.peers is None and self.store is not None and self.store.room(name) is not None:
            room = self._room(name)
        if room is None or not room.next_seq <= seq < room.next_seq + MAX_FLOOR_JUMP:
            return 0
        skipped = seq + 1 - room.next_seq
        room.next_seq = seq + 1
        self.dirty[room.key] = room
        return skipped

    def direct(
        self, member: Member, to: str, text: str, now: float, *, msg_id: str | None = None,
        tags: dict[str, str] | None = None, notice: bool = False,
    ) -> tuple[Private, list[Delivery]]:
        self._check_not_muted(member, now)
        text = self._clean_message(text)
        target = self.nicks.get(nick_key(to))
        if target is None:
            raise Refused(ErrorCode.NO_SUCH_NICK, f"nobody is called {clean_line(to)[:MAX_NICK_LENGTH]}")
        msg = Private(nick=member.nick, to=target.nick, text=text, ts=now, id=msg_id, tags=tags,
                      notice=notice or None)
        self.said_private += 1
        member.last_active = now
        if msg_id is not None:
            self._remember(member, msg_id, msg)
        recipients = (target,) if target is member else (target, member)
        return msg, [Delivery(recipients, msg)]

    def _check_not_muted(self, member: Member, now: float) -> None:
        if member.muted_until > now:
            left = member.muted_until - now
            until = "until an operator lifts it" if left > 1e9 else f"for {int(left) + 1} more seconds"
            raise Refused(ErrorCode.MUTED, f"you are muted {until}: that message was not sent")

    def _clean_message(self, text: str) -> str:
        if not text.isprintable():  # (clean_text's own first test, without the call)
            text = clean_text(text)
        if len(text) > self.max_text:
            raise Refused(
                ErrorCode.TEXT_TOO_LONG, f"a message is at most {self.max_text} characters ({len(text)} given)"
            )
        if not text or text.isspace():  # (as "not text.strip()", without copying the text)
            raise Refused(ErrorCode.BAD_MESSAGE, "the message is empty")
        return text
