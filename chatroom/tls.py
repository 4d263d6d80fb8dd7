"""TLS: the server's certificate, fingerprints, trust on first use, and the bridge.

Server side: ``chatroom serve --tls`` uses ``--cert/--key`` or creates a self-signed
certificate once (``cryptography``) and keeps it in the data directory, so its
fingerprint stays the same across restarts.  Each TLS connection gets one
:class:`TlsBridge` thread that owns the ``SSLSocket`` -- the handshake and both
directions -- and relays plaintext through a socket pair to the ordinary chat
handler.  OpenSSL objects must not be driven by two threads at once, and the chat
server writes from any thread; the bridge keeps both true.  Backpressure is kept: if
the peer stops reading, the bridge stops reading the pair, and the chat server's
bounded outbox overflows as for any slow client.

Client side: the server's certificate is not signed by anyone we trust; like SSH we
pin its SHA-256 fingerprint, the first time (trust on first use, remembered in
``$XDG_CONFIG_HOME/chatroom/known_servers``) or given up front (``--fingerprint``), and
refuse a changed one loudly.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import logging
import os
import selectors
import socket
import ssl
import threading
from pathlib import Path

import platformdirs

__all__ = [
    "fingerprint",
    "certificate_fingerprint",
    "normalize_fingerprint",
    "ensure_certificate",
    "server_context",
    "client_context",
    "TlsBridge",
    "KnownServers",
    "default_known_servers",
]

log = logging.getLogger("chatroom.tls")

_TLS_HANDSHAKE_RECORD = 0x16  # the first byte of every TLS ClientHello


def fingerprint(der: bytes) -> str:
    """SSH-style: ``SHA256:`` and the unpadded base64 of the certificate's digest."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


def hex_fingerprint(fp: str, *, colons: bool = False) -> str:
    """``SHA256:base64`` as the hex IRC clients pin with: WeeChat's ``tls_fingerprint``
    (64 lowercase digits), or irssi's ``-tls_pinned_cert`` (``colons``: upper case pairs)."""
    raw = base64.b64decode(fp.removeprefix("SHA256:") + "=" * (-len(fp.removeprefix("SHA256:")) % 4))
    return ":".join(f"{b:02X}" for b in raw) if colons else raw.hex()


def normalize_fingerprint(text: str) -> str:
    """Accept ``SHA256:base64``, bare base64, or hex with or without colons."""
    value = text.strip()
    if value.upper().startswith("SHA256:"):
        value = value[7:]
    hexdigits = value.replace(":", "").lower()
    if len(hexdigits) == 64 and all(c in "0123456789abcdef" for c in hexdigits):
        return "SHA256:" + base64.b64encode(bytes.fromhex(hexdigits)).decode().rstrip("=")
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"{text!r} is not a SHA-256 fingerprint")
    return "SHA256:" + value.rstrip("=")


