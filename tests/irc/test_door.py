"""The IRC door end to end: IRC clients (raw lines over loopback) and framed clients in
the same rooms of one real server."""

from __future__ import annotations

import time

from chatroom.protocol import Chat, Error, ErrorCode, Join, Joined, Part, Parted, Presence, PresenceEvent, Private, Say
from tests.irc.client import IrcClient
from tests.wire import WireClient


def test_registration_numerics_and_an_honest_isupport(server):
    irc = IrcClient(server.port)
    welcome = irc.register("ann")
    assert welcome.params[0] == "ann"
    tokens: set[str] = set()
    for _ in range(2):  # two 005 lines, neither over 13 parameters
        isupport = irc.expect("005")
        assert len(isupport.params) <= 15
        tokens |= set(isupport.params[1:-1])
    assert {"CHANTYPES=#", "NICKLEN=32", "UTF8ONLY", "LINELEN=512", "CASEMAPPING=ascii",
            "PREFIX=(ov)@+", "CHANMODES=b,k,l,imnst"} <= tokens
    assert any(t.startswith("TARGMAX=PRIVMSG:4,NOTICE:4,") for t in tokens)
    irc.expect("422")  # no MOTD
    irc.send("FROB x")
    assert irc.expect("421").params[1] == "FROB"  # never silence
    irc.close()


def test_irc_and_framed_members_talk_in_one_room_both_ways(connect):
    bob = connect("bob")
    irc = IrcClient(bob.sock.getpeername()[1])
    irc.register("ann")
    irc.send("JOIN #lobby")
    irc.expect("JOIN", "#lobby")
    names = irc.expect("353")
    assert set(names.params[-1].split()) == {"ann", "bob"}
    assert bob.expect(Presence, event=PresenceEvent.JOIN).nick == "ann"
    irc.send("PRIVMSG #lobby :hello from irssi", "PRIVMSG #lobby :\x01ACTION waves\x01")
    assert bob.expect(Chat, text="hello from irssi").room == "lobby"
    assert bob.expect(Chat, text="waves").action
    bob.send(Say(id="1", text="hi ann\nsecond line"))
    first = irc.expect("PRIVMSG", "#lobby")
    second = irc.expect("PRIVMSG", "#lobby")
    assert (first.source, first.params[1], second.params[1]) == ("bob!bob@chatroom", "hi ann", "second line")
    # Direct messages, both ways
    irc.send("PRIVMSG bob :psst")
    assert bob.expect(Private, text="psst").nick == "ann"
    irc.send("QUIT :lunch time")
    irc.wait_closed()
    assert bob.expect(Presence, event=PresenceEvent.LEAVE, nick="ann").reason == "quit: lunch time"


def test_history_is_replayed_on_join_with_server_time_in_a_batch(connect):
    bob = connect("bob")
    for n in range(3):
        bob.send(Say(id=str(n), text=f"earlier {n}"))
    bob.collect(Chat, 3)
    irc = IrcClient(bob.sock.getpeername()[1])
    irc.register("ann", caps="server-time batch message-tags")
    irc.send("JOIN #lobby")
    start = irc.expect("BATCH")
    assert start.params[1:] == ["chathistory", "#lobby"]
    replayed = [irc.expect("PRIVMSG", "#lobby") for _ in range(3)]
    assert [r.params[1] for r in replayed] == ["earlier 0", "earlier 1", "earlier 2"]
    assert all(r.tags["batch"] == start.params[0][1:] and r.tags["time"].endswith("Z") for r in replayed)
    assert irc.expect("BATCH").params[0] == "-" + start.params[0][1:]
    # Without server-time, old lines would look new: nothing is replayed.
    plain = IrcClient(bob.sock.getpeername()[1])
    plain.register("cy")
    plain.send("JOIN #lobby", "PING done")
    plain.expect("PONG")
    assert not any(line.command == "PRIVMSG" for line in plain.inbox)


def test_echo_message_decides_whether_a_sender_sees_its_own_lines(connect):
    bob = connect("bob")
    port = bob.sock.getpeername()[1]
    echo, quiet = IrcClient(port), IrcClient(port)
    echo.register("ann", caps="echo-message")
    quiet.register("cy")
    for c in (echo, quiet):
        c.join("#lobby")
    echo.send("PRIVMSG #lobby :from ann")
    quiet.send("PRIVMSG #lobby :from cy")
    assert echo.expect("PRIVMSG", "#lobby", "from ann").source.startswith("ann!")
    assert echo.expect("PRIVMSG", "#lobby", "from cy").source.startswith("cy!")
    assert quiet.expect("PRIVMSG", "#lobby", "from ann")
    quiet.send("PING end")
    quiet.expect("PONG")
    assert not any(line.params[-1] == "from cy" for line in quiet.inbox)  # no echo of its own


def test_nick_rules_are_chatrooms_with_irc_numerics(connect):
    connect("bob")
    irc = IrcClient(connect().sock.getpeername()[1])
    irc.send("NICK BOB", "USER x 0 * :x")
    assert irc.expect("433").params[1] == "BOB"  # taken, ignoring case
    irc.send("NICK аlice")  # a Cyrillic а: any script's letters make a nick
    irc.expect("001")
    irc.send("NICK B0B")
    assert "looks like bob" in irc.expect("433").params[-1]  # a look-alike (a zero for an O) is taken too
    irc.send("NICK carl")
    assert irc.expect("NICK").params == ["carl"]  # told alone: in no channel yet
    irc.send("NICK admin")
    assert irc.expect("432").params[1] == "admin"  # reserved


def test_topic_names_who_whois_list_and_mode(connect):
    bob = connect("bob")
    irc = IrcClient(bob.sock.getpeername()[1])
    irc.register("ann")
    irc.send("JOIN #dev")
    irc.expect("366")
    irc.send("TOPIC #dev :ship it")
    assert irc.expect("TOPIC", "#dev").params[1] == "ship it"
    irc.send("TOPIC #dev")
    assert irc.expect("332").params[1:] == ["#dev", "ship it"]
    irc.send("WHO #dev")
    assert irc.expect("352").params[5] == "ann"
    irc.expect("315")
    irc.send("WHOIS bob")
    assert irc.expect("319").params[2] == "#lobby"
    irc.expect("318")
    irc.send("LIST")
    listed = {irc.expect("322").params[1] for _ in range(2)}
    assert listed == {"#dev", "#lobby"}
    irc.expect("323")
    irc.send("MODE #dev")
    assert irc.expect("324").params[2] == "+n"
    irc.send("MODE #dev +z")
    assert irc.expect("472")
    irc.send("PART #dev :done here")
    assert irc.expect("PART", "#dev").params[1] == "done here"
    irc.send("PRIVMSG #dev :anyone?")
    assert irc.expect("404")  # not in that channel any more


def test_an_operator_kicks_and_bans_over_irc_with_chatrooms_rules(make_server):
    server = make_server(max_per_address=0)
    bob = WireClient(server.port)
    bob.hello("bob")
    irc = IrcClient(server.port)
    irc.register("ann")
    irc.send("JOIN #lobby")  # (the lobby is run by server operators only)
    irc.expect("366")
    irc.send("KICK #lobby bob :spam")
    assert irc.expect("482")  # not an operator yet
    irc.send("KILL bob :spam")
    assert irc.expect("481")
    irc.send("OPER ann wrong-token")
    assert irc.expect("464")
    irc.send(f"OPER ann {server.op_token}")
    irc.expect("381")
    assert irc.expect("MODE", "ann").params[1] == "+o"
    irc.send("MODE #lobby +t")
    assert irc.expect("MODE", "#lobby").params[1] == "+t"
    irc.send("KICK #lobby bob :spam")  # out of the room, not off the server
    kick = irc.expect("KICK", "#lobby", "bob")
    assert kick.params[2] == "spam" and kick.source.startswith("ann!")
    assert bob.expect(Parted).reason == "kicked by ann: spam"
    irc.send("KILL bob :enough")  # off the server
    assert irc.expect("NOTICE").params[1] == "kicked bob"
    bob.wait_closed()
    cy = WireClient(server.port, source="127.0.0.2")
    cy.hello("cy")
    irc.send("MODE #lobby +b cy")  # a ban of the room: cy cannot come back in
    assert irc.expect("MODE", "#lobby").params[1:] == ["+b", "cy!*@*"]
    cy.send(Part(room="lobby"))
    cy.expect(Parted)
    cy.send(Join(room="lobby"))
    assert cy.expect(Error).code == ErrorCode.BANNED_FROM_ROOM.value
    irc.send("MODE #lobby b")
    ban = irc.expect("367")
    assert ban.params[1:4] == ["#lobby", "cy!*@*", "ann"] and int(ban.params[4]) > 1_700_000_000


