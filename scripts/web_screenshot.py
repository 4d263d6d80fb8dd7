"""Make docs/web-client.png and docs/web-client-phone.png, the README's pictures of the
web client (a desktop in the light theme, a phone in the dark one): a server on
127.0.0.1, two terminal-side members talking, and headless Chromium (the same browser
and driver as tests/web) showing the page.  Run: .venv/bin/python scripts/web_screenshot.py"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatroom.app import build_server  # noqa: E402
from chatroom.protocol import Away, Chat, Direct, Join, Presence, Say, SetTopic, Typing, TypingState  # noqa: E402
from chatroom.server.tcp import ServerConfig  # noqa: E402
from tests.web.browser import Browser  # noqa: E402
from tests.wire import WireClient  # noqa: E402


def main() -> int:
    server = build_server(ServerConfig(host="127.0.0.1", port=0, name="classroom", rate=0))
    server.serve_in_thread()
    people = []
    try:
        bob, cy = WireClient(server.port), WireClient(server.port)
        bob.hello("bob")
        cy.hello("cy")
        people += [bob, cy]
        bob.send(SetTopic(topic="Thursday: sockets and threads"))
        for who, text in [(bob, "has everyone got the server running?"), (cy, "yes, on port 7373"),
                          (bob, "try sending a frame by hand with nc")]:
            who.send(Say(id=text[:8], text=text))
            who.expect(Chat, text=text)
        page = Browser(f"http://127.0.0.1:{server.port}/?nick=ann")
        try:
            page.call("Emulation.setDeviceMetricsOverride", width=1000, height=520, deviceScaleFactor=1, mobile=False)
            page.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "light"}])
            page.wait("document.getElementById('rooms').textContent.includes('you are in lobby')", what="the page")
            bob.expect(Presence, nick="ann")
            page.eval("document.getElementById('text').value = '/join homework';"
                      "document.getElementById('say').requestSubmit(); true")
            page.wait("document.getElementById('where').textContent === '#homework'", what="homework")
            page.eval("Array.from(document.querySelectorAll('#tabs button')).find((b) => b.textContent === 'lobby')"
                      ".click(); true")
            cy.send(Join(room="homework"))
            cy.send(Say(id="hw", text="question 3 is about partial recv()", room="homework"))
            cy.send(Say(id="q", text="ann: did the length prefix make sense? see https://example.org/frames",
                        room="lobby"))
            bob.send(Direct(id="d", to="ann", text="can you share your notes after class?"))
            cy.send(Away(message="getting coffee"))
            page.wait("document.getElementById('rooms').textContent.includes('getting coffee')", what="the lines")
            bob.send(Typing(state=TypingState.ACTIVE, room="lobby"))
            page.wait("document.getElementById('typing').textContent.includes('typing')", what="bob typing")
            page.eval("document.getElementById('text').value = 'yes: 4 bytes, big-endian, then the JSON';"
                      "document.getElementById('text').dispatchEvent(new Event('input')); true")
            shot = page.call("Page.captureScreenshot", format="png")
            out = ROOT / "docs" / "web-client.png"
            out.write_bytes(base64.b64decode(shot["data"]))
            print(f"wrote {out}")
            page.call("Emulation.setDeviceMetricsOverride", width=390, height=760, deviceScaleFactor=2, mobile=True)
            page.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "dark"}])
            bob.send(Typing(state=TypingState.ACTIVE, room="lobby"))
            page.eval("document.getElementById('text').dispatchEvent(new Event('input')); true")  # (fit the width)
            shot = page.call("Page.captureScreenshot", format="png")
            out = ROOT / "docs" / "web-client-phone.png"
            out.write_bytes(base64.b64decode(shot["data"]))
            print(f"wrote {out}")
        finally:
            page.close()
    finally:
        for p in people:
            p.close()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