def ensure_certificate(directory: Path, hostname: str) -> tuple[Path, Path]:
    """The self-signed certificate and key in ``directory``, created on first use."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"chatroom on {hostname}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName(hostname), x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the key is for our eyes only
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    log.info("created a self-signed certificate in %s", directory)
    return cert_path, key_path


def certificate_fingerprint(cert_path: str | os.PathLike[str]) -> str:
    return fingerprint(ssl.PEM_cert_to_DER_cert(Path(cert_path).read_text()))


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def client_context() -> ssl.SSLContext:
    """No CA can vouch for a self-signed LAN server: we check the fingerprint instead."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class TlsBridge:
    """One thread that terminates TLS for one connection and relays plaintext.

    ``inner`` is the plain end the chat handler uses.  The thread ends (closing both
    ends) when either side closes or the handshake fails.
    """

    BUFFER = 256 * 1024  # per direction, beyond the sockets' own buffers

    def __init__(self, raw: socket.socket, context: ssl.SSLContext, handshake_timeout: float,
                 plaintext_refusal: bytes) -> None:
        self.raw = raw
        self.context = context
        self.handshake_timeout = handshake_timeout
        self.plaintext_refusal = plaintext_refusal
        self.inner, self._outer = socket.socketpair()
        self.thread = threading.Thread(target=self._run, name="chatroom-tls", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            tls = self._handshake()
            if tls is not None:
                self._relay(tls)
        except Exception:  # never let one connection's TLS trouble escape
            log.exception("TLS bridge failed")
        finally:
            for s in (self._outer, self.raw):
                try:
                    s.close()
                except OSError:
                    pass

    def _handshake(self) -> ssl.SSLSocket | None:
        raw = self.raw
        raw.settimeout(self.handshake_timeout)
        try:
            first = raw.recv(1, socket.MSG_PEEK)
        except OSError:
            return None
        if first and first[0] != _TLS_HANDSHAKE_RECORD:
            # A plaintext client on the TLS port: tell it, in its own language.
            try:
                raw.sendall(self.plaintext_refusal)
                raw.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            log.info("refused a plaintext client on the TLS port")
            return None
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.info("TLS handshake failed: %s", exc)
            return None
        tls.setblocking(False)
        self._outer.setblocking(False)
        return tls

    def _relay(self, tls: ssl.SSLSocket) -> None:
        pipe = _Pipe(tls, self._outer)
        with selectors.DefaultSelector() as sel:
            sel.register(tls, selectors.EVENT_READ)
            sel.register(self._outer, selectors.EVENT_READ)
            while (pipe.peer_open or pipe.to_handler) and pipe.handler_open:
                sel.modify(tls, _interest(pipe.peer_open and len(pipe.to_handler) < self.BUFFER, bool(pipe.to_peer)))
                sel.modify(self._outer, _interest(len(pipe.to_peer) < self.BUFFER, bool(pipe.to_handler)))
                sel.select(30)
                pipe.peer_to_handler(self.BUFFER)
                pipe.handler_to_peer(self.BUFFER)
            # what the handler said last (a goodbye, an error) goes out before we close
            if pipe.to_peer and pipe.peer_open:
                _send_last(tls, bytes(pipe.to_peer))
        try:
            tls.close()
        except OSError:
            pass


def _interest(read: bool, write: bool) -> int:
    """The selector events to wait for (reading, at least: a hang-up must be seen)."""
    return (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if write else 0) or selectors.EVENT_READ


def _send_last(tls: ssl.SSLSocket, data: bytes) -> None:
    """Best effort, within a second: a peer that does not read loses it."""
    tls.settimeout(1.0)
    try:
        tls.sendall(data)
    except (ssl.SSLError, OSError):
        pass


class _Pipe:
    """Both directions of a TLS bridge: what each side has sent and the other not yet
    taken, and which sides are still open (the bridge thread only)."""

    def __init__(self, tls: ssl.SSLSocket, outer: socket.socket) -> None:
        self.tls, self.outer = tls, outer
        self.to_peer = bytearray()  # plaintext from the handler, to encrypt and send
        self.to_handler = bytearray()  # plaintext from the peer, for the handler
        self.peer_open = self.handler_open = True

    def peer_to_handler(self, limit: int) -> None:
        # Drain what OpenSSL has buffered too: select() cannot see it.
        while self.peer_open and len(self.to_handler) < limit:
            try:
                data = self.tls.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            except (ssl.SSLError, OSError):
                data = b""
            if not data:
                self.peer_open = False
                break
            self.to_handler += data
        if self.to_handler:
            try:
                del self.to_handler[: self.outer.send(self.to_handler)]
            except BlockingIOError:
                pass
            except OSError:
                self.handler_open = False
        if not self.peer_open and not self.to_handler:
            try:
                self.outer.shutdown(socket.SHUT_WR)  # the handler reads EOF
            except OSError:
                pass

    def handler_to_peer(self, limit: int) -> None:
        while len(self.to_peer) < limit:
            try:
                data = self.outer.recv(65536)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                self.handler_open = False
                break
            self.to_peer += data
        while self.to_peer:
            try:
                del self.to_peer[: self.tls.send(self.to_peer[:16384])]
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            except (ssl.SSLError, OSError):
                self.peer_open = self.handler_open = False
                break


def default_known_servers() -> Path:
    """The platform's config folder (``$XDG_CONFIG_HOME/chatroom`` on Linux)."""
    return Path(platformdirs.user_config_dir("chatroom", appauthor=False)) / "known_servers"


class KnownServers:
    """``host:port fingerprint`` lines: the servers we trusted on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lookup(self, server: str) -> str | None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            parts = line.split()
            if len(parts) == 2 and parts[0] == server:
                return parts[1]
        return None

    def forget(self, server: str) -> bool:
        """Drop what we remembered of ``server``; True if there was something."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return False
        kept = [line for line in lines if line.split()[:1] != [server]]
        if len(kept) == len(lines):
            return False
        self.path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        return True

    def remember(self, server: str, fp: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(f"{server} {fp}\n")
