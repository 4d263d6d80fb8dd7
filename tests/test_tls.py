"""TLS: encrypted rooms, certificates kept across restarts, trust on first use, pinning."""

from __future__ import annotations

import os
import socket
import stat

import pytest

from chatroom.client.connection import CertificateChanged, ChatClient, NotTlsAnyMore, Trusted
from chatroom.protocol import (
    PROTOCOL_VERSION,
    Chat,
    Error,
    ErrorCode,
    Hello,
    Presence,
    PresenceEvent,
    Say,
    encode_message,
)
from chatroom.tls import (
    KnownServers,
    certificate_fingerprint,
    client_context,
    ensure_certificate,
    normalize_fingerprint,
)
from tests.polling import wait_until
from tests.wire import WireClient


def test_the_self_signed_certificate_is_made_once_and_its_key_kept_private(tmp_path):
    cert, key = ensure_certificate(tmp_path, "host")
    first = certificate_fingerprint(cert)
    cert2, _ = ensure_certificate(tmp_path, "host")
    assert certificate_fingerprint(cert2) == first  # the same across restarts
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert first.startswith("SHA256:") and len(first) == 7 + 43


def test_fingerprints_are_accepted_in_the_usual_spellings():
    fp = "SHA256:" + "A" * 42 + "E"
    assert normalize_fingerprint(fp) == fp
    assert normalize_fingerprint("A" * 42 + "E=") == fp
    hexed = ":".join(["00"] * 32)
    assert normalize_fingerprint(hexed) == "SHA256:" + "A" * 43
    with pytest.raises(ValueError):
        normalize_fingerprint("SHA256:short")


def test_the_fingerprint_in_the_hex_forms_irc_clients_pin_with(tmp_path):
    import hashlib
    import ssl

    from chatroom.tls import hex_fingerprint

    cert, _ = ensure_certificate(tmp_path, "host")
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert.read_text())).hexdigest()
    fp = certificate_fingerprint(cert)
    assert hex_fingerprint(fp) == digest  # WeeChat's tls_fingerprint
    assert hex_fingerprint(fp, colons=True) == ":".join(digest[i:i + 2] for i in range(0, 64, 2)).upper()  # irssi
    assert normalize_fingerprint(hex_fingerprint(fp, colons=True)) == fp


def test_chat_over_tls_with_trust_on_first_use(make_server, tls_files, tmp_path):
    cert, key = tls_files
    server = make_server(tls_cert=cert, tls_key=key)
    known = KnownServers(tmp_path / "known_servers")
    events: list[object] = []
    ann = ChatClient("127.0.0.1", server.port, "ann", tls=True, known_servers=known, on_event=events.append)
    bob = WireClient(server.port, tls=True)
    try:
        ann.connect()
        trusted = [e for e in events if isinstance(e, Trusted)]
        assert trusted and trusted[0].first_time and trusted[0].fingerprint == certificate_fingerprint(cert)
        assert known.lookup(f"127.0.0.1:{server.port}") == trusted[0].fingerprint
        bob.hello("bob")
        ann.say("encrypted hello")
        assert bob.expect(Chat).text == "encrypted hello"
        bob.send(Say(id="b", text="and back"))
        assert ann.wait_acked(5)
        again = ChatClient("127.0.0.1", server.port, "ann2", tls=True, known_servers=known, on_event=events.append)
        again.connect()
        assert [e.first_time for e in events if isinstance(e, Trusted)] == [True, False]
        again.close()
    finally:
        ann.close()
        bob.close()


def test_a_changed_certificate_is_refused_loudly(make_server, tls_files, tmp_path):
    cert, key = tls_files
    server = make_server(tls_cert=cert, tls_key=key)
    known = KnownServers(tmp_path / "known_servers")
    known.remember(f"127.0.0.1:{server.port}", "SHA256:" + "B" * 43)  # what we met there before
    with pytest.raises(CertificateChanged) as info:
        ChatClient("127.0.0.1", server.port, "ann", tls=True, known_servers=known).connect()
    message = str(info.value)
    assert "HAS CHANGED" in message and certificate_fingerprint(cert) in message and "remove the line" in message


def test_a_pinned_fingerprint_must_match(make_server, tls_files):
    cert, key = tls_files
    server = make_server(tls_cert=cert, tls_key=key)
    good = ChatClient("127.0.0.1", server.port, "ann", fingerprint=certificate_fingerprint(cert))
    assert good.connect().nick == "ann" and good.tls
    good.close()
    with pytest.raises(CertificateChanged, match="not the"):
        ChatClient("127.0.0.1", server.port, "bob", fingerprint="SHA256:" + "C" * 43).connect()


