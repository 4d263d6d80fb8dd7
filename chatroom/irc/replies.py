"""What the IRC door answers to questions about the chat (no I/O): NAMES, WHO,
WHOIS, LIST, LUSERS, ISON, USERHOST and a joined channel's history, as IRC lines.

Each function takes the connection's :class:`~chatroom.irc.session.IrcSession` (its
nick, capabilities and the server's name) and what it asks about, read from the
chat state under the hub lock by the door (``door.py``), and returns the lines to
send -- so every answer is tested with no socket.
"""

from __future__ import annotations

import fnmatch
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from chatroom.irc import numerics as n
from chatroom.irc.lines import format_line
from chatroom.irc.session import IrcSession
from chatroom.irc.wire import IrcFormat, channel, mask, msgid
from chatroom.protocol import Chat, RoomInfo, User
from chatroom.server.members import Member, Room
from chatroom.server.nicks import NickIndex
from chatroom.text import fold, nick_key, without_hash

__all__ = ["irc_format", "history_lines", "topic_lines", "names_lines", "who_lines", "who_flags", "who_matches",
           "whois_lines", "list_lines", "lusers_lines", "ison_line", "userhost_line"]

#: A NAMES reply line holds names up to about this many characters (a line is at
#: most 512 bytes with the prefix and the channel).
NAMES_PER_LINE = 400


def irc_format(server: str, server_time: bool, away_notify: bool, message_tags: bool = False,
               extended_join: bool = False, hub: Any = None, multiline: bool = False) -> IrcFormat:
    """The wire format of IRC connections with these capabilities on the server of
    ``hub`` (one shared object per combination, so the hub encodes each message once
    per combination in use; it asks the hub's state who a nick is, for its user name)."""
    formats = _FORMATS.setdefault(hub, {}) if hub is not None else _UNBOUND
    key = (server, server_time, away_notify, message_tags, extended_join, multiline)
    fmt = formats.get(key)
    if fmt is None:
        fmt = formats[key] = IrcFormat(server, server_time=server_time, away_notify=away_notify,
                                       message_tags=message_tags, extended_join=extended_join, multiline=multiline,
                                       people=_people(hub) if hub is not None else None)
    return fmt


def _people(hub: Any) -> Callable[[str], Any]:
    """nick -> its member on ``hub`` 's server (a weak reference: the formats do not
    keep a stopped server alive)."""
    ref = weakref.ref(hub)

    def person(nick: str) -> Any:
        alive = ref()
        return alive.state.nicks.spelled(nick) if alive is not None else None

    return person


_FORMATS: weakref.WeakKeyDictionary[Any, dict[tuple[str, bool, bool, bool, bool, bool], IrcFormat]] = \
    weakref.WeakKeyDictionary()
_UNBOUND: dict[tuple[str, bool, bool, bool, bool, bool], IrcFormat] = {}


def history_lines(session: IrcSession, chan: str, history: Sequence[Chat], hub: Any = None, *,
                  ref: str = "history", asked: bool = False) -> list[bytes]:
    """A room's recent history, with its times, inside a ``chathistory`` batch named
    ``ref`` if the client reads batches.  Pushed on JOIN (``asked`` False) only to a
    client that reads server-time (otherwise old lines would look new) and does not
    page history itself (``draft/chathistory``); ``asked``: a CHATHISTORY page, even
    empty."""
    caps, name = session.caps, session.server
    if not asked and (not history or "server-time" not in caps or "draft/chathistory" in caps):
        return []
    tagged = "message-tags" in caps
    fmt = irc_format(name, True, "away-notify" in caps, tagged, "extended-join" in caps, hub,  # (this connection's own)
                     "draft/multiline" in caps)
    batch = ref if "batch" in caps else None
    out = [format_line("BATCH", f"+{ref}", "chathistory", chan, source=name)] if batch else []
    for chat in history:
        out.append(fmt.privmsg(chat.nick, chan, chat.text, chat.ts, action=chat.action, batch=batch,
                               msgid=msgid(chat) if tagged else None))
    if batch:
        out.append(format_line("BATCH", f"-{ref}", source=name))
    return out


def topic_lines(session: IrcSession, room: Room) -> list[bytes]:
    """A channel's topic (332) with who set it and when (333, when known), or 331."""
    chan = channel(room.name)
    if not room.topic:
        return [session.reply(n.RPL_NOTOPIC, chan, "No topic is set")]
    out = [session.reply(n.RPL_TOPIC, chan, room.topic)]
    if room.topic_by:
        out.append(session.reply(n.RPL_TOPICWHOTIME, chan, room.topic_by, str(int(room.topic_at))))
    return out


