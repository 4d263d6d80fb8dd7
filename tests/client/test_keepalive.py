"""The client's keepalive, without sockets or clocks."""

from __future__ import annotations

from chatroom.client.keepalive import Keepalive


def test_a_silent_server_is_pinged_once_then_given_up_on():
    alive = Keepalive(interval=30.0, timeout=20.0, now=0.0)
    assert not alive.ping_due(29.0) and alive.wait(29.0) == 1.0
    assert alive.ping_due(31.0)
    assert not alive.ping_due(32.0)  # one ping at a time
    assert not alive.expired(50.0) and alive.wait(50.0) == 1.0
    assert alive.expired(51.5)


def test_anything_heard_answers_the_ping_and_measures_the_lag():
    alive = Keepalive(interval=30.0, timeout=20.0, now=0.0)
    assert alive.lag is None and alive.pending_lag(5.0) is None
    assert alive.ping_due(31.0)
    assert alive.pending_lag(31.5) == 0.5
    alive.heard(31.25)
    assert alive.lag == 0.25 and not alive.expired(100.0 - 48.0)
    assert alive.wait(40.0) == 21.25  # the next ping: 30 s after the server was last heard
