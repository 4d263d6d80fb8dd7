"""File transfers as the server relays them: offers, rounds and credit.  No I/O.

The server never stores a file.  Each chunk the sender sends (``file_chunk``) is
passed on at once as ``file_data`` to every receiver of the current *round*, and
forgotten.  What bounds memory is credit: the sender may only send bytes before
``credit`` = (the slowest receiver's ``file_ack``) + ``window``, so at most one window
of a transfer is ever in flight -- in outboxes, kernel buffers or the receivers' hands
-- whatever the sender's and the receivers' speeds.  A receiver that leaves, cancels
or stalls is taken out of the round and the credit moves on for the others.

A round sends the whole file, from byte 0, to everyone who accepted before it began
(or before its first chunk arrived).  Who accepts while a round runs waits for the
next one, so every receiver gets the file in order and can hash it as it comes.

Like ``room.py`` this module only decides: it returns :class:`~chatroom.server.room.Delivery`
lists for the server to fan out, and raises :class:`~chatroom.errors.Refused` for
requests the rules refuse.  Connections are opaque objects here (the server's
``Connection``; anything with a ``sink`` in tests); members are ``room.Member``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from chatroom.errors import Refused
from chatroom.protocol import (
    Error,
    ErrorCode,
    FileAck,
    FileChunk,
    FileCredit,
    FileData,
    FileDone,
    FileEvent,
    FileOffer,
    FileSend,
    FileUpdate,
    OfferFile,
)
from chatroom.server.members import Delivery, Member
from chatroom.text import clean_line, human_size, shorten

__all__ = ["Relay", "Transfer", "Round", "DEFAULT_MAX_FILE", "DEFAULT_WINDOW"]

DEFAULT_MAX_FILE = 100 * 1024 * 1024
#: Bytes of one transfer in flight beyond the slowest receiver.  Chat queued behind
#: them waits at most this much: 256 KiB is ~3 ms on gigabit, ~50 ms on slow Wi-Fi.
DEFAULT_WINDOW = 256 * 1024
#: How many offers one connection may have open, and how many files it may receive
#: at once (so its outbox never holds more than this many windows of file data).
MAX_OFFERS_PER_SENDER = 4
MAX_RECEIVING = 2
MAX_NAME = 255


@dataclass(eq=False)
class _Receiver:
    conn: Any
    member: Member
    since: float  # when it last made progress (monotonic)
    acked: int = 0  # bytes it has stored


@dataclass(eq=False)
class Round:
    """One pass of the file, from byte 0, to a fixed set of receivers."""

    number: int
    receivers: dict[Any, _Receiver]
    credit: int
    since: float  # last progress of the round as a whole (monotonic)
    sent: int = 0  # bytes the sender sent (and the server passed on) in this round
    started: bool = False  # a first chunk arrived (for an empty file, the only one)
    targets: tuple[Any, ...] = ()  # the receivers' connections, cached for the fan-out

    def retarget(self) -> None:
        self.targets = tuple(self.receivers)

    def slowest(self) -> int:
        return min((r.acked for r in self.receivers.values()), default=self.sent)


@dataclass(eq=False)
class Transfer:
    """One offer, from its sender's connection, for as long as it is open."""

    id: int
    sender: Any
    owner: Member
    name: str
    size: int
    sha256: str
    room: str | None
    to: str | None
    expires_at: float  # monotonic
    invited: set[Member]
    answered: set[Member] = field(default_factory=set)  # accepted or declined
    waiting: dict[Any, Member] = field(default_factory=dict)  # accepted, for the next round
    finishing: dict[Any, tuple[Member, float]] = field(default_factory=dict)  # all bytes in, verdict due
    round: Round | None = None
    rounds: int = 0
    delivered: int = 0  # receivers that confirmed the checksum
    expired: bool = False

    def involves(self, conn: Any) -> bool:
        return conn in self.waiting or conn in self.finishing or (
            self.round is not None and conn in self.round.receivers)