def test_away_reaches_irc_clients_that_asked_for_it(connect):
    bob = connect("bob")
    irc = IrcClient(bob.sock.getpeername()[1])
    irc.register("ann", caps="away-notify")
    irc.send("JOIN #lobby")
    irc.expect("366")
    from chatroom.protocol import Away

    bob.send(Away(message="lunch"))
    away = irc.expect("AWAY")
    assert away.source.startswith("bob!") and away.params == ["lunch"]
    irc.send("AWAY :brb")
    irc.expect("306")
    assert bob.expect(Presence, event=PresenceEvent.AWAY, nick="ann").message == "brb"


def test_hostile_irc_input_hurts_nobody(make_server):
    server = make_server(rate=4, burst=20)
    bob = WireClient(server.port)
    bob.hello("bob")
    bob.send(Join(room="dev"))
    bob.expect(Joined)
    irc = IrcClient(server.port)
    irc.register("mallory")
    irc.send("JOIN #dev")
    irc.expect("366")
    irc.sock.sendall(b"PRIVMSG #dev :" + b"x" * 9000 + b"\r\n")  # overlong
    irc.sock.sendall(b"PRIVMSG #dev :nul\0here\r\nBOGUS\r\n")
    assert irc.expect("417") and irc.expect("421")
    irc.sock.sendall(b"PRIVMSG #dev :flood\r\n" * 10_000)  # one write: the door reads it at the rate limit
    # bob talks meanwhile and is served at once
    t0 = time.monotonic()
    bob.send(Say(id="b", text="still here", room="dev"))
    bob.expect(Chat, text="still here")
    assert time.monotonic() - t0 < 5
    floods = bob.collect(Chat, 20)  # the burst went through, no more: it is paced, not dropped
    assert all(c.text == "flood" for c in floods)
    assert not any(isinstance(m, Chat) and m.text.startswith("nul") for m in bob.inbox)
    irc.close()


def _tls_irc(port: int) -> IrcClient:
    import socket
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test pins nothing: it checks the password rule
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return IrcClient(port, sock=context.wrap_socket(raw))


def test_a_password_room_takes_irc_over_tls_with_pass_and_never_in_clear(make_server, tls_files):
    cert, key = tls_files
    server = make_server(tls_cert=cert, tls_key=key, password="open sesame", max_per_address=0)
    good = _tls_irc(server.port)
    good.send("PASS :open sesame")
    good.register("ann")
    good.send("JOIN #lobby")
    good.expect("366")
    bad = _tls_irc(server.port)
    bad.send("PASS :guess", "NICK eve", "USER eve 0 * :eve")
    assert bad.expect("464")
    bad.wait_closed()
    assert "eve" not in server.hub.state.nicks


def test_a_password_room_refuses_irc_in_clear_text(make_server):
    server = make_server(password="open sesame")
    irc = IrcClient(server.port)
    irc.send("PASS :open sesame", "NICK ann", "USER ann 0 * :ann")
    assert "clear text" in irc.expect("NOTICE").params[1]
    irc.expect("464")
    irc.wait_closed()
    assert "ann" not in server.hub.state.nicks


def test_the_corners_an_irc_conformance_suite_checks(connect):
    bob = connect("bob")
    port = bob.sock.getpeername()[1]
    irc = IrcClient(port)
    irc.send("PING", "USER x 0 * :", "CAP REQ :userhost-in-names")
    assert irc.expect("461", "*", "PING") and irc.expect("461", "*", "USER")  # no token; an empty real name
    irc.expect("CAP")
    irc.send("USER ident 0 * :Ann Smith", "NICK ann", "CAP END")
    irc.expect("001")
    irc.send("JOIN #ok,bad", "NAMES #nowhere")
    assert irc.expect("JOIN", "#ok").source == "ann!ident@chatroom"  # the user name given, never the address
    assert "@ann!ident@chatroom" in irc.expect("353").params[-1].split()  # userhost-in-names; its maker runs it
    assert irc.expect("403").params[1] == "bad"  # channels start with #
    irc.expect("366", "ann", "#ok")
    assert irc.expect("366").params[1] == "#nowhere"
    irc.sock.sendall(b"@+tag=" + b"a" * 5000 + b" PRIVMSG #ok :hi\r\n")
    assert irc.expect("417")
    irc.send("PING sync")
    irc.expect("PONG")
    irc.inbox.clear()  # everything said so far is in: what follows answers the NOTICE, or nothing
    irc.send("NOTICE #nowhere :a notice is never answered", "PING done")
    irc.expect("PONG")
    assert not any(line.command.isdigit() for line in irc.inbox)
    irc.send("WHOIS ann")
    whois = irc.expect("311")
    assert whois.params[2] == "ident" and whois.params[-1] == "Ann Smith"
    from chatroom.protocol import Away

    bob.send(Away(message="on a train"))
    bob.expect(Presence, event=PresenceEvent.AWAY)
    irc.send("PRIVMSG bob :are you there?")
    assert irc.expect("301").params[1:] == ["bob", "on a train"]  # the sender learns bob is away
    # An away member who joins is said to be away to those with away-notify.
    watcher = IrcClient(port)
    watcher.register("cy", caps="away-notify")
    watcher.send("JOIN #ok")
    watcher.expect("366")
    irc.send("AWAY :later", "PART #ok", "JOIN #ok")
    watcher.expect("JOIN", "#ok")
    assert watcher.expect("AWAY").params == ["later"]


