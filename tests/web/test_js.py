"""The web client's JavaScript, tested with Node's built-in test runner (tests/js)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.terminal import ROOT


def test_the_pages_framing_and_session_modules_pass_their_node_tests():
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        if os.environ.get("CHATROOM_REQUIRE_TOOLS"):
            pytest.fail("node is required here (CHATROOM_REQUIRE_TOOLS is set) but not installed")
        pytest.skip("node is not installed (apt-get install nodejs)")
    files = sorted(str(p) for p in (ROOT / "tests" / "js").glob("*.test.mjs"))
    assert len(files) >= 2
    result = subprocess.run([node, "--test", *files], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout
