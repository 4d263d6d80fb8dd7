"""contrib/chatroom.service: systemd reads it, and the commands it gives run the server
as the unit says (started, reloaded, stopped), with the installed chatroom."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.polling import wait_until
from tests.server.test_metrics import http_get
from tests.terminal import ROOT, chatroom_env

UNIT = ROOT / "contrib" / "chatroom.service"
INSTALLED = "/opt/chatroom/bin/chatroom"


def settings(text: str) -> dict[str, list[str]]:
    """key -> values of a unit file (keys may repeat)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def chatroom_here() -> str:
    path = Path(sys.executable).parent / "chatroom"
    if not path.exists():
        pytest.skip("chatroom is not installed next to this Python (pip install -e .)")
    return str(path)


def test_the_unit_runs_as_a_throwaway_user_with_its_state_directory_and_hardening():
    unit = settings(UNIT.read_text(encoding="utf-8"))
    assert unit["DynamicUser"] == ["yes"] and unit["StateDirectory"] == ["chatroom"]
    assert unit["ExecStart"][0].startswith(INSTALLED + " serve ")
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    for hardening in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
                      "RestrictAddressFamilies", "SystemCallFilter", "CapabilityBoundingSet"):
        assert hardening in unit, hardening


def test_systemd_analyze_verifies_the_unit(tmp_path):
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CHATROOM_REQUIRE_TOOLS"):
            pytest.fail("systemd-analyze is missing (.ci/run installs systemd)")
        pytest.skip("systemd-analyze is not installed")
    copy = tmp_path / "chatroom.service"
    copy.write_text(UNIT.read_text(encoding="utf-8").replace(INSTALLED, chatroom_here()), encoding="utf-8")
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "chatroom.service" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_the_units_commands_start_reload_and_stop_the_server(tmp_path):
    unit = settings(UNIT.read_text(encoding="utf-8"))
    config_dir, state_dir = tmp_path / "etc" / "chatroom", tmp_path / "var" / "lib" / "chatroom"
    config_dir.mkdir(parents=True)
    state_dir.mkdir(parents=True)
    # (port 0 and loopback for the test; the rest as a service would have it)
    (config_dir / "server.toml").write_text('host = "127.0.0.1"\nport = 0\nannounce = false\nlog_format = "json"\n',
                                            encoding="utf-8")
    start = unit["ExecStart"][0].replace("${CONFIGURATION_DIRECTORY}", str(config_dir))
    start = start.replace("${STATE_DIRECTORY}", str(state_dir)).replace(INSTALLED, chatroom_here())
    journal = tmp_path / "journal"
    with open(journal, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(shlex.split(start), stdout=subprocess.PIPE, stderr=err, text=True,
                                env={**chatroom_env(), "PYTHONUNBUFFERED": "1"}, cwd=str(tmp_path))
    try:
        assert proc.stdout is not None
        match = re.search(r"serving on 127\.0\.0\.1:(\d+)", proc.stdout.readline())
        assert match, journal.read_text()
        assert http_get(int(match.group(1)), "/healthz")[0] == 200
        assert (state_dir / "history.sqlite3").exists()  # history where systemd keeps state

        reload = unit["ExecReload"][0].replace("$MAINPID", str(proc.pid)).replace("/bin/kill", shutil.which("kill")
                                                                                   or "/bin/kill")
        subprocess.run(shlex.split(reload), check=True, timeout=30)

        def events() -> list[str]:
            lines = journal.read_text(encoding="utf-8").splitlines()
            return [json.loads(line)["event"] for line in lines if line.startswith("{")]

        wait_until(lambda: "reloaded" in events(), what="the reload in the journal")
        proc.terminate()  # KillSignal=SIGTERM
        assert proc.wait(timeout=15) == 0
        assert events()[-1] == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
