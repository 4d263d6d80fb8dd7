"""What a line says: the words for the server's messages and the client's own events --
the system lines of a window, the plain client's lines and the window logs', /files.
No I/O."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chatroom.client.events import FileTransfer, OutgoingChanged, Phase, TransferChanged, Trusted
from chatroom.client.room_roles import modes_text
from chatroom.protocol import (
    Chat,
    Crowd,
    Error,
    Found,
    Invited,
    Joined,
    Members,
    Notice,
    Parted,
    Presence,
    PresenceEvent,
    Private,
    RoomModesInfo,
    Rooms,
    Topic,
    User,
)
from chatroom.text import clean_line, clean_text, human_size

__all__ = ["plain_line", "files_text", "transfer_text", "crowd_text", "system_line", "clock"]


def clock(ts: float, now: float | None = None, fmt: str = "%H:%M") -> str:
    """``14:05`` today; ``Nov 30 14:05`` on another day (history from yesterday must
    not read as today).  ``fmt``: the time's strftime format (the config's ``timestamp``)."""
    when = time.localtime(ts)
    today = time.localtime(time.time() if now is None else now)
    if when[:3] == today[:3]:
        return time.strftime(fmt, when)
    return time.strftime(f"%b %d {fmt}", when)



def _names(names: tuple[str, ...], count: int) -> str:
    shown = ", ".join(clean_line(n) for n in names)
    return f"{shown} and {count - len(names):,} more" if count > len(names) else shown


def crowd_text(c: Crowd) -> str:
    """A large room's joins and leaves of the last moment, in one line."""
    parts = []
    if c.joined_count:
        parts.append(f"{c.joined_count:,} joined ({_names(c.joined, c.joined_count)})")
    if c.left_count:
        parts.append(f"{c.left_count:,} left ({_names(c.left, c.left_count)})")
    return "; ".join(parts) + f"; {c.member_count:,} here now"


def _presence_text(p: Presence) -> str:
    nick = clean_line(p.nick)
    if p.event is PresenceEvent.JOIN:
        return f"{nick} joined {clean_line(p.room)}"
    if p.event is PresenceEvent.LEAVE:
        return f"{nick} left ({clean_line(p.reason or 'quit')})"
    if p.event is PresenceEvent.NICK:
        return f"{nick} is now known as {clean_line(p.new_nick or '?')}"
    if p.event is PresenceEvent.AWAY:
        return f"{nick} is away: {clean_line(p.message or '')}"
    if p.event is PresenceEvent.BACK:
        return f"{nick} is back"
    return f"{nick} reconnected"


def transfer_text(event: TransferChanged) -> tuple[str, bool] | None:
    """The line a file event deserves (and whether it is bad news), or None."""
    t, what, nick, detail = event.transfer, event.what, clean_line(event.nick), clean_line(event.detail)
    name, size, peer = f"“{clean_line(t.name)}”", human_size(t.size), clean_line(t.peer)
    why = f": {detail}" if detail else ""
    if t.outgoing:
        lines = {
            "offered": f"offered {name} ({size}) to {peer}"
                       + (f" ({detail} people)" if peer == "the room" and detail else "")
                       + f" — /cancel {t.id} withdraws it",
            "accepted": f"{nick} accepted {name}",
            "rejected": f"{nick} declined {name}",
            "started": f"sending {name} to {detail}…",
            "received": f"{nick} received {name} (SHA-256 verified)",
            "cancelled": f"{nick} cancelled {name}{why}" if nick else f"cancelled {name}",
            "stopped": f"stopped sending {name}: nobody is receiving it now",
            "closed": f"your offer of {name} is closed (delivered to {t.delivered})",
            "failed": f"sending {name} failed{why}" if t.phase.over else f"{name} to {nick} failed{why}",
            "error": f"could not offer {name}{why}",
        }
        bad = what in ("failed", "error")
    else:
        lines = {
            "offered": f"{peer} offers {name} ({size}) {detail} — /accept {t.id} or /reject {t.id}",
            "accepted": f"accepted {name}; it will be saved in {detail}",
            "queued": f"{name}: {detail}",
            "saved": f"saved {name} (SHA-256 verified) as {clean_line(str(t.path))}",
            "rejected": f"declined {name}",
            "cancelled": f"{nick} cancelled {name}{why}" if nick else f"cancelled {name}",
            "expired": f"the offer of {name} from {peer} expired",
            "failed": f"{name} from {peer} failed{why}",
            "error": f"{name}{why}",
        }
        bad = what in ("failed", "error")
    text = lines.get(what)
    return (text, bad) if text is not None else None