def test_a_separate_irc_port_serves_the_same_rooms(make_server):
    server = make_server(irc_port=0)
    assert server.irc_listener is not None and server.irc_listener.port != server.port
    bob = WireClient(server.port)
    bob.hello("bob")
    irc = IrcClient(server.irc_listener.port)
    irc.register("ann")
    irc.send("JOIN #lobby", "PRIVMSG #lobby :from the IRC port")
    assert bob.expect(Chat, text="from the IRC port").nick == "ann"


def test_the_server_pings_a_silent_irc_client_and_drops_one_that_never_answers(make_server):
    server = make_server(ping_interval=0.5, pong_timeout=0.5)
    alive, dead = IrcClient(server.port), IrcClient(server.port)
    alive.register("alive")
    dead.register("dead")
    for c in (alive, dead):
        c.send("JOIN #lobby")
        c.expect("366")
    dead.expect("PING")  # ... and never answers
    answered = 0
    while True:  # answered pings keep a connection however long it is silent
        line = alive.wait_for(lambda m: m.command in ("PING", "QUIT"), what="a PING or dead's QUIT")
        if line.command == "QUIT":
            break
        alive.send(f"PONG :{line.params[-1]}")
        answered += 1
    assert line.source.startswith("dead!") and line.params == ["timed out"] and answered >= 1
    dead.wait_closed()
    assert "alive" in server.hub.state.nicks and "dead" not in server.hub.state.nicks


def test_look_alike_nicks_are_taken_across_doors(server):
    """The same nick rule at every door: an IRC carol keeps a framed caroI or a
    WebSocket CAR0L out, and a framed alice keeps an IRC aIice out."""
    from websockets.sync.client import connect as ws_connect

    from chatroom.protocol import Error, FrameDecoder, Hello, decode_message, encode_message

    carol = IrcClient(server.port)
    carol.register("carol")
    alice = WireClient(server.port)
    alice.hello("alice")
    framed = WireClient(server.port)
    framed.send(Hello(version="1.3", nick="caroI"))
    assert framed.expect(Error).code == "nick_taken"
    with ws_connect(f"ws://127.0.0.1:{server.port}/ws", origin=f"http://127.0.0.1:{server.port}") as ws:
        ws.send(encode_message(Hello(version="1.3", nick="CAR0L")))
        (frame,) = FrameDecoder().feed(ws.recv(timeout=10))
        refused = decode_message(frame)
        assert isinstance(refused, Error) and refused.code == "nick_taken"
    irc = IrcClient(server.port)
    irc.send("NICK aIice", "USER x 0 * :x")
    assert "looks like alice" in irc.expect("433").params[-1]
    for c in (carol, alice, framed, irc):
        c.close()


