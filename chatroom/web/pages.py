"""The files a browser gets: a fixed table of what ships in ``static/`` -- no path
from the request ever reaches the file system -- each with headers that keep the page
to itself: a strict Content-Security-Policy (no inline script or style, nothing from
another origin), no sniffing, no referrer.  No I/O beyond reading the package's files.

Each file is read and compressed once: a browser that accepts gzip gets it compressed,
and every answer carries an ``ETag``, so a reload asks ``If-None-Match`` and is
answered ``304 Not Modified`` with no body (``Cache-Control: no-cache`` means "ask
first", so a new version of chatroom is never served stale)."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

__all__ = ["Page", "page_for", "SECURITY_HEADERS", "CSP"]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "media-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-cache"),
)

#: URL path -> (file in static/, content type)
_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/framing.js": ("framing.js", "text/javascript; charset=utf-8"),
    "/session.js": ("session.js", "text/javascript; charset=utf-8"),
    "/render.js": ("render.js", "text/javascript; charset=utf-8"),
    "/files.js": ("files.js", "text/javascript; charset=utf-8"),
    "/sha256.js": ("sha256.js", "text/javascript; charset=utf-8"),
    "/input.js": ("input.js", "text/javascript; charset=utf-8"),
    "/roles.js": ("roles.js", "text/javascript; charset=utf-8"),
}


@dataclass(frozen=True)
class Page:
    status: int
    reason: str
    content_type: str
    body: bytes
    #: Headers of this answer besides the type, the length and the security ones.
    headers: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class _File:
    plain: bytes
    compressed: bytes
    tag: str  # the content's digest: the ETag's core


@cache
def _read(name: str) -> _File:
    data = resources.files("chatroom.web").joinpath("static", name).read_bytes()
    return _File(data, gzip.compress(data, 9, mtime=0), hashlib.sha256(data).hexdigest()[:20])


def page_for(path: str, accept_encoding: str = "", if_none_match: str = "") -> Page:
    """The page for a request's path (its query string ignored here: the page reads
    it), compressed if ``accept_encoding`` allows gzip, or ``304`` if the browser's
    copy (``if_none_match``) is current."""
    entry = _FILES.get(path.split("?", 1)[0])
    if entry is None:
        return Page(404, "Not Found", "text/plain; charset=utf-8", b"not found\n")
    name, content_type = entry
    file = _read(name)
    zipped = _accepts_gzip(accept_encoding)
    etag = f'"{file.tag}{"-gz" if zipped else ""}"'
    headers: tuple[tuple[str, str], ...] = (("ETag", etag), ("Vary", "Accept-Encoding"))
    if etag in (t.strip() for t in if_none_match.split(",")) or if_none_match.strip() == "*":
        return Page(304, "Not Modified", content_type, b"", headers)
    if zipped:
        return Page(200, "OK", content_type, file.compressed, (("Content-Encoding", "gzip"), *headers))
    return Page(200, "OK", content_type, file.plain, headers)


def _accepts_gzip(header: str) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (``gzip;q=0`` refuses it)."""
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            q = params.strip().lower().removeprefix("q=")
            try:
                return not params or float(q) > 0
            except ValueError:
                return True
    return False
