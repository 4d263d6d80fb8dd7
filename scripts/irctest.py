"""Run irctest, the IRC conformance suite, against chatroom's IRC door -- and, beside
it in the same run, against ngircd (Debian's C server) -- and print both tallies.

irctest (github.com/progval/irctest) is only published as a git repository (PyPI has
a 2017 release), so it is not a dependency of this project and nothing is fetched
here: point ``--irctest`` at a checkout of it, run with a Python that has its
requirements (``pip install -r requirements.txt`` in the checkout)::

    git clone https://github.com/progval/irctest /tmp/irctest
    python3 -m venv /tmp/itv && /tmp/itv/bin/pip install -r /tmp/irctest/requirements.txt
    .venv/bin/python scripts/irctest.py --irctest /tmp/irctest --python /tmp/itv/bin/python

Both servers listen on 127.0.0.1 only (irctest's own controllers bind 0.0.0.0, so its
external-server controller is used: the server is started here).  The selection is
the one IRC.md reports: ``-m 'not services and not Ergo and not deprecated'``.
``--failures`` lists each failing test; IRC.md says why each remaining one fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import HOST, NGIRCD_CONF, ROOT, ngircd_path  # noqa: E402 -- (the benchmark's ngircd, configured alike)

SELECTION = "not services and not Ergo and not deprecated"
NAME = "My.Little.Server"  # the server name irctest's tests expect
OPER = ("operuser", "operpassword")

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_for(port: int, proc: subprocess.Popen[bytes], deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end and proc.poll() is None:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)  # polling for the listener, bounded by the deadline
    raise RuntimeError(f"the server on port {port} did not start")


def start_chatroom(workdir: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "CHATROOM_OP_PASSWORD": OPER[1]}
    cmd = [sys.executable, "-m", "chatroom", "serve", "--host", HOST, "--port", str(port), "--name", NAME,
           "--rate", "0", "--max-per-address", "0", "--memory", "--no-announce", "--op-password"]
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL,
                            stderr=open(Path(workdir) / "chatroom.log", "wb"))
    wait_for(port, proc)
    return proc, port


def start_ngircd(workdir: str) -> tuple[subprocess.Popen[bytes], int] | None:
    binary = ngircd_path()
    if binary is None:
        return None
    port = free_port()
    conf = Path(workdir) / "ngircd.conf"
    conf.write_text(NGIRCD_CONF.format(name=NAME, port=port, dir=workdir, uid=os.getuid(), gid=os.getgid(),
                                       oper=OPER[0], password=OPER[1]))
    os.chmod(workdir, 0o755)
    proc = subprocess.Popen([binary, "--nodaemon", "--config", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(port, proc)
    return proc, port


def run_irctest(irctest: Path, python: str, port: int, extra: list[str], report: Path) -> dict[str, int]:
    env = {**os.environ, "IRCTEST_SERVER_HOSTNAME": HOST, "IRCTEST_SERVER_PORT": str(port),
           "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE", "--controller",
           "irctest.controllers.external_server", "-m", SELECTION, *extra]
    done = subprocess.run(cmd, cwd=str(irctest), env=env, capture_output=True, text=True, timeout=3600)
    report.write_text(done.stdout + done.stderr)
    tally: dict[str, int] = {}
    for count, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)",
                                  done.stdout.splitlines()[-1] if done.stdout else ""):
        tally[what.rstrip("s") if what.startswith("error") else what] = int(count)
    return tally


def failures(report: Path) -> list[str]:
    return sorted({m.group(1) for m in re.finditer(r"^(?:FAILED|ERROR) (\S+)", report.read_text(), re.M)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--irctest", type=Path, required=True, help="a checkout of progval/irctest")
    parser.add_argument("--python", default=sys.executable, help="a Python with irctest's requirements")
    parser.add_argument("--only", choices=("chatroom", "ngircd"), help="one server, not both")
    parser.add_argument("--failures", action="store_true", help="list each failing test")
    parser.add_argument("extra", nargs="*", help="more pytest arguments (after --), e.g. -k topic")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="chatroom-irctest-")
    results: dict[str, dict[str, int]] = {}
    try:
        for name, start in (("chatroom", start_chatroom), ("ngircd", start_ngircd)):
            if args.only and name != args.only:
                continue
            started = start(workdir)
            if started is None:
                print(f"{name}: not installed, left out")
                continue
            proc, port = started
            try:
                report = Path(workdir) / f"{name}.txt"
                results[name] = run_irctest(args.irctest, args.python, port, args.extra, report)
            finally:
                proc.terminate()
                proc.wait(10)
            tally = results[name]
            print(f"{name:9} passed {tally.get('passed', 0):4}  failed {tally.get('failed', 0):4}  "
                  f"errors {tally.get('error', 0):3}  skipped {tally.get('skipped', 0):4}   ({report})", flush=True)
            if args.failures:
                for test in failures(report):
                    print(f"    {test}")
    finally:
        if not args.failures:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
