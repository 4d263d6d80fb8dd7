"""Which names the web door answers to: a defence against DNS rebinding.  No I/O of
its own (the machine's addresses come from a function it is given).

A page on ``evil.example`` can make its name point at this server's address after the
browser loaded it (DNS rebinding).  Its requests then carry ``Host: evil.example`` and
``Origin: http://evil.example``, so "Origin equals Host" holds, and the page would
talk to the chat in the visitor's name.  What it cannot forge is the ``Host`` header:
so the door serves only the names it is meant to -- the machine's own addresses,
``localhost``, the machine's host name (and its ``.local`` mDNS name), and the names
the operator gives (``serve --web-host NAME``) -- and refuses any other before the page
or the WebSocket, with 421.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from websockets.datastructures import Headers

__all__ = ["HostCheck", "host_name"]

#: How often an unknown address in ``Host`` may make us read the interfaces again (an
#: address may have come since start: a new network, DHCP).
REFRESH_SECONDS = 10.0


def host_name(host: str) -> str:
    """The name or address in a ``Host`` value, without the port, lower case, without
    a final dot: ``Chat.Example.:8080`` -> ``chat.example``; ``[::1]:80`` -> ``::1``."""
    host = host.strip()
    if host.startswith("["):
        return host[1:].partition("]")[0].lower()
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.lower().rstrip(".")


class HostCheck:
    """Answers whether a request's headers name this server.

    ``names``: host names served (``localhost`` is always one); ``addresses``: reads
    the machine's addresses now (called again for an unknown address, at most every
    ``REFRESH_SECONDS`` by the ``clock`` given)."""

    def __init__(self, names: Iterable[str], addresses: Callable[[], Iterable[str]],
                 clock: Callable[[], float]) -> None:
        self.names = frozenset({"localhost", *(host_name(n) for n in names if n)})
        self._read_addresses = addresses
        self._clock = clock
        self._addresses = frozenset(self._read_addresses())  # (in ipaddress's normal form)
        self._read_at = clock()

    def refusal(self, headers: Headers) -> tuple[int, str] | None:
        """None if the request may be served; else the HTTP status and a one-line reason."""
        hosts = headers.get_all("Host")
        if len(hosts) != 1:
            return 400, "a request needs exactly one Host header"
        if len(headers.get_all("Origin")) > 1:
            return 400, "a request may have at most one Origin header"
        if not self.serves(host_name(hosts[0])):
            return 421, (f"this server does not answer to the name {host_name(hosts[0])[:100]!r}: open it by its "
                         "address, or start it with --web-host NAME")
        return None

    def serves(self, name: str) -> bool:
        if name in self.names:
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False  # a name nobody configured: perhaps rebound to us
        if address.is_loopback:
            return True
        text = str(address)
        if text in self._addresses:
            return True
        now = self._clock()
        if now - self._read_at >= REFRESH_SECONDS:
            self._addresses, self._read_at = frozenset(self._read_addresses()), now
            return text in self._addresses
        return False
