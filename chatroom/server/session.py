"""One connection's protocol state, as the server sees it.  No I/O, no clock.

Like h11's ``Connection`` or websockets' ``ServerProtocol``: bytes and ``now`` go in,
what to do comes out.  The handler in ``tcp.py`` is a pump around it::

    recv() -> ServerSession.receive_data(data, now) -> [Act | Admit | Checked | Reply]
              (after an Admit or Checked, the rest waits: ServerSession.release(now)
              gives its events once the pump has carried that out)
              Act(message):  legal now and within the limits: act on it (room, relay)
              Admit(hello):  a good hello: admit it to its room (or resume its session)
              Checked(...):  a password proof was checked: wait this address's turn
                             (guesser throttle), then carry out what it holds
              Reply(message): send this to the peer (a pong, an error, a challenge)
    every half second: ServerSession.tick(now) -> [Reply]  (keepalive, deadlines)

Decided here, once per connection: framing (a broken stream closes the connection),
message validation, which messages are legal in which phase (``LEGAL``), the rate
limits (chat, and pings on their own), the handshake (protocol version, the room
password's challenge and both proofs), frame and keepalive deadlines, and closing --
one :meth:`ServerSession.close` with a :class:`CloseReason` that knows whether the
session is kept for a resume.  Not decided here: what a message means for the room
(``room.py``), or how long a guessing address waits for its answer (``guard.py``: the
pump waits, since waiting is I/O).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from chatroom.auth import NONCE_BYTES, client_proof, proofs_match, server_proof
from chatroom.errors import FrameError, MessageError, TruncatedFrame
from chatroom.protocol import (
    MAX_ID_LENGTH,
    PROTOCOL_VERSION,
    AcceptFile,
    Action,
    Auth,
    Away,
    Bye,
    CancelFile,
    Challenge,
    Direct,
    Error,
    ErrorCode,
    FetchHistory,
    FileAck,
    FileChunk,
    FileDone,
    Frame,
    FrameDecoder,
    Hello,
    Invite,
    Join,
    ListRooms,
    Message,
    Moderate,
    Nick,
    OfferFile,
    Op,
    Part,
    Ping,
    Pong,
    RejectFile,
    Say,
    Search,
    SetMode,
    SetTopic,
    Typing,
    Who,
    Whois,
    claimed_id,
    decode_message,
    major_version,
)
from chatroom.server.ratelimit import RateLimiter, Verdict
from chatroom.text import clean_line, unencodable

__all__ = ["Phase", "CloseReason", "SessionLimits", "RoomKey", "Act", "Admit", "Checked", "Reply", "Event",
           "ServerSession", "LEGAL", "CLIENT_MESSAGES"]

#: Pings a client may send per second, and at once: far above any keepalive.
PING_RATE, PING_BURST = 2.0, 10.0

#: A goodbye's reason is shown to the room; a line, not an essay.
MAX_QUIT_REASON = 100


class Phase(enum.Enum):
    HANDSHAKE = "handshake"  # connected, no good hello yet (a password exchange may be under way)
    ACTIVE = "active"  # a member of a room
    CLOSED = "closed"  # closing: nothing more is read or acted on


class CloseReason(enum.Enum):
    """Why a connection ended: the one vocabulary for closing.  ``text`` is what the
    room is told (a detail may stand in for it: "kicked by ann: spam", "quit: lunch");
    ``keeps_session``: the member is held for a resume instead of leaving at once."""

    LOST = ("connection lost", True)  # EOF or a reset without a goodbye
    TIMED_OUT = ("timed out", True)  # no answer to a ping
    QUIT = ("quit", False)
    TOO_SLOW = ("too slow", False)  # its outbox overflowed
    TOO_SLOW_SENDING = ("too slow sending", False)  # a frame left incomplete too long
    NO_HELLO = ("no hello in time", False)
    FLOODING = ("flooding", False)
    PROTOCOL_ERROR = ("protocol error", False)  # the byte stream broke
    VERSION_MISMATCH = ("version mismatch", False)
    WRONG_PASSWORD = ("wrong password", False)
    BANNED = ("banned", False)
    KICKED = ("kicked", False)
    REFUSED = ("refused", False)  # server full, too many from the address, banned address
    REPLACED = ("replaced by a reconnect", False)  # a ghost: its session went on elsewhere
    SHUTDOWN = ("server shutting down", False)
    INTERNAL = ("internal error", False)

    def __init__(self, text: str, keeps_session: bool) -> None:
        self.text = text
        self.keeps_session = keeps_session


#: The messages a client may send once it is a member (besides keepalive and goodbye).
CLIENT_MESSAGES: frozenset[type[Message]] = frozenset({
    Say, Action, Direct, Join, Part, Nick, SetTopic, Away, Typing, Who, Whois, ListRooms, FetchHistory, Search, Op,
    Moderate, SetMode, Invite,
    OfferFile, AcceptFile, RejectFile, CancelFile, FileChunk, FileAck, FileDone,
})

#: What is legal in each phase; anything else is answered with an error (not fatal).
LEGAL: dict[Phase, frozenset[type[Message]]] = {
    Phase.HANDSHAKE: frozenset({Hello, Auth, Bye, Ping, Pong}),
    Phase.ACTIVE: CLIENT_MESSAGES | {Bye, Ping, Pong},
    Phase.CLOSED: frozenset(),
}

#: Not charged to the rate limit: keepalive and goodbye (a burst of chat must never make
#: a ping go unanswered: pings have a limiter of their own), and a file transfer's own
#: flow (paced by its credit; stale or impossible ones are charged by the handler).
UNCOUNTED = frozenset({Ping, Pong, Bye, FileChunk, FileAck, FileDone})
#: Charged to the ping limiter, not the chat's (``ServerSession.charge``).
_OWN_LIMIT: frozenset[type[Message]] = frozenset({Ping, Typing})
#: What the session answers itself (``ServerSession._own``); the rest is the handler's to act on.
_OWN: frozenset[type[Message]] = frozenset({Ping, Pong, Hello, Auth, Bye})


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """The server settings a session enforces (see ``ServerConfig``)."""

    max_header: int
    max_body: int
    rate: float
    burst: float
    max_strikes: int
    handshake_timeout: float
    frame_timeout: float
    ping_interval: float
    pong_timeout: float


@dataclass(frozen=True, slots=True)
class RoomKey:
    """The room password as the server holds it: ``key`` = KDF(password, ``salt``)."""

    key: bytes
    salt: bytes


class Act(msgspec.Struct, gc=False):
    """``message`` is legal now and within the limits: act on it.  (A msgspec struct,
    as Reply: one is made for every message received, and it is built in C.)"""

    message: Message


class Reply(msgspec.Struct, gc=False):
    """Send ``message`` to the peer (an error says ``fatal`` when the session closed)."""

    message: Message


@dataclass(slots=True)
class Admit:
    """``hello`` passed every check of the handshake: admit it to its room, or hand it
    its held session if it asks to resume.  ``proof``: the server's own password proof,
    for the welcome (None in an open room)."""

    hello: Hello
    proof: str | None = None


@dataclass(slots=True)
class Checked:
    """A password proof was checked.  Before carrying out ``then`` (an admission, or the
    fatal ``auth_failed``), the pump waits this address's turn if it has been guessing
    -- right and wrong answers alike, so the timing tells nothing; ``right`` says which
    it was (a wrong one counts against the address)."""

    then: Admit | Reply
    right: bool


Event = Act | Admit | Checked | Reply


class ServerSession:
    """The protocol state of one client connection.  Not thread-safe by itself: its
    reader thread feeds it, and the server's housekeeping thread calls :meth:`tick`
    and :meth:`close` (each a few attribute updates: a race costs at most a reason)."""

    def __init__(self, limits: SessionLimits, now: float, password: RoomKey | None = None,
                 random: Callable[[int], bytes] = os.urandom) -> None:
        self.limits = limits
        self.password = password
        self.random = random  # the server's nonces (injected: tests replay an exchange)
        # A hello waiting for its password proof: (hello, client nonce, server nonce).
        self.pending_auth: tuple[Hello, bytes, bytes] | None = None
        self.decoder = FrameDecoder(limits.max_header, limits.max_body)
        self.phase = Phase.HANDSHAKE
        self.limiter = RateLimiter(limits.rate, limits.burst, limits.max_strikes, now)
        # Pings on their own: a keepalive every few seconds always passes, a ping flood does not.
        self.ping_limiter = RateLimiter(PING_RATE if limits.rate else 0, PING_BURST, limits.max_strikes, now)
        self.connected_at = now
        self.last_heard = now
        self.ping_sent: float | None = None
        self.partial_since: float | None = None  # when the frame now being received began
        self.waited = 0.0  # seconds the server made this handshake wait (throttled passwords)
        self.paused_since: float | None = None  # the server is not reading it (keeping pace)
        self.close_reason: CloseReason | None = None
        self.close_detail = ""  # what the room is told instead of the reason's own text
        # Frames that came after a hello the pump has not answered yet (see ``release``).
        self.held: list[Frame] = []

    # ------------------------------------------------------------------ state

    @property
    def closed(self) -> bool:
        return self.phase is Phase.CLOSED

    @property
    def close_text(self) -> str:
        """How the room hears of this ending."""
        if self.close_reason is None:
            return CloseReason.LOST.text
        return self.close_detail or self.close_reason.text

    def close(self, reason: CloseReason, detail: str = "") -> bool:
        """The one way to close.  False if it was closed already (the first reason wins)."""
        if self.close_reason is not None:
            return False
        self.close_reason, self.close_detail = reason, detail
        self.phase = Phase.CLOSED
        return True

    def admitted(self) -> None:
        """The hello was accepted (welcome sent): the connection is a member now."""
        if self.phase is Phase.HANDSHAKE:
            self.phase = Phase.ACTIVE

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes, now: float) -> tuple[list[Frame], list[Event]]:
        """Bytes from the peer, as ``recv()`` returned them.  Returns the frames they
        completed (for the wire trace) and what to do, in order.  Nothing, once closed."""
        if self.phase is Phase.CLOSED:
            return [], []
        self.last_heard, self.ping_sent = now, None  # any byte is a sign of life
        try:
            frames = self.decoder.feed(data)
        except FrameError as exc:
            # Nothing after a broken frame can be trusted: the stream is over.
            self.close(CloseReason.PROTOCOL_ERROR)
            return [], [Reply(Error(code=exc.code, message=str(exc), fatal=True))]
        if not self.decoder.buffered:
            self.partial_since = None
        elif frames or self.partial_since is None:
            self.partial_since = now  # a new frame has begun: its clock starts
        if self.held:  # still waiting for a hello's answer: these wait behind it
            self.held.extend(frames)
            return frames, []
        return frames, self._judge(frames, now)

    def release(self, now: float) -> list[Event]:
        """What to do about the frames held behind a hello, now that the pump has
        carried out its ``Admit`` (or ``Checked``): call it until ``held`` is empty.

        A client may send its first messages right behind its hello, before the
        welcome.  Whether they are legal depends on how the hello ends (a nick can be
        taken), and only the pump knows that, so the frames after an admission wait:
        they are judged as if they had come after the answer, however the bytes were
        cut into reads."""
        frames, self.held = self.held, []
        return self._judge(frames, now)

    def _judge(self, frames: list[Frame], now: float) -> list[Event]:
        events: list[Event] = []
        closed = Phase.CLOSED
        if self.phase is Phase.HANDSHAKE:
            for i, frame in enumerate(frames):
                if self.phase is closed:
                    break
                event = self._message(frame, now)
                if event is not None:
                    events.append(event)
                    if type(event) is Admit or type(event) is Checked:
                        self.held = frames[i + 1:]  # judged once the pump has answered it
                        break
            return events
        for frame in frames:  # a member's frames (the hot path): no hello can be answered here
            if self.phase is closed:
                break  # e.g. a goodbye, or flooding, earlier in the same read
            event = self._message(frame, now)
            if event is not None:
                events.append(event)
        return events

    def receive_eof(self) -> str | None:
        """The peer closed.  Returns what was cut off, if a frame was (for the log)."""
        try:
            self.decoder.feed_eof()
        except TruncatedFrame as exc:
            return str(exc)
        return None

    def charge(self, message: Message, now: float) -> Event | None:
        """Charge ``message`` to the rate limit; an error to send if it is refused."""
        # Pings and typing notices have a limiter of their own: a burst of chat must
        # not silence them, nor they use up the chat's.
        limiter = self.ping_limiter if type(message) in _OWN_LIMIT else self.limiter
        verdict = limiter.check(now)
        if verdict is Verdict.ALLOW:
            return None
        if verdict is Verdict.SLOW_DOWN:
            return Reply(Error(code=ErrorCode.RATE_LIMITED.value, message="slow down: that message was not sent",
                               id=getattr(message, "id", None)))
        self.close(CloseReason.FLOODING)
        return Reply(Error(code=ErrorCode.FLOODING.value, message="disconnected for flooding", fatal=True))

    def _message(self, frame: Frame, now: float) -> Event | None:
        try:
            message = decode_message(frame)
        except MessageError as exc:
            return self._undecodable(frame, exc)
        kind = type(message)
        if kind not in UNCOUNTED or kind is Ping:
            refusal = self.charge(message, now)
            if refusal is not None:
                return refusal
        if kind not in LEGAL[self.phase]:
            return Reply(self._illegal(message))
        if kind in _OWN:
            return self._own(message)
        return Act(message)

    @staticmethod
    def _undecodable(frame: Frame, exc: MessageError) -> Event:
        msg_id = claimed_id(frame)
        if not (isinstance(msg_id, str) and 0 < len(msg_id) <= MAX_ID_LENGTH and unencodable(msg_id) is None):
            msg_id = None  # only an id we could have accepted is echoed back
        return Reply(Error(code=exc.code, message=str(exc), id=msg_id))

    def _own(self, message: Message) -> Event | None:
        """What the session answers itself: keepalive, the handshake, goodbye."""
        if isinstance(message, Ping):
            return Reply(Pong(token=message.token))
        if isinstance(message, Hello):
            return self._hello(message)
        if isinstance(message, Auth):
            return self._auth(message)
        if isinstance(message, Bye):
            # The others see the reason: "quit: lunch".  (A bare "quit" is what clients say by default.)
            reason = clean_line(message.reason).strip()[:MAX_QUIT_REASON]
            self.close(CloseReason.QUIT, f"quit: {reason}" if reason and reason != "quit" else "")
        return None  # a pong: any frame proves liveness; last_heard was updated on receipt

    # ------------------------------------------------------------------ handshake

    def _hello(self, hello: Hello) -> Event:
        if major_version(hello.version) != major_version(PROTOCOL_VERSION):
            self.close(CloseReason.VERSION_MISMATCH)
            return Reply(Error(code=ErrorCode.VERSION_MISMATCH.value, fatal=True,
                               message=f"this server speaks protocol {PROTOCOL_VERSION}, you sent "
                                       f"{clean_line(hello.version)[:20]}: upgrade the older side"))
        if self.password is None:
            return Admit(hello)
        # The room has a password, and a resume proves it too: the client first, then the
        # server (in the welcome, once the client's proof is right).
        if hello.nonce is None:
            return Reply(Error(code=ErrorCode.AUTH_REQUIRED.value, message="this room needs a password"))
        server_nonce = self.random(NONCE_BYTES)
        self.pending_auth = (hello, bytes.fromhex(hello.nonce), server_nonce)
        return Reply(Challenge(nonce=server_nonce.hex(), salt=self.password.salt.hex()))

    def _auth(self, auth: Auth) -> Event:
        if self.pending_auth is None or self.password is None:
            return Reply(Error(code=ErrorCode.NOT_READY.value, message="say hello first"))
        hello, client_nonce, server_nonce = self.pending_auth
        self.pending_auth = None  # one proof per challenge: no second guess on it
        key = self.password.key
        if proofs_match(bytes.fromhex(auth.proof), client_proof(key, server_nonce, client_nonce)):
            return Checked(Admit(hello, proof=server_proof(key, client_nonce, server_nonce).hex()), right=True)
        self.close(CloseReason.WRONG_PASSWORD)
        return Checked(Reply(Error(code=ErrorCode.AUTH_FAILED.value, message="wrong password", fatal=True)),
                       right=False)

    def _illegal(self, message: Message) -> Error:
        msg_id = getattr(message, "id", None)  # the refused message's, so its sender knows which
        if not isinstance(msg_id, str):
            msg_id = None
        if self.phase is Phase.HANDSHAKE:
            return Error(code=ErrorCode.NOT_READY.value, message=f"say hello first (got {message.TYPE})", id=msg_id)
        if type(message) in (Hello, Auth):
            return Error(code=ErrorCode.ALREADY_HELLO.value, message="you already said hello")
        return Error(code=ErrorCode.BAD_MESSAGE.value, message=f"{message.TYPE} is not a message a client sends",
                     id=msg_id)

    # ------------------------------------------------------------------ time

    def pause(self, now: float) -> None:
        """The server stops reading this connection for a while (its sender keeps pace
        with the room: ``pace.py``): the silence is the server's, so no deadline runs."""
        self.paused_since = now

    def unpause(self, now: float) -> None:
        """Reading again: every deadline moves on by the pause."""
        since, self.paused_since = self.paused_since, None
        if since is None:
            return
        paused = now - since
        self.last_heard += paused
        self.waited += paused
        if self.ping_sent is not None:
            self.ping_sent += paused
        if self.partial_since is not None:
            self.partial_since += paused

    def relimit(self, limits: SessionLimits, now: float) -> None:
        """New limits while connected (a server told to reload its settings).  A new rate
        limit starts with a full bucket; a race with the reader costs at most a token."""
        old, self.limits = self.limits, limits
        if (old.rate, old.burst, old.max_strikes) != (limits.rate, limits.burst, limits.max_strikes):
            self.limiter = RateLimiter(limits.rate, limits.burst, limits.max_strikes, now)
            self.ping_limiter = RateLimiter(PING_RATE if limits.rate else 0, PING_BURST, limits.max_strikes, now)

    def tick(self, now: float) -> list[Reply]:
        """Deadlines and keepalive (the server calls this about twice a second): a ping
        to send, or an error and a closed session."""
        limits = self.limits
        if self.closed or self.paused_since is not None:
            return []
        if self.partial_since is not None and now - self.partial_since > limits.frame_timeout:
            self.close(CloseReason.TOO_SLOW_SENDING)
            return [Reply(Error(code=ErrorCode.TIMED_OUT.value, fatal=True,
                                message=f"a frame took over {limits.frame_timeout:g} s to arrive: too slow sending"))]
        if self.phase is Phase.HANDSHAKE:
            if now - self.connected_at > limits.handshake_timeout + self.waited:
                self.close(CloseReason.NO_HELLO)
                return [Reply(Error(code=ErrorCode.TIMED_OUT.value, fatal=True,
                                    message=f"no hello within {limits.handshake_timeout:g} s"))]
            return []
        if self.ping_sent is not None:
            if now - self.ping_sent > limits.pong_timeout:
                self.close(CloseReason.TIMED_OUT)
                return [Reply(Error(code=ErrorCode.TIMED_OUT.value, message="no answer to ping", fatal=True))]
        elif now - self.last_heard > limits.ping_interval:
            self.ping_sent = now
            return [Reply(Ping(token="keepalive"))]
        return []
