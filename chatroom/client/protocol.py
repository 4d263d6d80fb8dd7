"""One client's side of the conversation with a server, as one object.  No I/O.

:class:`ClientProtocol` holds everything a connection's life decides, the way h11's
``Connection`` does for HTTP: the hello to send (:meth:`handshake`, a
``ClientHandshake``), where we are and what we have seen (``ClientSession``), what the
user sent and the server has not settled with the pace of the server's rate limit
(``Outbound``), when a message the server could not take goes again, the keepalive
and the frames arriving.  Its methods take bytes, messages and ``now``, and return
bytes to write, events to report and why a connection is over.  It is not
thread-safe by itself: :class:`~chatroom.client.connection.ChatClient` -- the pump --
holds one lock around every call, reads and writes the socket, and reports the
events.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
from collections import deque
from dataclasses import dataclass

from chatroom.client.events import Outgoing, OutgoingChanged
from chatroom.client.handshake import ClientHandshake
from chatroom.client.keepalive import Keepalive
from chatroom.client.outbound import ELSEWHERE_CODES, Outbound, Pacer, Verdict
from chatroom.client.session import ClientSession, Emit, End, Request, SessionAction, Settle
from chatroom.errors import MessageError
from chatroom.protocol import Action, Bye, Direct, Join, Message, Ping, Say, Welcome, decode_message, encode_message
from chatroom.protocol.framing import Frame, FrameDecoder
from chatroom.text import fold

__all__ = ["ClientProtocol", "Why", "PACE_MARGIN", "RETRY_START"]

log = logging.getLogger("chatroom.client")

#: Messages that the server's rate limit does not count (PROTOCOL.md, "Rate limit").
_UNPACED = frozenset({"ping", "pong", "bye", "file_chunk", "file_ack", "file_done"})

#: Pace to this share of the server's advertised rate, and half its burst: the server
#: measures arrivals, which a network hiccup can bunch together.
PACE_MARGIN = 0.9
#: A message the server could not take now goes again after about this long, doubling
#: (with jitter) while it still cannot, up to ``RETRY_MAX``.
RETRY_START = 1.0
RETRY_MAX = 30.0


@dataclass(frozen=True)
class Why:
    """Why a connection ended, and whether trying again makes sense."""

    text: str
    fatal: bool = False
    move_on: bool = False  # try the next server of the list (this one cannot serve now)


class ClientProtocol:
    """A client's state across its connections (see the module's docstring).

    ``servers``: how many servers the client may use (several: a cluster's), so a
    server that cannot take messages now is left for the next at once.
    """

    def __init__(self, nick: str, room: str = "", *, ping_interval: float = 30.0, pong_timeout: float = 20.0,
                 servers: int = 1) -> None:
        self.session = ClientSession(nick, room)
        self.outbound = Outbound()
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.servers = servers
        #: Whether a connection is up (welcomed, not yet lost).
        self.connected = False
        #: The connection's keepalive (None between connections).
        self.keepalive: Keepalive | None = None
        self.decoder = FrameDecoder()
        #: Requests waiting for the socket, in order: (frame, paced?).
        self.requests: deque[tuple[bytes, bool]] = deque()
        #: A message the server could not take now goes again then (one timer for all).
        self.retry_at: float | None = None
        self.retry_wait = RETRY_START
        self.pings_answered = 0
        self.refused = 0  # messages the server refused (too long, muted...): never delivered
        self.settled = 0  # answers to our messages so far (any answer: the server works)
        #: The server we talk to, as the user named it (for what we say about it).
        self.where = ""
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(4).hex()

    # ------------------------------------------------------------------ the user's side

    def next_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    def say(self, text: str, room: str | None = None, *, action: bool = False) -> Outgoing:
        """Say (or act) ``text`` in ``room`` (default: the current room): kept until settled."""
        kind = Action if action else Say
        return self.chat(kind(id=self.next_id(), text=text, room=room or self.session.room or None))

    def direct(self, to: str, text: str) -> Outgoing:
        return self.chat(Direct(id=self.next_id(), to=to, text=text))

    def chat(self, msg: Say | Action | Direct) -> Outgoing:
        out = Outgoing(id=msg.id, message=msg)
        self.outbound.add(out)
        if self.connected:
            self.requests.append((encode_message(msg), True))
        return out

    def request(self, msg: Message) -> bool:
        """A request about the present (join, nick, who, files...): sent only while
        connected (False: dropped), unlike chat, which is kept and resent."""
        if not self.connected:
            return False
        if isinstance(msg, Join):
            self.session.joining(msg.room)  # what we say next goes there
        self.requests.append((encode_message(msg), msg.TYPE not in _UNPACED))
        return True

    def pace_time(self, messages: int) -> float:
        """Seconds the server's rate limit needs for ``messages`` more (0: no limit)."""
        rate = self.outbound.pacer.rate
        return messages / rate if rate > 0 else 0.0

    # ------------------------------------------------------------------ a connection's life

    def handshake(self, client: str, password: str | None, nonce: bytes | None, tls: bool) -> ClientHandshake:
        """The hello for the next connection: our session to resume, if any, and what
        we have seen of each room (``nonce``: fresh random bytes, with a password)."""
        session = self.session
        return ClientHandshake(
            nick=session.wanted_nick, room=session.room, client=client, password=password, nonce=nonce,
            resume_token=session.resume_token, last_seq=session.last_seq.get(fold(session.room)),
            seen=session.seen(), tls=tls)

    def welcomed(self, welcome: Welcome, decoder: FrameDecoder, now: float, where: str = "") -> list[SessionAction]:
        """A connection is up: its limits set the pace and the keepalive; what the
        session asks (a new session rejoins our rooms, sets our away text again) is
        returned to be carried out, and :meth:`resend` follows it."""
        actions = self.session.welcomed(welcome)
        if "ping_interval" in welcome.limits:
            self.ping_interval = max(1.0, min(self.ping_interval, welcome.limits["ping_interval"] - 1.0))
        per_minute = welcome.limits.get("rate_per_minute", 0)
        self.outbound.pacer = Pacer(per_minute / 60.0 * PACE_MARGIN, max(1.0, welcome.limits.get("burst", 1) / 2), now)
        self.requests.clear()
        self.retry_at, self.retry_wait = None, RETRY_START
        self.decoder, self.where = decoder, where
        self.keepalive = Keepalive(self.ping_interval, self.pong_timeout, now)
        self.connected = True
        return actions

    def resend(self) -> None:
        """Everything unsettled, in order, ahead of new requests: a message for a room
        goes after the join that puts us back in it."""
        self.requests.extend((encode_message(m), True) for m in self.outbound.to_resend())

    def lost(self) -> None:
        """The connection is over (its keepalive with it)."""
        self.connected = False

    def goodbye(self, reason: str) -> list[bytes]:
        """Everything queued (paced or not: what was said just before quitting goes
        too), then a bye: the frames to send."""
        out = [data for data, _paced in self.requests]
        self.requests.clear()
        return [*out, encode_message(Bye(reason=reason))]

    # ------------------------------------------------------------------ the network's side

    def data_received(self, data: bytes, now: float) -> tuple[list[Frame], list[Message]]:
        """Bytes from the server: the frames they complete and their messages (raises
        ``FrameError`` on garbage; a newer server may send what this client does not
        know: such a message is logged and skipped)."""
        if self.keepalive is not None:
            self.keepalive.heard(now)
        frames = self.decoder.feed(data)
        messages = []
        for frame in frames:
            try:
                messages.append(decode_message(frame))
            except MessageError as exc:
                log.warning("ignoring a message from the server: %s", exc)
        return frames, messages

    def receive(self, msg: Message, now: float) -> tuple[list[object], Why | None]:
        """A message from the server: the events to report, and why the connection is
        over, if it is."""
        if isinstance(msg, Ping):
            self.pings_answered += 1
        return self.carry_out(self.session.receive(msg), now)

    def carry_out(self, actions: list[SessionAction], now: float) -> tuple[list[object], Why | None]:
        """What the session decided: requests are queued and settlements applied here;
        the events to report and the end of the connection are returned."""
        events: list[object] = []
        why: Why | None = None
        for action in actions:
            if type(action) is Emit:
                events.append(action.event)
            elif type(action) is Request:
                self.requests.append((encode_message(action.message), action.message.TYPE not in _UNPACED))
            elif type(action) is Settle:
                event, ended = self.settle(action.id, action.code, action.error, now)
                events += event
                why = ended or why
            elif type(action) is End:
                why = Why(action.why, fatal=action.fatal, move_on=action.elsewhere and self.servers > 1)
        return events, why

    def settle(self, msg_id: str, code: str | None, error: str, now: float) -> tuple[list[object], Why | None]:
        """The server answered one of our messages (``code`` None: an ack)."""
        out, verdict = self.outbound.settle(msg_id, code, error)
        self.settled += 1
        if verdict is Verdict.ACKED:
            self.retry_wait = RETRY_START
        if out is None:
            return [], None
        if verdict is Verdict.RETRY:
            if code in ELSEWHERE_CODES and self.servers > 1:
                where = self.where or "the server"
                return [], Why(f"{where} cannot take messages now ({error}); trying another server", move_on=True)
            if self.retry_at is None:  # one timer for all of them: they go again together, in order
                self.retry_at = now + self.retry_wait * random.uniform(0.5, 1.0)
                self.retry_wait = min(self.retry_wait * 2, RETRY_MAX)
            return [], None
        if verdict is Verdict.REFUSED:
            self.refused += 1
        return [OutgoingChanged(out)], None

    def timers(self, now: float) -> float | Why:
        """Keepalive and resends: a silent server is pinged, one that does not answer
        is given up on, what the server could not take goes again once its pause is
        over.  Returns how long the pump may wait, or why the connection is over."""
        wait = self._resend_due(now)
        alive = self.keepalive
        if alive is None:
            return wait
        if alive.expired(now):
            return Why("the server stopped answering")
        if alive.ping_due(now):
            self.requests.appendleft((encode_message(Ping(token="client")), False))
            return 0.0
        return min(wait, alive.wait(now))

    def _resend_due(self, now: float) -> float:
        if self.retry_at is None:
            return 3600.0
        if now < self.retry_at:
            return self.retry_at - now
        self.retry_at = None
        self.requests.extend((encode_message(m), True) for m in self.outbound.retrying())
        return 0.0

    def data_to_send(self, now: float) -> tuple[list[bytes], float | None]:
        """The queued requests that may go now -- paced ones (counted by the server's
        rate limit) only as the pacer allows, in order; the rest at once -- and the
        seconds until the next paced one may go, if one waits."""
        if not self.requests:
            return [], None
        ready: list[bytes] = []
        waiting: deque[tuple[bytes, bool]] = deque()
        blocked = False
        pacer = self.outbound.pacer
        for data, paced in self.requests:
            if paced and (blocked or not pacer.take(now)):
                blocked = True
                waiting.append((data, paced))
            else:
                ready.append(data)
        self.requests = waiting
        return ready, pacer.wait(now) if blocked else None

    # ------------------------------------------------------------------ what it knows

    def lag_at(self, now: float) -> float | None:
        """How long the server took to answer our last keepalive ping -- or, while an
        answer is overdue, how long it has been so far.  None before the first one."""
        alive = self.keepalive
        if alive is None:
            return None
        waiting = alive.pending_lag(now)
        return waiting if waiting is not None and waiting > (alive.lag or 0.0) else alive.lag
