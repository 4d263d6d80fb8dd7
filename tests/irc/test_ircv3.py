"""IRCv3 and modern-IRC extras of the IRC door, end to end over loopback: labeled
responses, MONITOR, msgid on direct messages, server notices addressed to their
reader, STATS and LIST's ELIST conditions."""

from __future__ import annotations

import time

from chatroom.protocol import Bye, Chat, Join, Joined, ModAction, Moderate, Notice, Op, Private, Say
from tests.irc.client import IrcClient
from tests.wire import WireClient

LABELED = "echo-message batch labeled-response message-tags"


def answer(client: IrcClient, line: str) -> list[str]:
    """The raw lines ``client`` gets for ``line`` (sent with a label), up to the end of
    the labeled answer."""
    client.raw.clear()
    client.inbox.clear()
    client.send(line)
    client.wait_for(lambda m: "label" in m.tags and m.command != "BATCH" or
                    m.command == "BATCH" and m.params[0].startswith("-"), what="the labeled answer")
    return [raw.decode() for raw in client.raw]


def test_a_labeled_command_gets_its_answer_labeled_and_nobody_else_sees_the_label(server):
    foo, bar = IrcClient(server.port), IrcClient(server.port)
    foo.register("foo", caps=LABELED)
    bar.register("bar", caps=LABELED)
    foo.send("PING warm")
    foo.expect("PONG")
    # One line: the line itself carries the label (the echo of a PRIVMSG included).
    lines = answer(foo, "@label=a1 PRIVMSG bar :hi")
    assert len(lines) == 1 and lines[0].startswith("@label=a1;") and " PRIVMSG bar :hi" in lines[0]
    got = bar.expect("PRIVMSG", "bar", "hi")
    assert "label" not in got.tags and got.tags["msgid"].startswith("p")
    # Nothing to say: an ACK.
    assert answer(foo, "@label=a2 PONG whatever") == [f"@label=a2 :{server.display_name} ACK"]
    # Several lines: one labeled batch around them all.
    lines = answer(foo, "@label=a4 JOIN #xyz")
    start, *inside, end = lines
    ref = start.split()[-2][1:]
    assert start.startswith("@label=a4 ") and start.endswith(f"BATCH +{ref} labeled-response")
    assert all(line.startswith(f"@batch={ref}") for line in inside)
    assert any(" JOIN #xyz" in line for line in inside) and any(" 366 " in line for line in inside)
    assert end.endswith(f"BATCH -{ref}")
    # An unknown command's 421 is labeled too; an unlabeled line is not.
    (unknown,) = answer(foo, "@label=a5 FROB")
    assert unknown.startswith("@label=a5 ") and " 421 foo FROB " in unknown
    foo.send("PING plain")
    assert "label" not in foo.expect("PONG").tags


def test_monitor_tells_of_arrivals_departures_and_renames_at_every_door(server):
    ann = IrcClient(server.port)
    ann.register("ann")
    tokens = " ".join(" ".join(ann.expect("005").params[1:-1]) for _ in range(2))
    assert "MONITOR=100" in tokens and "ELIST=MNU" in tokens
    ann.send("MONITOR + Bob,cy")
    assert ann.expect("731").params[1].split(",") == ["Bob", "cy"]  # neither is here yet
    bob = WireClient(server.port)  # a framed client: the same core tells of it
    bob.hello("bob")
    assert ann.expect("730").params[1] == "bob!bob@chatroom"
    cy = IrcClient(server.port)
    cy.register("cy")
    assert ann.expect("730").params[1] == "cy!cy@chatroom"
    cy.send("NICK CY", "NICK cy")  # only its case: the same nick, nobody is told
    cy.expect("NICK", "cy")
    cy.send("NICK cyd")  # the watched nick goes; the new one nobody watches
    assert ann.expect("731").params[1] == "cy"
    assert not [line for line in ann.inbox if line.command in ("730", "731")]
    ann.send("MONITOR L")
    assert set(ann.expect("732").params[1].split(",")) == {"Bob", "cy"}
    ann.expect("733")
    ann.send("MONITOR S")
    assert ann.expect("730").params[1] == "bob!bob@chatroom" and ann.expect("731").params[1] == "cy"
    ann.send("MONITOR - cy", "PING unwatched")
    ann.expect("PONG")
    cy.send("NICK cy")
    cy.expect("NICK", "cy")
    bob.send(Bye(reason="quit"))  # (a dropped connection is held for a resume first: still here)
    assert ann.expect("731").params[1] == "bob"
    ann.send("PING after")
    ann.expect("PONG")
    assert not [line for line in ann.inbox if line.command == "730"]  # cy is no longer watched
    ann.send("MONITOR C", "MONITOR L")
    assert ann.expect("733") and not any(line.command == "732" for line in ann.inbox)
    ann.send("MONITOR + " + ",".join(f"n{i}" for i in range(105)))
    full = ann.expect("734")
    assert full.params[1] == "100" and full.params[2].split(",") == [f"n{i}" for i in range(100, 105)]


