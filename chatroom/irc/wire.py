"""The rooms' messages as IRC lines: a wire format of the hub's fan-out.  No I/O.

A room decides a message once; every IRC member with the same capabilities gets the
same bytes, encoded once per batch (see ``chatroom/server/wire.py``).  What depends on
the recipient is not here: the door writes numerics and its own replies itself and
queues them as :class:`IrcText`, and leaves a sender without ``echo-message`` out of
its own message's recipients.

How chatroom's world maps onto IRC's:

* a room is the channel ``#room``; a person is ``nick!user@chatroom`` -- the user name
  an IRC client gave with USER, else the nick (looked up by ``people``); addresses are
  never shown, as in the framed protocol);
* a message longer than an IRC line, or with several lines, is several PRIVMSGs, cut
  between words where it can be (never inside a UTF-8 character); an action is a CTCP
  ACTION;
* leaving: ``left[: why]`` and ``went to ROOM`` are PART, a kick is KICK (by the
  operator), anything else (quit, connection lost, timed out...) is QUIT with the reason;
* ``server-time`` adds each message's time as a tag; ``away-notify`` adds AWAY lines;
  ``message-tags`` a ``msgid`` to each room and direct message.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from chatroom.irc.lines import MAX_LINE, format_line
from chatroom.irc.modes import mode_line_parts
from chatroom.protocol import (
    Bye,
    Chat,
    Crowd,
    Error,
    FileOffer,
    Invited,
    Message,
    Notice,
    Ping,
    Presence,
    PresenceEvent,
    Private,
    RoomModesInfo,
    TaggedChat,
    Topic,
    Typing,
)
from chatroom.server.side_messages import TagOnly
from chatroom.server.watch import Watched
from chatroom.server.wire import Outgoing, Verbatim
from chatroom.text import human_size

__all__ = ["IrcFormat", "IrcText", "channel", "listed", "mask", "msgid", "private_msgid", "server_time", "split_text"]


class IrcText(Verbatim):
    """Lines the door wrote for one connection (numerics, replies): passed through."""

    __slots__ = ()
    TYPE = "irc"


def channel(room: str) -> str:
    return f"#{room}"


def mask(nick: str, user: str = "") -> str:
    """The source of a person's lines: ``nick!user@chatroom`` (the user name an IRC
    client gave, else the nick); addresses stay private."""
    return f"{nick}!{user or nick}@chatroom"


def msgid(chat: Chat) -> str:
    """IRCv3 ``msgid`` of a room message: its place in the room (the same on every
    server of a cluster, and in a replay, so a client can tell a line it has)."""
    return f"{chat.seq}.{chat.room.casefold()}"


def hashed_msgid(kind: str, *parts: str) -> str:
    """An IRCv3 ``msgid`` for a message with no place in a room: what it is, hashed
    (the same for every recipient and for an echo), after ``kind``'s letter."""
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=10).digest()
    return kind + base64.b32encode(digest).decode().lower()


def private_msgid(msg: Private) -> str:
    """A direct message's ``msgid``: its sender, addressee, time and text."""
    return hashed_msgid("p", msg.nick, msg.to, repr(msg.ts), msg.text)


def listed(server: str, numeric: str, to: str, items: Sequence[str], budget: int = 400) -> bytes:
    """``:server NUMERIC to :a,b,c`` lines, as many as ``items`` need (MONITOR's)."""
    out: list[bytes] = []
    line: list[str] = []
    size = 0
    for item in items:
        if line and size + len(item) + 1 > budget:
            out.append(format_line(numeric, to, ",".join(line), source=server, trailing=True))
            line, size = [], 0
        line.append(item)
        size += len(item) + 1
    if line:
        out.append(format_line(numeric, to, ",".join(line), source=server, trailing=True))
    return b"".join(out)


