"""GET /healthz and GET /metrics, as a monitoring system sees them: real HTTP on the
server's port, real clients making the numbers move."""

from __future__ import annotations

import socket

from prometheus_client.parser import text_string_to_metric_families

from chatroom.protocol import PROTOCOL_VERSION, Chat, Direct, Private, Say
from tests.polling import wait_until
from tests.wire import WireClient


def http_get(port: int, path: str, source: str | None = None) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(source, 0) if source else None) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, parsed by prometheus_client's own parser."""
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(page: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return page[(name, tuple(sorted(labels.items())))]


def test_healthz_is_ok_while_the_store_answers_and_503_when_it_does_not(make_server, tmp_path):
    server = make_server(data_dir=str(tmp_path))
    status, headers, body = http_get(server.port, "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert headers["Content-Type"].startswith("text/plain")
    server.store.close()  # the history database goes away under the running server
    status, _, body = http_get(server.port, "/healthz")
    assert status == 503 and b"history database does not answer" in body


def test_metrics_are_off_until_the_operator_names_who_may_read_them(make_server):
    server = make_server()
    status, _, body = http_get(server.port, "/metrics")
    assert status == 404 and b"--metrics-from" in body
    elsewhere = make_server(metrics_from=("127.0.0.2/32",))  # (the request comes from 127.0.0.1)
    status, _, body = http_get(elsewhere.port, "/metrics")
    assert status == 403 and b"chatroom_" not in body


def test_metrics_count_connections_messages_deliveries_and_drops(make_server):
    server = make_server(metrics_from=("127.0.0.2/32", "::1"))
    ann, bob = WireClient(server.port), WireClient(server.port)
    ann.hello("ann")
    bob.hello("bob")
    irc = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    irc.sendall(b"NICK cy\r\nUSER cy 0 * :Cy\r\n")
    irc.recv(4096)  # (its welcome: the IRC door has it)
    try:
        status, _, _ = http_get(server.port, "/metrics")  # from 127.0.0.1: not named
        assert status == 403
        status, headers, body = http_get(server.port, "/metrics", source="127.0.0.2")
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=")
        before = samples(body)
        assert value(before, "chatroom_connections", door="framed") == 2
        assert value(before, "chatroom_connections", door="irc") == 1
        assert value(before, "chatroom_members", state="online") == 3
        assert value(before, "chatroom_info", version=__import__("chatroom").__version__,
                     protocol=PROTOCOL_VERSION) == 1
        assert value(before, "chatroom_store_up") == 1
        for n in range(5):
            ann.send(Say(text=f"hello {n}", id=f"m{n}"))
        bob.collect(Chat, 5)
        ann.send(Direct(to="bob", text="psst", id="p1"))
        bob.expect(Private)
        ann.close()
        wait_until(lambda: len(server.connections()) == 2, what="ann's connection to end")
        after = samples(http_get(server.port, "/metrics", source="127.0.0.2")[2])
        assert value(after, "chatroom_messages_total", kind="room") - value(before, "chatroom_messages_total",
                                                                               kind="room") == 5
        assert value(after, "chatroom_messages_total", kind="private") == 1
        # each room message reached both members of the lobby (cy, over IRC, joined no channel)
        assert value(after, "chatroom_deliveries_total") - value(before, "chatroom_deliveries_total") >= 10
        assert value(after, "chatroom_connections_closed_total", reason="connection lost") >= 1
        assert value(after, "chatroom_connections_closed_total", reason="refused") >= 1  # the 403 above
        assert value(after, "chatroom_store_seconds_count") >= 1  # (--memory: commits are timed too)
        assert value(after, "chatroom_rooms") >= 1
    finally:
        bob.close()
        irc.close()
