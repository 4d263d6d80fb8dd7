"""Recognising a resend: the (nick, client id) pairs of recent messages, so that a
message sent again after a lost answer is acknowledged once, never shown twice -- a
part of :class:`~chatroom.server.room.ChatState` (no I/O)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatroom.errors import Refused
from chatroom.protocol import Chat, Private
from chatroom.server.state_base import StateBase
from chatroom.text import clean_text, fold

if TYPE_CHECKING:
    from chatroom.server.members import Member

__all__ = ["Resends", "RECENT_IDS"]

#: Recently sent (nick, client id) pairs remembered to make resending idempotent.
#: A client resends only what was unacknowledged when its connection dropped.
#: Kept in two generations of this many (see ``ChatState._remember_id``): the last
#: RECENT_IDS are always known, at most twice as many.
RECENT_IDS = 50_000


class Resends(StateBase):
    """The ids of recent messages, in two generations (``sent``, ``_sent_before``)."""

    def already_sent(self, member: Member, msg_id: str, text: str, *, action: bool = False,
                     private: bool = False, room_name: str | None = None,
                     sender: str | None = None) -> Chat | Private | None:
        """The message this member already sent with ``msg_id``, if this is a resend of
        it: the same nick, id, kind and text (and room, for room messages).  An id
        reused for anything else -- another program under the same nick, a counter
        that restarted -- is a new message, never silently swallowed.  ``sender``:
        ``fold(member.nick)``, if a run of messages computed it once."""
        key = (sender or fold(member.nick), msg_id)
        earlier = self.sent.get(key)
        if earlier is None:
            earlier = self._sent_before.get(key)
        if earlier is None or earlier.text != clean_text(text):
            return None
        if private != isinstance(earlier, Private):
            return None
        if isinstance(earlier, Chat):
            if earlier.action != action:
                return None
            try:
                room = self.room_of(member, room_name)
            except Refused:  # not a room of the member's: say() explains why
                return None
            if fold(earlier.room) != fold(room.name):
                return None
        return earlier

    def _remember(self, member: Member, msg_id: str, msg: Chat | Private, sender: str | None = None) -> None:
        self._remember_id((sender or fold(member.nick), msg_id), msg)

    def first_time(self, msg: Private) -> bool:
        """A private message from another server's member: True the first time its
        (sender, id) is seen here (then remembered), False for a resend of it (its
        sender could not be told it arrived: ``unconfirmed``).  No id: always new."""
        if msg.id is None:
            return True
        key = (fold(msg.nick), msg.id)
        earlier = self.sent.get(key) or self._sent_before.get(key)
        if earlier is not None and earlier.text == msg.text:
            return False
        self._remember_id(key, msg)
        return True

    def forget_sent_before(self, cutoff: float) -> int:
        """Retention reaches the ids kept to recognise resends too: none of a message
        older than ``cutoff`` (its text with it) outlives the message.  Returns how many."""
        gone = 0
        for ids in (self.sent, self._sent_before):
            old = [key for key, msg in ids.items() if msg.ts < cutoff]
            for key in old:
                del ids[key]
            gone += len(old)
        return gone

    def _remember_id(self, key: tuple[str, str], msg: Chat | Private) -> None:
        """Two generations: a full one becomes the older and the oldest is dropped
        whole -- O(1) a message, where trimming one ordered map cost a pop (or a
        rebuild) per message at 50,000 ids."""
        sent = self.sent
        sent[key] = msg
        if len(sent) >= RECENT_IDS:
            self._sent_before, self.sent = sent, {}

    @property
    def remembered_ids(self) -> int:
        """How many (nick, id) pairs a resend is recognised by now (RECENT_IDS to twice that)."""
        return len(self.sent) + len(self._sent_before)
