"""What may be shown of a value that can hold a secret.  No I/O.

A Redis URL may carry a password (``redis://:PASSWORD@host:6379/0``); whatever is
printed or logged shows ``redis://:***@host:6379/0`` instead.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["MASK", "redacted_url"]

MASK = "***"


def redacted_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` -- in the user part (a user name
    given alone counts: Redis takes it as a password) and in a ``?password=`` query
    (redis-py reads that too); unchanged when it holds none."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return MASK  # not even a URL: show nothing of it
    if "@" in parts.netloc:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        parts = parts._replace(netloc=f"{user + ':' if colon else ''}{MASK}@{hostport}")
    if any(k.lower() == "password" for k, _ in query):
        parts = parts._replace(query=urlencode([(k, MASK if k.lower() == "password" else v) for k, v in query],
                                               safe="*"))
    return urlunsplit(parts)
