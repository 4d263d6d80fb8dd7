"""The server's settings: every limit, with the defaults the README documents."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from chatroom.protocol import (
    DEFAULT_PORT,
    MAX_BODY_SIZE,
    MAX_HEADER_SIZE,
    MAX_ROOMS,
)
from chatroom.server.outbox import DEFAULT_OUTBOX_LIMIT
from chatroom.server.relay import DEFAULT_MAX_FILE
from chatroom.server.session import SessionLimits

__all__ = ["ServerConfig"]


@dataclass
class ServerConfig:
    """Every server limit, with the defaults the README documents."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    name: str = ""  # shown to clients; the host name when empty
    max_clients: int = 1000
    # Connections from one address (0: no limit).  Enough for the demo's bots and a few
    # people behind one NAT; one address can no longer take every slot.
    max_per_address: int = 20
    max_text: int = 4000  # characters in one chat message (a pasted block is one)
    history_size: int = 100  # messages replayed on joining a room
    max_rooms: int = MAX_ROOMS  # rooms one member (protocol 1.3) may be in at once
    irc_port: int | None = None  # a second port for IRC clients that assume one (0: a free one)
    web_port: int | None = None  # a port for browsers, e.g. 80 or 8080 (0: a free one)
    # Host names browsers may use for the page besides the machine's own names and
    # addresses (a DNS name given to the server, say); any other is refused (rebinding).
    web_hosts: tuple[str, ...] = ()
    outbox_limit: int = DEFAULT_OUTBOX_LIMIT  # bytes queued for one client -> "too slow"
    handshake_timeout: float = 10.0
    # A frame begun and not finished this long after the last complete one: the peer is
    # trickling bytes to hold the connection ("too slow sending").  A 1 MiB file chunk
    # needs only ~35 KB/s to make it.
    frame_timeout: float = 30.0
    ping_interval: float = 30.0  # idle this long -> ping
    pong_timeout: float = 20.0  # no answer this long after a ping -> "timed out"
    rate: float = 4.0  # messages per second, sustained (0 disables rate limiting)
    burst: float = 20.0  # messages allowed at once
    max_strikes: int = 15  # refused messages in a row before "flooding" disconnects
    max_header: int = MAX_HEADER_SIZE
    max_body: int = MAX_BODY_SIZE
    shutdown_grace: float = 1.0  # seconds to let goodbyes drain on shutdown
    data_dir: str | None = None  # where history.sqlite3 lives; None keeps history in memory
    sync: str = "normal"  # SQLite synchronous: "normal" survives a crash, "full" a power cut
    resume_grace: float = 120.0  # seconds a dropped member keeps nick and room for a resume
    keep_messages: int | None = None  # retention: newest messages kept per room (None: all)
    keep_days: float | None = None  # retention: age limit (None: forever)
    retention_interval: float = 600.0  # seconds between retention passes (and forgetting old guessers)
    password: str | None = field(default=None, repr=False)  # the room password (None: open)
    tls_cert: str | None = None  # PEM certificate and key: TLS on (None: plain TCP)
    tls_key: str | None = None
    op_password: str | None = field(default=None, repr=False)  # operator token (None: a random one)
    max_file_size: int = DEFAULT_MAX_FILE  # bytes in one shared file (0 turns file sharing off)
    file_offer_ttl: float = 300.0  # seconds a file offer stays open to /accept
    file_stall_timeout: float = 60.0  # a transfer that makes no progress this long is ended
    # redis://HOST:PORT/DB: share rooms with the other servers there (None: alone).  May
    # hold a password: never shown (chatroom.redact).
    cluster: str | None = field(default=None, repr=False)
    cluster_beat: float = 2.0  # seconds between a cluster server's heartbeats
    cluster_replicas: int = 0  # a message is acknowledged once this many Redis replicas have it (WAIT)
    # Addresses or networks (192.0.2.0/24) that may read GET /metrics (empty: nobody).
    metrics_from: tuple[str, ...] = ()

    #: What a running server can take without a restart (``ChatServer.reconfigure``, SIGHUP).
    LIVE: ClassVar[tuple[str, ...]] = (
        "max_clients", "max_per_address", "max_text", "history_size", "outbox_limit", "handshake_timeout",
        "frame_timeout", "ping_interval", "pong_timeout", "rate", "burst", "resume_grace", "keep_messages",
        "keep_days", "retention_interval", "max_file_size", "metrics_from",
    )

    def session_limits(self) -> SessionLimits:
        return SessionLimits(max_header=self.max_header, max_body=self.max_body, rate=self.rate, burst=self.burst,
                             max_strikes=self.max_strikes, handshake_timeout=self.handshake_timeout,
                             frame_timeout=self.frame_timeout, ping_interval=self.ping_interval,
                             pong_timeout=self.pong_timeout)
