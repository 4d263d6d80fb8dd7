"""The files a browser gets: a fixed table of what ships in ``static/`` -- no path
from the request ever reaches the file system -- each with headers that keep the page
to itself: a strict Content-Security-Policy (no inline script or style, nothing from
another origin), no sniffing, no referrer.  No I/O beyond reading the package's files."""

from __future__ import annotations

from dataclasses import dataclass
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
}


@dataclass(frozen=True)
class Page:
    status: int
    reason: str
    content_type: str
    body: bytes


@cache
def _read(name: str) -> bytes:
    return resources.files("chatroom.web").joinpath("static", name).read_bytes()


def page_for(path: str) -> Page:
    """The page for a request's path (its query string ignored here: the page reads it)."""
    entry = _FILES.get(path.split("?", 1)[0])
    if entry is None:
        return Page(404, "Not Found", "text/plain; charset=utf-8", b"not found\n")
    name, content_type = entry
    return Page(200, "OK", content_type, _read(name))