def test_a_server_notice_is_addressed_to_its_reader(make_server):
    server = make_server()
    op = WireClient(server.port)
    op.hello("op")
    op.send(Op(token=server.op_token))
    op.expect(Notice)
    ann = IrcClient(server.port)
    ann.register("ann")
    op.send(Moderate(action=ModAction.MUTE, target="ann", reason="calm down"))
    notice = ann.expect("NOTICE")
    assert notice.params[0] == "ann" and "muted" in notice.params[1]


def test_a_direct_message_has_one_msgid_at_both_ends_and_rooms_keep_theirs(connect):
    bob = connect("bob")
    ann, cy = IrcClient(bob.sock.getpeername()[1]), IrcClient(bob.sock.getpeername()[1])
    ann.register("ann", caps="message-tags echo-message")
    cy.register("cy", caps="message-tags")
    ann.send("PRIVMSG cy :one", "PRIVMSG cy :one")
    echoes = [ann.expect("PRIVMSG", "cy") for _ in range(2)]
    got = [cy.expect("PRIVMSG", "cy") for _ in range(2)]
    assert [e.tags["msgid"] for e in echoes] == [g.tags["msgid"] for g in got]
    assert len({g.tags["msgid"] for g in got}) == 2  # the same text twice: two messages
    ann.join("#lobby")
    bob.send(Say(id="1", text="room line"))
    assert ann.expect("PRIVMSG", "#lobby").tags["msgid"].endswith(".lobby")


def test_stats_and_list_conditions(server):
    ann, bob = IrcClient(server.port), IrcClient(server.port)
    ann.register("ann")
    bob.register("bob")
    ann.join("#chan1")
    ann.join("#chan2")
    bob.join("#chan2")

    def listed(query: str) -> set[str]:
        bob.inbox.clear()
        bob.send(f"LIST {query}")
        bob.expect("323")
        return {line.params[1] for line in bob.inbox if line.command == "322"} - {"#lobby"}

    assert listed(">1") == {"#chan2"}
    assert listed("<2") == {"#chan1"}
    assert listed("*an1") == {"#chan1"}
    assert listed("!*an1") == {"#chan2"}
    assert listed("#ch*,<2") == {"#chan1"}
    assert listed("#chan2") == {"#chan2"}
    ann.send("STATS u")
    up = ann.expect("242")
    assert up.params[1].startswith("Server Up 0 days 0:00:")
    assert ann.expect("219").params[1] == "u"
    ann.send("STATS")
    assert ann.expect("461")


def test_client_only_tags_reach_those_who_read_tags_with_the_message_or_alone(connect):
    bob = connect("bob")  # a framed member: the chat, never a message of tags alone
    port = bob.sock.getpeername()[1]
    ann, cy, dee = IrcClient(port), IrcClient(port), IrcClient(port)
    ann.register("ann", caps="message-tags echo-message")
    cy.register("cy", caps="message-tags")
    dee.register("dee")  # no message-tags: the text, no tags
    for c in (ann, cy, dee):
        c.join("#lobby")
    ann.send("@+draft/reply=12.lobby;+example=a\\sb;plain=x PRIVMSG #lobby :agreed")
    got = cy.expect("PRIVMSG", "#lobby", "agreed")
    assert got.tags["+draft/reply"] == "12.lobby" and got.tags["+example"] == "a b" and "plain" not in got.tags
    assert ann.expect("PRIVMSG", "#lobby", "agreed").tags["+example"] == "a b"  # the echo too
    assert dee.expect("PRIVMSG", "#lobby", "agreed").tags == {}
    assert bob.expect(Chat, text="agreed").nick == "ann"
    ann.send("@+draft/react=👍;+draft/reply=12.lobby TAGMSG #lobby", "@+draft/react=🎉 TAGMSG cy")
    react = cy.expect("TAGMSG", "#lobby")
    assert react.source.startswith("ann!") and react.tags["+draft/react"] == "👍" and react.tags["msgid"]
    assert ann.expect("TAGMSG", "#lobby").tags["+draft/react"] == "👍"
    direct = cy.expect("TAGMSG", "cy")
    assert direct.tags["+draft/react"] == "🎉"
    ann.send("@+draft/react=x TAGMSG nobody")
    assert ann.expect("401").params[1] == "nobody"
    dee.send("PING end")
    dee.expect("PONG")
    assert not [line for line in dee.inbox if line.command == "TAGMSG"]  # (it reads no tags)
    dee.send("CAP REQ :message-tags")  # asked for after registration: it counts at once
    dee.expect("CAP")
    ann.send("@+draft/reply=13.lobby PRIVMSG #lobby :now you see it")
    assert dee.expect("PRIVMSG", "#lobby", "now you see it").tags["+draft/reply"] == "13.lobby"


