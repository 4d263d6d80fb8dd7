"""Finding rooms on the LAN without typing addresses: mDNS / DNS-SD via ``zeroconf``.

A server listening beyond loopback announces each of its rooms as a
``_chatroom._tcp`` service (what Bonjour and Avahi speak, so ``avahi-browse -rt
_chatroom._tcp`` sees them too).  The TXT record carries the protocol version,
whether a password is needed, the TLS fingerprint and how many people are in.  None of
it is authenticated: it tells a client where to try, never whom to trust.

The mapping between rooms and records (:func:`room_txt`, :func:`ad_from_record`) and
choosing among rooms (:func:`describe`, :func:`choose`) need no network; the
:class:`Announcer` and :func:`browse` do.  Read ``../shared/notes/discovery.md``:
never run them in the machine's own network namespace in tests.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (zeroconf is imported where it is used: a server on 127.0.0.1 never needs it)
    from zeroconf import ServiceInfo, Zeroconf

from chatroom.protocol import PROTOCOL_VERSION
from chatroom.text import clean_line, room_problem

__all__ = ["SERVICE_TYPE", "RoomAd", "room_txt", "ad_from_record", "instance_name", "describe", "choose",
           "one_per_room", "should_announce", "Announcer", "browse"]

log = logging.getLogger("chatroom.discovery")

SERVICE_TYPE = "_chatroom._tcp.local."
#: DNS labels are at most 63 bytes; the room name is the service instance label.
MAX_LABEL = 63
#: How long a browse listens by default (rooms already up answer in well under 0.5 s).
BROWSE_SECONDS = 2.0


@dataclass(frozen=True)
class RoomAd:
    """One room announced on the LAN."""

    room: str
    host: str  # the SRV target, e.g. "laptop-3f2a.local."
    addresses: tuple[str, ...]
    port: int
    version: str = PROTOCOL_VERSION
    password: bool = False
    tls: str | None = None  # the announced TLS fingerprint (a hint, not proof)
    members: int | None = None
    cluster: str | None = None  # servers of one cluster (chatroom serve --cluster) share rooms


def instance_name(room: str) -> str:
    """The DNS-SD instance name for ``room`` (cut to 63 bytes of UTF-8)."""
    label = room.encode("utf-8")[:MAX_LABEL].decode("utf-8", "ignore")
    return f"{label}.{SERVICE_TYPE}"


def room_txt(room: str, *, password: bool, tls: str | None, members: int | None,
             cluster: str | None = None) -> dict[str, str]:
    """The TXT record of a room: short keys, small values (keys are at most 9 chars).
    ``room`` is the server's own name for it (the instance name may have been changed
    to resolve a conflict on the LAN)."""
    txt = {"v": PROTOCOL_VERSION, "room": room, "pw": "1" if password else "0"}
    if tls:
        txt["tls"] = tls
    if members is not None:
        txt["n"] = str(members)
    if cluster:
        txt["cl"] = cluster
    return txt


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def ad_from_record(name: str, host: str, addresses: Iterable[str], port: int,
                   properties: Mapping[bytes, bytes | None] | Mapping[str, str]) -> RoomAd | None:
    """A :class:`RoomAd` from what a browse resolved, or None if it is not one of ours."""
    if not name.endswith("." + SERVICE_TYPE) or not 0 < port < 65536:
        return None
    props = {_text(k): _text(v) for k, v in properties.items()}
    version = props.get("v", "")
    if version.partition(".")[0] != PROTOCOL_VERSION.partition(".")[0]:
        return None  # another major version: we could not talk to it anyway
    room = clean_line(props.get("room") or name[: -len(SERVICE_TYPE) - 1])
    if room_problem(room):
        return None
    members = props.get("n", "")
    return RoomAd(
        room=room,
        host=clean_line(host),
        addresses=tuple(dict.fromkeys(addresses)),
        port=port,
        version=version,
        password=props.get("pw") == "1",
        tls=clean_line(props["tls"]) if props.get("tls") else None,
        members=int(members) if members.isdigit() else None,
        cluster=clean_line(props["cl"])[:64] if props.get("cl") else None,
    )


def should_announce(host: str) -> bool:
    """A server bound to loopback never announces: nobody else could join it."""
    return not (host.startswith("127.") or host in ("localhost", "::1"))


def describe(ads: list[RoomAd]) -> list[str]:
    """A table of rooms: room, host, address:port, people, password, TLS."""
    rows = [("", "room", "host", "address", "people", "lock", "tls")]
    for i, ad in enumerate(ads, 1):
        rows.append((str(i), ad.room, ad.host.removesuffix(".local.").removesuffix("."),
                     f"{ad.addresses[0] if ad.addresses else '?'}:{ad.port}",
                     "?" if ad.members is None else str(ad.members), "yes" if ad.password else "",
                     "yes" if ad.tls else ""))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def one_per_room(ads: list[RoomAd]) -> list[RoomAd]:
    """The rooms to offer: the servers of one cluster announce the same room each;
    it is listed once (the first server heard)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for ad in ads:
        if ad.cluster:
            key = (ad.cluster, ad.room.casefold())
            if key in seen:
                continue
            seen.add(key)
        out.append(ad)
    return out


def choose(ads: list[RoomAd], answer: str) -> RoomAd | None:
    """The room a user picked by number or name, or None."""
    answer = answer.strip()
    if answer.isdigit() and 1 <= int(answer) <= len(ads):
        return ads[int(answer) - 1]
    matches = [ad for ad in ads if ad.room.casefold() == answer.casefold()]
    return matches[0] if len(matches) == 1 else None


# --------------------------------------------------------------------------- the network part