def test_several_targets_cost_one_message_each_and_duplicates_count_once(make_server):
    """PRIVMSG #lobby,#lobby,...: one message to the room, not 68; a line over TARGMAX
    is refused whole; each distinct target is charged to the rate limit."""
    server = make_server(rate=0.5, burst=10)
    bob = WireClient(server.port)
    bob.hello("bob")
    irc = IrcClient(server.port)
    irc.register("eve")
    irc.send("JOIN #lobby", "JOIN #dev")
    irc.expect("366", "eve", "#lobby")
    irc.expect("366", "eve", "#dev")
    irc.send("PRIVMSG " + ",".join(["#lobby", "#LOBBY"] * 34) + " :once")
    irc.send("PRIVMSG #lobby,#dev,bob,ann,carol :too many")
    assert irc.expect("407").params[1] == "carol"
    irc.send("PRIVMSG bob,BOB,b\u043eb,B0B :to bob once")  # (look-alikes are the same person)
    irc.send("PING :done")
    irc.expect("PONG")
    chats = bob.collect(Chat, 1)
    assert [c.text for c in chats] == ["once"]
    assert bob.expect(Private).text == "to bob once"
    assert not any(getattr(m, "text", "") in ("once", "to bob once") for m in bob.inbox)  # each once
    history = server.hub.state.rooms["lobby"].history
    assert [m.text for m in history if m.nick == "eve"] == ["once"]
    # The burst (10) is spent by the lines above (registering and joining: 4; the
    # refused line: 4, the most a line costs): two rooms now wait for two tokens, ~4 s.
    started = time.monotonic()
    irc.send("PRIVMSG #lobby,#dev :paced", "PING :after")
    irc.expect("PONG", timeout=20)
    assert time.monotonic() - started >= 2.5
    irc.close()
    bob.close()


def test_lusers_and_names_while_members_come_and_go(make_server, caplog):
    """Counting members raced with a churning room ("dictionary changed size during
    iteration"): now the counts are read under the lock.  Bounded: 150 present, 300
    arrivals."""
    import threading

    server = make_server(max_per_address=0, rate=0)
    irc = IrcClient(server.port)
    irc.register("counter")
    irc.send("JOIN #lobby")
    irc.expect("366", "counter", "#lobby")
    stop = threading.Event()

    def churn() -> None:
        for i in range(300):
            if stop.is_set():
                return
            c = WireClient(server.port)
            c.hello(f"churn{i}")
            c.close()

    import sys

    present = []
    for i in range(150):  # (a room worth counting: the count's loop takes a while)
        c = WireClient(server.port)
        c.hello(f"here{i}")
        present.append(c)
    thread = threading.Thread(target=churn)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can: a race shows at once
    thread.start()
    try:
        answers = 0
        while thread.is_alive() and answers < 500:
            irc.send("LUSERS", "NAMES")
            irc.expect("255")
            irc.expect("366")
            answers += 1
    finally:
        sys.setswitchinterval(switch)
        stop.set()
        thread.join(60)
        for c in present:
            c.close()
    assert answers > 0
    assert not any("failed to handle" in str(line.params) for line in irc.inbox)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    irc.close()


def test_the_numerics_irc_clients_and_conformance_suites_expect(connect):
    """WHOIS of nobody ends with 318; NICK to oneself says nothing; KICK names a
    missing channel first, then missing rights, then a missing person; ##x is no
    channel; MODE nick +i is kept, echoed and counted by LUSERS; WHO masks; LIST #x."""
    bob = connect("bob")
    port = bob.sock.getpeername()[1]
    irc = IrcClient(port)
    irc.send("USER annie 0 * :Ann Smith", "NICK ann")
    irc.expect("001")
    irc.send("JOIN #lobby", "JOIN #dev")
    irc.expect("366", "ann", "#dev")
    irc.send("WHOIS ghost")
    assert irc.expect("401").params[1] == "ghost" and irc.expect("318").params[1] == "ghost"
    irc.inbox.clear()
    irc.send("NICK ann", "PING sync")
    irc.expect("PONG")
    assert not any(line.command in ("432", "NICK") for line in irc.inbox)
    irc.send("KICK #nowhere bob", "KICK #lobby bob", "KICK #lobby ghost")
    assert irc.expect("403").params[1] == "#nowhere"
    assert irc.expect("482").params[1] == "#lobby"  # not an operator: before looking for ghost
    irc.send("JOIN ##double")
    assert irc.expect("479").params[1] == "##double"
    irc.send("MODE ann +i")
    assert irc.expect("MODE", "ann").params[1] == "+i"
    irc.send("MODE ann")
    assert irc.expect("221").params[1] == "+i"
    irc.send("LUSERS")
    assert "There are 1 users and 1 invisible" in irc.expect("251").params[-1]
    assert irc.expect("265").params[1] == "Current local users 2, max 2"
    irc.expect("266")
    irc.send("WHO b*")
    who = irc.expect("352")
    assert (who.params[2], who.params[5], who.params[6]) == ("bob", "bob", "H")
    irc.expect("315", "ann", "b*")
    irc.send("WHO #lobby")
    rows = {row.params[5]: row for row in (irc.expect("352"), irc.expect("352"))}
    assert rows["ann"].params[2] == "annie" and rows["ann"].params[-1] == "0 Ann Smith"
    irc.send("LIST #DEV")
    irc.expect("321")
    assert irc.expect("322").params[1] == "#dev"
    irc.expect("323")  # #lobby not listed
    irc.close()


