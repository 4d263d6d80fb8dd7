"""Several chatroom servers sharing rooms through Redis (``chatroom serve --cluster``).

``store``: the rooms' logs and records in Redis (the cluster's ``Store``); ``mirror``:
applying another server's entries to this one's rooms (no I/O); ``node``: this
server's part (claims, publishing, the reader and heartbeat threads).
"""

from chatroom.cluster.node import Cluster, ClusterDown

__all__ = ["Cluster", "ClusterDown"]
