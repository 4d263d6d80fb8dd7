"""Several servers, one Redis: the same rooms everywhere (real sockets, real Redis)."""

from __future__ import annotations

import socket
import threading

from chatroom.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Away,
    Bye,
    Chat,
    Direct,
    Error,
    FetchHistory,
    Found,
    Hello,
    History,
    Join,
    Joined,
    ListRooms,
    Members,
    ModAction,
    Moderate,
    Nick,
    Notice,
    Op,
    Part,
    Parted,
    Presence,
    PresenceEvent,
    Private,
    Rooms,
    Say,
    Search,
    SetTopic,
    Topic,
    User,
    Welcome,
    Who,
    Whois,
    encode_message,
)
from tests.irc.client import IrcClient
from tests.polling import wait_until
from tests.wire import WireClient


def test_every_member_on_every_server_sees_one_order(cluster):
    servers = [cluster() for _ in range(3)]
    clients = [WireClient(s.port) for s in servers]
    for i, client in enumerate(clients):
        client.hello(f"user{i}")
    per_client = 40

    def talk(i: int) -> None:
        for n in range(per_client):
            clients[i].send(Say(id=f"{i}-{n}", text=f"from {i}: {n}"))

    threads = [threading.Thread(target=talk, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen = [[(c.seq, c.nick, c.text) for c in client.collect(Chat, 3 * per_client)] for client in clients]
    assert seen[0] == seen[1] == seen[2]
    assert [seq for seq, _, _ in seen[0]] == list(range(1, 3 * per_client + 1))  # contiguous, from Redis
    for i, client in enumerate(clients):  # each ack names the place its message has in that one order
        acks = {a.id: a.seq for a in client.collect(Ack, per_client)}
        order = {text: seq for seq, _, text in seen[0]}
        assert all(acks[f"{i}-{n}"] == order[f"from {i}: {n}"] for n in range(per_client))
        # a sender sees its own messages in the order it sent them
        mine = [text for _, nick, text in seen[0] if nick == f"user{i}"]
        assert mine == [f"from {i}: {n}" for n in range(per_client)]


def test_nicks_are_unique_across_the_cluster(cluster):
    one, two = cluster(), cluster()
    ann = WireClient(one.port)
    ann.hello("ann")
    rival = WireClient(two.port)
    rival.send(Hello(version="1.3", nick="ANN"))
    refused = rival.expect(Error)
    assert refused.code == "nick_taken" and refused.suggestion == "ANN2"
    rival.send(Hello(version="1.3", nick="bob"))
    rival.expect(Welcome)
    rival.send(Nick(nick="Ann"))
    assert rival.expect(Error).code == "nick_taken"
    ann.send(Nick(nick="anna"))  # a rename frees the old nick everywhere ...
    ann.expect(Presence, event=PresenceEvent.NICK)
    rival.expect(Presence, event=PresenceEvent.NICK, nick="ann", new_nick="anna")
    rival.send(Nick(nick="ann"))
    rival.expect(Presence, event=PresenceEvent.NICK, nick="bob", new_nick="ann")
    three = cluster()
    third = WireClient(three.port)  # ... and a third server knows who has which
    third.send(Hello(version="1.3", nick="anna"))
    assert third.expect(Error).code == "nick_taken"
    watcher = WireClient(three.port)  # sees when the third server has heard of the quit
    watcher.hello("carol")
    ann.send(Bye(reason="quit"))  # quitting frees it
    rival.expect(Presence, event=PresenceEvent.LEAVE, nick="anna")
    watcher.expect(Presence, event=PresenceEvent.LEAVE, nick="anna")
    third.send(Hello(version="1.3", nick="anna"))
    assert third.expect(Welcome).nick == "anna"


def test_look_alike_nicks_are_taken_across_the_cluster(cluster):
    """Both look-alike keys are held in Redis: carol on one server keeps caroI and
    CAR0L out of another; when she quits, they are free."""
    one, two = cluster(), cluster()
    carol = WireClient(one.port)
    carol.hello("carol")
    for nick in ("caroI", "CAR0L", "c\u0430rol"):
        rival = WireClient(two.port)
        rival.send(Hello(version="1.3", nick=nick))
        assert rival.expect(Error).code == "nick_taken", nick
        rival.close()
    watcher = WireClient(two.port)
    watcher.hello("watcher")
    carol.send(Bye(reason="quit"))
    watcher.expect(Presence, event=PresenceEvent.LEAVE, nick="carol")
    newcomer = WireClient(two.port)
    newcomer.send(Hello(version="1.3", nick="caroI"))
    assert newcomer.expect(Welcome).nick == "caroI"


def test_a_newcomer_on_any_server_gets_the_history_pages_and_search(cluster):
    one, two, three = cluster(history_size=10), cluster(history_size=10), cluster(history_size=10)
    ann = WireClient(one.port)
    ann.hello("ann")
    bob = WireClient(two.port)
    bob.hello("bob")
    for n in range(15):  # one at a time, so that the log's order is this one
        (ann if n % 2 else bob).send(Say(id=str(n), text=f"message {n}"))
        (ann if n % 2 else bob).expect(Ack, id=str(n))
    cat = WireClient(three.port)
    welcome = cat.hello("cat")
    assert [c.text for c in welcome.history] == [f"message {n}" for n in range(5, 15)]
    assert welcome.last_seq == 15
    assert {m.nick for m in welcome.members} == {"ann", "bob", "cat"} and welcome.member_count == 3
    cat.send(FetchHistory(room="lobby", before=6, limit=10))
    page = cat.expect(History)
    assert [c.seq for c in page.messages] == [1, 2, 3, 4, 5] and page.complete
    cat.send(Search(room="lobby", text="MESSAGE 1"))
    found = cat.expect(Found)
    assert [c.text for c in found.messages] == ["message 1"] + [f"message {n}" for n in range(10, 15)]


def test_presence_topic_and_members_are_cluster_wide(cluster):
    one, two = cluster(), cluster()
    ann = WireClient(one.port)
    ann.hello("ann", "1.3")
    bob = WireClient(two.port)
    bob.hello("bob", "1.3")
    ann.expect(Presence, event=PresenceEvent.JOIN, nick="bob")
    bob.send(Join(room="dev"))
    # bob in dev first: had ann's join come first (it goes through another server),
    # bob would see her in his Joined list, not as a presence -- right, but not this test.
    bob.wait_for(lambda m: type(m).__name__ == "Joined" and m.room == "dev")
    ann.send(Join(room="dev"))
    bob.expect(Presence, room="dev", event=PresenceEvent.JOIN, nick="ann")
    ann.send(SetTopic(room="dev", topic="release friday"))
    assert bob.expect(Topic, room="dev").topic == "release friday"
    bob.send(Who(room="dev"))
    assert {m.nick for m in bob.expect(Members).members} == {"ann", "bob"}
    late = WireClient(cluster().port)
    late.hello("cat", "1.3")
    late.send(Join(room="dev"))
    joined = late.wait_for(lambda m: getattr(m, "room", None) == "dev" and type(m).__name__ == "Joined")
    assert joined.topic == "release friday" and joined.member_count == 3
    bob.send(Away(message="lunch"))
    assert ann.expect(Presence, room="dev", event=PresenceEvent.AWAY).message == "lunch"
    bob.send(Part(room="dev", reason="done"))
    assert ann.expect(Presence, room="dev", event=PresenceEvent.LEAVE, nick="bob").reason == "left: done"
    late.expect(Presence, room="dev", event=PresenceEvent.LEAVE, nick="bob")
    late.send(Who(room="dev"))
    assert {m.nick for m in late.expect(Members).members} == {"ann", "cat"}
    bob.send(ListRooms())  # bob is in no room of server two but the lobby: the list is the cluster's
    listed = {r.name: (r.members, r.topic) for r in bob.expect(Rooms).rooms}
    assert listed == {"lobby": (3, ""), "dev": (2, "release friday")}


def test_private_messages_reach_members_of_other_servers(cluster):
    one, two = cluster(), cluster()
    ann = WireClient(one.port)
    ann.hello("ann")
    bob = WireClient(two.port)
    bob.hello("bob", "1.3")
    ann.send(Direct(to="BOB", text="psst", id="p1"))
    got = bob.expect(Private)
    assert (got.nick, got.to, got.text) == ("ann", "bob", "psst")
    assert ann.expect(Ack, id="p1")
    assert ann.expect(Private).text == "psst"  # the sender's echo
    ann.send(Direct(to="nobody", text="hello?", id="p2"))
    assert ann.expect(Error).code == "no_such_nick"
    bob.send(Part(room="lobby"))
    bob.expect(Parted)
    ann.expect(Presence, event=PresenceEvent.LEAVE, nick="bob")
    ann.send(Whois(nick="bob"))  # in no room of server one: the cluster knows
    user = ann.expect(User)
    assert (user.nick, user.rooms) == ("bob", ())


def test_an_operator_kicks_and_bans_members_of_other_servers(cluster):
    one, two = cluster(op_password="sesame"), cluster(op_password="other")
    assert one.op_token == two.op_token == "sesame"  # one token for the cluster: the first server's
    op = WireClient(one.port)
    op.hello("op")
    op.send(Op(token="sesame"))
    op.expect(Notice)
    troll = WireClient(two.port, source="127.0.0.2")
    troll.hello("troll")
    op.expect(Presence, event=PresenceEvent.JOIN, nick="troll")  # the operator sees whom it kicks
    op.send(Moderate(action=ModAction.KICK, target="troll", reason="enough"))
    op.expect(Notice)
    assert troll.expect(Error).code == "kicked"
    troll.wait_closed()
    again = WireClient(two.port, source="127.0.0.2")
    again.hello("troll")
    op.expect(Presence, event=PresenceEvent.JOIN, nick="troll")
    op.send(Moderate(action=ModAction.BAN, target="troll"))
    op.expect(Notice)
    assert again.expect(Error).code == "banned"
    refused = WireClient(cluster().port, source="127.0.0.2")  # every server refuses that address now
    refused.send(Hello(version="1.3", nick="troll2"))
    assert refused.expect(Error).code == "banned"


def test_an_irc_client_and_a_framed_client_on_different_servers_share_a_channel(cluster):
    one, two = cluster(), cluster()
    ann = WireClient(one.port)
    ann.hello("ann", "1.3")
    irc = IrcClient(two.port)
    irc.register("dora")  # no echo-message: an IRC client shows what it sent by itself
    irc.send("JOIN #lobby")
    irc.expect("366")
    ann.expect(Presence, event=PresenceEvent.JOIN, nick="dora")
    irc.send("PRIVMSG #lobby :hello from irc", "PRIVMSG ann :just you")
    assert ann.expect(Chat).text == "hello from irc"
    assert ann.expect(Private).text == "just you"
    ann.send(Say(id="1", text="hello from frames"))
    line = irc.expect("PRIVMSG", "#lobby")
    assert line.source.startswith("ann!") and line.params[1] == "hello from frames"
    assert not [x for x in irc.inbox if x.command == "PRIVMSG" and x.source.startswith("dora")]
    irc.send("PING :x")  # everything before the pong has arrived: still no copy of dora's own lines
    irc.expect("PONG")
    assert not [x for x in irc.inbox if x.command == "PRIVMSG" and x.source.startswith("dora")]


def test_retention_trims_the_shared_log_and_sequence_numbers_go_on(cluster):
    one = cluster(keep_messages=5, history_size=50)
    ann = WireClient(one.port)
    ann.hello("ann")
    for n in range(12):
        ann.send(Say(id=str(n), text=f"m{n + 1}"))
    ann.collect(Ack, 12)
    one.apply_retention()  # what the server does every --retention-interval
    late = WireClient(cluster(history_size=50).port)
    assert [c.seq for c in late.hello("late").history] == [8, 9, 10, 11, 12]
    late.send(FetchHistory(room="lobby", before=8, limit=10))
    assert late.expect(History).complete
    ann.send(Say(id="after", text="m13"))
    assert ann.expect(Ack, id="after").seq == 13


def test_a_member_too_slow_for_another_servers_traffic_is_dropped(cluster):
    """The same overflow rule for traffic from another server as for local traffic: a
    member of server one that stops reading while a sender on server two floods the
    room is dropped as too slow, and the room goes on (before, it stayed connected for
    good, its frames silently discarded)."""
    one = cluster(outbox_limit=64 * 1024, max_per_address=0)
    two = cluster(max_per_address=0)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    stalled.connect(("127.0.0.1", one.port))
    stalled.sendall(encode_message(Hello(version=PROTOCOL_VERSION, nick="stalled")))
    reader = WireClient(one.port)
    reader.hello("reader")
    sender = WireClient(two.port)
    sender.hello("sender")
    wait_until(lambda: "stalled" in two.hub.state.nicks, what="server two to see the stalled member")
    payload = "x" * 1000
    sent = 0
    while "stalled" in one.hub.state.nicks and sent < 3000:  # ~3 MB: far past 64 KiB and the kernel's buffers
        for _ in range(50):
            sender.send(Say(id=str(sent), text=payload))
            sent += 1
        reader.collect(Chat, 50, timeout=30)  # the reader keeps up, and paces the sender
    wait_until(lambda: "stalled" not in one.hub.state.nicks, 10, "the stalled member to be dropped")
    assert sent < 3000
    sender.send(Say(id="after", text="the room goes on"))
    assert reader.expect(Chat, text="the room goes on").nick == "sender"
    stalled.close()


def test_a_room_run_on_one_server_is_run_the_same_on_another(cluster):
    """Roles and modes set on one server hold on the other: the maker runs the room there
    too, a moderated room refuses an unvoiced member of the other server, a voice given
    here lets them speak there, and a room kick reaches across."""
    from chatroom.protocol import ErrorCode, ModeChange, RoomMode, RoomModesInfo, SetMode

    one, two = cluster(), cluster()
    ann = WireClient(one.port)
    ann.hello("ann")
    bob = WireClient(two.port)
    bob.hello("bob")
    ann.send(Join(room="dev"))
    assert {m.nick: m.role for m in ann.expect(Joined, room="dev").members} == {"ann": "@"}
    bob.send(Join(room="dev"))
    assert {m.nick: m.role for m in bob.expect(Joined, room="dev").members} == {"ann": "@", "bob": None}
    ann.expect(Presence, event=PresenceEvent.JOIN, nick="bob")
    ann.send(SetMode(room="dev", changes=(ModeChange(mode=RoomMode.MODERATED),)))
    assert bob.expect(RoomModesInfo, room="dev").changes == (ModeChange(mode=RoomMode.MODERATED),)
    bob.send(Say(id="1", text="hi?", room="dev"))
    assert bob.expect(Error, id="1").code == ErrorCode.MODERATED.value
    ann.send(SetMode(room="dev", changes=(ModeChange(mode=RoomMode.VOICE, arg="bob"),)))
    bob.expect(RoomModesInfo, nick="ann")
    bob.send(Say(id="2", text="now I may", room="dev"))
    assert ann.expect(Chat, text="now I may").nick == "bob"
    ann.send(Moderate(action=ModAction.KICK, target="bob", room="dev", reason="done"))  # bob is on the other server
    assert bob.expect(Parted, room="dev").reason == "kicked by ann: done"
    assert ann.expect(Presence, event=PresenceEvent.LEAVE, nick="bob").reason == "kicked by ann: done"