class Announcer:
    """Keeps the LAN told about this server's rooms, from its own thread.

    ``rooms()`` returns (name, members) pairs; it is polled every few seconds and
    rooms are registered and withdrawn as they come and go.  :meth:`stop` sends the
    goodbyes.  ``on_event(text)`` hears what happened (announced, renamed, failed).
    """

    POLL = 3.0

    def __init__(self, addresses: list[str], port: int, rooms: Callable[[], list[tuple[str, int]]], *,
                 password: bool, tls: str | None, on_event: Callable[[str], None] = lambda text: None,
                 cluster: str | None = None) -> None:
        self.addresses = addresses
        self.cluster = cluster
        self.port = port
        self.rooms = rooms
        self.password = password
        self.tls = tls
        self.on_event = on_event
        # A unique SRV target: two servers sharing one host name merged their addresses.
        self.host = f"{socket.gethostname().split('.')[0]}-{os.urandom(2).hex()}.local."
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chatroom-announce", daemon=True)
        self._registered: dict[str, ServiceInfo] = {}  # room name -> what we announce for it
        self._counts: dict[str, int] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _info(self, room: str, members: int, name: str | None = None) -> ServiceInfo:
        from zeroconf import ServiceInfo

        return ServiceInfo(SERVICE_TYPE, name or instance_name(room), port=self.port, server=self.host,
                           parsed_addresses=self.addresses,
                           properties=room_txt(room, password=self.password, tls=self.tls, members=members,
                                               cluster=self.cluster))

    def _free_name(self, zc: Zeroconf, room: str) -> str:
        """The first of lobby, lobby-2, lobby-3... that nobody on the LAN answers for.
        (zeroconf's own check trusts its cache, which knows nothing of rooms that
        were announced before we started listening.)"""
        from zeroconf import DNSQuestionType

        for n in range(1, 20):
            label = room if n == 1 else f"{room}-{n}"
            name = instance_name(label)
            # QM (multicast) questions: answers arrive in ~0.1 s (notes/discovery.md)
            if zc.get_service_info(SERVICE_TYPE, name, timeout=1500, question_type=DNSQuestionType.QM) is None:
                return name
        return instance_name(f"{room}-{os.urandom(2).hex()}")

    def _run(self) -> None:
        try:
            from zeroconf import IPVersion, Zeroconf

            zc = Zeroconf(interfaces=self.addresses, ip_version=IPVersion.V4Only)
        # zeroconf raises what its OS gives it; no multicast, no interface...: chat goes on without it
        except Exception as exc:  # noqa: BLE001
            log.warning("LAN discovery is off: %s", exc)
            self.on_event(f"could not announce on the LAN ({exc}); people can still join by address")
            return
        try:
            while True:
                self._sync(zc)
                if self._stop.wait(self.POLL):
                    break
        finally:
            for info in self._registered.values():
                try:
                    zc.unregister_service(info)  # the goodbye packets
                except Exception as exc:  # noqa: BLE001 -- a goodbye that fails must not stop the others
                    log.info("goodbye failed: %s", exc)
            zc.close()

    def _sync(self, zc: Zeroconf) -> None:
        wanted = dict(self.rooms())
        for room in [r for r in self._registered if r not in wanted]:
            zc.unregister_service(self._registered.pop(room))
            self._counts.pop(room, None)
        for room, members in wanted.items():
            if self._stop.is_set():
                return
            info = self._registered.get(room)
            try:
                if info is None:
                    info = self._info(room, members, name=self._free_name(zc, room))
                    zc.register_service(info, allow_name_change=True)  # probes: ~1.7 s
                    self._registered[room] = info
                    self._counts[room] = members
                    announced = info.name[: -len(SERVICE_TYPE) - 1]
                    if announced != instance_name(room)[: -len(SERVICE_TYPE) - 1]:
                        self.on_event(f"room {room} is announced as {announced!r}: that name was taken on the LAN")
                    else:
                        self.on_event(f"announced room {room} on the LAN")
                elif self._counts.get(room) != members:
                    new = self._info(room, members, name=info.name)
                    zc.update_service(new)
                    self._registered[room] = new
                    self._counts[room] = members
            except Exception as exc:  # noqa: BLE001 -- one room's announcement must not stop the others
                log.warning("could not announce %s: %s", room, exc)


def browse(seconds: float = BROWSE_SECONDS, interfaces: list[str] | None = None) -> list[RoomAd]:
    """Rooms announced on the LAN within ``seconds``.  Raises OSError if mDNS cannot run."""
    from zeroconf import DNSQuestionType, InterfaceChoice, IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

    found: list[str] = []
    lock = threading.Lock()

    def on_change(zeroconf: object, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        # Runs on zeroconf's loop: only note the name here, resolve afterwards.
        if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
            with lock:
                if name not in found:
                    found.append(name)

    zc = Zeroconf(interfaces=interfaces or InterfaceChoice.All, ip_version=IPVersion.V4Only)
    try:
        browser = ServiceBrowser(zc, SERVICE_TYPE, handlers=[on_change], question_type=DNSQuestionType.QM)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)
        browser.cancel()
        ads = []
        with lock:
            names = list(found)
        for name in names:
            info = zc.get_service_info(SERVICE_TYPE, name, timeout=1500)
            if info is None or info.port is None:
                continue
            ad = ad_from_record(name, info.server or "", info.parsed_addresses(IPVersion.V4Only), info.port,
                                info.properties or {})
            if ad is not None:
                ads.append(ad)
        return sorted(ads, key=lambda a: (a.room.casefold(), a.host))
    finally:
        zc.close()
