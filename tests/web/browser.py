"""A real browser for tests: Debian's headless Chromium, driven over the DevTools
protocol (a WebSocket, with the ``websockets`` client).  Kept off the network: only the
flags the workplace allows, a fresh profile, and the page we give it on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.polling import wait_until

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CHATROOM_REQUIRE_TOOLS"):
            pytest.fail("chromium is required here (CHATROOM_REQUIRE_TOOLS is set) but not installed")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


class Browser:
    """One headless Chromium showing ``url``; :meth:`eval` runs JavaScript in the page."""

    def __init__(self, url: str, *, trust_any_certificate: bool = False) -> None:
        """``trust_any_certificate``: for a server's self-signed test certificate (what a
        person does by accepting the browser's warning once)."""
        self.profile = tempfile.mkdtemp(prefix="chatroom-chromium-")
        extra = ["--ignore-certificate-errors"] if trust_any_certificate else []
        self.proc = subprocess.Popen([chromium(), *FLAGS, *extra, f"--user-data-dir={self.profile}",
                                      "--remote-debugging-port=0", url],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        try:  # the file Chromium writes once it listens
            wait_until(lambda: self.proc.poll() is not None or (port_file.exists() and port_file.read_text().strip()),
                       30, "chromium to start", interval=0.05)
        except AssertionError:
            self.close()
            raise
        if self.proc.poll() is not None:
            self.close()
            raise AssertionError("chromium did not start")
        port = int(port_file.read_text().split()[0])
        # Downloads go to this profile's folder, never the user's own Downloads.
        self.downloads = Path(self.profile) / "downloads"
        self.downloads.mkdir()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version", timeout=10) as answer:
            browser_url = json.load(answer)["webSocketDebuggerUrl"]
        self._browser = connect(browser_url, max_size=None)
        self._control = self._browser.__enter__()
        self._control.send(json.dumps({"id": 0, "method": "Browser.setDownloadBehavior",
                                       "params": {"behavior": "allow", "downloadPath": str(self.downloads)}}))
        while json.loads(self._control.recv(timeout=30)).get("id") != 0:
            pass
        pages: list[dict[str, Any]] = []

        def our_page() -> bool:  # the tab showing our URL (not a blank one first)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
                pages[:] = [t for t in json.load(answer)
                            if t.get("type") == "page" and t.get("url", "").startswith("http")]
            return bool(pages)

        wait_until(our_page, 30, "the page's tab", interval=0.05)
        self._devtools = connect(pages[0]["webSocketDebuggerUrl"], max_size=None)
        self.ws = self._devtools.__enter__()  # the connection, kept open until close()
        self.ids = count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self.ids)
        self.ws.send(json.dumps({"id": n, "method": method, "params": params}))
        while True:
            answer = json.loads(self.ws.recv(timeout=30))
            if answer.get("id") == n:
                if "error" in answer:
                    raise AssertionError(answer["error"])
                return answer["result"]

    def eval(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(result["exceptionDetails"])
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 20, what: str = "the page") -> Any:
        """Poll ``expression`` in the page until it is truthy; return its value."""
        found: list[Any] = []

        def holds() -> bool:
            try:
                value = self.eval(expression)
            except AssertionError:  # the page is not there yet (still loading)
                return False
            found[:] = [value]
            return bool(value)

        wait_until(holds, timeout, f"{what}: {expression}", interval=0.05)
        return found[0]

    def close(self) -> None:
        for name in ("_devtools", "_browser"):
            connection = getattr(self, name, None)
            if connection is not None:
                connection.__exit__(None, None, None)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
