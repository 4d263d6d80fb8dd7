"""The IRC door: one IRC connection, carried out on the room core.

``ChatHandler`` hands a connection here when its first bytes are an IRC command word
instead of a frame.  This reads lines, lets the :class:`~chatroom.irc.session.IrcSession`
decide registration and capabilities, and does what each command asks through the same
``ChatState`` (under the hub lock) as the framed protocol: no second copy of the room
rules.  Replies meant for this client alone (numerics) are queued as ``IrcText`` on the
batch, so they keep their place among the room's lines; the room's own messages reach
every IRC member through the hub's fan-out, encoded once per capability set
(``wire.py``).

The same limits as everyone: the connection's ``ServerSession`` keeps the handshake
deadline, the keepalive (PING/PONG) and the rate limit -- over which an IRC client is
*slowed* (its next line is read later), not refused: IRC clients pace themselves by the
server's answers, and a paste must not be lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from chatroom import __version__
from chatroom.auth import secrets_match
from chatroom.errors import Refused
from chatroom.irc import numerics as n
from chatroom.irc.asking import Asking
from chatroom.irc.channels import Channels
from chatroom.irc.chathistory import ChatHistory
from chatroom.irc.labels import Capture, labeled
from chatroom.irc.lines import (
    IrcLine,
    LineError,
    LineReader,
    LineTooLong,
    format_line,
    parse_line,
    plain_text,
)
from chatroom.irc.monitor import Monitor
from chatroom.irc.multiline import Gathered, Multiline
from chatroom.irc.person import Person
from chatroom.irc.replies import history_lines, irc_format, names_lines, topic_lines
from chatroom.irc.session import IrcSession, Pong, Quit, Register
from chatroom.irc.speaking import Speaking, plain_privmsg
from chatroom.irc.targets import MAX_TARGETS, chat_cost
from chatroom.irc.wire import IrcFormat, IrcText, channel, mask
from chatroom.protocol import MAX_MODE_CHANGES, ErrorCode, Presence, PresenceEvent
from chatroom.server.chat_path import claimed
from chatroom.server.doors import Door, DoorPort
from chatroom.server.hub import append_entry
from chatroom.server.members import Delivery, Member, owner_of
from chatroom.server.outbox import Outbox
from chatroom.server.pace import BURST, burst_room, to_wait_for
from chatroom.server.room_modes import MAX_ROOM_BANS
from chatroom.server.session import CloseReason
from chatroom.server.watch import MAX_WATCHED
from chatroom.server.wire import Outgoing
from chatroom.text import MAX_NICK_LENGTH, MAX_TOPIC_LENGTH, clean_line, fold, without_hash

__all__ = ["IRC_DOOR", "IrcDoor", "irc_claims"]

log = logging.getLogger("chatroom.server")

#: Bytes read at a time.
RECV_SIZE = 16 * 1024



# Refusals of the room rules, as IRC numerics.
_NUMERIC_FOR = {
    ErrorCode.NOT_IN_ROOM: n.ERR_CANNOTSENDTOCHAN,
    ErrorCode.MUTED: n.ERR_CANNOTSENDTOCHAN,
    ErrorCode.NO_SUCH_NICK: n.ERR_NOSUCHNICK,
    ErrorCode.NO_SUCH_ROOM: n.ERR_NOSUCHCHANNEL,
    ErrorCode.INVALID_ROOM: n.ERR_BADCHANNAME,
    ErrorCode.TOO_MANY_ROOMS: n.ERR_TOOMANYCHANNELS,
    ErrorCode.NOT_OPERATOR: n.ERR_CHANOPRIVSNEEDED,
    ErrorCode.NOT_ROOM_OPERATOR: n.ERR_CHANOPRIVSNEEDED,
    ErrorCode.MODERATED: n.ERR_CANNOTSENDTOCHAN,
    ErrorCode.BANNED_FROM_ROOM: n.ERR_BANNEDFROMCHAN,
    ErrorCode.INVITE_ONLY: n.ERR_INVITEONLYCHAN,
    ErrorCode.ROOM_FULL: n.ERR_CHANNELISFULL,
    ErrorCode.KEY_NEEDED: n.ERR_BADCHANNELKEY,
    ErrorCode.BAD_MESSAGE: n.ERR_NOTEXTTOSEND,
}


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def irc_claims(prefix: bytes) -> bool | None:
    """A connection's first bytes are IRC: a command word (a letter first) or IRCv3
    tags (``@``), rather than a frame (whose first byte is 0)."""
    first = prefix[:1]
    return first.isalpha() or first == b"@"


class IrcDoor(Asking, Channels, ChatHistory, Monitor, Multiline, Person, Speaking):
    """Serves one IRC connection for ``handler`` (the door's port, ``server/doors.py``:
    its connection, server, batch and socket).  The questions (NAMES, WHO, WHOIS,
    LIST, LUSERS...) are answered by its part in ``asking.py``."""

    def __init__(self, handler: DoorPort) -> None:
        self.handler = handler
        self.conn = handler.conn
        self.server = handler.server
        self.hub = handler.server.hub
        self.name = self.server.display_name
        self.session = IrcSession(self.name, tls=self.server.tls_context is not None,
                                  password_room=self.server.password is not None)
        self.reader = LineReader()
        self.conn.wire = irc_format(self.name, False, False, hub=self.hub)
        self.labels = 0  # labeled commands answered (each batch of an answer needs a new name)
        self.gathering: Gathered | None = None  # a draft/multiline batch being read (multiline.py)
        self.slowed_told = -3600.0  # when a client with standard-replies was last told it is slowed
        self.derived: tuple[int, Member | None, object] | None = None  # what update_format last derived from

    # ------------------------------------------------------------------ the pump

    def run(self, first: bytes) -> None:
        """Serve until the connection closes (the handler's ``finish`` does the rest)."""
        conn = self.conn
        data = first
        while True:
            lines, overlong = self.reader.feed(data)
            now = time.monotonic()
            conn.session.last_heard, conn.session.ping_sent = now, None  # any line is a sign of life
            for _ in range(overlong):
                self.send(self.session.reply(n.ERR_INPUTTOOLONG, "Input line was too long"))
            self.lines(lines)
            self.handler.flush_batch()
            if conn.session.closed:
                return
            data = self.handler.recv_more(RECV_SIZE)
            if not data:
                return

    def lines(self, lines: list[bytes]) -> None:
        """Handle one read's lines, in order.  A run of PRIVMSGs (a busy client's usual
        read) is handled under one acquisition of the hub lock, so that each member's
        outbox gets the run as one entry -- one send() each, not one per line, as for
        framed clients.  Anything else, and any wait for the rate limit, happens
        outside the lock (OPER may wait its turn; moderation writes bans)."""
        conn = self.conn
        i = 0
        while i < len(lines) and not conn.session.closed:
            if lines[i][:1] == b"@" and "labeled-response" in self.session.caps:
                self.labeled_line(lines[i])
                i += 1
                continue
            cost = chat_cost(lines[i]) if self.session.registered else 0
            if cost:
                i, cost, behind = self.chat_lines(lines, i, cost)
                if behind:  # (a burst, and its room behind: nothing of it said yet)
                    self.handler.flush_batch()
                    self.handler.wait_for(behind)
                    continue
                if cost:
                    self.handler.flush_batch()  # what was said so far goes out before we wait
                    self.pace(take=False, cost=cost)
                continue
            self.line(lines[i])
            i += 1

    def chat_lines(self, lines: list[bytes], i: int, cost: int) -> tuple[int, int, list[Outbox]]:
        """The run of chat lines from ``lines[i]`` (``cost``: its charge) that the rate
        limit lets through now, under one acquisition of the hub lock; the plain
        PRIVMSGs among them (``plain_privmsg``) said in one pass of the chat path
        (``say_plain``), the others line by line, all in order.  Returns the index and
        cost of the first line it left (0: none), and what to wait for first: a burst
        (``pace.BURST`` lines or more left) whose room is behind says none of it, and
        returns the room's outboxes past their mark (``pace.to_wait_for``) -- looked at
        under the same hold of the lock as the fan-out, as for framed senders.

        (Not for a client that asked for echo-message: a refusal's numeric would come
        after the echoes of the lines behind it in the pass.  Without echoes, what the
        sender and the room see is what line by line makes, in the same order.)"""
        conn, limiter = self.conn, self.conn.session.limiter
        plain: list[tuple[bytes, str, str]] = []
        passes = self.gathering is None and not self.echo  # (a CAP or BATCH line ends the run)
        said = plain_privmsg(lines[i]) if passes else None
        with self.handler.server.chat.run(self.handler.batch):
            behind = self.burst_behind(len(lines) - i)
            if behind:
                return i, cost, behind
            while cost and not conn.session.closed and limiter.delay(time.monotonic(), cost) == 0:
                if said is not None:
                    limiter.check(time.monotonic(), cost)
                    plain.append((lines[i], *said))
                else:
                    self.say_plain(plain)
                    plain = []
                    self.line(lines[i], cost=cost)
                i += 1
                said = plain_privmsg(lines[i]) if passes and i < len(lines) else None
                cost = 1 if said is not None else chat_cost(lines[i]) if i < len(lines) else 0
            self.say_plain(plain)
        return i, cost, []

    def burst_behind(self, left: int) -> list[Outbox]:
        """Before a burst (``left`` lines of a read, ``pace.BURST`` or more) is said,
        under the hub lock: the outboxes of the room last spoken to that it must wait
        for (``pace.to_wait_for``)."""
        if left < BURST or self.handler.server.stopped.is_set():
            return []
        batch = self.handler.batch
        return to_wait_for(burst_room(batch.spoke_to, self.member()), batch.own)

    def line(self, raw: bytes, *, cost: int = 0) -> None:
        """Handle one line; ``cost``: a chat line already paced (its rate-limit charge)."""
        try:
            line = parse_line(raw)
        except LineError as exc:
            if isinstance(exc, LineTooLong):
                self.reply(n.ERR_INPUTTOOLONG, "Input line was too long")
            else:
                self.send(self.session.notice(f"line ignored: {exc}"))
            return
        self.charge(line, cost)
        if self.gathering is not None and "batch" in line.tags:  # (a line of a multiline batch: gathered)
            self.gathered(line)
            return
        if not raw.isascii() and not _utf8(raw):  # (UTF8ONLY: replaced, carried, and said so)
            self.send(format_line("WARN", line.command, "INVALID_UTF8",
                                  "Your line was not valid UTF-8: the bad bytes became U+FFFD", source=self.name))
        try:
            for action in self.session.receive(line):
                self.act(action)
            if line.command == "CAP" and self.conn.member is not None:
                self.update_format()  # (capabilities asked for after registration count at once)
        except Exception as exc:  # noqa: BLE001 -- a bug must cost one line, not the connection
            self.failed(line, exc)

    def failed(self, line: IrcLine, exc: Exception) -> None:
        """``line`` was refused (the room rules: a numeric), or hit a bug (logged; the
        client is told it had no effect)."""
        if isinstance(exc, Refused):
            self.refused(line, exc)
            return
        log.error("%s: internal error handling IRC %s: %s: %s", self.handler.describe(), line.command,
                  type(exc).__name__, exc)
        log.debug("traceback of that internal error", exc_info=exc)
        self.send(self.session.notice(f"the server failed to handle that {line.command}; it had no effect"))

    def charge(self, line: IrcLine, cost: int) -> None:
        """The rate limit's charge for ``line``: ``cost`` if it was paced already (a chat
        line), else one, waited for if need be; keepalive is free."""
        if cost:
            self.conn.session.limiter.check(time.monotonic(), cost)
        elif line.command not in ("PING", "PONG"):
            self.pace()

    def labeled_line(self, raw: bytes) -> None:
        """A line that may carry IRCv3's ``label`` tag: handled alone, and what it makes
        us say to this client comes back labeled (``labels.py``)."""
        try:
            parsed = parse_line(raw)
        except LineError:
            parsed = None
        label = parsed.tags.get("label") if parsed is not None else None
        if parsed is None or not label:
            self.line(raw)
            return
        starts = parsed.command == "BATCH" and parsed.params[:1] != [] and parsed.params[0].startswith("+")
        cost = chat_cost(raw)

        def work() -> None:
            if cost:
                self.pace(take=False, cost=cost)
            self.line(raw, cost=cost)
        self.with_label(label, work, starts=starts)

    def with_label(self, label: str, work: Callable[[], None], *, starts: bool = False) -> None:
        """Do ``work`` and send what it made us say to this client, labeled.  ``starts``:
        it may start a multiline batch, whose answer -- the message's -- is labeled
        when the batch ends (``multiline.py``)."""
        self.handler.flush_batch()  # (what came before is not part of the answer)
        capture = Capture(self.conn.wire)
        self.conn.wire = capture
        try:
            work()
            self.handler.flush_batch()
        finally:
            self.conn.wire = capture.base
        if starts and self.gathering is not None and not capture.kept:
            self.gathering.label = label
            return
        self.labels += 1
        self.send(labeled(b"".join(capture.kept), label, self.name, f"L{self.labels}"))

    def pace(self, *, take: bool = True, cost: int = 1) -> None:
        """Over the rate limit, wait for ``cost`` tokens instead of refusing (see the
        module's doc); a flooder only slows itself down.  ``take``: and use them."""
        limiter = self.conn.session.limiter
        wait = limiter.delay(time.monotonic(), cost)
        if wait > 0 and "standard-replies" in self.session.caps and time.monotonic() - self.slowed_told > 60:
            self.slowed_told = time.monotonic()  # (said at most once a minute)
            self.send(format_line("NOTE", "*", "RATE_LIMITED", "You are sending faster than the server's limit: "
                                  "your next lines are read more slowly (none is lost)", source=self.name))
            self.handler.flush_batch()
        if wait > 0 and self.server.stopped.wait(wait):
            return
        if take:
            limiter.check(time.monotonic(), cost)

    def act(self, action: object) -> None:
        if isinstance(action, bytes):
            self.send(action)
            if self.session.refused:
                self.close(CloseReason.WRONG_PASSWORD)
        elif isinstance(action, Register):
            self.register(action)
        elif isinstance(action, Quit):
            reason = clean_line(plain_text(action.reason)).strip()[:100]
            self.send(format_line("ERROR", f"Closing link: quit{': ' + reason if reason else ''}", trailing=True))
            self.close(CloseReason.QUIT, f"quit: {reason}" if reason and reason.lower() != "quit" else "")
        elif isinstance(action, Pong):
            self.conn.session.ping_sent = None
        elif isinstance(action, IrcLine):
            handler = _COMMANDS.get(action.command)
            if handler is None:
                self.send(self.session.reply(n.ERR_UNKNOWNCOMMAND, action.command, "Unknown command"))
            else:
                handler(self, action)
            self.update_format()

    # ------------------------------------------------------------------ helpers

    def send(self, data: bytes) -> None:
        """Lines for this client, in order with the room's (under the hub lock)."""
        with self.hub.locked(self.handler.batch):
            append_entry(self.handler.batch.entries, self.conn.me, Outgoing(IrcText(data), b""))

    def reply(self, numeric: str, *params: str) -> None:
        self.send(self.session.reply(numeric, *params))

    def close(self, reason: CloseReason, detail: str = "") -> None:
        self.handler.flush_batch()
        self.conn.close(reason, detail)

    def member(self) -> Member:
        member = self.conn.member
        if member is None:
            raise RuntimeError("no member for a registered IRC connection")
        return member

    @property
    def echo(self) -> bool:
        return "echo-message" in self.session.caps

    def update_format(self) -> None:
        """The connection's wire format and its member's flags from the capabilities:
        again only when they or the member changed (it is asked after every command)."""
        derived = (self.session.caps_changed, self.conn.member, self.conn.wire)
        if derived == self.derived:
            return
        caps = self.session.caps
        if self.conn.member is not None:
            self.conn.member.echo = "echo-message" in caps
            self.conn.member.hears_typing = self.conn.member.hears_tags = "message-tags" in caps
            self.conn.member.hears_invites = "invite-notify" in caps  # (an INVITE for someone else)
            self.conn.member.hears_setname = "setname" in caps
        if isinstance(self.conn.wire, Capture):  # (in a labeled command: keep capturing, in the new format)
            self.conn.wire.base = self.format()
        else:
            self.conn.wire = self.format()
        self.derived = (self.session.caps_changed, self.conn.member, self.conn.wire)

    def format(self) -> IrcFormat:
        """This connection's IRC format (its capabilities)."""
        caps = self.session.caps
        return irc_format(self.name, "server-time" in caps, "away-notify" in caps, "message-tags" in caps,
                          "extended-join" in caps, self.hub, "draft/multiline" in caps)

    def deliver(self, deliveries: list[Delivery]) -> None:
        """Queue deliveries (under the lock)."""
        self.hub.deliver([d for d in deliveries if d.recipients], self.handler.batch)

    def refused(self, line: IrcLine, exc: Refused) -> None:
        target = line.params[0] if line.params else "*"
        if exc.code in (ErrorCode.NICK_TAKEN, ErrorCode.INVALID_NICK):
            taken = n.ERR_NICKNAMEINUSE if exc.code == ErrorCode.NICK_TAKEN else n.ERR_ERRONEUSNICKNAME
            self.reply(taken, target, exc.message)
            return
        numeric: str | None = None
        if exc.code in ErrorCode._value2member_map_:
            numeric = _NUMERIC_FOR.get(ErrorCode(exc.code))
        if numeric is None and "standard-replies" in self.session.caps:
            self.send(format_line("FAIL", line.command, exc.code.upper(), exc.message, source=self.name))
        elif numeric is None:
            self.send(self.session.notice(exc.message))
        else:
            self.reply(numeric, target, exc.message)

    @staticmethod
    def rooms_of(param: str) -> list[str]:
        return [without_hash(r) for r in param.split(",") if r]

    def need(self, line: IrcLine, count: int) -> bool:
        if len(line.params) >= count:
            return True
        self.reply(n.ERR_NEEDMOREPARAMS, line.command, "Not enough parameters")
        return False

    # ------------------------------------------------------------------ registration

    def register(self, reg: Register) -> None:
        conn, server, session = self.conn, self.server, self.session
        if server.password is not None:  # over TLS (the session saw to that): PASS must match
            right = self.handler.gate("password", secrets_match(reg.password or "", server.config.password or ""))
            if right is None:
                return
            if not right:
                self.reply(n.ERR_PASSWDMISMATCH, "Password incorrect")
                self.send(format_line("ERROR", "Closing link: wrong password", trailing=True))
                self.close(CloseReason.WRONG_PASSWORD)
                return
        banned = self.handler.nick_ban(reg.nick)
        if banned is not None:
            self.reply(n.ERR_YOUREBANNEDCREEP, banned[0].upper() + banned[1:])
            self.send(format_line("ERROR", "Closing link: banned", trailing=True))
            self.close(CloseReason.BANNED)
            return
        try:
            with claimed(self.server.chat, reg.nick, owner_of(conn.id, "")), \
                    self.hub.locked(self.handler.batch) as state:
                member = state.admit_roomless(conn.id, reg.nick, conn.address, time.time())
                member.realname = clean_line(session.realname)[:100]
                member.ident = clean_line(session.user).replace(" ", "")[:32] or reg.nick
                member.sink = conn
                member.echo = self.echo
                member.hears_roles = member.hears_own_leave = True  # (MODE, INVITE and KICK lines)
                member.once_per_person = True  # one NICK, one AWAY line for a change, however many channels shared
                conn.member = member
        except Refused as exc:
            if exc.code == ErrorCode.NICK_TAKEN and self.handler.ghost_leaving(reg.nick):
                self.register(reg)  # its holder had hung up: it is free now
                return
            session.nick_refused()
            numeric = n.ERR_NICKNAMEINUSE if exc.code == ErrorCode.NICK_TAKEN else n.ERR_ERRONEUSNICKNAME
            self.send(format_line(numeric, "*", reg.nick, exc.message, source=self.name, trailing=True))
            return
        conn.session.admitted()
        session.registered_as(member.nick)
        self.update_format()
        self.welcome()
        log.info("%s joined over IRC", self.handler.describe(), extra=self.handler.about("joined"))

    def welcome(self) -> None:
        nick = self.session.nick
        self.reply(n.RPL_WELCOME, f"Welcome to chatroom on {self.name}, {nick}")
        self.reply(n.RPL_YOURHOST, f"Your host is {self.name}, running chatroom {__version__}")
        self.reply(n.RPL_CREATED, "This server speaks chatroom's protocol and IRC on one port")
        self.send(format_line(n.RPL_MYINFO, nick, self.name, f"chatroom-{__version__}", "Bio", "biklmnostv",
                              "bklov", source=self.name))
        limits = self.server.config
        tokens = ["CHANTYPES=#", "PREFIX=(ov)@+", "CHANMODES=b,k,l,imnst", "BOT=B", "WHOX", "ELIST=MNU", "STATUSMSG=@+",
                  f"MONITOR={MAX_WATCHED}", f"CHATHISTORY={limits.history_size}", "MSGREFTYPES=msgid,timestamp",
                  f"MODES={MAX_MODE_CHANGES}", f"MAXLIST=b:{MAX_ROOM_BANS}", f"NICKLEN={MAX_NICK_LENGTH}",
                  f"CHANNELLEN={MAX_NICK_LENGTH + 1}", f"TOPICLEN={MAX_TOPIC_LENGTH}",
                  f"TARGMAX=PRIVMSG:{MAX_TARGETS},NOTICE:{MAX_TARGETS},JOIN:,PART:,KICK:1,NAMES:,WHOIS:1,MONITOR:",
                  "AWAYLEN=200", "KICKLEN=100", f"CHANLIMIT=#:{limits.max_rooms}", "LINELEN=512", "CASEMAPPING=ascii",
                  "UTF8ONLY", "NETWORK=chatroom"]
        for at in range(0, len(tokens), 12):  # (clients expect at most 13 parameters on a line)
            self.send(format_line(n.RPL_ISUPPORT, nick, *tokens[at:at + 12], "are supported by this server",
                                  source=self.name, trailing=True))
        self.on_lusers(None)
        self.on_motd(None)

    # ------------------------------------------------------------------ commands

    def on_join(self, line: IrcLine) -> None:
        if not self.need(line, 1):
            return
        if line.params[0] == "0":  # JOIN 0: leave every channel
            for room in list(self.member().rooms.values()):
                self.part(room.name, "left")
            return
        keys = line.params[1].split(",") if len(line.params) > 1 else []
        for at, name in enumerate(line.params[0].split(",")):
            if not name.startswith("#"):
                self.reply(n.ERR_NOSUCHCHANNEL, name or "*", "No such channel (channels start with #)")
                continue
            if name.startswith("##"):  # a room's name has no # of its own: ##x would quietly be #x
                self.reply(n.ERR_BADCHANNAME, name, "Illegal channel name (one # only)")
                continue
            try:
                self.join_with_key(name, keys[at] if at < len(keys) else None)
            except Refused as exc:
                self.refused(IrcLine("JOIN", [name]), exc)

    def join(self, room: str, key: bytes | None = None) -> None:
        member = self.member()
        self.server.chat.look_ahead(room=room)
        with self.hub.locked(self.handler.batch) as state:
            joined, deliveries = state.join(member, room, time.time(), key=key)
            chan = channel(joined.room)
            out = [self.format().join_line(member.nick, chan)]
            here = state.rooms.get(fold(joined.room))
            if here is not None and here.topic:
                out += topic_lines(self.session, here)
            out += names_lines(self.session, here, chan)
            out += history_lines(self.session, chan, joined.history, self.hub)
            self.send(b"".join(out))
            self.deliver(deliveries)
            if member.away:  # away-notify: an away member who joins is said to be away
                others = tuple(m for m in state.rooms[fold(joined.room)].everyone()
                               if m is not member and m.sink is not None and getattr(m.sink.wire, "away_notify", False))
                self.deliver([Delivery(others, Presence(room=joined.room, event=PresenceEvent.AWAY, nick=member.nick,
                                                        message=member.away, ts=time.time()))])

    def on_part(self, line: IrcLine) -> None:
        if not self.need(line, 1):
            return
        reason = plain_text(line.params[1]) if len(line.params) > 1 else ""
        for room in self.rooms_of(line.params[0]):
            try:
                self.part(room, reason)
            except Refused:
                self.reply(n.ERR_NOTONCHANNEL, channel(room), "You're not on that channel")

    def part(self, room: str, reason: str) -> None:
        member = self.member()
        with self.hub.locked(self.handler.batch) as state:
            parted, deliveries = state.part(member, room, "" if reason == "left" else reason, time.time())
            why = clean_line(reason).strip()[:100]
            self.send(format_line("PART", channel(parted.room), *([why] if why else []),
                                  source=mask(member.nick, member.ident), trailing=bool(why)))
            self.deliver(deliveries)

    def on_topic(self, line: IrcLine) -> None:
        if not self.need(line, 1):
            return
        chan = line.params[0]
        if len(line.params) > 1:
            with self.hub.locked(self.handler.batch) as state:
                self.deliver(state.set_topic(self.member(), plain_text(line.params[1]), time.time(),
                                             without_hash(chan)))
            return
        room = self.hub.state.rooms.get(fold(without_hash(chan)))
        if room is None:
            self.reply(n.ERR_NOSUCHCHANNEL, chan, "No such channel")
        else:
            self.send(b"".join(topic_lines(self.session, room)))

    def on_mode(self, line: IrcLine) -> None:
        if not self.need(line, 1):
            return
        target = line.params[0]
        if not target.startswith("#"):
            self.user_mode(target, line.params[1] if len(line.params) > 1 else "")
            return
        room = self.hub.state.rooms.get(fold(without_hash(target)))
        if room is None:
            self.reply(n.ERR_NOSUCHCHANNEL, target, "No such channel")
            return
        if len(line.params) == 1:
            self.channel_modes_is(room)
            return
        self.channel_mode(room, line.params[1], line.params[2:])


#: Each command's method, looked up per line.  Unbound, in the class's module: a table
#: of bound methods on the door would make every door a reference cycle, kept with
#: whatever it holds until the cycle collector runs.
_COMMANDS: dict[str, Callable[[IrcDoor, IrcLine], None]] = {
    "JOIN": IrcDoor.on_join, "PART": IrcDoor.on_part, "PRIVMSG": Speaking.on_privmsg, "NOTICE": Speaking.on_privmsg,
    "TOPIC": IrcDoor.on_topic, "TAGMSG": Speaking.on_tagmsg, "NAMES": Asking.on_names, "WHO": Asking.on_who,
    "WHOIS": Asking.on_whois, "WHOWAS": Asking.on_whowas,
    "LIST": Asking.on_list, "AWAY": Person.on_away, "MODE": IrcDoor.on_mode, "KICK": IrcDoor.on_kick,
    "OPER": Person.on_oper, "INVITE": IrcDoor.on_invite, "KILL": IrcDoor.on_kill, "SETNAME": Person.on_setname,
    "NICK": Person.on_nick, "LUSERS": Asking.on_lusers, "MOTD": Asking.on_motd,
    "ISON": Asking.on_ison, "USERHOST": Asking.on_userhost, "VERSION": Asking.on_version, "TIME": Asking.on_time,
    "ADMIN": Asking.on_admin, "INFO": Asking.on_info, "STATS": Asking.on_stats,
    "MONITOR": Monitor.on_monitor, "BATCH": Multiline.on_batch,
    "CHATHISTORY": ChatHistory.on_chathistory,
}

#: The IRC door (registered by ``app.py``).
IRC_DOOR = Door("irc", irc_claims, lambda handler, first: IrcDoor(handler).run(first))
