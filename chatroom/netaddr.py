"""This machine's addresses: to tell people what to type, and which names the web door
answers to.  Sends no packets.

``ifaddr`` (a dependency of zeroconf, so always here) reads them the same way on Linux,
macOS and Windows; no ``fcntl``/``ioctl``, which Windows does not have.
"""

from __future__ import annotations

import ipaddress

import ifaddr

__all__ = ["local_ipv4_addresses", "machine_addresses"]


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


def machine_addresses() -> list[str]:
    """Every address of the machine's interfaces, IPv4 and IPv6, loopback included, in
    ``ipaddress``'s normal form (an IPv6 zone left out)."""
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                found.append(str(ipaddress.ip_address(text.partition("%")[0])))
            except ValueError:
                continue
    return list(dict.fromkeys(found))
