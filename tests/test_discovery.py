"""LAN discovery: the record <-> room mapping without any network, and the real thing
between two throw-away network namespaces (never in the machine's own)."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
import time

import pytest

from chatroom.discovery import (
    SERVICE_TYPE,
    RoomAd,
    ad_from_record,
    choose,
    describe,
    instance_name,
    one_per_room,
    room_txt,
    should_announce,
)
from tests.terminal import ROOT, chatroom_env

# ----------------------------------------------------------------------------- no network


def test_the_servers_of_one_cluster_offer_each_room_once():
    def ad(room: str, address: str, cluster: str | None) -> RoomAd:
        txt = room_txt(room, password=False, tls=None, members=4, cluster=cluster)
        found = ad_from_record(instance_name(room), f"{address}.local.", [address], 7373,
                               {k.encode(): v.encode() for k, v in txt.items()})
        assert found is not None and found.cluster == cluster
        return found

    heard = [ad("lobby", "127.0.0.7", "c1"), ad("Lobby", "127.0.0.8", "c1"), ad("lobby", "127.0.0.9", None),
             ad("dev", "127.0.0.8", "c1"), ad("lobby", "127.0.0.10", "c2")]
    assert [(a.room, a.addresses[0]) for a in one_per_room(heard)] == [
        ("lobby", "127.0.0.7"), ("lobby", "127.0.0.9"), ("dev", "127.0.0.8"), ("lobby", "127.0.0.10")]


def test_a_room_survives_the_trip_through_a_txt_record():
    txt = room_txt("lobby", password=True, tls="SHA256:abc", members=3)
    assert all(len(key) <= 9 for key in txt)
    ad = ad_from_record(instance_name("lobby"), "laptop-1a2b.local.", ["127.0.0.7", "127.0.0.7"], 7373,
                        {k.encode(): v.encode() for k, v in txt.items()})
    assert ad == RoomAd(room="lobby", host="laptop-1a2b.local.", addresses=("127.0.0.7",), port=7373,
                        password=True, tls="SHA256:abc", members=3)


def test_a_renamed_instance_still_names_the_servers_own_room():
    ad = ad_from_record(f"lobby-2.{SERVICE_TYPE}", "h.local.", ["127.0.0.7"], 7373,
                        room_txt("lobby", password=False, tls=None, members=None))
    assert ad is not None and ad.room == "lobby" and ad.members is None and not ad.password


@pytest.mark.parametrize("name, props, port", [
    ("lobby._http._tcp.local.", {"v": "1.0"}, 80),  # another service type
    (f"lobby.{SERVICE_TYPE}", {"v": "2.0", "room": "lobby"}, 7373),  # a major version we cannot speak
    (f"lobby.{SERVICE_TYPE}", {"room": "lobby"}, 7373),  # no version at all
    (f"x.{SERVICE_TYPE}", {"v": "1.0", "room": "\x1b[31m"}, 7373),  # hostile room name
    (f"lobby.{SERVICE_TYPE}", {"v": "1.0"}, 0),  # no port
])
def test_records_that_are_not_usable_rooms_are_ignored(name, props, port):
    assert ad_from_record(name, "h.local.", ["127.0.0.7"], port, props) is None


def test_instance_names_fit_a_dns_label():
    long_room = "é" * 32  # 64 bytes of UTF-8
    name = instance_name(long_room)
    assert len(name[: -len(SERVICE_TYPE) - 1].encode()) <= 63 and name.endswith(SERVICE_TYPE)


def test_choosing_among_rooms_by_number_or_name():
    ads = [RoomAd("dev", "a.local.", ("127.0.0.2",), 7373), RoomAd("lobby", "b.local.", ("127.0.0.3",), 7374)]
    assert choose(ads, "2") is ads[1] and choose(ads, "DEV") is ads[0]
    assert choose(ads, "3") is None and choose(ads, "nope") is None
    table = describe(ads)
    assert "127.0.0.3:7374" in table[2] and table[0].split() == ["room", "host", "address", "people", "lock", "tls"]


def test_a_server_on_loopback_never_announces():
    assert not should_announce("127.0.0.1") and not should_announce("localhost")
    every_interface = str(ipaddress.ip_address(0))  # what `--host` takes to listen on every interface
    assert should_announce(every_interface) and should_announce("laptop.local")


# ----------------------------------------------------------------------------- the real thing


def start_server(pair, pid: int, host: str, *extra: str) -> subprocess.Popen[str]:
    proc = pair.python_in(pid, ["-m", "chatroom", "serve", "--host", host, "--memory", *extra],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=chatroom_env(), cwd=str(ROOT))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "announced" in line or not line:
            proc.announce_line = line  # type: ignore[attr-defined]
            return proc
    raise AssertionError("the server never said it announced its room")


def in_ns(pair, pid: int, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*pair.prefix(pid), sys.executable, "-m", "chatroom", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, env=chatroom_env(), cwd=str(ROOT))


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    out, _ = proc.communicate(timeout=15)
    return out


def test_rooms_are_announced_found_and_joined_without_an_address(netns):
    from tests.netns import ADDRESS_A

    server = start_server(netns, netns.pid_a, ADDRESS_A)
    try:
        assert "announced room lobby" in server.announce_line
        listed = in_ns(netns, netns.pid_b, "rooms")
        assert listed.returncode == 0, listed.stderr
        row = next(line for line in listed.stdout.splitlines() if "lobby" in line)
        assert f"{ADDRESS_A}:7373" in row
        joined = in_ns(netns, netns.pid_b, "join", "--plain", "--nick", "finder", stdin="found you\n")
        assert joined.returncode == 0, joined.stderr
        assert "<finder> found you" in joined.stdout
        if shutil.which("avahi-browse"):  # not needed; but if it is there, with its daemon, it sees us too
            avahi = subprocess.run([*netns.prefix(netns.pid_b), "avahi-browse", "-rpt", "_chatroom._tcp"],
                                   capture_output=True, text=True, timeout=30)
            if "Daemon not running" not in avahi.stderr:  # avahi-utils without avahi-daemon: nothing to ask
                assert "lobby" in avahi.stdout
    finally:
        out = stop(server)
    assert "finder" in out


def test_a_clean_exit_says_goodbye_and_a_taken_name_is_renamed(netns):
    from tests.netns import ADDRESS_A, ADDRESS_B

    watcher = netns.python_in(netns.pid_b, ["-c", WATCH], stdout=subprocess.PIPE, env=chatroom_env(),
                              cwd=str(ROOT))
    first = start_server(netns, netns.pid_a, ADDRESS_A)
    second = start_server(netns, netns.pid_b, ADDRESS_B)
    try:
        assert "announced room lobby" in first.announce_line
        assert "that name was taken" in second.announce_line  # the second lobby had to be renamed
    finally:
        stop(second)
        stop(first)
    events, _ = watcher.communicate(timeout=30)
    lines = events.splitlines()
    assert any(x.startswith("Added lobby.") for x in lines)
    assert any(x.startswith("Removed lobby.") for x in lines), lines  # the goodbye arrived


def test_when_discovery_cannot_work_the_message_is_clear_and_quick(netns):
    # A namespace with nothing but a down loopback: no multicast anywhere.
    lonely = subprocess.run([*netns.prefix(netns.pid_a), "ip", "link", "set", "veth-a", "down"], timeout=10)
    assert lonely.returncode == 0
    start = time.monotonic()
    result = in_ns(netns, netns.pid_a, "rooms", "--seconds", "1")
    assert time.monotonic() - start < 20
    assert result.returncode == 1 and "join" in (result.stdout + result.stderr) and "Traceback" not in result.stderr
    joined = in_ns(netns, netns.pid_a, "join", "--plain", "--nick", "x")
    assert joined.returncode == 1 and "chatroom join HOST[:PORT]" in joined.stderr


# Prints what it sees of _chatroom._tcp; ends once a goodbye for lobby arrived (at most 30 s).
WATCH = """
import threading
from zeroconf import IPVersion, ServiceBrowser, Zeroconf
zc = Zeroconf(ip_version=IPVersion.V4Only)
gone = threading.Event()
def on_change(zeroconf, service_type, name, state_change):
    print(state_change.name, name, flush=True)
    if state_change.name == "Removed" and name.startswith("lobby."):
        gone.set()
browser = ServiceBrowser(zc, "_chatroom._tcp.local.", handlers=[on_change])
gone.wait(30)
browser.cancel()
zc.close()
"""


def test_join_without_an_address_prefers_a_server_on_this_machine(netns):
    # Inside the namespace the default port is ours alone, whatever runs on the host.
    server = netns.python_in(netns.pid_a, ["-m", "chatroom", "serve", "--memory"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=chatroom_env(), cwd=str(ROOT))
    try:
        assert "serving on 127.0.0.1:7373" in server.stdout.readline()
        start = time.monotonic()
        joined = in_ns(netns, netns.pid_a, "join", "--plain", "--nick", "local", stdin="right here\n")
        assert joined.returncode == 0, joined.stderr
        assert "<local> right here" in joined.stdout
        assert time.monotonic() - start < 10  # no LAN browse first
    finally:
        stop(server)
