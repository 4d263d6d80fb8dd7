"""How a cluster reaches its Redis, from the URL ``serve --cluster`` was given.

* ``redis://[:PASSWORD@]HOST:PORT/DB`` -- one Redis.
* ``rediss://...`` -- the same over TLS.  A Redis with a certificate of a private
  authority: ``?ssl_ca_certs=/path/ca.pem`` (redis-py's own URL options apply).
* ``redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]`` -- the master
  that Redis Sentinel names for SERVICE (sentinels on port 26379 unless given), found
  again after a failover: a command that fails on the old master asks the sentinels
  anew.  The password is the master's.  ``rediss+sentinel://`` speaks TLS to the
  master and replicas (the sentinels themselves in plain text).

redis-py does all of it (``Redis.from_url``, ``redis.sentinel.Sentinel``); this only
reads the Sentinel form, which ``from_url`` does not know.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
from redis.sentinel import Sentinel

__all__ = ["redis_client", "SENTINEL_PORT"]

SENTINEL_PORT = 26379


def redis_client(url: str, *, socket_timeout: float, socket_connect_timeout: float) -> Any:
    """A client of the Redis (or Sentinel-managed master) at ``url``.  Raises
    ``ValueError`` for a URL it cannot read."""
    scheme, _, rest = url.partition("://")
    if scheme not in ("redis+sentinel", "rediss+sentinel"):
        return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout)
    hosts_part, _, path = rest.partition("/")
    password = None
    if "@" in hosts_part:
        userinfo, _, hosts_part = hosts_part.rpartition("@")
        password = unquote(userinfo.partition(":")[2] or userinfo) or None
    path, _, query = path.partition("?")
    service, _, db = path.strip("/").partition("/")
    if not hosts_part or not service:
        raise ValueError("a Sentinel URL names its sentinels and its service: "
                         "redis+sentinel://HOST:PORT[,HOST:PORT]/SERVICE[/DB]")
    sentinels = [_host_port(part) for part in hosts_part.split(",")]
    options: dict[str, Any] = dict(parse_qsl(query))
    if scheme == "rediss+sentinel":
        options["ssl"] = True
    sentinel = Sentinel(sentinels, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout)
    return sentinel.master_for(unquote(service), socket_timeout=socket_timeout,
                               socket_connect_timeout=socket_connect_timeout, db=int(db or 0), password=password,
                               **options)


def _host_port(text: str) -> tuple[str, int]:
    parts = urlsplit(f"//{text}")
    if not parts.hostname:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return parts.hostname, parts.port or SENTINEL_PORT