def test_a_notice_stays_a_notice_for_irc_clients_and_is_a_message_for_the_others(connect):
    bob = connect("bob")
    port = bob.sock.getpeername()[1]
    ann, cy = IrcClient(port), IrcClient(port)
    ann.register("ann", caps="echo-message")
    cy.register("cy")
    for c in (ann, cy):
        c.join("#lobby")
    ann.send("NOTICE #lobby :the build is green", "NOTICE cy :psst")
    assert cy.expect("NOTICE", "#lobby", "the build is green").source.startswith("ann!")
    assert ann.expect("NOTICE", "#lobby", "the build is green")  # the echo, as sent
    assert cy.expect("NOTICE", "cy", "psst")
    assert bob.expect(Chat, text="the build is green").nick == "ann"  # a framed client: a message
    cy.send("AWAY :lunch", "PING away")
    cy.expect("PONG")
    ann.send("PING sync")
    ann.expect("PONG")
    ann.inbox.clear()
    ann.send("NOTICE cy :are you there", "PRIVMSG cy :hello?", "PING done")
    ann.expect("PONG")
    assert [line.command for line in ann.inbox if line.command in ("301", "NOTICE", "PRIVMSG")] == \
        ["NOTICE", "PRIVMSG", "301"]  # (its echoes; only the PRIVMSG is answered with 301)


MULTI = "message-tags batch echo-message server-time labeled-response draft/multiline"


def test_a_multiline_batch_is_one_message_at_every_door(connect):
    bob = connect("bob")  # framed: one chat with the lines
    port = bob.sock.getpeername()[1]
    ann, cy, dee = IrcClient(port), IrcClient(port), IrcClient(port)
    ann.send("CAP LS 302")
    assert "draft/multiline=max-bytes=4000,max-lines=100" in ann.expect("CAP").params[-1].split()
    ann.register("ann", caps=MULTI)
    cy.register("cy", caps=MULTI)
    dee.register("dee", caps="message-tags server-time")  # no multiline: one PRIVMSG per line
    for c in (ann, cy, dee):
        c.join("#lobby")
    ann.send("@label=m1;+draft/reply=1.lobby BATCH +b1 draft/multiline #lobby", "@batch=b1 PRIVMSG #lobby :first",
             "@batch=b1 PRIVMSG #lobby :second, cut ", "@batch=b1;draft/multiline-concat PRIVMSG #lobby :and joined",
             "BATCH -b1")
    chat = bob.expect(Chat, nick="ann")
    assert chat.text == "first\nsecond, cut and joined"
    start = cy.expect("BATCH")
    ref = start.params[0][1:]
    assert start.params[1:] == ["draft/multiline", "#lobby"] and start.tags["msgid"] == f"{chat.seq}.lobby"
    assert start.tags["+draft/reply"] == "1.lobby" and start.tags["time"]
    lines = [cy.expect("PRIVMSG", "#lobby") for _ in range(2)]
    assert [(m.params[1], m.tags.get("batch")) for m in lines] == [("first", ref), ("second, cut and joined", ref)]
    assert cy.expect("BATCH").params == [f"-{ref}"]
    assert [dee.expect("PRIVMSG", "#lobby").params[1] for _ in range(2)] == ["first", "second, cut and joined"]
    echo = ann.expect("BATCH")  # the echo, labeled: one batch (the label on its start)
    assert echo.tags["label"] == "m1" and echo.params[1] == "draft/multiline"
    # A line too long for one PRIVMSG reaches multiline readers cut, with concat, and whole elsewhere.
    long = ("word " * 150).rstrip()
    ann.send("BATCH +b2 draft/multiline #lobby", f"@batch=b2 PRIVMSG #lobby :{long[:400]}",
             f"@batch=b2;draft/multiline-concat PRIVMSG #lobby :{long[400:]}", "BATCH -b2")
    assert bob.expect(Chat, nick="ann").text == long
    cy.expect("BATCH")
    parts = [cy.expect("PRIVMSG", "#lobby"), cy.expect("PRIVMSG", "#lobby")]
    assert "draft/multiline-concat" in parts[1].tags and "".join(p.params[1] for p in parts) == long
    # Refused: over the limits, a blank concat line, a stray batch end; nothing is sent.
    ann.send("BATCH +b3 draft/multiline #lobby", *[f"@batch=b3 PRIVMSG #lobby :{'x' * 400}"] * 11, "BATCH -b3")
    assert ann.expect("FAIL").params[:3] == ["BATCH", "MULTILINE_MAX_BYTES", "4000"]
    ann.send("BATCH +b4 draft/multiline #lobby", "@batch=b4 PRIVMSG #lobby :hi",
             "@batch=b4;draft/multiline-concat PRIVMSG #lobby :", "BATCH -b4")
    assert ann.expect("FAIL").params[:2] == ["BATCH", "MULTILINE_INVALID"]
    ann.send("BATCH -nope")
    assert ann.expect("FAIL").params[:2] == ["BATCH", "MULTILINE_INVALID"]
    ann.send("@label=m9 BATCH +b5 draft/multiline")  # (no target) a labeled start refused: the FAIL is labeled
    assert ann.expect("FAIL").tags["label"] == "m9"
    bob.send(Say(id="after", text="after"))
    assert bob.expect(Chat, nick="bob").text == "after"  # (no chat of the refused batches came before it)
    assert not [m for m in bob.inbox if isinstance(m, Chat) and m.nick == "ann"]