def files_text(transfers: list[FileTransfer]) -> str:
    """The answer to /files."""
    if not transfers:
        return "no file offers or transfers yet (/send PATH offers one)"
    return "files:\n" + "\n".join(_transfer_row(t) for t in transfers)


def _transfer_row(t: FileTransfer) -> str:
    number = f"{t.id:>3}" if t.id is not None else "  -"
    arrow, who = ("↑", f"to {clean_line(t.peer)}") if t.outgoing else ("↓", f"from {clean_line(t.peer)}")
    return f"{number} {arrow} {clean_line(t.name)} ({human_size(t.size)}) {who} — {_transfer_state(t)}"


def _transfer_state(t: FileTransfer) -> str:
    state = t.phase.value
    if t.phase in (Phase.SENDING, Phase.RECEIVING):
        return f"{state} {t.percent:.0f}%"
    if t.outgoing and t.delivered:
        return f"{state}, delivered to {t.delivered}"
    if not t.outgoing and t.phase is Phase.OFFERED:
        return f"offered: /accept {t.id}"
    if t.phase is Phase.DONE and t.path is not None and not t.outgoing:
        return f"saved as {clean_line(str(t.path))}"
    if t.detail and t.phase.over:
        return f"{state} ({clean_line(t.detail)})"
    return state


def _trusted_text(event: Trusted) -> str:
    if event.first_time:
        return (f"TLS: first visit to {event.server}; its certificate {event.fingerprint} is now remembered. "
                "Compare it with the one the host's server printed.")
    return f"TLS: {event.server} is the server we know ({event.fingerprint})"


def plain_line(event: object, nick: str = "", *, several: bool = False) -> str | None:
    """One line of text for the plain client, or None for events it does not print.
    ``several``: we are in several rooms, so room messages say which."""
    if isinstance(event, Chat):
        return _plain_chat(event, several)
    if isinstance(event, Presence | Crowd | Topic):
        return f"[{clock(event.ts)}] -- {system_line(event)[0]}"  # type: ignore[index]
    if isinstance(event, Notice | User | Found | Members | Rooms | RoomModesInfo | Invited):
        return "-- " + system_line(event)[0]  # type: ignore[index]
    line = _PLAIN.get(type(event))
    return line(event) if line is not None else None


def _plain_transfer(event: TransferChanged) -> str | None:
    shown = transfer_text(event)
    return None if shown is None else ("-- error: " if shown[1] else "-- ") + shown[0]


def _plain_refused(event: OutgoingChanged) -> str | None:
    if event.outgoing.status != "refused":
        return None
    return f"-- not sent: {clean_line(event.outgoing.message.text)[:60]} ({clean_line(event.outgoing.error)})"


#: The plain client's lines for the rest of the events (``plain_line``).
_PLAIN: dict[type, Callable[[Any], str | None]] = {
    Joined: lambda e: None if e.resumed else f"-- you are in {clean_line(e.room)} ({e.member_count} here)",
    Parted: lambda e: f"-- {_parted_text(e)}",
    Private: lambda e: f"[{clock(e.ts)}] [{clean_line(e.nick)} → {clean_line(e.to)}] {clean_text(e.text)}",
    Error: lambda e: f"-- error: {clean_text(e.message)}" if e.id is None else None,
    Trusted: lambda e: f"-- {_trusted_text(e)}" if e.first_time else None,
    OutgoingChanged: _plain_refused,
    TransferChanged: _plain_transfer,
}