def test_a_plain_client_is_told_to_use_tls_and_ours_upgrades_by_itself(make_server, tls_files, tmp_path):
    cert, key = tls_files
    server = make_server(tls_cert=cert, tls_key=key)
    plain = WireClient(server.port)
    plain.send(Hello(version=PROTOCOL_VERSION, nick="plain"))
    err = plain.expect(Error)
    assert err.code == ErrorCode.TLS_REQUIRED.value and err.fatal and "--tls" in err.message
    plain.wait_closed()
    plain.close()
    client = ChatClient("127.0.0.1", server.port, "ann", known_servers=KnownServers(tmp_path / "k"))
    assert client.connect().nick == "ann" and client.tls  # upgraded, never the other way
    client.close()


def test_a_tls_client_is_not_silently_downgraded_by_a_plain_server(make_server, tmp_path):
    server = make_server()
    with pytest.raises(Exception) as info:
        ChatClient("127.0.0.1", server.port, "ann", tls=True, known_servers=KnownServers(tmp_path / "k")).connect()
    assert "TLS" in str(info.value)


def test_a_server_met_over_tls_is_never_spoken_to_in_plaintext(make_server, tls_files, tmp_path):
    """The TLS-stripping attack: the room we pinned is replaced by a plaintext server on
    the same HOST:PORT, and the user (as the README allows) left out --tls."""
    cert, key = tls_files
    known = KnownServers(tmp_path / "known_servers")
    real = make_server(tls_cert=cert, tls_key=key)
    port = real.port
    first = ChatClient("127.0.0.1", port, "ann", known_servers=known)  # no --tls: it upgrades, and pins
    assert first.connect().nick == "ann" and first.tls
    first.close()
    real.stop()
    make_server(port=port)  # the impostor: same address, no TLS
    with pytest.raises(NotTlsAnyMore) as info:
        ChatClient("127.0.0.1", port, "ann", known_servers=known).connect()
    message = str(info.value)
    assert "refusing plaintext" in message and "--forget-pin" in message and f"127.0.0.1:{port}" in message
    # Forgetting the pin on purpose is the one way back to plaintext.
    assert known.forget(f"127.0.0.1:{port}") and known.lookup(f"127.0.0.1:{port}") is None
    again = ChatClient("127.0.0.1", port, "ann", known_servers=known)
    assert again.connect().nick == "ann" and not again.tls
    again.close()


def test_tls_and_the_password_work_together(make_server, tls_files, tmp_path):
    cert, key = tls_files
    server = make_server(tls_cert=cert, tls_key=key, password="both at once")
    client = ChatClient("127.0.0.1", server.port, "ann", tls=True, password="both at once",
                        known_servers=KnownServers(tmp_path / "k"))
    assert client.connect().nick == "ann"
    client.close()


def test_a_tls_client_that_stops_reading_is_dropped_without_hurting_others(make_server, tls_files, tmp_path):
    cert, key = tls_files
    server = make_server(tls_cert=cert, tls_key=key, rate=0, outbox_limit=64 * 1024)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    raw.connect(("127.0.0.1", server.port))
    stalled = client_context().wrap_socket(raw)
    stalled.sendall(encode_message(Hello(version=PROTOCOL_VERSION, nick="stalled")))  # and never reads again
    counts = {"talker": 0, "listener": 0}
    leaves: list[Presence] = []

    def counter(name: str):
        def on_event(event: object) -> None:
            if isinstance(event, Chat):
                counts[name] += 1
            elif isinstance(event, Presence) and event.event is PresenceEvent.LEAVE:
                leaves.append(event)
        return on_event

    # Our own client drives each TLS socket from one thread, as OpenSSL requires.
    known = KnownServers(tmp_path / "k")
    talker = ChatClient("127.0.0.1", server.port, "talker", tls=True, known_servers=known, on_event=counter("talker"))
    listener = ChatClient("127.0.0.1", server.port, "listener", tls=True, known_servers=known,
                          on_event=counter("listener"))
    talker.connect()
    listener.connect()
    total = 9000  # ~9 MB each: more than the stalled client's kernel buffers, bridge and outbox hold
    try:
        for n in range(total):
            talker.say(f"{n} " + "y" * 1000)
            if n % 10 == 9:  # at most ~30 KB in flight for the members who read
                wait_until(lambda n=n: min(counts.values()) >= n - 30, 30, "the readers", interval=0.005)
        wait_until(lambda: min(counts.values()) >= total, 30, "every message to arrive")
        assert counts == {"talker": total, "listener": total}
        assert any(p.nick == "stalled" and p.reason == "too slow" for p in leaves)
    finally:
        for c in (talker, listener):
            c.close()
        stalled.close()