def names_lines(session: IrcSession, room: Room | None, asked: str, *, end: str | None = "") -> list[bytes]:
    """NAMES of ``room`` (None: no such channel -- just the end, as asked), ended with
    366 for ``end`` ("": the channel; None: no end, a NAMES of several ends once)."""
    if room is None:
        return [session.reply(n.RPL_ENDOFNAMES, end or asked, "End of /NAMES list")] if end is not None else []
    chan = channel(room.name)
    kind = "@" if room.modes.secret else "="
    full, multi = "userhost-in-names" in session.caps, "multi-prefix" in session.caps
    names = [prefixes(room, m, multi) + (mask(m.nick, m.ident) if full else m.nick)
             for m in room.everyone()]
    out = [session.reply(n.RPL_NAMREPLY, kind, chan, " ".join(row)) for row in _rows(names)]
    if end is not None:
        out.append(session.reply(n.RPL_ENDOFNAMES, end or chan, "End of /NAMES list"))
    return out


def _channels_of(session: IrcSession, user: User, who: Member | None) -> str:
    """WHOIS's 319: each channel with the person's prefix in it (known for a member here)."""
    multi = "multi-prefix" in session.caps
    rooms = who.rooms if who is not None else {}
    return " ".join((prefixes(rooms[fold(r)], who, multi) if who is not None and fold(r) in rooms else "")
                    + channel(r) for r in user.rooms)


def _rows(names: list[str]) -> list[list[str]]:
    """``names`` in rows of at most NAMES_PER_LINE characters (one 353 each), a name
    that would pass it starting the next row.  One pass with the row's width kept:
    summing the row again for each name made a join's NAMES cost ~30 steps a member,
    and joining 5,000 IRC members took a core for most of a minute."""
    rows: list[list[str]] = []
    row: list[str] = []
    width = 0
    for name in names:
        if row and width + len(name) + 1 > NAMES_PER_LINE:
            rows.append(row)
            row, width = [], 0
        row.append(name)
        width += len(name) + 1
    if row:
        rows.append(row)
    return rows


def who_lines(session: IrcSession, mask: str, room: Room | None, people: Iterable[Member],
              whox: str = "", now: float = 0.0) -> list[bytes]:
    """WHO of a channel (``room``), or of the people a nick or mask (``ann*``) names;
    ``whox``: the ``%fields[,token]`` of a WHOX request (354 lines, not 352)."""
    if room is not None:
        chan = channel(room.name)
        rows: list[tuple[str, Member, Room | None]] = [(chan, m, room) for m in room.everyone()]
    else:
        rows = [(channel(m.room.name) if m.room is not None else "*", m, m.room) for m in people]
    multi = "multi-prefix" in session.caps
    if whox:
        fields, _, token = whox[1:].partition(",")
        out = [session.reply(n.RPL_WHOSPCRPL, *_whox_fields(session, fields, token, chan, m, r, multi, now))
               for chan, m, r in rows]
    else:
        out = [session.reply(n.RPL_WHOREPLY, chan, m.ident or m.nick, "chatroom", session.server, m.nick,
                             who_flags(m, r, multi), f"0 {m.realname or m.nick}") for chan, m, r in rows]
    out.append(session.reply(n.RPL_ENDOFWHO, mask, "End of /WHO list"))
    return out


#: WHOX's fields, in the order a reply gives them whatever order they were asked in.
WHOX_FIELDS = "tcuihsnfdlaor"


def _whox_fields(session: IrcSession, fields: str, token: str, chan: str, m: Member, room: Room | None,
                 multi: bool, now: float) -> list[str]:
    """One 354 line's parameters: the asked fields (no addresses: ``i`` is hidden; no
    accounts: ``a`` is 0)."""
    value = {
        "t": token or "0", "c": chan, "u": m.ident or m.nick, "i": "255.255.255.255", "h": "chatroom",
        "s": session.server, "n": m.nick, "f": who_flags(m, room, multi), "d": "0",
        "l": str(max(0, int(now - m.last_active))), "a": "0", "o": "n/a", "r": m.realname or m.nick,
    }
    return [value[f] for f in WHOX_FIELDS if f in fields]


def prefixes(room: Room, m: Member, multi: bool) -> str:
    """``@`` a room operator (a server operator is one in every room), ``+`` voiced:
    the highest, or (``multi-prefix``) both."""
    key = fold(m.nick)
    op = m.op or key in room.modes.operators
    voice = key in room.modes.voiced
    if multi:
        return ("@" if op else "") + ("+" if voice else "")
    return "@" if op else "+" if voice else ""


def who_flags(m: Member, room: Room | None = None, multi: bool = False) -> str:
    """``H`` here or ``G`` gone (away); ``*`` a server operator; then the member's
    prefixes in the channel asked about (a server operator's ``@`` everywhere)."""
    status = ("G" if m.away else "H") + ("*" if m.op else "") + ("B" if m.bot else "")
    if room is None:
        return status + ("@" if m.op else "")
    return status + prefixes(room, m, multi)


def who_matches(mask: str, members: Iterable[Member], asker: Member) -> list[Member]:
    """The people a WHO mask names: a nick, or a glob (``*``, ``ann*``, ``?ob``),
    ignoring case.  Invisible people (+i) only if they share a room with the asker."""
    if not any(ch in mask for ch in "*?"):
        return []
    pattern = mask.casefold()
    shared = set(asker.rooms)
    return [m for m in members if fnmatch.fnmatchcase(m.nick.casefold(), pattern)
            and (not m.invisible or m is asker or shared & set(m.rooms))]


