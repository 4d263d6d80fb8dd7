"""Reaching a server: connect, TLS with the certificate pinned on first use, hello
and the handshake's pump until the welcome.  A part of
:class:`~chatroom.client.connection.ChatClient`; the handshake's decisions are
``handshake.py``'s (no I/O)."""

from __future__ import annotations

import logging
import os
import socket
import ssl
import time
from typing import TYPE_CHECKING

from chatroom import __version__
from chatroom.auth import NONCE_BYTES
from chatroom.client.events import Trusted
from chatroom.client.handshake import ClientHandshake, Done, NeedTls, Send
from chatroom.client.session import ClientSession

if TYPE_CHECKING:
    from chatroom.client.protocol import ClientProtocol
from chatroom.errors import ConnectionFailed, FrameError, MessageError
from chatroom.protocol import (
    FrameDecoder,
    Message,
    Notice,
    Welcome,
    decode_message,
    encode_message,
)
from chatroom.tls import KnownServers, client_context, fingerprint
from chatroom.trace import Tracer

__all__ = ["Dialing", "CertificateChanged", "NotTlsAnyMore", "parse_address"]

log = logging.getLogger("chatroom.client")


def parse_address(text: str | None, default_port: int) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``:PORT`` or ``[IPv6]:PORT`` -> (host, port)."""
    if not text:
        return "127.0.0.1", default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if port and not port.isdigit():
        raise ValueError(f"{port!r} is not a port number")
    number = int(port) if port else default_port
    if not 0 < number < 65536:
        raise ValueError(f"port {number} is out of range")
    return host or "127.0.0.1", number


class CertificateChanged(ConnectionFailed):
    """The server's TLS certificate is not the one we know: refuse, loudly."""


class NotTlsAnyMore(CertificateChanged):
    """A server we pinned over TLS answered without TLS: refuse the downgrade."""