def test_topic_who_and_when_creation_time_and_the_servers_own_answers(connect):
    bob = connect("bob")
    irc = IrcClient(bob.sock.getpeername()[1])
    irc.register("ann")
    irc.send("JOIN #lobby", "TOPIC #lobby :fractions today")
    irc.expect("TOPIC", "#lobby")
    irc.send("TOPIC #lobby")
    assert irc.expect("332").params[-1] == "fractions today"
    who = irc.expect("333")
    assert who.params[1:3] == ["#lobby", "ann"] and abs(int(who.params[3]) - time.time()) < 60
    irc.send("MODE #lobby")
    irc.expect("324")
    assert abs(int(irc.expect("329").params[2]) - time.time()) < 600
    irc.send("VERSION", "TIME", "ADMIN", "INFO")
    assert "chatroom" in irc.expect("351").params[1]
    irc.expect("391")
    for numeric in ("256", "257", "258", "259"):
        irc.expect(numeric)
    irc.expect("371")
    irc.expect("374")
    irc.close()


def test_invitations_over_irc_and_invite_notify_for_the_other_operators(make_server):
    from chatroom.protocol import Invite, Invited, ModeChange, RoomMode, SetMode

    server = make_server()
    ann = IrcClient(server.port)
    ann.register("ann", caps="invite-notify")
    ann.send("JOIN #dev", "MODE #dev +i")
    assert ann.expect("MODE", "#dev").params[1] == "+i"
    bob = WireClient(server.port)
    bob.hello("bob")
    bob.send(Join(room="dev"))
    assert bob.expect(Error).code == ErrorCode.INVITE_ONLY.value
    ann.send("INVITE bob #dev")
    assert ann.expect("341").params[1:3] == ["bob", "#dev"]
    invited = bob.expect(Invited)
    assert (invited.room, invited.nick, invited.to) == ("dev", "ann", "bob")
    bob.send(Join(room="dev"))
    bob.expect(Joined, room="dev")
    bob.send(SetMode(room="dev", changes=(ModeChange(mode=RoomMode.OPERATOR, arg="bob"),)))
    assert bob.expect(Error).code == ErrorCode.NOT_ROOM_OPERATOR.value
    ann.send("MODE #dev +o bob")
    ann.expect("MODE", "#dev")
    dee = WireClient(server.port)
    dee.hello("dee")
    bob.send(Invite(nick="dee", room="dev"))  # another operator invites: ann hears of it (invite-notify)
    notified = ann.expect("INVITE")
    assert notified.source.startswith("bob!") and notified.params == ["dee", "#dev"]
    ann.send("INVITE dee #nowhere", "INVITE bob #dev")
    assert ann.expect("403")
    assert ann.expect("443").params[1:3] == ["bob", "#dev"]


def test_each_room_message_has_one_msgid_live_and_in_a_replay(connect):
    """message-tags: a room message's msgid is its place in the room, so the line a
    client saw live and the same line replayed on a later JOIN are recognisably one."""
    bob = connect("bob")
    irc = IrcClient(bob.sock.getpeername()[1])
    irc.register("dora", caps="message-tags server-time")
    irc.send("JOIN #lobby")
    irc.expect("366")
    bob.send(Say(id="1", text="one line"))
    seq = bob.expect(Chat, text="one line").seq
    live = irc.expect("PRIVMSG", "#lobby")
    assert live.tags["msgid"] == f"{seq}.lobby"
    bob.send(Say(id="2", text="x " * 400))  # longer than an IRC line: two PRIVMSGs, two ids
    first, second = irc.expect("PRIVMSG", "#lobby"), irc.expect("PRIVMSG", "#lobby")
    assert second.tags["msgid"] == first.tags["msgid"] + "/2"
    irc.send("PART #lobby", "JOIN #lobby")
    replayed = [irc.expect("PRIVMSG", "#lobby") for _ in range(3)]
    assert [m.tags["msgid"] for m in replayed] == [live.tags["msgid"], first.tags["msgid"], second.tags["msgid"]]