def whois_lines(session: IrcSession, user: User, who: Member | None, now: float) -> list[bytes]:
    """WHOIS of ``user`` (``who``: its member here, for what only this server knows)."""
    joined_at = who.joined_at if who is not None else now
    realname = (who.realname if who is not None else "") or user.nick
    ident = (who.ident if who is not None else "") or user.nick
    out = [session.reply(n.RPL_WHOISUSER, user.nick, ident, "chatroom", "*", realname)]
    if user.rooms:
        out.append(session.reply(n.RPL_WHOISCHANNELS, user.nick, _channels_of(session, user, who)))
    out.append(session.reply(n.RPL_WHOISSERVER, user.nick, session.server, "chatroom"))
    if user.away:
        out.append(session.reply(n.RPL_AWAY, user.nick, user.away))
    if user.op:
        out.append(session.reply(n.RPL_WHOISOPERATOR, user.nick, "is a chatroom operator"))
    if who is not None and who.bot:
        out.append(session.reply(n.RPL_WHOISBOT, user.nick, "is a bot"))
    out.append(session.reply(n.RPL_WHOISIDLE, user.nick, str(int(user.idle)), str(int(joined_at)),
                             "seconds idle, signon time"))
    out.append(session.reply(n.RPL_ENDOFWHOIS, user.nick, "End of /WHOIS list"))
    return out


def list_filter(asked: str) -> Callable[[RoomInfo], bool]:
    """Which channels a LIST names (ISUPPORT ``ELIST=MNU``), from its comma-separated
    words: channel names (``#a``) and masks (``#c*``, ``*an1``), any of which may match;
    masks that must not (``!*an1``); and user counts (``>5``, ``<10``), all of which
    must hold.  Nothing asked: every channel."""
    names: set[str] = set()
    masks: list[str] = []
    nots: list[str] = []
    more, fewer = -1, 1 << 62
    for word in filter(None, asked.split(",")):
        if word[0] in "<>" and word[1:].isdigit():
            if word[0] == ">":
                more = max(more, int(word[1:]))
            else:
                fewer = min(fewer, int(word[1:]))
        elif word[0] == "!":
            nots.append(word[1:].casefold())
        elif "*" in word or "?" in word:
            masks.append(word.casefold())
        else:
            names.add(fold(without_hash(word)))

    def wanted(room: RoomInfo) -> bool:
        chan = channel(room.name).casefold()
        if (names or masks) and fold(room.name) not in names \
                and not any(fnmatch.fnmatchcase(chan, m) for m in masks):
            return False
        return more < room.members < fewer and not any(fnmatch.fnmatchcase(chan, m) for m in nots)
    return wanted


def list_lines(session: IrcSession, rooms: Iterable[RoomInfo], asked: str = "") -> list[bytes]:
    """LIST, of every channel or of those ``asked`` names (``list_filter``)."""
    wanted = list_filter(asked)
    out = [session.reply(n.RPL_LISTSTART, "Channel", "Users  Name")]
    out += [session.reply(n.RPL_LIST, channel(r.name), str(r.members), r.topic) for r in rooms if wanted(r)]
    out.append(session.reply(n.RPL_LISTEND, "End of /LIST"))
    return out


def lusers_lines(session: IrcSession, members: Sequence[Member], rooms: int, most: int) -> list[bytes]:
    """LUSERS: people (visible and invisible), operators, channels, and the counts
    clients show (265/266: users now and the most at once; one server, so local is
    global)."""
    invisible = sum(1 for m in members if m.invisible)
    ops = sum(1 for m in members if m.op)
    people = len(members)
    most = max(most, people)
    return [
        session.reply(n.RPL_LUSERCLIENT, f"There are {people - invisible} users and {invisible} invisible on 1 server"),
        session.reply(n.RPL_LUSEROP, str(ops), "operator(s) online"),
        session.reply(n.RPL_LUSERCHANNELS, str(rooms), "channels formed"),
        session.reply(n.RPL_LUSERME, f"I have {people} clients and 0 servers"),
        # (the counts in the text only: the numeric form's "max" is taken as since the
        # last test by conformance suites, and means since the server started here)
        session.reply(n.RPL_LOCALUSERS, f"Current local users {people}, max {most}"),
        session.reply(n.RPL_GLOBALUSERS, f"Current global users {people}, max {most}"),
    ]


def ison_line(session: IrcSession, nicks: NickIndex, words: Iterable[str]) -> bytes:
    """ISON: which of ``words`` are here, as they spell their nicks."""
    here = [m.nick for word in words if (m := nicks.get(nick_key(word))) is not None]
    return session.reply(n.RPL_ISON, " ".join(here))


def userhost_line(session: IrcSession, nicks: NickIndex, words: Iterable[str]) -> bytes:
    """USERHOST of at most five nicks: ``nick[*]=[+-]nick@chatroom`` (operator, away)."""
    found = [f"{m.nick}{'*' if m.op else ''}={'-' if m.away else '+'}{m.nick}@chatroom"
             for word in list(words)[:5] if (m := nicks.get(nick_key(word))) is not None]
    return session.reply(n.RPL_USERHOST, " ".join(found))
