"""The web door: pages, the WebSocket, and a real browser in the same room as a
terminal client."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import socket
import struct

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chatroom.protocol import (
    Chat,
    FrameDecoder,
    Hello,
    Presence,
    PresenceEvent,
    Say,
    Welcome,
    decode_message,
    encode_message,
)
from chatroom.web.pages import CSP
from tests.fuzzing import ws_frame
from tests.polling import wait_until
from tests.wire import WireClient


def get(port: int, path: str) -> http.client.HTTPResponse:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    return c.getresponse()


def test_the_page_is_served_with_a_strict_policy_and_nothing_else_is(server):
    page = get(server.port, "/?nick=ann&room=dev")
    body = page.read()
    assert page.status == 200 and b'<script type="module" src="/app.js">' in body
    assert page.getheader("Content-Security-Policy") == CSP and "script-src 'self'" in CSP
    assert "unsafe-inline" not in CSP and page.getheader("X-Content-Type-Options") == "nosniff"
    for path in ("/app.js", "/framing.js", "/session.js", "/render.js", "/style.css"):
        assert get(server.port, path).status == 200
    assert get(server.port, "/../../etc/passwd").status == 404
    assert get(server.port, "/static/app.js").status == 404


def test_a_websocket_carries_one_frame_per_message_and_checks_its_origin(server):
    port = server.port
    bob = WireClient(port)
    bob.hello("bob")
    with connect(f"ws://127.0.0.1:{port}/ws", origin=f"http://127.0.0.1:{port}") as ws:
        ws.send(encode_message(Hello(version="1.3", nick="webann")))
        (frame,) = FrameDecoder().feed(ws.recv(timeout=10))
        assert isinstance(decode_message(frame), Welcome)
        ws.send(encode_message(Say(id="1", text="hello from a browser")))
        assert bob.expect(Chat, text="hello from a browser").nick == "webann"
        frame = encode_message(Say(id="2", text="in three fragments"))
        ws.send([frame[:3], frame[3:10], frame[10:]])  # one message, fragmented as a browser may
        assert bob.expect(Chat, text="in three fragments").nick == "webann"
        bob.send(Say(id="b", text="hello web"))
        texts = []
        while "hello web" not in texts:
            for f in FrameDecoder().feed(ws.recv(timeout=10)):
                m = decode_message(f)
                texts.append(getattr(m, "text", ""))
    with pytest.raises(InvalidStatus) as refused:
        with connect(f"ws://127.0.0.1:{port}/ws", origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    bob.close()


def _ws_frame(payload: bytes, *, mask: bool = True) -> bytes:
    """A final binary WebSocket frame, as a client sends it (masked) or must not (unmasked)."""
    return ws_frame(0x2, payload, mask=mask)


def _upgrade(port: int, origin: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n").encode()


def _all_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_what_follows_a_websocket_request_in_the_same_packet_waits_for_its_answer(server, caplog):
    """websockets parses frames behind a request before it is answered: a refused
    request's frames must not count, and broken ones must close cleanly (found by a
    fuzzer: an assertion inside websockets, and a session fed after its stream broke)."""
    port = server.port
    bob = WireClient(port)
    bob.hello("bob")
    ours = f"http://127.0.0.1:{port}"
    hello = encode_message(Hello(version="1.3", nick="sneak"))
    with socket.create_connection(("127.0.0.1", port)) as s:  # another site's page, pipelining
        s.sendall(_upgrade(port, "http://evil.example") + _ws_frame(hello)
                  + _ws_frame(encode_message(Say(id="1", text="sneaked in"))))
        assert _all_until_closed(s).startswith(b"HTTP/1.1 403 ")
    with socket.create_connection(("127.0.0.1", port)) as s:  # a frame no client may send, behind the request
        s.sendall(_upgrade(port, ours) + _ws_frame(hello, mask=False))
        assert b"101" not in _all_until_closed(s)
    with socket.create_connection(("127.0.0.1", port)) as s:  # a broken frame of ours, then more
        s.sendall(_upgrade(port, ours) + _ws_frame(encode_message(Hello(version="1.3", nick="webby")))
                  + _ws_frame(struct.pack("!I", 5) + b"{bad}")
                  + _ws_frame(encode_message(Say(id="2", text="after the break"))))
        answer = _all_until_closed(s)
        assert b"101 Switching Protocols" in answer and b"malformed_header" in answer
    bob.send(Say(id="b", text="still here"))
    assert bob.expect(Chat, text="still here").nick == "bob"
    assert not [m for m in bob.inbox if isinstance(m, Chat) and m.text in ("sneaked in", "after the break")]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "an internal error was logged"
    bob.close()


def _server_messages(data: bytes) -> tuple[list[bytes], list[tuple[int, bytes]]]:
    """A server's (unmasked) WebSocket stream after its HTTP answer: the payloads of its
    binary messages, and its other frames as (opcode, payload)."""
    data = data[data.index(b"\r\n\r\n") + 4:]
    binary, other, pos = [], [], 0
    while pos < len(data):
        opcode, size, pos = data[pos] & 0x0F, data[pos + 1] & 0x7F, pos + 2
        if size == 126:
            size, pos = struct.unpack_from("!H", data, pos)[0], pos + 2
        elif size == 127:
            size, pos = struct.unpack_from("!Q", data, pos)[0], pos + 8
        payload, pos = data[pos:pos + size], pos + size
        (binary.append(payload) if opcode == 0x2 else other.append((opcode, payload)))
    return binary, other


def test_a_burst_of_messages_in_one_read_is_one_run_and_a_text_message_ends_it(server):
    """Binary messages read at once are fed to the session as one read of a terminal
    client's is: one run under the hub lock, one fan-out -- so the sender's echoes
    reach it before the acks that follow them (fed message by message, each echo was
    followed by its ack).  (BURST: within the rate limit's burst of 20, the hello's
    token included.)  A text message behind them is a
    mistake (close 1003), after the twenty are in the room."""
    port, BURST = server.port, 15
    bob = WireClient(port)
    bob.hello("bob")
    says = b"".join(_ws_frame(encode_message(Say(id=str(i), text=f"burst {i}"))) for i in range(BURST))
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(_upgrade(port, f"http://127.0.0.1:{port}")
                  + _ws_frame(encode_message(Hello(version="1.3", nick="webby"))))
        welcome = b""
        while b'"type":"welcome"' not in welcome:  # (the burst after the welcome: judged as a member's)
            welcome += s.recv(65536)
        s.sendall(says + ws_frame(0x1, b"not a frame of ours"))
        binary, other = _server_messages(welcome + _all_until_closed(s))
    kinds = [(decode_message(f).TYPE, getattr(decode_message(f), "id", None))
             for payload in binary for f in FrameDecoder().feed(payload)]
    said = [k for k in kinds if k[0] in ("chat", "ack")]
    assert said == [("chat", str(i)) for i in range(BURST)] + [("ack", str(i)) for i in range(BURST)]
    assert other and other[-1][0] == 0x8 and struct.unpack("!H", other[-1][1][:2])[0] == 1003
    for i in range(BURST):
        assert bob.expect(Chat, text=f"burst {i}").nick == "webby"
    bob.close()


def test_a_ping_amid_a_burst_is_answered_and_the_burst_goes_on(server):
    """The door cuts a browser's binary messages itself (``web/frames.py``) and hands
    websockets the first frame that is anything else, with everything after it: a
    ping amid a burst gets its pong, the messages on both sides of it reach the room
    in order (one longer than 125 bytes: a 16-bit length), and a close ends it
    cleanly."""
    port = server.port
    bob = WireClient(port)
    bob.hello("bob")
    texts = [f"around the ping {i}" + ("!" * 150 if i == 1 else "") for i in range(6)]
    says = [_ws_frame(encode_message(Say(id=str(i), text=t))) for i, t in enumerate(texts)]
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(_upgrade(port, f"http://127.0.0.1:{port}"))
        answer = b""
        while b"\r\n\r\n" not in answer:  # (the lane opens after a request that ended its read)
            answer += s.recv(65536)
        s.sendall(_ws_frame(encode_message(Hello(version="1.3", nick="webby"))))
        while b'"type":"welcome"' not in answer:
            answer += s.recv(65536)
        s.sendall(b"".join(says[:3]) + ws_frame(0x9, b"are you there") + b"".join(says[3:])
                  + ws_frame(0x8, struct.pack("!H", 1000)))
        binary, other = _server_messages(answer + _all_until_closed(s))
    assert (0xA, b"are you there") in other
    assert other[-1][0] == 0x8 and struct.unpack("!H", other[-1][1][:2])[0] == 1000
    acks = [decode_message(f) for payload in binary for f in FrameDecoder().feed(payload)]
    assert [m.id for m in acks if m.TYPE == "ack"] == [str(i) for i in range(6)]
    for text in texts:
        assert bob.expect(Chat, text=text).nick == "webby"
    bob.close()


def test_a_browser_joins_from_a_link_and_talks_with_a_terminal_client(server):
    from tests.web.browser import Browser

    bob = WireClient(server.port)
    bob.hello("bob")
    bob.send(Say(id="0", text="<b>not bold</b> said before"))
    bob.expect(Chat)
    browser = Browser(f"http://127.0.0.1:{server.port}/?nick=webann&room=lobby")
    try:
        assert bob.expect(Presence, event=PresenceEvent.JOIN, timeout=30).nick == "webann"
        messages = "document.getElementById('rooms').textContent"
        browser.wait(f"{messages}.includes('<b>not bold</b> said before')", what="the history, as text")
        assert browser.eval("document.querySelectorAll('#rooms b').length") == 0  # never HTML
        assert browser.eval("getComputedStyle(document.getElementById('join')).display") == "none"  # joined
        bob.send(Say(id="1", text="hello webann"))
        browser.wait(f"{messages}.includes('hello webann')", what="bob's line")
        assert browser.eval("document.querySelector('#rooms li:last-child').className") == "mention"
        browser.eval("document.getElementById('text').value = 'hi bob, from chromium';"
                     "document.getElementById('say').requestSubmit(); true")
        assert bob.expect(Chat, text="hi bob, from chromium", timeout=20).nick == "webann"
        browser.wait(f"{messages}.includes('hi bob, from chromium') && !{messages}.includes('(sending)')",
                     what="our own line, acknowledged")
        assert "bob" in browser.eval("document.getElementById('members').textContent")
        # A second room gets a tab; news in the room not on screen marks its tab.
        browser.eval("document.getElementById('text').value = '/join dev';"
                     "document.getElementById('say').requestSubmit(); true")
        browser.wait("document.getElementById('tabs').textContent === 'lobbydev'", what="the dev tab")
        browser.wait("document.querySelector('#tabs button:last-child').getAttribute('aria-selected') === 'true'",
                     what="dev on screen")
        bob.send(Say(id="2", text="webann: lunch?", room="lobby"))
        browser.wait("document.querySelector('#tabs button').className === 'highlight'", what="the lobby marked")
        browser.eval("document.querySelector('#tabs button').click(); true")  # back to the lobby
        assert browser.eval("document.querySelector('#tabs button').className") == ""
    finally:
        browser.close()
        bob.close()


def test_the_pages_framing_module_writes_the_bytes_protocol_md_specifies(server):
    """framing.js in a real browser against the Python codec: the same bytes both ways,
    including a two-byte UTF-8 character and a body."""
    from tests.web.browser import Browser

    browser = Browser(f"http://127.0.0.1:{server.port}/")
    try:
        browser.wait("location.protocol === 'http:' && document.readyState === 'complete'", what="the page")
        hexed = browser.eval("""import(location.origin + '/framing.js').then(({ encodeFrame }) =>
            Array.from(new Uint8Array(encodeFrame({type: 'say', id: 'm1', text: 'héllo'})))
                 .map((b) => b.toString(16).padStart(2, '0')).join(''))""")
        assert bytes.fromhex(hexed) == encode_message(Say(id="m1", text="héllo"))
        python_frame = encode_message(Say(id="m2", text="ça va"))
        decoded = browser.eval(f"""import(location.origin + '/framing.js').then(({{ decodeFrame }}) =>
            decodeFrame(new Uint8Array([{",".join(map(str, python_frame))}]).buffer).header)""")
        assert decoded == {"type": "say", "id": "m2", "text": "ça va"}
        with_body = browser.eval("""import(location.origin + '/framing.js').then(({ encodeFrame, decodeFrame }) => {
            const f = decodeFrame(encodeFrame({type: 'file_chunk', transfer: 1, round: 1, offset: 0},
                                              new Uint8Array([1, 2, 3]).buffer));
            return [f.header.body, Array.from(new Uint8Array(f.body))]; })""")
        assert with_body == [3, [1, 2, 3]]
    finally:
        browser.close()


def test_a_browser_proves_the_room_password_without_sending_it(make_server):
    from tests.web.browser import Browser

    server = make_server(password="correct horse")
    browser = Browser(f"http://127.0.0.1:{server.port}/?nick=webpw")
    try:
        messages = "document.getElementById('rooms').textContent"
        browser.wait("document.getElementById('problem').textContent.includes('needs a password')",
                     what="the page to ask for the password")
        browser.eval("document.getElementById('password').value = 'correct horse';"
                     "document.getElementById('join').requestSubmit(); true")
        browser.wait(f"{messages}.includes('you are in lobby')", timeout=30, what="the password proof")
        assert "webpw" in server.hub.state.nicks
    finally:
        browser.close()
    wrong = Browser(f"http://127.0.0.1:{server.port}/")
    try:
        wrong.wait("location.protocol === 'http:' && document.readyState === 'complete'", what="the page")
        wrong.eval("document.getElementById('nick').value = 'guesser';"
                   "document.getElementById('password').value = 'wrong';"
                   "document.getElementById('join').requestSubmit(); true")
        wrong.wait("document.getElementById('problem').textContent.includes('wrong password')", timeout=30,
                   what="the refusal")
        assert "guesser" not in server.hub.state.nicks
        # Not a dead end: the form is back, the nick kept, no tab or line "sending" left over ...
        assert wrong.eval("!document.getElementById('join').hidden && document.getElementById('say').hidden")
        assert wrong.eval("document.getElementById('nick').value") == "guesser"
        assert wrong.eval("document.querySelectorAll('#tabs button').length") == 0
        # ... and the right password, typed again, gets in.
        wrong.eval("document.getElementById('password').value = 'correct horse';"
                   "document.getElementById('join').requestSubmit(); true")
        wrong.wait("document.getElementById('rooms').textContent.includes('you are in lobby')", timeout=30,
                   what="the second try")
        assert wrong.eval("document.getElementById('problem').hidden")
    finally:
        wrong.close()


def test_scrolling_to_the_top_loads_older_history_a_page_at_a_time(make_server):
    from tests.web.browser import Browser

    server = make_server(rate=0, history_size=20)
    bob = WireClient(server.port)
    bob.hello("bob")
    for n in range(70):
        bob.send(Say(id=str(n), text=f"old {n}"))
    bob.collect(Chat, 70)
    browser = Browser(f"http://127.0.0.1:{server.port}/?nick=reader")
    try:
        messages = "document.getElementById('rooms').textContent"
        browser.wait(f"{messages}.includes('old 69')", what="the history of the join")
        assert not browser.eval(f"{messages}.includes('old 49 ')")  # only the last 20 came
        for _ in range(6):  # scroll to the top until the beginning is there
            browser.eval("{ const b = document.querySelector('#rooms ol:not([hidden])'); b.scrollTop = 0; "
                         "b.dispatchEvent(new Event('scroll')); } true")
            try:
                browser.wait(f"{messages}.includes('beginning of lobby')", timeout=2, what="older pages")
                break
            except AssertionError:
                continue
        texts = browser.eval("Array.from(document.querySelectorAll('#rooms li')).map((li) => li.textContent)")
        olds = [t.split("old ")[1] for t in texts if "old " in t]
        assert olds == [str(n) for n in range(70)]  # every message once, in order
        assert texts[0].endswith("beginning of lobby")
    finally:
        browser.close()
        bob.close()


def test_a_browser_accepts_a_shared_file_and_checks_its_sha256(server, tmp_path):
    """A terminal client offers 300 KiB (more than the credit window: acks must flow);
    the page accepts it, verifies its SHA-256 and offers the download; the sender hears
    it was received."""
    from chatroom.client.connection import ChatClient
    from chatroom.client.transfers import TransferChanged
    from tests.polling import Events
    from tests.web.browser import Browser

    events = Events()
    alice = ChatClient("127.0.0.1", server.port, "alice", on_event=events, downloads=tmp_path / "dl")
    alice.connect()
    browser = Browser(f"http://127.0.0.1:{server.port}/?nick=webann")
    try:
        page = "document.getElementById('rooms').textContent"
        browser.wait(f"{page}.includes('you are in lobby')", what="the page to join")
        source = tmp_path / "notes.bin"
        source.write_bytes(bytes(range(256)) * 1200)
        alice.files.offer(source)
        browser.wait(f"{page}.includes('alice offers “notes.bin” (300.0 KiB)')", what="the offer")
        browser.eval("Array.from(document.querySelectorAll('#rooms button')).find((b) => b.textContent === "
                     "'Accept').click(); true")
        browser.wait(f"{page}.includes('“notes.bin”: SHA-256 verified')", timeout=30, what="the verified file")
        assert browser.eval("document.querySelector('#rooms a[download]').getAttribute('download')") == "notes.bin"
        done = events.wait(lambda e: isinstance(e, TransferChanged) and e.what in ("received", "failed"), timeout=30)
        assert done.what == "received" and done.nick == "webann"
        saved = browser.downloads / "notes.bin"
        wait_until(lambda: saved.exists() and saved.read_bytes() == source.read_bytes(), 30, "the download on disk")
    finally:
        browser.close()
        alice.close()


def test_over_tls_the_page_is_https_the_socket_wss_and_the_password_works(make_server, tls_files):
    from tests.web.browser import Browser

    cert, key = tls_files
    server = make_server(tls_cert=cert, tls_key=key, password="sesame")
    browser = Browser(f"https://127.0.0.1:{server.port}/?nick=secure", trust_any_certificate=True)
    try:
        page = "document.getElementById('rooms').textContent"
        browser.wait("document.getElementById('problem').textContent.includes('needs a password')",
                     what="the page over https")
        assert browser.eval("location.protocol") == "https:" and browser.eval("window.isSecureContext")
        browser.eval("document.getElementById('password').value = 'sesame';"
                     "document.getElementById('join').requestSubmit(); true")
        browser.wait(f"{page}.includes('you are in lobby')", timeout=30, what="the password proof over wss")
        assert "secure" in server.hub.state.nicks
    finally:
        browser.close()


def test_a_browser_offers_a_file_that_a_terminal_client_receives_whole(server, tmp_path):
    """The page hashes the file, offers it, and sends each round as the credit allows
    (300 KiB: more than one window); the terminal client's copy matches."""
    from chatroom.client.connection import ChatClient
    from chatroom.client.transfers import TransferChanged
    from tests.polling import Events
    from tests.web.browser import Browser

    events = Events()
    bob = ChatClient("127.0.0.1", server.port, "bob", on_event=events, downloads=tmp_path / "dl")
    bob.connect()
    source = tmp_path / "slides.pdf"
    source.write_bytes(bytes(range(251)) * 1224)  # 307,224 bytes
    browser = Browser(f"http://127.0.0.1:{server.port}/?nick=teacher")
    try:
        page = "document.getElementById('rooms').textContent"
        browser.wait(f"{page}.includes('you are in lobby')", what="the page to join")
        root = browser.call("DOM.getDocument")["root"]["nodeId"]
        node = browser.call("DOM.querySelector", nodeId=root, selector="#file")["nodeId"]
        browser.call("DOM.setFileInputFiles", files=[str(source)], nodeId=node)  # as if picked
        offered = events.wait(lambda e: isinstance(e, TransferChanged) and e.what == "offered", timeout=30)
        assert offered.transfer.name == "slides.pdf" and offered.transfer.size == source.stat().st_size
        bob.files.accept(offered.transfer.id)
        done = events.wait(lambda e: isinstance(e, TransferChanged) and e.what in ("saved", "failed"), timeout=30)
        assert done.what == "saved", done.detail
        assert (tmp_path / "dl" / "slides.pdf").read_bytes() == source.read_bytes()
        browser.wait(f"{page}.includes('bob received “slides.pdf”')", what="the sender told")
    finally:
        browser.close()
        bob.close()