class Relay:
    """Every open file offer of one server.  Call under the server's hub lock."""

    def __init__(self, *, max_size: int = DEFAULT_MAX_FILE, window: int = DEFAULT_WINDOW,
                 offer_ttl: float = 300.0, stall_timeout: float = 60.0, max_transfers: int = 64) -> None:
        self.max_size = max_size
        self.window = window
        self.offer_ttl = offer_ttl
        self.stall_timeout = stall_timeout
        self.max_transfers = max_transfers
        self.transfers: dict[int, Transfer] = {}
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ offers and answers

    def offer(self, conn: Any, member: Member, msg: OfferFile, recipients: Iterable[Member],
              now: float, ts: float, room: str | None = None) -> list[Delivery]:
        """``member`` offers a file to ``recipients``: the members of ``room``, or one nick."""
        self._check_offer(conn, msg)
        invited = self._invited(member, recipients)
        name = shorten(clean_line(msg.name).strip(), MAX_NAME) or "file"
        room = None if msg.to else room
        transfer = Transfer(id=next(self._ids), sender=conn, owner=member, name=name, size=msg.size,
                            sha256=msg.sha256, room=room, to=next(iter(invited)).nick if msg.to else None,
                            expires_at=now + self.offer_ttl, invited=invited)
        self.transfers[transfer.id] = transfer
        offer = FileOffer(transfer=transfer.id, name=name, size=msg.size, sha256=msg.sha256, nick=member.nick,
                          ts=ts, expires_in=self.offer_ttl, room=room, to=transfer.to, recipients=len(invited))
        return [Delivery(tuple(invited), offer), Delivery((conn,), msgspec.structs.replace(offer, id=msg.id))]

    def _check_offer(self, conn: Any, msg: OfferFile) -> None:
        """The limits an offer must keep: files on, its size, offers open."""
        if self.max_size <= 0:
            raise Refused(ErrorCode.FILES_DISABLED, "file sharing is turned off on this server")
        if msg.size > self.max_size:
            raise Refused(ErrorCode.FILE_TOO_LARGE, f"that file is {human_size(msg.size)}; this server relays "
                                                    f"files up to {human_size(self.max_size)}")
        if sum(1 for t in self.transfers.values() if t.sender is conn) >= MAX_OFFERS_PER_SENDER:
            raise Refused(ErrorCode.TOO_MANY_TRANSFERS, f"you already have {MAX_OFFERS_PER_SENDER} offers open: "
                                                        "wait for them, or /cancel one")
        if len(self.transfers) >= self.max_transfers:
            raise Refused(ErrorCode.TOO_MANY_TRANSFERS, "the server is relaying too many files: try again later")

    @staticmethod
    def _invited(member: Member, recipients: Iterable[Member]) -> set[Member]:
        """Who gets the offer: the others -- in a cluster, those connected to this
        server, which relays the file -- or ``Refused`` if nobody is left."""
        everyone = {m for m in recipients if m is not member}
        invited = {m for m in everyone if m.server is None}
        if not invited:
            if everyone:
                raise Refused(ErrorCode.NO_RECIPIENTS, "files go only between people on the same server of this "
                                                       "cluster, and nobody else here is on yours")
            raise Refused(ErrorCode.NO_RECIPIENTS, "nobody else is here to send it to")
        return invited

    def accept(self, conn: Any, member: Member, transfer_id: int, now: float) -> list[Delivery]:
        t = self._offered_to(member, transfer_id)
        if t.expired or now >= t.expires_at:
            raise Refused(ErrorCode.NO_SUCH_TRANSFER, "that offer has expired")
        if t.involves(conn):
            return []  # already accepted: nothing new
        if sum(1 for other in self.transfers.values() if other.involves(conn)) >= MAX_RECEIVING:
            raise Refused(ErrorCode.TOO_MANY_TRANSFERS, f"you are already receiving {MAX_RECEIVING} files: accept "
                                                        "this one when one of them is done")
        t.answered.add(member)
        out = [Delivery((t.sender,), FileUpdate(transfer=t.id, event=FileEvent.ACCEPTED, nick=member.nick))]
        r = t.round
        if r is not None and not r.started:  # nothing passed on yet: it can still join this round
            r.receivers[conn] = _Receiver(conn, member, now)
            r.retarget()
        elif r is not None:
            t.waiting[conn] = member
            out.append(Delivery((conn,), FileUpdate(transfer=t.id, event=FileEvent.QUEUED, nick=t.owner.nick,
                                                    reason="it is being sent to others now; yours comes next")))
        else:
            t.waiting[conn] = member
            out += self._start_round(t, now)
        return out

    def reject(self, conn: Any, member: Member, transfer_id: int, now: float) -> list[Delivery]:
        t = self._offered_to(member, transfer_id)
        if t.involves(conn):
            return self.cancel(conn, member, transfer_id, "declined", now)
        if member in t.answered:
            return []
        t.answered.add(member)
        update = FileUpdate(transfer=t.id, event=FileEvent.REJECTED, nick=member.nick)
        return [Delivery((t.sender,), update), *self._maybe_close(t)]

    def cancel(self, conn: Any, member: Member, transfer_id: int, reason: str, now: float) -> list[Delivery]:
        """The sender cancels the transfer for everyone; a receiver for itself."""
        t = self.transfers.get(transfer_id)
        if t is None:
            raise Refused(ErrorCode.NO_SUCH_TRANSFER, f"there is no transfer {transfer_id} (it may have ended)")
        reason = clean_line(reason).strip()[:200]
        if conn is t.sender:
            return self._end(t, FileEvent.CANCELLED, reason or "cancelled by the sender")
        if t.involves(conn):
            return self._leave(t, conn, FileEvent.CANCELLED, reason or "cancelled", now)
        if member in t.invited:
            return self.reject(conn, member, transfer_id, now)
        raise Refused(ErrorCode.NO_SUCH_TRANSFER, f"there is no transfer {transfer_id} for you")

    # ------------------------------------------------------------------ the data path

    def chunk(self, conn: Any, msg: FileChunk, now: float) -> list[Delivery] | None:
        """Pass a chunk on.  None if it is stale (the transfer or round ended while it
        was on its way: normal) or not the sender's to send (the caller counts those)."""
        t = self.transfers.get(msg.transfer)
        if t is None or t.sender is not conn:
            return None
        r = t.round
        if r is None or r.number != msg.round:
            return None
        size = len(msg.data)
        if msg.offset != r.sent or msg.offset + size > min(r.credit, t.size) or (
                size == 0 and (t.size or r.started)):
            problem = (f"chunk at offset {msg.offset} ({size} bytes), expected offset {r.sent} within credit "
                       f"{min(r.credit, t.size)}")
            out = self._end(t, FileEvent.FAILED, "the sender broke the transfer protocol")
            out.append(Delivery((conn,), Error(code=ErrorCode.BAD_TRANSFER.value,
                                               message=f"transfer {t.id} failed: {problem}")))
            return out
        r.sent += size
        r.started = True
        r.since = now
        return [Delivery(r.targets, FileData(transfer=t.id, offset=msg.offset, data=msg.data))]

    def ack(self, conn: Any, msg: FileAck, now: float) -> list[Delivery] | None:
        """A receiver stored bytes up to ``offset``: maybe more credit for the sender.
        None if the ack is stale or impossible (the caller counts those)."""
        t = self.transfers.get(msg.transfer)
        r = t.round if t is not None else None
        receiver = r.receivers.get(conn) if r is not None else None
        if t is None or r is None or receiver is None:
            return None
        if not (receiver.acked < msg.offset <= r.sent or (t.size == 0 and r.started and msg.offset == 0)):
            return None
        before = r.slowest()
        receiver.acked = msg.offset
        receiver.since = now
        out: list[Delivery] = []
        if receiver.acked == t.size:
            del r.receivers[conn]
            r.retarget()
            t.finishing[conn] = (receiver.member, now)
        return out + self._progress(t, r, before, now)

    def done(self, conn: Any, msg: FileDone) -> list[Delivery] | None:
        """A receiver's verdict on the whole file: tell the sender."""
        t = self.transfers.get(msg.transfer)
        if t is None or conn not in t.finishing:
            return None
        member, _ = t.finishing.pop(conn)
        if msg.ok:
            t.delivered += 1
            update = FileUpdate(transfer=t.id, event=FileEvent.RECEIVED, nick=member.nick)
        else:
            update = FileUpdate(transfer=t.id, event=FileEvent.FAILED, nick=member.nick,
                                reason=clean_line(msg.reason).strip()[:200] or "the receiver discarded it")
        return [Delivery((t.sender,), update), *self._maybe_close(t)]

    # ------------------------------------------------------------------ endings

    def connection_closed(self, conn: Any, now: float) -> list[Delivery]:
        """``conn`` is gone: end what it was sending, take it out of what it received."""
        out: list[Delivery] = []
        for t in list(self.transfers.values()):
            if t.sender is conn:
                out += self._end(t, FileEvent.CANCELLED, f"{t.owner.nick} left", tell_sender=False)
            elif t.involves(conn):
                out += self._leave(t, conn, FileEvent.FAILED, "disconnected", now)
        return out

    def housekeeping(self, now: float) -> list[Delivery]:
        """Expire old offers; take stalled receivers out; cancel for stalled senders."""
        out: list[Delivery] = []
        for t in list(self.transfers.values()):
            out += self._expire(t, now)
            stalled, ended = self._stalled_round(t, now)
            out += stalled
            if ended:
                continue
            out += self._unconfirmed(t, now)
            if t.id in self.transfers:
                out += self._maybe_close(t)
        return out

    @staticmethod
    def _expire(t: Transfer, now: float) -> list[Delivery]:
        """An offer past its time: those who never answered it are told."""
        if t.expired or now < t.expires_at:
            return []
        t.expired = True
        silent = tuple(m for m in t.invited if m not in t.answered)
        if not silent:
            return []
        return [Delivery(silent, FileUpdate(transfer=t.id, event=FileEvent.EXPIRED, over=True, nick=t.owner.nick,
                                            reason="nobody can accept it any more"))]

    def _stalled_round(self, t: Transfer, now: float) -> tuple[list[Delivery], bool]:
        """A round that made no progress for too long: a sender that stopped ends the
        transfer (True: it ended); the slowest receivers that stopped are taken out."""
        r = t.round
        if r is None or now - r.since <= self.stall_timeout:
            return [], False
        if not r.started or r.sent < min(r.credit, t.size):
            return self._end(t, FileEvent.FAILED, "the sender stopped sending"), True
        out: list[Delivery] = []
        slowest = r.slowest()
        for conn, receiver in list(r.receivers.items()):
            if receiver.acked == slowest and now - receiver.since > self.stall_timeout:
                out += self._leave(t, conn, FileEvent.FAILED, "too slow: it stopped taking the file", now)
        return out, False

    def _unconfirmed(self, t: Transfer, now: float) -> list[Delivery]:
        """Receivers that got the whole file and never said whether it checked out."""
        out: list[Delivery] = []
        for conn, (member, since) in list(t.finishing.items()):
            if now - since > self.stall_timeout:
                del t.finishing[conn]
                out.append(Delivery((t.sender,), FileUpdate(transfer=t.id, event=FileEvent.FAILED, nick=member.nick,
                                                            reason="it never confirmed")))
        return out

    # ------------------------------------------------------------------ internals

    def _offered_to(self, member: Member, transfer_id: int) -> Transfer:
        t = self.transfers.get(transfer_id)
        if t is None or member not in t.invited:
            raise Refused(ErrorCode.NO_SUCH_TRANSFER,
                          f"there is no file offer {transfer_id} for you (it may have expired or been cancelled)")
        return t

    @staticmethod
    def _idle(t: Transfer) -> bool:
        return t.round is None and not t.waiting and not t.finishing

    def _maybe_close(self, t: Transfer) -> list[Delivery]:
        """An offer nobody can still answer, with nothing under way, is over: expired,
        or everyone it was offered to accepted (and was served) or declined."""
        if t.id not in self.transfers or not self._idle(t):
            return []
        if not (t.expired or t.invited <= t.answered):
            return []
        return self._end(t, FileEvent.CLOSED, f"delivered to {t.delivered}")

    def _start_round(self, t: Transfer, now: float) -> list[Delivery]:
        t.rounds += 1
        receivers = {conn: _Receiver(conn, member, now) for conn, member in t.waiting.items()}
        t.waiting.clear()
        r = Round(number=t.rounds, receivers=receivers, credit=min(self.window, t.size), since=now)
        r.retarget()
        t.round = r
        nicks = tuple(rec.member.nick for rec in receivers.values())
        return [Delivery((t.sender,), FileSend(transfer=t.id, round=r.number, credit=r.credit, receivers=nicks))]

    def _progress(self, t: Transfer, r: Round, before: int, now: float) -> list[Delivery]:
        """After an ack or a departure: more credit, or the round's end."""
        if not r.receivers:
            t.round = None
            if r.sent < t.size:  # everyone left before the end: the sender can stop
                out = [Delivery((t.sender,), FileUpdate(transfer=t.id, event=FileEvent.STOPPED,
                                                        reason="nobody is receiving it any more"))]
            else:
                out = []
            if t.waiting and not t.expired:
                out += self._start_round(t, now)
            return out + self._maybe_close(t)
        slowest = r.slowest()
        if slowest <= before:
            return []
        r.since = now
        credit = min(slowest + self.window, t.size)
        if credit <= r.credit:
            return []
        r.credit = credit
        return [Delivery((t.sender,), FileCredit(transfer=t.id, round=r.number, credit=credit))]

    def _leave(self, t: Transfer, conn: Any, event: FileEvent, reason: str, now: float) -> list[Delivery]:
        """Take ``conn`` out of transfer ``t`` (cancelled, failed, disconnected)."""
        member: Member | None = t.waiting.pop(conn, None)
        out: list[Delivery] = []
        r = t.round
        if member is None and conn in t.finishing:
            member, _ = t.finishing.pop(conn)
        if member is None and r is not None and conn in r.receivers:
            before = r.slowest()
            member = r.receivers.pop(conn).member
            r.retarget()
            out += self._progress(t, r, before, now)
        if member is None:
            return out
        update = FileUpdate(transfer=t.id, event=event, nick=member.nick, reason=reason)
        out.insert(0, Delivery((t.sender,), update))
        if event is FileEvent.FAILED and reason != "disconnected":
            out.insert(1, Delivery((conn,), FileUpdate(transfer=t.id, event=event, nick=member.nick, reason=reason,
                                                       over=True)))
        return out + self._maybe_close(t)

    def _end(self, t: Transfer, event: FileEvent, reason: str, *, tell_sender: bool = True) -> list[Delivery]:
        """The transfer is over for everyone: tell whoever still cares, and forget it."""
        self.transfers.pop(t.id, None)
        update = FileUpdate(transfer=t.id, event=event, nick=t.owner.nick, reason=reason, over=True)
        involved = list(t.waiting) + list(t.round.receivers if t.round else ())
        involved_members = set(t.waiting.values()) | {r.member for r in (t.round.receivers.values()
                                                                          if t.round else ())}
        out: list[Delivery] = []
        if involved:
            out.append(Delivery(tuple(involved), update))
        if event is not FileEvent.CLOSED:  # a closing offer has nobody waiting to answer
            silent = tuple(m for m in t.invited if m not in t.answered and m not in involved_members)
            if silent:
                out.append(Delivery(silent, update))
        if tell_sender:
            out.append(Delivery((t.sender,), update))
        t.round = None
        t.waiting.clear()
        t.finishing.clear()
        return out