def test_lines_come_from_nick_user_at_chatroom_and_extended_join_carries_the_real_name(connect):
    """The source of a person's lines names the user they gave (a framed member: its
    nick), everywhere: PRIVMSG, JOIN (with extended-join: ``*`` and the real name)."""
    bob = connect("bob")
    port = bob.sock.getpeername()[1]
    ann = IrcClient(port)
    ann.send("USER annie 0 * :Ann Smith", "NICK ann")
    ann.expect("001")
    dora = IrcClient(port)
    dora.register("dora", caps="extended-join")
    dora.send("JOIN #lobby")
    assert dora.expect("JOIN", "#lobby").params == ["#lobby", "*", "dora"]  # its own, first
    dora.expect("366")
    ann.send("JOIN #lobby")
    joined = dora.expect("JOIN", "#lobby")
    assert joined.source == "ann!annie@chatroom" and joined.params == ["#lobby", "*", "Ann Smith"]
    ann.send("PRIVMSG #lobby :hello")
    assert dora.expect("PRIVMSG", "#lobby").source == "ann!annie@chatroom"
    bob.send(Say(id="1", text="hi"))
    assert dora.expect("PRIVMSG", "#lobby").source == "bob!bob@chatroom"
    ann.send("NICK anna")
    assert dora.expect("NICK").source == "ann!annie@chatroom"


def test_a_bot_says_so_mode_b_whois_who_and_a_bot_tag_on_its_lines(connect):
    bob = connect("bob")
    port = bob.sock.getpeername()[1]
    bot = IrcClient(port)
    bot.register("beep")
    bot.send("MODE beep +B", "MODE beep")
    assert bot.expect("MODE", "beep").params[1] == "+B"
    assert "B" in bot.expect("221").params[1]
    dora = IrcClient(port)
    dora.register("dora", caps="message-tags")
    dora.send("JOIN #lobby", "WHOIS beep")
    assert dora.expect("335").params[1] == "beep"
    bot.send("JOIN #lobby")
    bot.expect("366")
    dora.send("WHO #lobby")
    flags = {line.params[5]: line.params[6] for line in (dora.expect("352") for _ in range(3))}
    assert "B" in flags["beep"] and "B" not in flags["dora"]
    bot.send("PRIVMSG #lobby :beep boop", "PRIVMSG dora :just you")
    assert "bot" in dora.expect("PRIVMSG", "#lobby").tags
    assert "bot" in dora.expect("PRIVMSG", "dora").tags


def test_a_person_in_two_shared_channels_changes_once_for_irc_and_once_per_room_for_chatroom(connect):
    """away-notify and NICK: one line per change for an IRC client, however many
    channels it shares with the person (a chatroom client hears it in each room)."""
    from chatroom.protocol import Away, Nick

    bob = connect("bob")
    port = bob.sock.getpeername()[1]
    cy = connect("cy")
    dora = IrcClient(port)
    dora.register("dora", caps="away-notify")
    for who in (bob, cy):
        who.send(Join(room="dev"))
        who.expect(Joined, room="dev")
    dora.send("JOIN #lobby,#dev")
    dora.expect("366", "dora", "#dev")
    for msg in (Away(message="lunch"), Nick(nick="bobby"), Say(id="end", text="last", room="dev")):
        bob.send(msg)
    dora.expect("PRIVMSG", "#dev")  # everything bob did is here by now
    assert [line.command for line in dora.inbox if line.command in ("AWAY", "NICK")] == ["AWAY", "NICK"]
    cy.expect(Chat, text="last")
    assert len([p for p in cy.inbox if isinstance(p, Presence) and p.event is PresenceEvent.AWAY]) == 2
    assert len([p for p in cy.inbox if isinstance(p, Presence) and p.event is PresenceEvent.NICK]) == 2


def test_invalid_utf8_is_replaced_carried_and_the_sender_warned(connect):
    bob = connect("bob")
    irc = IrcClient(bob.sock.getpeername()[1])
    irc.register("dora")
    irc.sock.sendall(b"PRIVMSG bob :caf\xe9\r\n")
    warn = irc.expect("WARN")
    assert warn.params[:2] == ["PRIVMSG", "INVALID_UTF8"]
    assert bob.expect(Private).text == "caf\ufffd"


