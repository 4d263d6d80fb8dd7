"""What an admitted member may ask, carried out (a part of the handler)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chatroom.auth import secrets_match
from chatroom.errors import Refused
from chatroom.protocol import (
    AcceptFile,
    Ack,
    Action,
    Away,
    CancelFile,
    Chat,
    Direct,
    Error,
    ErrorCode,
    FetchHistory,
    FileAck,
    FileChunk,
    FileDone,
    Invite,
    Join,
    ListRooms,
    Message,
    ModAction,
    Moderate,
    Nick,
    Notice,
    OfferFile,
    Op,
    Part,
    RejectFile,
    Say,
    Search,
    SetMode,
    SetTopic,
    Typing,
    Who,
    Whois,
    encode_plain,
)
from chatroom.server.chat_path import Answer, Resent, SayResult, claimed
from chatroom.server.handler_base import HandlerBase
from chatroom.server.members import Member, owner_of
from chatroom.server.pace import BURST, burst_room, to_wait_for
from chatroom.server.roles import KeyNeeded
from chatroom.server.wire import Outgoing
from chatroom.text import clean_line, nick_key

if TYPE_CHECKING:
    pass

__all__ = ["Requests", "HANDLERS", "CHAT_TYPES"]


log = logging.getLogger("chatroom.server")


class Requests(HandlerBase):
    """The part of a connection's handler that carries out an admitted member's
    requests (chat, rooms, names, moderation, files).  A mixin of
    :class:`~chatroom.server.handler.ChatHandler`; :data:`HANDLERS` maps each
    message type to its method."""

    def on_say(self, msg: Say | Action) -> None:
        self.say_run([msg])  # (a message that came alone: see act_events)

    def say_run(self, msgs: list[Say | Action]) -> None:
        """Chat messages from one read, through the server's chat path (alone or in a
        cluster): each into its room, or acknowledged as a resend, or refused.  The
        acks are queued behind the messages, in one fan-out with them."""
        me = self.conn.me
        batch = self.batch
        failed: list[tuple[Say | Action, Exception]] = []

        def answer(results: Sequence[SayResult]) -> None:  # (under the hub lock: queues only)
            acks: list[Outgoing] = []
            for msg, result in zip(msgs, results, strict=True):
                if type(result) is Chat:  # said now (the usual case: nothing else is made for it)
                    ack = Ack(id=msg.id, ts=result.ts, seq=result.seq, room=result.room)
                    acks.append(Outgoing(ack, encode_plain(ack)))
                elif type(result) is Resent:
                    earlier = result.msg
                    acks.append(Outgoing.of(Ack(id=msg.id, ts=earlier.ts, seq=getattr(earlier, "seq", None),
                                                room=getattr(earlier, "room", None), duplicate=True)))
                elif isinstance(result, Refused):
                    batch.queue(me, Outgoing.of(Error(code=str(result.code), message=result.message, id=msg.id,
                                                      suggestion=result.suggestion)))
                elif isinstance(result, Exception):
                    failed.append((msg, result))  # (logged outside the lock)
            if acks:
                batch.defer_all(me, acks)

        try:
            self.say_paced(msgs, answer)
        except Exception as exc:  # noqa: BLE001 -- a bug costs these messages, not the connection
            for msg in msgs:
                self.internal_error(msg, exc)
            return
        for msg, error in failed:
            self.internal_error(msg, error)

    def say_paced(self, msgs: list[Say | Action], answer: Answer) -> None:
        """``say_many`` -- a burst (``pace.BURST`` messages or more) only once its room is
        not behind (``pace.to_wait_for``): alone, the look and the fan-out are one step
        under the hub lock; in a cluster, whose path does not hold it over Redis, the
        look comes just before."""
        chat, batch, member = self.server.chat, self.batch, self._member()
        while len(msgs) >= BURST and not self.server.stopped.is_set():
            with chat.run(batch):
                behind = to_wait_for(burst_room(batch.spoke_to, member), batch.own)
                if not behind:
                    chat.say_many(batch, member, msgs, time.time(), answer)
                    return
            self.wait_for(behind)
        chat.say_many(batch, member, msgs, time.time(), answer)

    def on_direct(self, msg: Direct) -> None:
        sent, _ = self.server.chat.direct(self.batch, self._member(), msg.to, msg.text, time.time(), msg.id)
        if isinstance(sent, Resent):
            self.send(Ack(id=msg.id, ts=sent.msg.ts, duplicate=True))
        else:
            self.send(Ack(id=msg.id, ts=sent.ts))

    def on_join(self, msg: Join) -> None:
        hub = self.server.hub
        self.server.chat.look_ahead(room=msg.room)
        key = (bytes.fromhex(msg.nonce), bytes.fromhex(msg.proof)) if msg.nonce and msg.proof else None
        if key is not None and not self.wait_turn("room key"):  # a guesser waits its turn, right or wrong
            return
        try:
            with hub.locked(self.batch) as state:
                joined, deliveries = state.join(self._member(), msg.room, time.time(), key=key)
                self.send_fitted(joined)  # we see the room before anything said in it ...
                hub.deliver(deliveries, self.batch)  # ... (the old room hears we left; the new one, that we came)
        except KeyNeeded as exc:  # the room's key: a challenge to prove it with (a wrong proof counts)
            if key is not None:
                self.server.auth_guard.failed(self.conn.ip, time.monotonic())
                log.warning("wrong room key from %s (%s)", self.conn.ip, self.describe(),
                            extra=self.about("wrong_secret", msg.room))
            self.send_error(exc.code, exc.message)
            if exc.challenge is not None:
                self.send(exc.challenge)
            return
        log.info("%s joined %s", self.describe(), joined.room, extra=self.about("joined", joined.room))

    def on_mode(self, msg: SetMode) -> None:
        hub = self.server.hub
        with hub.locked(self.batch) as state:
            if not msg.changes:
                self.send(state.room_modes(self._member(), msg.room, time.time(), bans=msg.bans))
                return
            deliveries, refused = state.set_modes(self._member(), msg.room, msg.changes, time.time())
            hub.deliver(deliveries, self.batch)
        for change, exc in refused:
            self.send_error(exc.code, f"{change.mode} {change.arg or ''}: {exc.message}".replace("  ", " "))

    def on_invite(self, msg: Invite) -> None:
        hub = self.server.hub
        with hub.locked(self.batch) as state:
            told, deliveries = state.invite(self._member(), msg.nick, msg.room, time.time())
            self.send(told)
            hub.deliver(deliveries, self.batch)

    def on_part(self, msg: Part) -> None:
        hub = self.server.hub
        with hub.locked(self.batch) as state:
            parted, deliveries = state.part(self._member(), msg.room, msg.reason, time.time())
            self.send(parted)
            hub.deliver(deliveries, self.batch)
        log.info("%s left %s", self.describe(), parted.room, extra=self.about("parted", parted.room))

    def on_nick(self, msg: Nick) -> None:
        hub = self.server.hub
        member = self._member()
        old = member.nick
        with claimed(self.server.chat, msg.nick, owner_of(member.key, member.token), replacing=old), \
                hub.locked(self.batch) as state:
            hub.deliver(state.rename(member, msg.nick, time.time()), self.batch)
        log.info("%s is now known as %s", old, member.nick, extra=self.about("renamed"))

    def on_topic(self, msg: SetTopic) -> None:
        hub = self.server.hub
        with hub.locked(self.batch) as state:
            hub.deliver(state.set_topic(self._member(), msg.topic, time.time(), msg.room), self.batch)

    def on_away(self, msg: Away) -> None:
        hub = self.server.hub
        with hub.locked(self.batch) as state:
            hub.deliver(state.set_away(self._member(), msg.message, time.time()), self.batch)

    def on_typing(self, msg: Typing) -> None:
        hub = self.server.hub
        with hub.locked(self.batch) as state:
            hub.deliver(state.typing(self._member(), msg.room, msg.state, time.time()), self.batch)

    def on_who(self, msg: Who) -> None:
        hub = self.server.hub
        with hub.locked(self.batch) as state:
            reply = state.who(self._member(), time.time(), msg.room)
        self.send_fitted(reply)

    def on_list_rooms(self, msg: ListRooms) -> None:
        hub = self.server.hub
        self.server.chat.look_ahead(rooms=True)
        with hub.locked(self.batch) as state:
            reply = state.list_rooms(self._member())
        self.send(reply)

    def on_fetch_history(self, msg: FetchHistory) -> None:
        hub = self.server.hub
        with hub.locked(self.batch) as state:
            reply = state.history(msg.room, msg.before, min(msg.limit, self.server.config.history_size), msg.after)
        self.send_fitted(reply, forward=msg.after is not None)

    def on_whois(self, msg: Whois) -> None:
        self.server.chat.look_ahead(nick=msg.nick)
        with self.server.hub.locked(self.batch) as state:
            reply = state.whois(self._member(), msg.nick, time.time())
        self.send(reply)

    def on_search(self, msg: Search) -> None:
        state, limit = self.server.hub.state, min(msg.limit, self.server.config.history_size)
        if state.store is None:  # the rooms' own history: read it under the lock
            with self.server.hub.locked(self.batch):
                found = state.search(msg.room, msg.text, limit, msg.before)
        else:  # the store has its own lock: a search (bounded) does not hold up the room
            found = state.search(msg.room, msg.text, limit, msg.before)
        self.send_fitted(found)

    def on_op(self, msg: Op) -> None:
        server = self.server
        member = self._member()
        right = self.gate("operator token", secrets_match(msg.token, server.op_token))
        if right is None:
            return
        if not right:
            self.send_error(ErrorCode.NOT_OPERATOR, "that is not the operator token")
            return
        with server.hub.locked(self.batch) as state:
            state.make_operator(member)
        log.info("%s is now an operator", self.describe(), extra=self.about("operator"))
        self.send(Notice(text="you are now an operator: /kick /ban /unban /mute /unmute /lock /unlock"))

    def on_moderate(self, msg: Moderate) -> None:
        if msg.action is ModAction.KICK and msg.room is not None:  # 1.5: out of one room, by its operator
            hub = self.server.hub
            with hub.locked(self.batch) as state:
                hub.deliver(state.room_kick(self._member(), msg.target, msg.room, msg.reason, time.time()),
                            self.batch)
            return
        text = self.server.moderate(self._member(), msg, self.batch)  # Refused (not an operator) is answered
        self.send(Notice(text=text))

    def on_offer_file(self, msg: OfferFile) -> None:
        hub, member = self.server.hub, self._member()
        with hub.locked(self.batch) as state:
            if msg.to is not None:
                target = state.nicks.get(nick_key(msg.to))
                if target is None:
                    raise Refused(ErrorCode.NO_SUCH_NICK, f"nobody is called {clean_line(msg.to)}")
                recipients: tuple[Member, ...] = (target,)
                room = None
            else:
                room = state.room_of(member, msg.room)
                recipients = room.everyone()
            hub.deliver(self.server.relay.offer(self.conn, member, msg, recipients, time.monotonic(), time.time(),
                                                room=room.name if room else None), self.batch)
        log.info("%s offers %r (%d bytes) to %s", self.describe(), clean_line(msg.name)[:80], msg.size,
                 clean_line(msg.to) if msg.to else "the room")

    def on_accept_file(self, msg: AcceptFile) -> None:
        hub, member = self.server.hub, self._member()
        with hub.locked(self.batch):
            hub.deliver(self.server.relay.accept(self.conn, member, msg.transfer, time.monotonic()), self.batch)

    def on_reject_file(self, msg: RejectFile) -> None:
        hub, member = self.server.hub, self._member()
        with hub.locked(self.batch):
            hub.deliver(self.server.relay.reject(self.conn, member, msg.transfer, time.monotonic()), self.batch)

    def on_cancel_file(self, msg: CancelFile) -> None:
        hub, member = self.server.hub, self._member()
        with hub.locked(self.batch):
            hub.deliver(self.server.relay.cancel(self.conn, member, msg.transfer, msg.reason, time.monotonic()),
                        self.batch)

    def on_file_flow(self, msg: FileChunk | FileAck | FileDone) -> None:
        """A chunk, an ack or a verdict: the relay passes it on.  Stale ones (the
        transfer ended while they travelled) are dropped, and charged to the rate
        limit so that nobody can spray them for free."""
        hub, relay = self.server.hub, self.server.relay
        with hub.locked(self.batch):
            if type(msg) is FileChunk:
                deliveries = relay.chunk(self.conn, msg, time.monotonic())
            elif type(msg) is FileAck:
                deliveries = relay.ack(self.conn, msg, time.monotonic())
            elif type(msg) is FileDone:
                deliveries = relay.done(self.conn, msg)
            else:
                raise AssertionError(f"not a file flow message: {msg.TYPE}")
            if deliveries:
                hub.deliver(deliveries, self.batch)
        if deliveries is None:
            refusal = self.conn.session.charge(msg, time.monotonic())
            if refusal is not None:
                self.act(refusal)

    def _member(self) -> Member:
        member = self.conn.member
        if member is None:  # dispatch only calls handlers for ACTIVE connections
            raise RuntimeError("no member for an active connection")
        return member


CHAT_TYPES = (Say, Action)


HANDLERS: dict[type[Message], Any] = {
    Say: Requests.on_say,
    Action: Requests.on_say,
    Direct: Requests.on_direct,
    Join: Requests.on_join,
    Part: Requests.on_part,
    Whois: Requests.on_whois,
    Search: Requests.on_search,
    Nick: Requests.on_nick,
    SetTopic: Requests.on_topic,
    Away: Requests.on_away,
    Typing: Requests.on_typing,
    Who: Requests.on_who,
    ListRooms: Requests.on_list_rooms,
    FetchHistory: Requests.on_fetch_history,
    Op: Requests.on_op,
    Moderate: Requests.on_moderate,
    SetMode: Requests.on_mode,
    Invite: Requests.on_invite,
    OfferFile: Requests.on_offer_file,
    AcceptFile: Requests.on_accept_file,
    RejectFile: Requests.on_reject_file,
    CancelFile: Requests.on_cancel_file,
    FileChunk: Requests.on_file_flow,
    FileAck: Requests.on_file_flow,
    FileDone: Requests.on_file_flow,
}
