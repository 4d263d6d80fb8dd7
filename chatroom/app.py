"""The composition root: one place that knows every part and wires them together.

``build_server(config)`` chooses the strategy for the rooms (this server alone, or a
cluster through Redis), plugs in the doors (a browser's HTTP and WebSocket, IRC) in the
order the sniffer asks them, and gives back a :class:`~chatroom.server.tcp.ChatServer`.
Everything below imports downwards only: ``server/`` knows none of ``irc/``, ``web/``,
``cluster/``; the doors and the cluster know ``server/``.  A new door is a
:class:`~chatroom.server.doors.Door` added here; a new rule goes into the server's
rules (``server/room.py``, ``server/session.py``), never into a door.
"""

from __future__ import annotations

import socket
import time

from chatroom.netaddr import machine_addresses
from chatroom.server.cluster_link import ClusterLink
from chatroom.server.doors import Door
from chatroom.server.tcp import ChatServer, ServerConfig
from chatroom.trace import Tracer

__all__ = ["build_server", "doors_for"]


def doors_for(config: ServerConfig) -> tuple[Door, ...]:
    """The doors besides the framed protocol, in the order they are asked: HTTP first
    (``GET`` is a letter too, and would pass for an IRC command)."""
    from chatroom.irc.door import IRC_DOOR
    from chatroom.web.door import web_door
    from chatroom.web.hosts import HostCheck

    machine = socket.gethostname()
    # The names browsers may use (DNS rebinding: see chatroom.web.hosts).
    hosts = HostCheck((machine, f"{machine}.local", config.name, *config.web_hosts), machine_addresses,
                      time.monotonic)
    return web_door(hosts), IRC_DOOR


def build_server(config: ServerConfig | None = None, tracer: Tracer | None = None) -> ChatServer:
    """A server as ``config`` says: alone (SQLite, or memory) or in a cluster (Redis),
    with every door.  Raises what ``ChatServer`` raises, and ``redis.RedisError`` when
    the cluster's Redis cannot be reached."""
    config = config or ServerConfig()
    cluster: ClusterLink | None = None
    if config.cluster:
        from chatroom.cluster import Cluster

        node = Cluster(config.cluster, history_size=config.history_size, grace=config.resume_grace,
                       beat=config.cluster_beat, name=config.name or socket.gethostname(),
                       replicas=config.cluster_replicas,
                       address=f"{config.host}:{config.port}")
        if config.keep_days is not None:
            node.store.sent_ttl = max(1, min(node.store.sent_ttl, int(config.keep_days * 86400)))
        node.connect()
        cluster = node
    return ChatServer(config, tracer, cluster=cluster, doors=doors_for(config))