def test_whox_answers_the_fields_asked_in_their_order_with_the_token(connect):
    bob = connect("bob")
    irc = IrcClient(bob.sock.getpeername()[1])
    irc.send("USER annie 0 * :Ann Smith", "NICK ann")
    irc.expect("001")
    irc.send("JOIN #dev", "WHO ann %rnt,42", "WHO #dev %cuhnfal")
    assert irc.expect("354").params[1:] == ["42", "ann", "Ann Smith"]  # t, n, r: the reply's order
    row = irc.expect("354").params[1:]
    assert row[:4] == ["#dev", "annie", "chatroom", "ann"] and row[4] == "H@" and row[6] == "0"
    assert irc.expect("315").params[1] == "ann" and irc.expect("315").params[1] == "#dev"


def test_setname_changes_the_real_name_and_tells_those_who_asked(connect):
    bob = connect("bob")
    port = bob.sock.getpeername()[1]
    ann = IrcClient(port)
    ann.register("ann", caps="setname")
    dora = IrcClient(port)
    dora.register("dora", caps="setname")
    cy = IrcClient(port)
    cy.register("cy")
    for irc in (ann, dora, cy):
        irc.send("JOIN #lobby")
        irc.expect("366")
    ann.send("SETNAME :Ann Smith")
    for irc in (ann, dora):
        line = irc.expect("SETNAME")
        assert line.source.startswith("ann!") and line.params == ["Ann Smith"]
    cy.send("WHOIS ann")
    assert cy.expect("311").params[-1] == "Ann Smith"
    assert not [line for line in cy.inbox if line.command == "SETNAME"]  # it did not ask
    ann.send("SETNAME :")
    assert ann.expect("FAIL").params[:2] == ["SETNAME", "INVALID_REALNAME"]


_MIXED_READ = (b"PRIVMSG #lobby :one\r\n"
               b"PRIVMSG #lobby :\x01ACTION two\x01\r\n"
               b"PRIVMSG #nowhere :three\r\n"
               b"PRIVMSG #lobby :four\r\n"
               b"PRIVMSG #lobby :caf\xe9 five\r\n"
               b"privmsg #lobby :six\r\n"
               b"PRIVMSG #attic :seven\r\n"
               b"PRIVMSG bob :eight\r\n"
               b"PRIVMSG #lobby :nine\r\n")


def _answers(irc: IrcClient, count: int) -> list[tuple[str, str]]:
    """The next ``count`` lines the sender gets: (command, what it is about)."""
    got: list[tuple[str, str]] = []
    while len(got) < count:
        line = irc.wait_for(lambda m: m.command in ("PRIVMSG", "NOTICE", "WARN", "403", "404"),
                            what=f"answer {len(got) + 1} of {count}")
        got.append((line.command, line.params[1]))  # (the text, the channel, the warning's code)
    return got


def test_a_read_of_plain_privmsgs_among_other_lines_is_answered_as_line_by_line(make_server):
    """A busy client's read: plain PRIVMSGs -- said in one pass of the chat path
    (``plain_privmsg``) -- among lines that are not (an action, a line of bad UTF-8, a
    lowercase command, a private message, channels the sender is not in).  The room
    sees every message in order; the sender gets each refusal and warning in order,
    and -- with echo-message, whose lines go one by one -- each echo in its place."""
    server = make_server(rate=0)
    bob = WireClient(server.port)
    bob.hello("bob")
    for nick, caps in (("ann", ""), ("cy", "echo-message")):
        irc = IrcClient(server.port)
        irc.register(nick, caps)
        irc.join("#lobby")
        irc.sock.sendall(_MIXED_READ)
        texts = ["one", "two", "four", "caf\ufffd five", "six", "nine"]
        for text in texts:
            chat = bob.expect(Chat, text=text, nick=nick)
            assert chat.action == (text == "two")
        assert bob.expect(Private, nick=nick).text == "eight"
        said = [c.text for c in bob.inbox if isinstance(c, Chat) and c.nick == nick]
        assert said == [], said  # (expect() took them in order; none was left behind)
        if not caps:
            assert _answers(irc, 3) == [("404", "#nowhere"), ("WARN", "INVALID_UTF8"), ("404", "#attic")]
        else:
            echoes = _answers(irc, 10)
            assert echoes == [("PRIVMSG", "one"), ("PRIVMSG", "\x01ACTION two\x01"), ("404", "#nowhere"),
                              ("PRIVMSG", "four"), ("WARN", "INVALID_UTF8"), ("PRIVMSG", "caf\ufffd five"),
                              ("PRIVMSG", "six"), ("404", "#attic"), ("PRIVMSG", "eight"), ("PRIVMSG", "nine")]
        irc.close()
    bob.close()