def test_chathistory_pages_a_channel_by_msgid_and_by_time(make_server):
    server = make_server(history_size=4)  # (pages of at most 4; older ones come from the store)
    bob = WireClient(server.port)
    bob.hello("bob")
    chats = []
    for n in range(10):  # each in a millisecond of its own (server-time's precision)
        bob.send(Say(id=str(n), text=f"m{n}"))
        chats.append(bob.expect(Chat, text=f"m{n}"))
        spin_until = time.time() + 0.003  # (the server runs in this process: the same clock)
        while time.time() < spin_until:
            pass
    seq = {c.text: c.seq for c in chats}
    ann = IrcClient(server.port)
    ann.register("ann", caps="draft/chathistory batch server-time message-tags labeled-response")
    tokens = " ".join(" ".join(ann.expect("005").params[1:-1]) for _ in range(2))
    assert "CHATHISTORY=4" in tokens and "MSGREFTYPES=msgid,timestamp" in tokens
    ann.join("#lobby")

    def page(query: str) -> list[str]:
        ann.inbox.clear()
        ann.send(f"CHATHISTORY {query}")
        start = ann.expect("BATCH")
        assert start.params[1:] == ["chathistory", start.params[2]] and start.params[0].startswith("+")
        ref = start.params[0][1:]
        texts = []
        while True:
            line = ann.wait_for(lambda m: m.tags.get("batch") == ref or m.params[:1] == [f"-{ref}"])
            if line.command == "BATCH":
                return texts
            texts.append(line.params[1])

    assert not [line for line in ann.inbox if line.command == "PRIVMSG"]  # no push on JOIN: it asks
    mid = f"msgid={seq['m5']}.lobby"
    assert page("LATEST #lobby * 3") == ["m7", "m8", "m9"]
    assert page(f"LATEST #lobby {mid} 9") == ["m6", "m7", "m8", "m9"]  # (at most 4: the page size)
    assert page(f"BEFORE #lobby {mid} 2") == ["m3", "m4"]
    assert page(f"AFTER #lobby {mid} 2") == ["m6", "m7"]
    assert page(f"AROUND #lobby {mid} 4") == ["m3", "m4", "m5", "m6"]
    assert page(f"BETWEEN #lobby msgid={seq['m1']}.lobby {mid} 4") == ["m2", "m3", "m4"]
    assert page(f"BETWEEN #lobby {mid} msgid={seq['m1']}.lobby 2") == ["m3", "m4"]  # backwards: the newest first
    ann.inbox.clear()
    ann.send(f"CHATHISTORY AFTER #lobby {mid} 1")
    (m6,) = [ann.expect("PRIVMSG", "#lobby")]
    stamp = m6.tags["time"]
    assert m6.tags["msgid"] == f"{seq['m6']}.lobby"
    assert page(f"BEFORE #lobby timestamp={stamp} 2") == ["m4", "m5"]
    assert page(f"AFTER #lobby timestamp={stamp} 2") == ["m7", "m8"]
    assert page("BEFORE #lobby timestamp=2000-01-01T00:00:00.000Z 3") == []
    assert page("AFTER #lobby timestamp=2000-01-01T00:00:00.000Z 2") == ["m0", "m1"]
    assert page("LATEST bob * 5") == []  # direct messages are not kept
    ann.send("CHATHISTORY LATEST #elsewhere * 5")
    assert ann.expect("FAIL").params[:3] == ["CHATHISTORY", "INVALID_TARGET", "LATEST"]
    ann.send("CHATHISTORY BEFORE #lobby msgid=zz 5", "CHATHISTORY AFTER #lobby * 0")
    assert ann.expect("FAIL").params[1] == "INVALID_MSGREFTYPE"
    assert ann.expect("FAIL").params[1] == "INVALID_PARAMS"
    ann.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z 10")
    ann.expect("BATCH")
    target = ann.expect("CHATHISTORY")
    assert target.params[:2] == ["TARGETS", "#lobby"] and target.params[2].endswith("Z")
    ann.send("@label=L1 CHATHISTORY LATEST #lobby * 1")  # a labeled page: the label on its batch
    assert ann.wait_for(lambda m: m.command == "BATCH" and m.tags.get("label") == "L1").params[1] == "chathistory"


