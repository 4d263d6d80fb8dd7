"""Messages beside a room's history: who may send one where, and who hears it.  No I/O.
A part of :class:`~chatroom.server.room.ChatState`.

* Client tags alone (IRCv3's ``TAGMSG``: a reaction, a reply marker): only members
  that read client tags (IRC clients with ``message-tags``: ``Member.hears_tags``)
  hear one.  Typing has its own message (``typing``), which every door shows.
* A message to a room's operators (IRC's ``STATUSMSG``: ``PRIVMSG @#room``), or to its
  operators and voiced members (``+#room``): a ``private`` whose ``to`` is ``@#room`` or
  ``+#room``, to those members at every door.

The same rules as a chat's -- a room of yours, not muted, a voice in a moderated room;
someone who is here for a direct one -- but nothing is stored or numbered (a message
only some of a room see has no place in the history every member resumes from): news
of a moment.  The sender hears it too if it wants its own messages back (``echo``).
"""

from __future__ import annotations

from chatroom.errors import Refused
from chatroom.protocol import ErrorCode, Private
from chatroom.server.members import Member
from chatroom.server.state_base import StateBase
from chatroom.server.wire import Verbatim
from chatroom.text import MAX_NICK_LENGTH, clean_line, fold, nick_key

__all__ = ["SideMessages", "TagOnly"]


class TagOnly(Verbatim):
    """``nick`` sent ``tags`` to ``room`` (or to the member ``to``) at ``ts``.  Only
    doors whose clients read tags render it (the framed format has no bytes for it)."""

    __slots__ = ("nick", "room", "to", "tags", "ts")
    TYPE = "tagmsg"

    def __init__(self, nick: str, tags: dict[str, str], ts: float, *, room: str | None = None,
                 to: str | None = None) -> None:
        super().__init__(b"")
        self.nick, self.tags, self.ts, self.room, self.to = nick, tags, ts, room, to


class SideMessages(StateBase):
    """Messages of tags alone."""

    def tag_only(self, member: Member, tags: dict[str, str], now: float, *, room_name: str | None = None,
                 to: str | None = None) -> tuple[TagOnly, tuple[Member, ...]]:
        """``member`` sends ``tags`` to one of its rooms or to a member: the message and
        who hears it; ``Refused`` as a chat would be."""
        self._check_not_muted(member, now)
        if to is not None:
            target = self.nicks.get(nick_key(to))
            if target is None:
                raise Refused(ErrorCode.NO_SUCH_NICK, f"nobody is called {clean_line(to)[:MAX_NICK_LENGTH]}")
            msg = TagOnly(member.nick, tags, now, to=target.nick)
            everyone: tuple[Member, ...] = (target,) if target is member else (target, member)
        else:
            room = self.room_of(member, room_name)
            if room.guarded:
                self.check_voice(member, room)
            msg = TagOnly(member.nick, tags, now, room=room.name)
            everyone = room.everyone()
        return msg, tuple(m for m in everyone if m.hears_tags and (m is not member or member.echo))

    def to_runners(self, member: Member, room_name: str, text: str, now: float, *, voiced: bool = False,
                   tags: dict[str, str] | None = None, notice: bool = False) -> tuple[Private, tuple[Member, ...]]:
        """``member`` says ``text`` to the operators of one of its rooms (``voiced``: and
        its voiced members): the message and who hears it; ``Refused`` as a chat would be."""
        room, text = self.check_say(member, text, now, room_name)
        mark = "+" if voiced else "@"
        msg = Private(nick=member.nick, to=f"{mark}#{room.name}", text=text, ts=now, tags=tags, notice=notice or None)
        member.last_active = now
        hearers = tuple(m for m in room.everyone() if m is not member and (
            self.runs(m, room) or voiced and fold(m.nick) in room.modes.voiced))
        return msg, hearers + ((member,) if member.echo else ())
