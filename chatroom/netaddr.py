"""This machine's IPv4 addresses, to tell people what to type.  Sends no packets."""

from __future__ import annotations

import fcntl
import socket
import struct

__all__ = ["local_ipv4_addresses"]

_SIOCGIFADDR = 0x8915  # Linux: get an interface's IPv4 address


def local_ipv4_addresses(include_loopback: bool = False) -> list[str]:
    """IPv4 addresses of the machine's interfaces (Linux ioctl; a name lookup elsewhere)."""
    found: list[str] = []
    try:
        names = [name for _, name in socket.if_nameindex()]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            for name in names:
                try:
                    packed = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
                except OSError:
                    continue  # no IPv4 address on this interface
                found.append(socket.inet_ntoa(packed[20:24]))
    except (OSError, AttributeError):
        try:
            found = socket.gethostbyname_ex(socket.gethostname())[2]
        except OSError:
            found = []
    unique = list(dict.fromkeys(found))
    if include_loopback:
        return unique
    return [a for a in unique if not a.startswith("127.")]