def test_two_pages_and_a_plain_client_see_one_order_and_peer_markup_stays_text(server):
    """Two browser pages and ``chatroom join --plain`` (a real process) in one room: the
    same lines in the same order everywhere; what the terminal user typed as markup
    or escape sequences is inert text on the pages."""
    import subprocess
    import sys
    import threading

    from tests.terminal import ROOT, chatroom_env
    from tests.web.browser import Browser

    watcher = WireClient(server.port)
    watcher.hello("watcher")
    plain = subprocess.Popen([sys.executable, "-m", "chatroom", "join", f"127.0.0.1:{server.port}", "--plain",
                              "--nick", "plain"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=chatroom_env(), cwd=str(ROOT))
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(plain.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    pages = []
    try:
        watcher.expect(Presence, event=PresenceEvent.JOIN, nick="plain", timeout=30)
        pages = [Browser(f"http://127.0.0.1:{server.port}/?nick=web{n}") for n in range(2)]
        for n in range(2):
            watcher.expect(Presence, event=PresenceEvent.JOIN, nick=f"web{n}", timeout=30)
        hostile = ["<img src=x onerror=alert(1)>", "<script>document.title='owned'</script>", "\x1b[31mred\x1b[0m"]
        plain.stdin.write("".join(line + "\n" for line in hostile))  # type: ignore[union-attr]
        plain.stdin.flush()  # type: ignore[union-attr]
        for n, page in enumerate(pages):
            page.eval(f"document.getElementById('text').value = 'from web{n}';"
                      "document.getElementById('say').requestSubmit(); true")
        order = [watcher.expect(Chat, timeout=20).text for _ in range(5)]
        from chatroom.text import clean_text  # what a terminal sends and prints: escape sequences gone

        assert sorted(order) == sorted([*(clean_text(t) for t in hostile), "from web0", "from web1"])
        for page in pages:
            page.wait("Array.from(document.querySelectorAll('#rooms li .text')).length >= 5", what="every line")
            shown = page.eval("Array.from(document.querySelectorAll('#rooms li .text')).map((s) => s.textContent)")
            assert shown[-5:] == order  # the room's one order, for everyone
            assert page.eval("document.querySelectorAll('#rooms img, #rooms script').length") == 0
            assert page.eval("document.title") == "chatroom"
        watcher.send(Say(id="e", text="\x1b[2J\x1b]0;owned\x07 a raw escape"))  # straight from a raw client
        relayed = watcher.expect(Chat, timeout=20)
        assert "\x1b" not in relayed.text and "\x07" not in relayed.text
        for page in pages:
            page.wait(f"Array.from(document.querySelectorAll('#rooms li .text')).some((s) => s.textContent === "
                      f"{json.dumps(relayed.text)})", what="the raw escape, as the server relayed it")
            assert page.eval("document.title") == "chatroom"
        plain.stdin.close()  # type: ignore[union-attr]
        assert plain.wait(30) == 0
        reader.join(10)
        chats = [line for line in printed if "> " in line and line.startswith("[")]
        assert [line.split("> ", 1)[1].rstrip("\n") for line in chats][-6:-1] == [clean_text(t) for t in order]
    finally:
        for page in pages:
            page.close()
        if plain.poll() is None:
            plain.kill()
            plain.wait()
        watcher.close()


def test_the_page_survives_a_server_restart_with_nothing_lost_or_doubled(make_server, tmp_path):
    from tests.web.browser import Browser

    first = make_server(data_dir=str(tmp_path), resume_grace=60)
    port = first.port
    bob = WireClient(port)
    bob.hello("bob")
    page = Browser(f"http://127.0.0.1:{port}/?nick=webann")
    texts = "Array.from(document.querySelectorAll('#rooms li .text')).map((s) => s.textContent)"
    try:
        bob.expect(Presence, event=PresenceEvent.JOIN, nick="webann", timeout=30)
        bob.send(Say(id="1", text="before the restart"))
        page.wait(f"{texts}.includes('before the restart')", what="the first line")
        first.stop()
        page.wait("document.getElementById('state').textContent.startsWith('disconnected')", what="the outage")
        page.eval("document.getElementById('text').value = 'typed while it was down';"
                  "document.getElementById('say').requestSubmit(); true")
        second = make_server(data_dir=str(tmp_path), port=port)  # the same port, the same history
        bob = WireClient(second.port)
        bob.hello("bob")
        assert bob.expect(Chat, text="typed while it was down", timeout=40).nick == "webann"
        bob.send(Say(id="2", text="after the restart"))
        page.wait(f"{texts}.includes('after the restart')", timeout=30, what="the line after")
        shown = page.eval(texts)
        for line in ("before the restart", "typed while it was down", "after the restart"):
            assert shown.count(line) == 1, shown
        assert not page.eval("document.getElementById('rooms').textContent.includes('(sending)')")
    finally:
        page.close()
        bob.close()


def test_a_separate_web_port_serves_the_page_and_the_same_rooms(make_server):
    server = make_server(web_port=0)
    assert server.web_listener is not None
    port = server.web_listener.port
    assert port != server.port and get(port, "/").status == 200
    bob = WireClient(server.port)
    bob.hello("bob")
    with connect(f"ws://127.0.0.1:{port}/ws", origin=f"http://127.0.0.1:{port}") as ws:
        ws.send(encode_message(Hello(version="1.3", nick="webby")))
        FrameDecoder().feed(ws.recv(timeout=10))
        ws.send(encode_message(Say(id="1", text="via the web port")))
        assert bob.expect(Chat, text="via the web port").nick == "webby"
    bob.close()


def test_the_pages_commands_whois_rooms_last_and_help(server):
    from tests.web.browser import Browser

    bob = WireClient(server.port)
    bob.hello("bob")
    bob.send(Say(id="1", text="the quiz is on friday"))
    bob.expect(Chat)
    page = Browser(f"http://127.0.0.1:{server.port}/?nick=webann")
    text = "document.getElementById('rooms').textContent"
    try:
        page.wait(f"{text}.includes('you are in lobby')", what="the page")
        for line, shows in [("/whois bob", "bob: in lobby"), ("/rooms", "rooms: lobby (2)"),
                            ("/last quiz", "1 message(s) with “quiz” in lobby"), ("/help", "commands: /me"),
                            ("/frob", "unknown command /frob")]:
            page.eval(f"document.getElementById('text').value = {json.dumps(line)};"
                      "document.getElementById('say').requestSubmit(); true")
            page.wait(f"{text}.includes({json.dumps(shows)})", what=line)
    finally:
        page.close()
        bob.close()


def test_the_page_fits_a_phone(server):
    """At a phone's 390x844: no sideways scrolling, the member list gives way to the
    messages, and the input line and its button are on screen."""
    from tests.web.browser import Browser

    page = Browser(f"http://127.0.0.1:{server.port}/?nick=phone")
    try:
        page.call("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=3, mobile=True)
        page.wait("document.getElementById('rooms').textContent.includes('you are in lobby')", what="the page")
        assert page.eval("document.documentElement.scrollWidth <= window.innerWidth")
        assert page.eval("getComputedStyle(document.querySelector('aside')).display") == "none"
        box = page.eval("(() => { const r = document.getElementById('text').getBoundingClientRect();"
                        " return [r.left, r.right, r.bottom, window.innerWidth, window.innerHeight]; })()")
        left, right, bottom, width, height = box
        assert 0 <= left < right <= width and bottom <= height
    finally:
        page.close()


def _status_for(port: int, head: str) -> tuple[int, bytes]:
    """Send a raw request head; the status code and body of the answer."""
    if "connection:" not in head.lower():
        head += "Connection: close\r\n"  # (answered pages are kept alive otherwise)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n")
        answer = _all_until_closed(sock)
    status = int(answer.split(b" ", 2)[1])
    return status, answer.partition(b"\r\n\r\n")[2]


def _ws_head(port: int, host: str, origin: str | None = None) -> str:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            + (f"Origin: {origin}\r\n" if origin else ""))


def test_the_web_door_answers_only_to_its_own_names_against_dns_rebinding(make_server, caplog):
    """A page on evil.example that rebinds its name to this server sends Host and Origin
    both evil.example: equal, and still refused, before the page and the WebSocket."""
    server = make_server(web_hosts=("chat.school.example",))
    port = server.port
    machine = socket.gethostname()
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST.", f"{machine}:{port}", f"{machine}.local",
                 f"chat.school.example:{port}", f"[::1]:{port}", "127.0.0.2"):
        status, _ = _status_for(port, f"GET / HTTP/1.1\r\nHost: {host}\r\n")
        assert status == 200, host
    for host in (f"evil.example:{port}", "evil.example", f"chat.school.example.evil.example:{port}",
                 "198.51.100.7"):  # (a Host header naming an address that is not this machine's)
        status, body = _status_for(port, f"GET / HTTP/1.1\r\nHost: {host}\r\n")
        assert status == 421 and b"does not answer to the name" in body, host
        status, _ = _status_for(port, _ws_head(port, host, f"http://{host}"))
        assert status == 421, host
    assert any("HTTP request refused (421)" in r.message for r in caplog.records)
    # The names that are served still open the WebSocket.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_ws_head(port, f"localhost:{port}", f"http://localhost:{port}").encode() + b"\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 101")


def test_repeated_host_or_origin_headers_get_a_400_not_an_internal_error(server, caplog):
    port = server.port
    twice_host = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n"
    assert _status_for(port, twice_host)[0] == 400
    no_host = "GET / HTTP/1.1\r\n"
    assert _status_for(port, no_host)[0] == 400
    twice_origin = _ws_head(port, f"127.0.0.1:{port}", f"http://127.0.0.1:{port}") + "Origin: http://evil.example\r\n"
    status, body = _status_for(port, twice_origin)
    assert status == 400 and b"Origin" in body
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_rebound_name_gets_nothing_in_a_real_browser_and_a_given_name_works(make_server):
    """DNS rebinding as a browser lives it: evil.example resolves to this server (the
    browser's resolver rules stand in for the attacker's DNS).  The page is refused,
    and a WebSocket opened from evil.example's own page never opens.  A name the
    operator gave (--web-host) serves the page and the chat."""
    from tests.web.browser import Browser

    server = make_server(web_hosts=("chat.school.example",))
    port = server.port
    bob = WireClient(port)
    bob.hello("bob")
    names = {"evil.example": "127.0.0.1", "chat.school.example": "127.0.0.1"}
    browser = Browser(f"http://evil.example:{port}/", names=names)
    try:
        browser.wait("document.body.innerText.includes('does not answer to the name')", what="the refusal")
        opened = browser.eval(f"""new Promise(done => {{
            const ws = new WebSocket('ws://evil.example:{port}/ws');
            ws.onopen = () => done('open'); ws.onerror = () => done('refused');
            setTimeout(() => done('timeout'), 10000);
        }})""")
        assert opened == "refused"
        browser.driver.get(f"http://chat.school.example:{port}/?nick=webann&room=lobby")
        assert bob.expect(Presence, event=PresenceEvent.JOIN, timeout=30).nick == "webann"
    finally:
        browser.close()
        bob.close()


def test_static_files_are_compressed_and_revalidated_with_an_etag(server):
    import gzip as gz

    def fetch(path: str, **headers: str) -> http.client.HTTPResponse:
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        c.request("GET", path, headers=headers)
        return c.getresponse()

    plain = fetch("/app.js")
    body = plain.read()
    assert plain.status == 200 and plain.getheader("Content-Encoding") is None and b"import" in body
    zipped = fetch("/app.js", **{"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.getheader("Content-Encoding") == "gzip" and zipped.getheader("Vary") == "Accept-Encoding"
    packed = zipped.read()
    assert gz.decompress(packed) == body and len(packed) < len(body) / 2
    assert int(zipped.getheader("Content-Length")) == len(packed)
    tag = zipped.getheader("ETag")
    assert tag and tag != plain.getheader("ETag")  # one tag per representation
    again = fetch("/app.js", **{"Accept-Encoding": "gzip", "If-None-Match": tag})
    assert again.status == 304 and again.read() == b"" and again.getheader("ETag") == tag
    assert again.getheader("Content-Security-Policy") == CSP
    stale = fetch("/app.js", **{"Accept-Encoding": "gzip", "If-None-Match": '"something-else"'})
    assert stale.status == 200 and gz.decompress(stale.read()) == body
    refused = fetch("/style.css", **{"Accept-Encoding": "gzip;q=0, identity"})
    assert refused.getheader("Content-Encoding") is None


def test_a_browser_fetches_the_pages_files_on_one_kept_alive_connection(make_server, caplog):
    """HTTP/1.1 keep-alive for the page's files (one connection, not one per file); a
    request saying close is answered and closed; an idle kept connection ends at the
    handshake deadline quietly (no "dropping" warning)."""
    server = make_server(handshake_timeout=1.0)
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    ports = set()
    for path in ("/", "/app.js", "/render.js", "/style.css"):
        c.request("GET", path, headers={"Accept-Encoding": "gzip"})
        answer = c.getresponse()
        assert answer.status == 200 and answer.getheader("Connection") == "keep-alive"
        answer.read()
        ports.add(c.sock.getsockname()[1])
    assert len(ports) == 1  # one connection for all four
    c.request("GET", "/framing.js", headers={"Connection": "close"})
    last = c.getresponse()
    assert last.getheader("Connection") == "close" and last.read()
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    idle.sendall(f"GET /style.css HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
    assert b"200 OK" in _all_until_closed(idle)  # answered, then closed at the deadline
    assert not [r for r in caplog.records if r.levelname == "WARNING" and "dropping" in r.getMessage()]
