"""The cluster's Redis made safe to rely on: TLS to Redis (``rediss://``), Redis
Sentinel (``redis+sentinel://``) followed across a failover, and acknowledgements
that wait for a replica (``--cluster-replicas``), so a failover loses none."""

from __future__ import annotations

import pytest
import redis

from chatroom.client.connection import ChatClient
from chatroom.cluster.redis_url import redis_client
from chatroom.protocol import Chat, Error, ErrorCode, FetchHistory, History, Say
from tests.cluster.redis_server import RedisServer, SentinelServer
from tests.polling import Events, wait_until
from tests.wire import WireClient


def test_a_cluster_speaks_tls_to_its_redis(tls_files, make_server):
    secure = RedisServer(tls=tls_files).start()
    try:
        with pytest.raises(redis.RedisError):  # that port speaks nothing but TLS
            redis.Redis(host="127.0.0.1", port=secure.port, socket_connect_timeout=1, socket_timeout=1).ping()
        first = make_server(cluster=secure.url, cluster_beat=0.2, rate=0)
        second = make_server(cluster=secure.url, cluster_beat=0.2, rate=0)
        ann, bob = WireClient(first.port), WireClient(second.port)
        ann.hello("ann")
        bob.hello("bob")
        ann.send(Say(text="over TLS, both ways", id="t1"))
        assert bob.expect(Chat, text="over TLS, both ways").seq >= 1
        ann.close()
        bob.close()
    finally:
        secure.close()


def test_sentinel_urls_are_read_and_bad_ones_refused():
    client = redis_client("redis+sentinel://:s3cret@127.0.0.1:1,127.0.0.1/chat/2", socket_timeout=1,
                          socket_connect_timeout=1)
    pool = client.connection_pool
    assert pool.service_name == "chat"
    assert pool.connection_kwargs["db"] == 2 and pool.connection_kwargs["password"] == "s3cret"
    assert [(c.connection_pool.connection_kwargs["host"], c.connection_pool.connection_kwargs["port"])
            for c in pool.sentinel_manager.sentinels] == [("127.0.0.1", 1), ("127.0.0.1", 26379)]
    with pytest.raises(ValueError, match="names its sentinels and its service"):
        redis_client("redis+sentinel://127.0.0.1:1/", socket_timeout=1, socket_connect_timeout=1)


def replicating(replica: RedisServer) -> bool:
    info = replica.client().info("replication")
    return info.get("master_link_status") == "up"


def test_a_sentinel_failover_loses_no_acknowledged_message(make_server):
    master = RedisServer().start()
    replica = RedisServer(replica_of=master).start()
    sentinel = None
    client = None
    try:
        wait_until(lambda: replicating(replica), what="the replica to follow the master")
        sentinel = SentinelServer(master).start()
        server = make_server(cluster=sentinel.url, cluster_replicas=1, cluster_beat=0.2, rate=0)
        bob = WireClient(server.port)
        bob.hello("bob")
        events = Events()
        client = ChatClient("127.0.0.1", server.port, "ann", on_event=events)
        client.connect()
        before = [f"before {n}" for n in range(20)]
        for text in before:
            client.say(text)
        wait_until(lambda: not client.pending(), timeout=20, what="every message acknowledged")
        master.kill()  # every acknowledged message is on the replica: WAIT said so
        wait_until(lambda: sentinel is not None and sentinel.master_port() == replica.port, timeout=30,
                   what="the sentinel to promote the replica")
        # The new master has no replica of its own: a message now is stored, unconfirmed
        # (until the server has found the new master: unavailable, nothing stored).
        def answer() -> str:
            bob.send(Say(text="alone on the new master", id="a1"))
            return bob.expect(Error, id="a1", timeout=20).code

        wait_until(lambda: answer() == ErrorCode.UNCONFIRMED.value, timeout=30, interval=0.2,
                   what="the server to store on the new master")
        # The old master comes back; the sentinel makes it the new master's replica.
        master.replica_of = replica
        master.start()
        wait_until(lambda: replicating(master), timeout=30, what="the old master to follow the new one")
        bob.send(Say(text="alone on the new master", id="a1"))  # again, with its id: now acknowledged
        bob.wait_for(lambda m: getattr(m, "id", None) == "a1" and m.TYPE == "ack", timeout=20)
        bob.send(FetchHistory(room="lobby", after=0, limit=100))
        texts = [m.text for m in bob.expect(History, timeout=20).messages]
        assert [t for t in texts if t.startswith("before ")] == before  # none lost, none twice, in order
        assert texts.count("alone on the new master") == 1
        bob.close()
    finally:
        if client is not None:
            client.close()
        if sentinel is not None:
            sentinel.close()
        replica.close()
        master.close()