def server_time(ts: float) -> str:
    """IRCv3 ``server-time``: ``2026-12-01T08:00:00.000Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def split_text(text: str, budget: int) -> list[str]:
    """``text`` as IRC-sized pieces of at most ``budget`` UTF-8 bytes each: one per
    line of it, each cut between words where possible.  Empty lines are dropped."""
    if "\n" not in text and len(text) * 4 <= budget:  # one line that fits, whatever its characters (most)
        line = text.rstrip()
        return [line] if line else []
    return [piece.rstrip(" ") for piece, _ in split_pieces(text, budget) if piece.strip()]


def split_pieces(text: str, budget: int) -> list[tuple[str, bool]]:
    """``text`` as IRC-sized pieces, each with whether it goes on the line before it
    (IRCv3 multiline's ``concat``: a line too long for one PRIVMSG, cut).  Blank lines
    are kept (a multiline batch carries them), but not at either end."""
    out: list[tuple[str, bool]] = []
    budget = max(16, budget)
    for line in text.strip("\n").split("\n"):
        line = line.rstrip()
        concat = False
        while len(line.encode("utf-8")) > budget:
            head = line.encode("utf-8")[:budget].decode("utf-8", "ignore")  # never half a character
            space = head.rfind(" ")
            if space > len(head) // 2:
                head = head[:space + 1]  # (the space stays with the first piece: concat restores the line)
            out.append((head, concat))
            line, concat = line[len(head):], True
        out.append((line, concat))
    return out


def _leave(fmt: IrcFormat, p: Presence, tags: dict[str, str] | None) -> bytes:
    reason = p.reason or "quit"
    who = fmt.who(p.nick)
    if reason == "left" or reason.startswith("left: ") or reason.startswith("went to "):
        why = reason[6:] if reason.startswith("left: ") else "" if reason == "left" else reason
        return format_line("PART", channel(p.room), why, source=who, tags=tags, trailing=True) if why else \
            format_line("PART", channel(p.room), source=who, tags=tags)
    if reason.startswith("kicked by "):
        by, _, why = reason[len("kicked by "):].partition(": ")
        return format_line("KICK", channel(p.room), p.nick, why or by, source=fmt.who(by), tags=tags,
                           trailing=True)
    return format_line("QUIT", reason if not reason.startswith("quit: ") else f"Quit: {reason[6:]}",
                       source=who, tags=tags, trailing=True)


def _multiline(source: str, command: str, target: str, pieces: list[tuple[str, bool]], tags: dict[str, str],
               outer: str | None) -> bytes:
    """One message of several lines as an IRCv3 ``draft/multiline`` batch: its tags
    (``msgid``, ``time``...) on the batch's start, each line inside it (a cut line with
    ``draft/multiline-concat``); named after its msgid (the same for every recipient).
    ``outer``: the batch it is in (a replay's)."""
    ref = "ml" + hashlib.blake2b(tags["msgid"].encode(), digest_size=6).hexdigest()
    out = [format_line("BATCH", f"+{ref}", "draft/multiline", target, source=source,
                       tags={**tags, "batch": outer} if outer is not None else tags)]
    inside = {"batch": ref}
    joined = {"batch": ref, "draft/multiline-concat": ""}
    out += [format_line(command, target, piece, source=source, tags=joined if concat else inside, trailing=True)
            for piece, concat in pieces]
    out.append(format_line("BATCH", f"-{ref}", source=source, tags={"batch": outer} if outer is not None else None))
    return b"".join(out)


def _one_line(source: str, command: str, target: str, text: str, action: bool) -> bytes:
    """What ``format_line`` makes of a message with no tags that fits one line (and
    ``split_text`` of its text: trailing spaces dropped, nothing if nothing is left),
    without its general steps."""
    text = text.rstrip()
    if not text:
        return b""
    if "\r" in text or "\0" in text:  # (a room's text has neither: cleaned when it was said)
        text = text.replace("\r", " ").replace("\0", "")
    if action:
        text = f"\x01ACTION {text}\x01"
    return f":{source} {command} {target} :{text}\r\n".encode()


def _split_lines(source: str, command: str, target: str, text: str, action: bool, budget: int,
                 tags: dict[str, str] | None, msgid: str | None) -> bytes:
    """A message as the lines ``split_text`` cuts it into, each with the tags (and the
    first with ``msgid``, the next ones ``msgid/2``, ``msgid/3``...)."""
    out = []
    for at, piece in enumerate(split_text(text, budget), 1):
        body = f"\x01ACTION {piece}\x01" if action else piece
        if msgid is not None:
            tags = {**(tags or {}), "msgid": msgid if at == 1 else f"{msgid}/{at}"}
        out.append(format_line(command, target, body, source=source, tags=tags, trailing=True))
    return b"".join(out)


class IrcFormat:
    """IRC lines for connections that negotiated ``server_time`` and ``away_notify``
    (or not).  ``server``: the name numerics and notices come from."""

    name = "irc"

    def __init__(self, server: str, *, server_time: bool = False, away_notify: bool = False,
                 message_tags: bool = False, extended_join: bool = False, multiline: bool = False,
                 people: Callable[[str], Any] | None = None) -> None:
        self.server = server
        self.server_time = server_time
        self.away_notify = away_notify
        self.message_tags = message_tags  # room messages carry a msgid
        self.extended_join = extended_join  # JOIN carries the account (none: *) and the real name
        self.multiline = multiline  # a message of several lines comes as one draft/multiline batch
        #: nick -> its member here (for its user and real name), or None
        self.people = people or (lambda nick: None)

    def who(self, nick: str) -> str:
        """``nick!user@chatroom`` with the user name its member gave (else the nick)."""
        member = self.people(nick)
        return mask(nick, member.ident if member is not None else "")

    def __repr__(self) -> str:
        return f"IrcFormat(time={self.server_time}, away={self.away_notify}, tags={self.message_tags})"

    def encode(self, parts: Sequence[Outgoing]) -> bytes:
        if len(parts) == 1:
            return self.lines(parts[0].message)
        return b"".join([self.lines(p.message) for p in parts])

    def _tags(self, ts: float | None) -> dict[str, str] | None:
        return {"time": server_time(ts)} if self.server_time and ts is not None else None

    def lines(self, msg: Message | Verbatim) -> bytes:
        """``msg`` as IRC lines; nothing for acks, history pages, file data and others'
        bytes (nothing an IRC client would understand)."""
        render = _RENDER.get(type(msg))
        return render(self, msg) if render is not None else b""

    def _chat(self, msg: Chat) -> bytes:
        return self.privmsg(msg.nick, channel(msg.room), msg.text, msg.ts, action=msg.action,
                            msgid=msgid(msg) if self.message_tags else None)

    def _tagged_chat(self, msg: TaggedChat) -> bytes:
        """A chat with client tags, or sent as a NOTICE."""
        tagged = self.message_tags
        return self.privmsg(msg.nick, channel(msg.room), msg.text, msg.ts, action=msg.action,
                            msgid=msgid(msg) if tagged else None, client_tags=msg.tags if tagged else None,
                            command="NOTICE" if msg.notice else "PRIVMSG")

    def _private(self, msg: Private) -> bytes:
        tagged = self.message_tags
        return self.privmsg(msg.nick, msg.to, msg.text, msg.ts, msgid=private_msgid(msg) if tagged else None,
                            client_tags=msg.tags if tagged else None, command="NOTICE" if msg.notice else "PRIVMSG")

    def _tag_only(self, msg: TagOnly) -> bytes:
        """IRCv3's TAGMSG: client tags alone (to members with message-tags only)."""
        target = channel(msg.room) if msg.room is not None else msg.to or "*"
        tags = {**(self._tags(msg.ts) or {}), **msg.tags}
        tags["msgid"] = hashed_msgid("t", msg.nick, target, repr(msg.ts), repr(sorted(msg.tags.items())))
        return format_line("TAGMSG", target, source=self.who(msg.nick), tags=tags)

    def _topic(self, msg: Topic) -> bytes:
        return format_line("TOPIC", channel(msg.room), msg.topic, source=self.who(msg.nick), tags=self._tags(msg.ts),
                           trailing=True)

    def _ping(self, msg: Ping) -> bytes:
        return format_line("PING", msg.token or "keepalive")

    def _error(self, msg: Error) -> bytes:
        if msg.fatal:
            return format_line("ERROR", f"Closing link: {msg.message}", trailing=True)
        return self._notice_text(msg.message)

    def _notice(self, msg: Notice) -> bytes:
        return self._notice_text(msg.text, msg.to or "*")

    def _notice_text(self, text: str, to: str = "*") -> bytes:
        return b"".join(format_line("NOTICE", to, piece, source=self.server, trailing=True)
                        for piece in split_text(text, 400))

    def _typing(self, msg: Typing) -> bytes:
        """IRCv3's typing notice (only members that negotiated message-tags get one)."""
        return format_line("TAGMSG", channel(msg.room or ""), source=self.who(msg.nick or "*"),
                           tags={"+typing": msg.state.value})

    def _modes(self, msg: RoomModesInfo) -> bytes:
        """A room's modes changed: one MODE line, as the operator who changed them."""
        if not msg.nick or not msg.changes:
            return b""
        letters, args = mode_line_parts(msg.changes)
        return format_line("MODE", channel(msg.room), letters, *args, source=self.who(msg.nick),
                           tags=self._tags(msg.ts))

    def _invited(self, msg: Invited) -> bytes:
        return format_line("INVITE", msg.to, channel(msg.room), source=self.who(msg.nick), tags=self._tags(msg.ts))

    def _watched(self, msg: Watched) -> bytes:
        """MONITOR: watched people came online (730) or went (731)."""
        if msg.online:
            return listed(self.server, "730", msg.to, [mask(m.nick, m.ident) for m in msg.people])
        return listed(self.server, "731", msg.to, msg.gone)

    def _bye(self, msg: Bye) -> bytes:
        return format_line("ERROR", f"Closing link: {msg.reason or 'the server is closing'}", trailing=True)

    def _line_tags(self, ts: float | None, batch: str | None, bot: bool) -> dict[str, str] | None:
        """A message's tags: its time, its batch, and ``bot`` for a bot's."""
        tags = self._tags(ts)
        if batch is not None:
            tags = {**(tags or {}), "batch": batch}
        if bot:
            tags = {**(tags or {}), "bot": ""}
        return tags

    def privmsg(self, nick: str, target: str, text: str, ts: float | None, *, action: bool = False,
                batch: str | None = None, msgid: str | None = None, client_tags: dict[str, str] | None = None,
                command: str = "PRIVMSG") -> bytes:
        """``text`` as PRIVMSGs (several for a long or multi-line one: the first carries
        ``msgid``, the next ones ``msgid/2``, ``msgid/3``... -- each line its own id)."""
        source, tags = self._head(nick, ts, batch, client_tags)
        budget = MAX_LINE - len(f":{source} {command} {target} :".encode()) - 2 - (9 if action else 0)
        if tags is None and msgid is None and "\n" not in text and len(text) * 4 <= budget:
            return _one_line(source, command, target, text, action)  # (most: no tags, one short line)
        if self.multiline and msgid is not None and not action:
            several = self._several(source, command, target, text, budget, {**(tags or {}), "msgid": msgid}, batch)
            if several:
                return several
        return _split_lines(source, command, target, text, action, budget, tags, msgid)

    def _head(self, nick: str, ts: float | None, batch: str | None,
              client_tags: dict[str, str] | None) -> tuple[str, dict[str, str] | None]:
        """A person's message's source and tags (its time, batch, bot mark, client tags)."""
        member = self.people(nick)
        source = mask(nick, member.ident if member is not None else "")
        tags = self._line_tags(ts, batch, self.message_tags and member is not None and member.bot)
        if client_tags:
            tags = {**(tags or {}), **client_tags}
        return source, tags

    @staticmethod
    def _several(source: str, command: str, target: str, text: str, budget: int, tags: dict[str, str],
                 batch: str | None) -> bytes:
        """A message that needs several lines, as one multiline batch (else b"")."""
        if "\n" not in text and len(text) * 4 <= budget:
            return b""  # (one line, whatever its characters)
        pieces = split_pieces(text, budget)
        return _multiline(source, command, target, pieces, tags, batch) if len(pieces) > 1 else b""

    def _presence(self, p: Presence) -> bytes:
        tags = self._tags(p.ts)
        if p.event is PresenceEvent.JOIN:
            return self.join_line(p.nick, channel(p.room), tags)
        if p.event is PresenceEvent.LEAVE:
            return _leave(self, p, tags)
        if p.event is PresenceEvent.NICK and p.new_nick:
            return format_line("NICK", p.new_nick, source=mask(p.nick, self._user(p.new_nick)), tags=tags)
        if p.event is PresenceEvent.AWAY and self.away_notify:
            return format_line("AWAY", p.message or "away", source=self.who(p.nick), tags=tags, trailing=True)
        if p.event is PresenceEvent.BACK and self.away_notify:
            return format_line("AWAY", source=self.who(p.nick), tags=tags)
        return b""

    def _user(self, nick: str) -> str:
        member = self.people(nick)
        return member.ident if member is not None else ""

    def join_line(self, nick: str, chan: str, tags: dict[str, str] | None = None) -> bytes:
        """``nick`` joins ``chan`` (``extended-join``: with ``*`` for no account, and
        the real name its member gave -- else the nick)."""
        member = self.people(nick)
        source = mask(nick, member.ident if member is not None else "")
        if self.extended_join:
            realname = (member.realname if member is not None else "") or nick
            return format_line("JOIN", chan, "*", realname, source=source, tags=tags, trailing=True)
        return format_line("JOIN", chan, source=source, tags=tags)

    def _crowd(self, c: Crowd) -> bytes:
        tags = self._tags(c.ts)
        out = [self.join_line(n, channel(c.room), tags) for n in c.joined]
        out += [format_line("PART", channel(c.room), source=self.who(n), tags=tags) for n in c.left]
        return b"".join(out)

    def _offer(self, f: FileOffer) -> bytes:
        target = channel(f.room) if f.room else (f.to or "*")
        text = (f"{f.nick} offers the file “{f.name}” ({human_size(f.size)}): files travel through chatroom's "
                f"own client (chatroom join, then /accept {f.transfer})")
        return format_line("NOTICE", target, text, source=self.server, trailing=True)


#: How each kind of message is rendered (``IrcFormat.lines``).
_RENDER: dict[type, Callable[[IrcFormat, Any], bytes]] = {
    IrcText: lambda fmt, msg: msg.data,
    Chat: IrcFormat._chat,
    TaggedChat: IrcFormat._tagged_chat,
    TagOnly: IrcFormat._tag_only,
    Private: IrcFormat._private,
    Presence: IrcFormat._presence,
    Topic: IrcFormat._topic,
    Crowd: IrcFormat._crowd,
    Ping: IrcFormat._ping,
    Error: IrcFormat._error,
    Notice: IrcFormat._notice,
    Bye: IrcFormat._bye,
    Typing: IrcFormat._typing,
    FileOffer: IrcFormat._offer,
    RoomModesInfo: IrcFormat._modes,
    Invited: IrcFormat._invited,
    Watched: IrcFormat._watched,
}
