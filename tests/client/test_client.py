"""The network client core against a real server on 127.0.0.1: no UI involved."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from chatroom.client.connection import ChatClient, ConnState, OutgoingChanged, StateChanged, parse_address
from chatroom.errors import ConnectionFailed, HandshakeRefused
from chatroom.protocol import (
    Ack,
    Away,
    Chat,
    ErrorCode,
    History,
    Join,
    Joined,
    Presence,
    PresenceEvent,
    Private,
    Say,
    User,
    Welcome,
    Whois,
)
from chatroom.server.tcp import CloseReason
from tests.polling import Events, wait_until
from tests.wire import WireClient


@pytest.fixture
def clients():
    made: list[ChatClient] = []

    def make(port: int, nick: str, **kw) -> tuple[ChatClient, Events]:
        events = Events()
        client = ChatClient("127.0.0.1", port, nick, on_event=events, **kw)
        made.append(client)
        return client, events

    yield make
    for c in made:
        c.close()


def test_address_parsing():
    assert parse_address(None, 7373) == ("127.0.0.1", 7373)
    assert parse_address("127.0.0.5", 7373) == ("127.0.0.5", 7373)  # parsed only
    assert parse_address("host:99", 7373) == ("host", 99)
    assert parse_address(":99", 7373) == ("127.0.0.1", 99)
    assert parse_address("[::1]:99", 7373) == ("::1", 99)
    with pytest.raises(ValueError):
        parse_address("host:http", 7373)
    with pytest.raises(ValueError):
        parse_address("host:70000", 7373)


def test_connect_failures_are_clear_exceptions(make_server):
    server = make_server()
    port = server.port
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    with pytest.raises(ConnectionFailed, match="nothing is listening"):
        ChatClient("127.0.0.1", dead_port, "ann").connect()
    taker = ChatClient("127.0.0.1", port, "ann")
    taker.connect()
    try:
        with pytest.raises(HandshakeRefused) as info:
            ChatClient("127.0.0.1", port, "ann").connect()
        assert info.value.code == ErrorCode.NICK_TAKEN and "ann2" in info.value.message
        with pytest.raises(HandshakeRefused) as info:
            ChatClient("127.0.0.1", port, "bad nick").connect()
        assert info.value.code == ErrorCode.INVALID_NICK
    finally:
        taker.close()


def test_two_clients_chat_and_acks_clear_pending(server, clients):
    ann, ann_events = clients(server.port, "ann")
    bob, bob_events = clients(server.port, "bob")
    assert ann.connect().nick == "ann"
    bob.connect()
    out = ann.say("hi bob")
    assert out.status in ("pending", "acked")
    chat = bob_events.wait(lambda e: isinstance(e, Chat))
    assert chat.text == "hi bob" and chat.nick == "ann" and chat.id == out.id
    acked = ann_events.wait(lambda e: isinstance(e, OutgoingChanged) and e.outgoing.status == "acked")
    assert acked.outgoing is out and ann.wait_acked(5) and ann.pending() == []
    ann.direct("bob", "psst")
    assert bob_events.wait(lambda e: isinstance(e, Private)).text == "psst"
    ann.action("waves")
    assert bob_events.wait(lambda e: isinstance(e, Chat) and e.action).text == "waves"


def test_the_client_tracks_room_members_topic_and_nick(server, clients):
    ann, ann_events = clients(server.port, "ann")
    bob, _ = clients(server.port, "bob")
    ann.connect()
    bob.connect()
    ann_events.wait(lambda e: isinstance(e, Presence) and e.nick == "bob")
    assert set(ann.session.members) == {"ann", "bob"}
    from chatroom.protocol import Nick

    ann.send(Nick(nick="anna"))
    ann_events.wait(lambda e: isinstance(e, Presence) and e.event is PresenceEvent.NICK)
    assert ann.nick == "anna" and set(ann.session.members) == {"anna", "bob"}
    ann.send(Join(room="dev"))
    ann_events.wait(lambda e: isinstance(e, Joined))
    assert ann.room == "dev" and set(ann.session.members) == {"anna"}


def test_a_refused_message_is_reported_on_its_outgoing_record(make_server, clients):
    server = make_server(max_text=5)
    ann, events = clients(server.port, "ann")
    ann.connect()
    out = ann.say("far too long")
    refused = events.wait(lambda e: isinstance(e, OutgoingChanged) and e.outgoing.status == "refused")
    assert refused.outgoing is out and "at most 5" in out.error


def test_the_client_answers_pings_and_stays_connected(make_server, clients):
    server = make_server(ping_interval=0.2, pong_timeout=0.5)
    ann, events = clients(server.port, "ann")
    ann.connect()
    watcher = WireClient(server.port)
    watcher.hello("watcher")
    try:
        # The server pings after 0.2 s of silence and drops after 0.5 s more; the
        # client's own keepalive (1 s at the least) is too slow to save it: only
        # answering pings keeps it here through several rounds.
        wait_until(lambda: ann.pings_answered >= 3, 10, "three pings answered")
        assert "ann" in server.hub.state.nicks and ann.state is ConnState.CONNECTED
    finally:
        watcher.close()


def test_lost_connection_reconnects_rejoins_the_room_and_resends_what_was_typed(make_server, clients):
    server = make_server()
    ann, events = clients(server.port, "ann")
    ann.BACKOFF_START = 0.2
    ann.connect()
    bob = WireClient(server.port)
    bob.hello("bob")
    ann.send(Join(room="dev"))
    events.wait(lambda e: isinstance(e, Joined))
    bob.send(Join(room="dev"))
    bob.expect(Joined)
    # Cut ann's connection from the server side, as a network failure would.
    conn = next(c for c in server.connections() if c.member and c.member.nick == "ann")
    conn.close(CloseReason.LOST)
    events.wait(lambda e: isinstance(e, StateChanged) and e.state is ConnState.DISCONNECTED)
    typed = ann.say("typed while offline")
    assert typed.status == "pending"
    events.wait(lambda e: isinstance(e, Welcome))
    assert ann.room == "dev"
    chat = bob.expect(Chat, text="typed while offline")
    assert chat.room == "dev" and chat.nick == "ann"
    assert ann.wait_acked(5) and typed.status == "acked"
    bob.close()


def test_close_sends_a_goodbye_so_others_see_quit(server, clients):
    ann, _ = clients(server.port, "ann")
    ann.connect()
    bob = WireClient(server.port)
    bob.hello("bob")
    ann.close()
    assert bob.expect(Presence, event=PresenceEvent.LEAVE, nick="ann").reason == "quit"
    bob.close()


def test_callers_never_block_even_when_the_server_stops_reading(server, clients):
    ann, _ = clients(server.port, "ann")
    ann.connect()
    start = time.monotonic()
    done = threading.Event()

    def flood() -> None:
        for n in range(2000):
            ann.say(f"message {n}")
        done.set()

    threading.Thread(target=flood, daemon=True).start()
    assert done.wait(10)
    assert time.monotonic() - start < 10


def test_a_client_in_several_rooms_resumes_all_of_them_with_what_each_missed(make_server, clients):
    server = make_server(rate=0)
    ann, events = clients(server.port, "ann")
    ann.BACKOFF_START = 0.2
    ann.connect()
    bob = WireClient(server.port)
    bob.hello("bob")
    for client in (ann, bob):
        client.send(Join(room="dev"))
    events.wait(lambda e: isinstance(e, Joined) and e.room == "dev")
    bob.expect(Joined)
    ann.send(Join(room="ops"))
    events.wait(lambda e: isinstance(e, Joined) and e.room == "ops")
    ann.say("back in dev", room="dev")
    bob.expect(Chat, text="back in dev")
    assert [v.name for v in ann.session.rooms.values()] == ["lobby", "dev", "ops"] and ann.room == "ops"
    conn = next(c for c in server.connections() if c.member and c.member.nick == "ann")
    conn.close(CloseReason.LOST)
    events.wait(lambda e: isinstance(e, StateChanged) and e.state is ConnState.DISCONNECTED)
    bob.send(Say(id="1", text="missed in dev", room="dev"))
    bob.send(Say(id="2", text="missed in the lobby", room="lobby"))
    bob.expect(Ack, id="2")
    events.wait(lambda e: isinstance(e, Chat) and e.text == "missed in the lobby"
                or isinstance(e, History) and any(c.text == "missed in the lobby" for c in e.messages))
    events.wait(lambda e: isinstance(e, History) and any(c.text == "missed in dev" for c in e.messages))
    assert ann.resumed and [v.name for v in ann.session.rooms.values()] == ["lobby", "dev", "ops"]
    assert ann.room == "ops"  # still talking where we were
    back = [bob.expect(Presence, event=PresenceEvent.RECONNECTED) for _ in range(2)]
    assert sorted(p.room for p in back) == ["dev", "lobby"]  # once in each room
    bob.close()


def test_after_a_server_restart_the_client_rejoins_then_sends_what_was_typed_and_is_away_again(
        make_server, clients, tmp_path):
    server = make_server(data_dir=str(tmp_path))
    port = server.port
    ann, events = clients(port, "ann")
    ann.BACKOFF_START = 0.2
    ann.connect()
    ann.send(Join(room="dev"))
    events.wait(lambda e: isinstance(e, Joined))
    ann.send(Away(message="at lunch"))
    events.wait(lambda e: isinstance(e, Presence) and e.event is PresenceEvent.AWAY and e.nick == "ann")
    server.stop()  # a restart: the new server knows nothing of the session
    events.wait(lambda e: isinstance(e, StateChanged) and e.state is ConnState.DISCONNECTED)
    typed = ann.say("typed in the lobby during the restart", room="lobby")
    server = make_server(data_dir=str(tmp_path), port=port)
    bob = WireClient(port)
    bob.hello("bob")  # in the lobby
    welcome = events.wait(lambda e: isinstance(e, Welcome) and not e.resumed, timeout=20)
    assert welcome.nick == "ann"
    chat = bob.expect(Chat, text="typed in the lobby during the restart", timeout=10)
    assert chat.room == "lobby"
    assert ann.wait_acked(10) and typed.status == "acked"
    bob.send(Whois(nick="ann"))
    user = bob.expect(User)
    assert user.away == "at lunch"  # the new server was told again
    assert sorted(r.lower() for r in user.rooms) == ["dev", "lobby"]
    bob.close()


def test_a_room_run_by_its_maker_a_key_proved_by_the_client_and_roles_in_the_member_list(server, clients):
    """The terminal client's own requests (``room_mode_request``): ann makes dev, gives
    it a key and moderates it; bob joins with the key (proved, never sent), is voiced,
    and both member lists show the roles; a wrong key is refused."""
    from chatroom.client.commands import parse_input
    from chatroom.client.room_roles import room_mode_request
    from chatroom.protocol import Chat, Error, ErrorCode, Notice, RoomModesInfo

    ann, ann_events = clients(server.port, "ann")
    bob, bob_events = clients(server.port, "bob")
    cy, cy_events = clients(server.port, "cy")
    for c in (ann, bob, cy):
        c.connect()
    ann.send(Join(room="dev"))
    ann_events.wait(lambda e: isinstance(e, Joined) and e.room == "dev")
    assert ann.session.view("dev").members["ann"].role == "@"  # its maker runs it

    def typed(client: ChatClient, line: str) -> None:
        cmd = parse_input(line)
        request = room_mode_request(cmd, "dev")  # type: ignore[arg-type]
        assert request is not None, line
        client.send(request)

    ann.session.keys.remember("dev", "s3same")
    typed(ann, "/mode +mk s3same")
    ann_events.wait(lambda e: isinstance(e, RoomModesInfo) and e.nick == "ann")
    bob.session.keys.remember("dev", "s3same")
    bob.send(Join(room="dev"))
    bob_events.wait(lambda e: isinstance(e, Joined) and e.room == "dev")  # proved after the challenge
    assert not any(isinstance(e, Notice) and "did not prove" in e.text for e in bob_events.seen)
    cy.session.keys.remember("dev", "wrong")
    cy.send(Join(room="dev"))
    cy_events.wait(lambda e: isinstance(e, Error) and e.code == ErrorCode.KEY_NEEDED.value
                   and "not the key" in e.message)
    assert "dev" not in cy.session.rooms
    bob.say("may I?", room="dev")
    bob_events.wait(lambda e: isinstance(e, OutgoingChanged) and e.outgoing.status == "refused")
    typed(ann, "/voice bob")
    for events in (bob_events, ann_events):
        events.wait(lambda e: isinstance(e, RoomModesInfo) and e.changes and e.changes[0].arg == "bob")
    assert bob.session.view("dev").members["bob"].role == "+" and ann.session.view("dev").members["bob"].role == "+"
    bob.say("now I may", room="dev")
    ann_events.wait(lambda e: isinstance(e, Chat) and e.text == "now I may")
