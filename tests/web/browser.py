"""A real browser for tests: Debian's headless Chromium, driven by Selenium through
Debian's chromedriver (both given by path: Selenium Manager never looks anything up).
Kept off the network: only the flags the workplace allows, a fresh profile, and the
page we give it on 127.0.0.1.  JavaScript runs in the page through the DevTools
protocol (``Runtime.evaluate``, via the driver), so a test may await a promise."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.polling import wait_until

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

# Selenium Manager (which would look for drivers and report usage) is never needed: both
# paths are given.  Should a Selenium version call it anyway, it stays offline.
os.environ.setdefault("SE_OFFLINE", "true")
os.environ.setdefault("SE_AVOID_STATS", "true")


def _tool(*names: str, package: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return found
    if os.environ.get("CHATROOM_REQUIRE_TOOLS"):
        pytest.fail(f"{names[0]} is required here (CHATROOM_REQUIRE_TOOLS is set) but not installed")
    pytest.skip(f"{names[0]} is not installed (apt-get install {package})")


def chromium() -> str:
    return _tool("chromium", "chromium-browser", package="chromium")


class Browser:
    """One headless Chromium showing ``url``; :meth:`eval` runs JavaScript in the page."""

    def __init__(self, url: str, *, trust_any_certificate: bool = False, names: dict[str, str] | None = None) -> None:
        """``trust_any_certificate``: for a server's self-signed test certificate (what a
        person does by accepting the browser's warning once).  ``names``: host names the
        browser resolves to the given (loopback) addresses, without asking any DNS."""
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        binary, driver = chromium(), _tool("chromedriver", package="chromium-driver")
        self.profile = tempfile.mkdtemp(prefix="chatroom-chromium-")
        # Downloads go to this profile's folder, never the user's own Downloads.
        self.downloads = Path(self.profile) / "downloads"
        self.downloads.mkdir()
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in FLAGS + (["--ignore-certificate-errors"] if trust_any_certificate else []):
            options.add_argument(flag)
        if names:
            options.add_argument("--host-resolver-rules=" + ",".join(f"MAP {n} {a}" for n, a in names.items()))
        options.add_argument(f"--user-data-dir={self.profile}/profile")
        options.add_experimental_option("prefs", {"download.default_directory": str(self.downloads),
                                                  "download.prompt_for_download": False})
        try:
            self.driver = webdriver.Chrome(service=Service(executable_path=driver), options=options)
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        try:
            self.driver.set_page_load_timeout(30)
            self.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(self.downloads))
            self.driver.get(url)
        except Exception:
            self.close()
            raise

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """A DevTools protocol command to the page."""
        return self.driver.execute_cdp_cmd(method, params)

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
        driver = getattr(self, "driver", None)
        if driver is not None:
            try:
                driver.quit()  # ends chromedriver and the browser it started
            except Exception:  # noqa: BLE001 -- a browser that died already: nothing to end
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


#: axe-core, the accessibility engine the page is checked with (npm, pinned): installed
#: once into tests/web/.axe by the first test that needs it.
AXE_VERSION = "4.14.1"
AXE_DIR = Path(__file__).resolve().parent / ".axe"


def axe_source() -> str:
    """axe-core's script, installed from npm on first use."""
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists() or f'"version": "{AXE_VERSION}"' not in (script.parent / "package.json").read_text():
        npm = _tool("npm", package="npm")
        import subprocess

        AXE_DIR.mkdir(exist_ok=True)
        result = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(AXE_DIR),
                                 f"axe-core@{AXE_VERSION}"], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    return script.read_text(encoding="utf-8")


def accessibility_problems(browser: Browser) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now (WCAG 2 A/AA)."""
    browser.eval(axe_source() + "; true")
    found = browser.eval("axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa'] } })"
                         ".then((r) => r.violations.filter((v) => ['serious', 'critical'].includes(v.impact))"
                         ".map((v) => `${v.id} (${v.impact}): ${v.nodes.length} node(s), e.g. ${v.nodes[0].html}`))")
    return list(found)