def _plain_chat(event: Chat, several: bool) -> str:
    text = clean_text(event.text).replace("\n", "\n    ")
    where = f"{clean_line(event.room)} " if several else ""
    if event.action:
        return f"[{clock(event.ts)}] {where}* {clean_line(event.nick)} {text}"
    return f"[{clock(event.ts)}] {where}<{clean_line(event.nick)}> {text}"


def system_line(event: object) -> tuple[str, float | None, bool] | None:
    """(text, time, error?) of a line from us about ``event``, or None to show nothing."""
    line = _SYSTEM.get(type(event))
    return line(event) if line is not None else None


def _rooms_text(event: Rooms) -> str:
    return "rooms: " + "; ".join(f"{clean_line(r.name)} ({r.members})" + (f": {clean_line(r.topic)}" if r.topic else "")
                                 for r in event.rooms)


#: Lines from us about events (``_system_line``).  Refusals of our own messages (an
#: error with an id) show on the message instead.
_SYSTEM: dict[type, Callable[[Any], tuple[str, float | None, bool] | None]] = {
    Presence: lambda e: (_presence_text(e), e.ts, False),
    Crowd: lambda e: (crowd_text(e), e.ts, False),
    Topic: lambda e: (f"{clean_line(e.nick)} set the topic: {clean_line(e.topic)}", e.ts, False),
    Members: lambda e: (_members_text(e), None, False),
    User: lambda e: (_user_text(e), None, False),
    Found: lambda e: (_found_text(e), None, False),
    Rooms: lambda e: (_rooms_text(e), None, False),
    Error: lambda e: (clean_text(e.message), None, True) if e.id is None else None,
    Notice: lambda e: (clean_text(e.text), None, False),
    RoomModesInfo: lambda e: (clean_text(modes_text(e)), e.ts or None, False),
    Invited: lambda e: (f"{clean_line(e.nick)} invited {clean_line(e.to)} into {clean_line(e.room)} "
                        f"(/join {clean_line(e.room)})", e.ts, False),
    Trusted: lambda e: (_trusted_text(e), None, False),
}


def _parted_text(p: Parted) -> str:
    if p.reason:
        return f"you are out of {clean_line(p.room)}: {clean_line(p.reason)}"
    return f"you left {clean_line(p.room)}"


def _user_text(u: User) -> str:
    rooms = ", ".join(clean_line(r) for r in u.rooms) or "no room"
    parts = [f"{clean_line(u.nick)}: in {rooms}"]
    if u.held:
        parts.append("connection lost, session kept for a reconnect")
    elif u.idle >= 60:
        parts.append(f"idle {_duration(u.idle)}")
    if u.away:
        parts.append(f"away: {clean_line(u.away)}")
    if u.op:
        parts.append("operator")
    if u.address:
        parts.append(f"from {clean_line(u.address)}")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    minutes = int(seconds) // 60
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def _found_text(f: Found) -> str:
    where = f"the history of {clean_line(f.room)}"
    if not f.messages:
        return f"nothing with {clean_line(f.text)!r} in {where}"
    more = "" if f.complete else " (the newest; there are older ones)"
    lines = [f"{len(f.messages)} message(s) with {clean_line(f.text)!r} in {where}{more}:"]
    for c in f.messages:
        text = clean_line(c.text.replace("\n", " "))
        lines.append(f"  {clock(c.ts)} " + (f"* {clean_line(c.nick)} {text}" if c.action
                                               else f"<{clean_line(c.nick)}> {text}"))
    return "\n".join(lines)


def _members_text(event: Members) -> str:
    names = ", ".join(
        (m.role or "") + clean_line(m.nick) + (" [server op]" if m.op else "")
        + (f" <{clean_line(m.address)}>" if m.address else "")  # the server shows operators addresses
        + (f" (away: {clean_line(m.away)})" if m.away else "")
        + (f" idle {int(m.idle)}s" if m.idle >= 60 else "")
        for m in event.members
    )
    more = event.member_count - len(event.members)
    return f"in {clean_line(event.room)}: {names}" + (f" and {more} more" if more > 0 else "")
