"""This machine's IPv4 addresses, to tell people what to type.  Sends no packets.

``ifaddr`` (a dependency of zeroconf, so always here) reads them the same way on Linux,
macOS and Windows; no ``fcntl``/``ioctl``, which Windows does not have.
"""

from __future__ import annotations

import ipaddress

import ifaddr

__all__ = ["local_ipv4_addresses"]


def local_ipv4_addresses(include_loopback: bool = False) -> list[str]:
    """IPv4 addresses of the machine's interfaces, loopback and link-local left out
    unless ``include_loopback``."""
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):  # IPv4 (IPv6 entries are tuples)
                found.append(ip.ip)
    unique = list(dict.fromkeys(found))
    if include_loopback:
        return unique
    return [a for a in unique if not ipaddress.ip_address(a).is_loopback and not ipaddress.ip_address(a).is_link_local]