def test_standard_replies_for_refusals_without_a_numeric_and_for_being_slowed(make_server):
    server = make_server(rate=60, burst=3)
    modern, old = IrcClient(server.port), IrcClient(server.port)
    modern.register("ann", caps="standard-replies")
    old.register("bob")
    for c in (modern, old):
        c.join("#dev")
        c.send("TOPIC #dev :" + "x" * 400)
    fail = modern.expect("FAIL")
    assert fail.params[:2] == ["TOPIC", "TEXT_TOO_LONG"] and "300" in fail.params[-1]
    assert "300" in old.expect("NOTICE").params[-1]  # without the capability: a NOTICE, as before
    modern.send(*[f"PRIVMSG #dev :line {n}" for n in range(6)])  # past the burst: slowed, and told so once
    note = modern.expect("NOTE")
    assert note.params[:2] == ["*", "RATE_LIMITED"]
    assert [old.expect("PRIVMSG", "#dev").params[1] for _ in range(6)] == [f"line {n}" for n in range(6)]
    assert not [line for line in modern.inbox if line.command == "NOTE"]  # (once a minute, not per line)


def test_a_message_to_a_channels_operators_reaches_them_at_every_door(make_server):
    server = make_server()
    opa, bob, cy, dee = (IrcClient(server.port) for _ in range(4))
    opa.register("opa")  # makes #dev: runs it
    tokens = " ".join(" ".join(opa.expect("005").params[1:-1]) for _ in range(2))
    assert "STATUSMSG=@+" in tokens
    opa.join("#dev")
    for c, nick in ((bob, "bob"), (cy, "cy"), (dee, "dee")):
        c.register(nick)
        c.join("#dev")
    fred = WireClient(server.port)  # a framed server operator: runs every room
    fred.hello("fred")
    fred.send(Op(token=server.op_token))
    fred.expect(Notice)
    fred.send(Join(room="dev"))
    fred.expect(Joined, room="dev")
    opa.send("MODE #dev +v bob")
    bob.expect("MODE", "#dev")
    dee.send("PRIVMSG @#dev :ops only", "PRIVMSG +#dev :voices too", "PRIVMSG #dev :everyone")
    assert opa.expect("PRIVMSG", "@#dev").params[1] == "ops only"
    assert opa.expect("PRIVMSG", "+#dev").params[1] == "voices too"
    assert [m.text for m in (fred.expect(Private, to="@#dev"), fred.expect(Private, to="+#dev"))] == \
        ["ops only", "voices too"]
    assert bob.expect("PRIVMSG", "+#dev").params[1] == "voices too"
    cy.expect("PRIVMSG", "#dev", "everyone")
    bob.expect("PRIVMSG", "#dev", "everyone")
    assert not [m for c in (bob, cy) for m in c.inbox if m.params[:1] == ["@#dev"]]
    assert not [m for m in cy.inbox if m.params[:1] == ["+#dev"]]
    outsider = IrcClient(server.port)
    outsider.register("eve")
    outsider.send("PRIVMSG @#dev :let me in")
    assert outsider.expect("404").params[1] == "@#dev"