class Dialing:
    """Opening a connection: a mixin of ``ChatClient``."""

    if TYPE_CHECKING:  # what the client (connection.py) holds and provides
        host: str
        port: int
        tls: bool
        pinned: str | None
        password: str | None
        connect_timeout: float
        known_servers: KnownServers | None
        session: ClientSession
        protocol: ClientProtocol
        tracer: Tracer | None
        _decoder: FrameDecoder

        def _emit(self, event: object) -> None: ...
        def _trace_in(self, size: int, frames: list) -> None: ...  # type: ignore[type-arg]

    def _open(self) -> tuple[socket.socket, Welcome, list[Message]]:
        """Connect, hello, and wait for welcome.  Returns messages that came after it."""
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except ConnectionRefusedError:
            raise ConnectionFailed(
                f"nothing is listening on {self.host}:{self.port} (is the server running? right port?)"
            ) from None
        except TimeoutError:
            raise ConnectionFailed(
                f"no answer from {self.host}:{self.port} within {self.connect_timeout:g} s "
                "(wrong address, or a firewall?)"
            ) from None
        except socket.gaierror:
            raise ConnectionFailed(f"cannot find a host called {self.host!r}") from None
        except OSError as exc:
            raise ConnectionFailed(f"cannot reach {self.host}:{self.port}: {exc.strerror or exc}") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pin = self._known_pin()
            if self.tls or pin is not None:  # a server met over TLS is never spoken to in plaintext
                sock = self._secure(sock, pin)
            # The decisions are the handshake's (client/handshake.py); this only pumps.
            handshake = self.protocol.handshake(
                f"chatroom {__version__}", self.password,
                os.urandom(NONCE_BYTES) if self.password is not None else None, self.tls)
            self._send_blocking(sock, handshake.hello)
            return self._pump_handshake(sock, handshake)
        except NeedTls:
            sock.close()
            self.tls = True  # the server insists on TLS: an upgrade, never a downgrade
            return self._open()
        except (FrameError, MessageError) as exc:
            sock.close()
            raise ConnectionFailed(f"{self.host}:{self.port} does not speak the chatroom protocol ({exc})") from None
        except BaseException:
            sock.close()
            raise

    def _pump_handshake(self, sock: socket.socket, handshake: ClientHandshake
                        ) -> tuple[socket.socket, Welcome, list[Message]]:
        """Read until the handshake is done (or refused), sending what it asks to."""
        decoder = FrameDecoder(max_header=1 << 20)
        deadline = time.monotonic() + self.connect_timeout + 5
        while True:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data = sock.recv(1 << 16)
            except TimeoutError:
                raise ConnectionFailed(f"{self.host}:{self.port} did not answer the handshake") from None
            if not data:
                raise ConnectionFailed(f"{self.host}:{self.port} closed the connection during the handshake")
            # The server is alive and talking (it may be making a throttled address wait).
            deadline = max(deadline, time.monotonic() + self.connect_timeout + 5)
            frames = decoder.feed(data)
            self._trace_in(len(data), frames)
            messages = []
            for frame in frames:  # a newer server may send what this client does not know: skip it
                try:
                    messages.append(decode_message(frame))
                except MessageError as exc:
                    log.warning("ignoring a message from the server: %s", exc)
            for i, msg in enumerate(messages):
                if isinstance(msg, Notice):
                    log.info("server notice during the handshake: %s", msg.text)
                step = handshake.receive(msg)
                if isinstance(step, Send):
                    self._send_blocking(sock, step.message)
                elif isinstance(step, Done):
                    if handshake.resume_refused:
                        log.info("resume refused; joined afresh")
                        self.session.resume_token = None
                    sock.setblocking(False)
                    self._decoder = decoder
                    return sock, step.welcome, messages[i + 1:]

    def _known_pin(self) -> str | None:
        """The fingerprint remembered for this server (trust on first use), if any."""
        if self.known_servers is None:
            return None
        return self.known_servers.lookup(f"{self.host}:{self.port}")

    def _secure(self, sock: socket.socket, known: str | None = None) -> socket.socket:
        """TLS handshake, then the certificate check: pinned, remembered, or new."""
        server = f"{self.host}:{self.port}"
        try:
            tls = client_context().wrap_socket(sock)
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            raise self._no_tls(server, known, exc) from None
        fp = fingerprint(tls.getpeercert(binary_form=True) or b"")
        expected = self.pinned or known
        first_time = False
        if expected is None and self.known_servers is not None:
            self.known_servers.remember(server, fp)
            expected, first_time = fp, True
        if expected is not None and fp != expected:
            tls.close()
            raise self._changed(server, expected, fp)
        self._emit(Trusted(server, fp, first_time))
        return tls

    def _no_tls(self, server: str, known: str | None, exc: Exception) -> ConnectionFailed:
        """TLS failed: a server that spoke TLS before may be downgraded on purpose."""
        if known is not None and not self.tls:
            where = self.known_servers.path if self.known_servers else "known_servers"
            return NotTlsAnyMore(
                f"refusing plaintext: {server} spoke TLS before (its certificate is pinned in {where}) but does "
                f"not now ({exc}). Someone may be downgrading you. If its host really turned TLS off, join "
                f"once with --forget-pin."
            )
        return ConnectionFailed(f"TLS with {server} failed ({exc}): is it a TLS server?")

    def _changed(self, server: str, expected: str, fp: str) -> CertificateChanged:
        """The certificate is not the one pinned or remembered: say what to check."""
        if self.pinned:
            return CertificateChanged(
                f"WARNING: {server} presented certificate {fp}, not the {expected} you gave with "
                "--fingerprint. Someone may be impersonating the room: check the fingerprint with its host."
            )
        where = self.known_servers.path if self.known_servers else "known_servers"
        return CertificateChanged(
            f"WARNING: THE CERTIFICATE OF {server} HAS CHANGED. Someone may be impersonating the room, or "
            f"its host made a new certificate. Expected {expected}, got {fp}. Ask the host for the "
            f"fingerprint 'chatroom serve --tls' printed; if it is {fp}, remove the line for {server} from "
            f"{where} (or join with --fingerprint {fp})."
        )

    def _send_blocking(self, sock: socket.socket, msg: Message) -> None:
        data = encode_message(msg)
        if self.tracer is not None:
            self.tracer.frame_out("-> server", data)
        sock.sendall(data)
