"""The IRC door's messages: PRIVMSG and NOTICE (to a channel, a nick, or a channel's
operators), and TAGMSG.  A part of :class:`~chatroom.irc.door.IrcDoor`: the rules are
the core's chat path (``server/chat_path.py``) and its messages beside the history
(``server/side_messages.py``), the same for every door."""

from __future__ import annotations

import re
import time

from chatroom.errors import Refused
from chatroom.irc import numerics as n
from chatroom.irc.lines import MAX_LINE, IrcLine, client_tags, parse_line, plain_text
from chatroom.irc.part import DoorPart
from chatroom.irc.targets import MAX_TARGETS, chat_targets
from chatroom.protocol import Private
from chatroom.server.chat_path import SayItem
from chatroom.server.members import Delivery
from chatroom.server.wire import Outgoing
from chatroom.text import without_hash

__all__ = ["Speaking"]


#: A line that is only ``PRIVMSG #room :text``: no tags or source, one channel, a
#: text that is not CTCP (a busy client's every line).
_PLAIN_PRIVMSG = re.compile(rb"PRIVMSG (#[^ ,\x00]+) :([^\x00\x01][^\x00]*)")


def plain_privmsg(raw: bytes) -> tuple[str, str] | None:
    """The channel and text of a plain PRIVMSG (``_PLAIN_PRIVMSG``, valid UTF-8, within
    the line limit), which needs neither ``parse_line`` nor the command dispatch: what
    they would make of it is ``on_privmsg`` to one channel.  None for any other line."""
    if len(raw) > MAX_LINE - 2:
        return None
    match = _PLAIN_PRIVMSG.fullmatch(raw)
    if match is None:
        return None
    try:
        return match[1].decode("utf-8"), match[2].decode("utf-8")
    except UnicodeDecodeError:  # (the full path says so: UTF8ONLY's WARN)
        return None


class Speaking(DoorPart):
    """Talking, over IRC."""

    def say_plain(self, run: list[tuple[bytes, str, str]]) -> None:
        """A run of plain PRIVMSGs (raw line, channel, text: ``plain_privmsg``), said in
        one pass of the chat path -- as ``on_privmsg`` says each, refusals answered
        line by line as ``line()`` answers them."""
        if not run:
            return
        items = [SayItem(plain_text(text), False, None, room[1:]) for _, room, text in run]
        results = self.handler.server.chat.say_many(self.handler.batch, self.member(), items, time.time())
        for (raw, _, _), result in zip(run, results, strict=True):
            if isinstance(result, Exception):
                self.failed(parse_line(raw), result)

    def on_privmsg(self, line: IrcLine) -> None:
        if not line.params:
            self.reply(n.ERR_NORECIPIENT, f"No recipient given ({line.command})")
            return
        if len(line.params) < 2 or not line.params[1]:
            self.reply(n.ERR_NOTEXTTOSEND, "No text to send")
            return
        text, action = line.params[1], False
        if text.startswith("\x01"):
            body = text.strip("\x01")
            if not body.upper().startswith("ACTION "):
                return  # other CTCP (VERSION, PING...): not for people; dropped
            text, action = body[7:], True
        text = plain_text(text)
        tags = client_tags(line.tags)
        targets = chat_targets(line.params[0])
        if len(targets) > MAX_TARGETS:
            if line.command != "NOTICE":  # (a NOTICE is never answered)
                self.reply(n.ERR_TOOMANYTARGETS, targets[MAX_TARGETS],
                           f"Too many targets: at most {MAX_TARGETS} per line, nothing was sent")
            return
        for target in targets:
            if line.command == "NOTICE":  # a NOTICE is never answered, not even with an error
                try:
                    self.say(target, text, action, tags, notice=True)
                except Refused:
                    pass
            else:
                self.say(target, text, action, tags)

    def say(self, target: str, text: str, action: bool, tags: dict[str, str] | None, *, notice: bool = False) -> None:
        member, now, chat = self.member(), time.time(), self.handler.server.chat
        if not target.startswith("#"):  # (not a room message: no action of its own, so said as one)
            text = f"* {member.nick} {text}" if action else text
        if target[:2] in ("@#", "+#"):  # (STATUSMSG: to the channel's operators, and its voiced for +)
            with self.hub.locked(self.handler.batch) as state:
                msg, hearers = state.to_runners(member, target[2:], text, now, voiced=target[0] == "+", tags=tags,
                                                notice=notice)
                self.deliver([Delivery(hearers, msg)])
            return
        if target.startswith("#"):
            item = SayItem(text, action, None, target[1:], tags, notice)
            (result,) = chat.say_many(self.handler.batch, member, [item], now)
            if isinstance(result, Exception):  # (Refused, or a bug)
                raise result
            return
        sent, away = chat.direct(self.handler.batch, member, target, text, now, None, tags, notice)
        if away and isinstance(sent, Private) and not notice:  # (a NOTICE is never answered)
            self.reply(n.RPL_AWAY, sent.to, away)

    def on_tagmsg(self, line: IrcLine) -> None:
        """TAGMSG: ``+typing`` (and the draft's name for it) to a channel goes to the
        room's members who understand it, from every door; the other client tags go,
        as a message of tags alone, to those who read tags (``server/side_messages.py``)."""
        if not self.need(line, 1):
            return
        target = line.params[0]
        typing = line.tags.get("+typing") or line.tags.get("+draft/typing")
        now = time.time()
        with self.hub.locked(self.handler.batch) as state:
            if typing in ("active", "paused", "done") and target.startswith("#"):
                self.deliver(state.typing(self.member(), without_hash(target), typing, now))
            tags = client_tags(line.tags, typing=False)
            if tags:
                if target.startswith("#"):
                    msg, hearers = state.tag_only(self.member(), tags, now, room_name=without_hash(target))
                else:
                    msg, hearers = state.tag_only(self.member(), tags, now, to=target)
                if hearers:
                    self.handler.batch.queue(hearers, Outgoing(msg, b""))
