"""How the server's log reads: text lines for people, or one JSON object per line for
the tools that collect logs (``serve --log-format json``).

A log call that concerns someone says so with :func:`about`::

    log.info("%s joined %s", who, room, extra=about("joined", peer=conn.address, room=room, nick=nick))

The text format shows the message as before; the JSON format writes
``{"time", "level", "event", "peer", "room", "nick", "message"}`` -- every key on every
line (``null`` when it does not apply), so that a query never has to guess the shape.
A line without :func:`about` has the event ``"log"``.

Hand-written rather than python-json-logger: the schema is fixed and small (seven keys),
and that library's default is to copy every extra attribute of a record into the line.
"""

from __future__ import annotations

import json
import logging
import time

__all__ = ["about", "JsonFormatter", "TEXT_FORMAT", "formatter"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def about(event: str, *, peer: object = None, room: str | None = None, nick: str | None = None) -> dict[str, object]:
    """The ``extra`` of a log call: what happened (a short name: ``joined``,
    ``dropped``...), and to whom."""
    return {"event": event, "peer": None if peer is None else str(peer), "room": room, "nick": nick}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in a message are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z"
        line: dict[str, object] = {
            "time": stamp,
            "level": record.levelname,
            "event": getattr(record, "event", "log"),
            "peer": getattr(record, "peer", None),
            "room": getattr(record, "room", None),
            "nick": getattr(record, "nick", None),
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter(kind: str) -> logging.Formatter:
    """``text`` or ``json``."""
    if kind == "json":
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT, "%H:%M:%S")
