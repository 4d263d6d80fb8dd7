"""What the people who run a server can ask it: is it healthy (``GET /healthz``), and
how busy is it (``GET /metrics``, Prometheus text, for the addresses the operator
names with ``--metrics-from``).

The numbers are the server's own: counters it keeps anyway, plain integers written
under the hub lock (messages said, deliveries), and gauges read at scrape time
(connections by door, rooms, members, queued bytes).  ``prometheus_client`` only
formats them, through a collector of our own that reads them when asked -- so the
chat's hot path takes no extra lock per message.  The one metric it keeps itself is
the store's commit time (a histogram: one observation per commit, not per message).
Each server has its own registry (tests run several in one process).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chatroom import __version__
from chatroom.protocol import PROTOCOL_VERSION

if TYPE_CHECKING:
    from chatroom.server.tcp import ChatServer

__all__ = ["Metrics", "CONTENT_TYPE"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Commit times of interest: an fsync is ~1-10 ms, a Redis round trip under 1 ms.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The metrics of ``server``, and who may read them."""

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self.registry = CollectorRegistry(auto_describe=False)
        self.store_seconds = Histogram(
            "chatroom_store_seconds", "Time to commit new messages to the store (SQLite, or Redis in a cluster)",
            buckets=_BUCKETS, registry=self.registry)
        self.registry.register(_Collector(server))

    def allowed(self, ip: str) -> bool:
        """Whether ``ip`` may read ``/metrics`` (``--metrics-from``; nobody by default)."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in ipaddress.ip_network(net) for net in self.server.config.metrics_from)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Collector(Collector):
    def __init__(self, server: ChatServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        server = self.server
        info = GaugeMetricFamily("chatroom_info", "This server: its version and the protocol it speaks",
                                 labels=["version", "protocol"])
        info.add_metric([__version__, PROTOCOL_VERSION], 1)
        yield info
        yield from self._connections(server)
        yield from self._chat(server)
        healthy = server.store.healthy()
        yield GaugeMetricFamily("chatroom_store_up", "1 when the store (SQLite, or Redis in a cluster) answers",
                                value=1 if healthy else 0)
        if server.cluster is not None:
            yield GaugeMetricFamily("chatroom_cluster_servers", "Servers in the cluster, this one included",
                                    value=len(server.cluster.servers()) if healthy else 0)

    @staticmethod
    def _connections(server: ChatServer) -> Iterator[Metric]:
        by_door: dict[str, int] = {"framed": 0, "irc": 0, "websocket": 0}
        queued = 0
        for conn in server.connections():
            door = conn.wire.name
            by_door[door] = by_door.get(door, 0) + 1
            queued += len(conn.outbox)
        connections = GaugeMetricFamily("chatroom_connections", "Open connections, by door", labels=["door"])
        for door, count in sorted(by_door.items()):
            connections.add_metric([door], count)
        yield connections
        yield GaugeMetricFamily("chatroom_outbox_bytes", "Bytes queued for clients, not yet sent", value=queued)
        closed = CounterMetricFamily("chatroom_connections_closed", "Connections ended, by reason",
                                     labels=["reason"])
        for reason, count in sorted(server.closed_by_reason().items()):
            closed.add_metric([reason], count)
        yield closed

    @staticmethod
    def _chat(server: ChatServer) -> Iterator[Metric]:
        hub = server.hub
        with hub.lock:
            state = hub.state
            rooms = len(state.rooms)
            online = held = 0
            for member in state.nicks.values():
                if member.server is not None:
                    continue  # another server's
                if member.sink is None:
                    held += 1
                else:
                    online += 1
            said_room, said_private, deliveries = state.said_room, state.said_private, hub.deliveries
        yield GaugeMetricFamily("chatroom_rooms", "Rooms this server knows", value=rooms)
        members = GaugeMetricFamily("chatroom_members", "This server's members: online, or held for a resume",
                                    labels=["state"])
        members.add_metric(["online"], online)
        members.add_metric(["held"], held)
        yield members
        said = CounterMetricFamily("chatroom_messages", "Messages said by this server's members",
                                   labels=["kind"])
        said.add_metric(["room"], said_room)
        said.add_metric(["private"], said_private)
        yield said
        yield CounterMetricFamily("chatroom_deliveries", "Frames queued to their recipients (one per recipient)",
                                  value=deliveries)
