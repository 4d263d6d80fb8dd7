"""Two throw-away network namespaces joined by a veth pair, for discovery tests.

Nothing here touches the machine's own network: each namespace is held open by a
``sleep`` child that dies with the test process (PR_SET_PDEATHSIG), the veth pair is
created *inside* the first namespace with its peer moved straight into the second,
and the only addresses are ones assigned in there (10.200.0.1/24 and 10.200.0.2/24).
As root ``unshare -n``; otherwise ``unshare -rn``, the second namespace nested in the
first one's user namespace so the veth can join them.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys

ADDRESS_A, ADDRESS_B = "10.200.0.1", "10.200.0.2"
_PR_SET_PDEATHSIG = 1


class NamespacesUnavailable(Exception):
    pass


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setsid()


class NetnsPair:
    def __init__(self) -> None:
        for tool in ("unshare", "nsenter", "ip"):
            if shutil.which(tool) is None:
                raise NamespacesUnavailable(f"{tool} is not installed (util-linux, iproute2)")
        self.root = os.geteuid() == 0
        self.holders: list[subprocess.Popen[bytes]] = []
        try:
            first = ["unshare", "-n"] if self.root else ["unshare", "-rn"]
            a = self._hold(first)
            nested = [] if self.root else self._enter_user(a.pid)
            b = self._hold([*nested, "unshare", "-n"])
            self.pid_a, self.pid_b = a.pid, b.pid
            self.run_in(self.pid_a, ["ip", "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b",
                                     "netns", str(self.pid_b)])
            for pid, dev, address in ((self.pid_a, "veth-a", ADDRESS_A), (self.pid_b, "veth-b", ADDRESS_B)):
                self.run_in(pid, ["ip", "link", "set", "lo", "up"])
                self.run_in(pid, ["ip", "addr", "add", f"{address}/24", "dev", dev])
                self.run_in(pid, ["ip", "link", "set", dev, "up", "multicast", "on"])
                self.run_in(pid, ["ip", "route", "add", "224.0.0.0/4", "dev", dev])
        except (OSError, subprocess.CalledProcessError) as exc:
            self.close()
            raise NamespacesUnavailable(f"cannot make network namespaces here: {exc}") from exc

    def _hold(self, prefix: list[str]) -> subprocess.Popen[bytes]:
        holder = subprocess.Popen([*prefix, "sleep", "600"], preexec_fn=_die_with_parent,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # wait until the namespace exists: the holder has exec'd sleep
        for _ in range(200):
            try:
                if os.readlink(f"/proc/{holder.pid}/exe").endswith("sleep"):
                    break
            except OSError:
                pass
            if holder.poll() is not None:
                raise OSError(f"{' '.join(prefix)} failed: {holder.stderr.read().decode() if holder.stderr else ''}")
            __import__("time").sleep(0.01)
        self.holders.append(holder)
        return holder

    def _enter_user(self, pid: int) -> list[str]:
        return ["nsenter", "-t", str(pid), "-U", "--preserve-credentials"]

    def prefix(self, pid: int) -> list[str]:
        """Run a command inside namespace ``pid``."""
        return ["nsenter", "-t", str(pid), "-n", *([] if self.root else ["-U", "--preserve-credentials"])]

    def run_in(self, pid: int, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.prefix(pid), *argv], check=True, capture_output=True, text=True, timeout=20)

    def python_in(self, pid: int, args: list[str], **kw: object) -> subprocess.Popen[str]:
        return subprocess.Popen([*self.prefix(pid), sys.executable, *args], text=True,
                                preexec_fn=_die_with_parent, **kw)  # type: ignore[call-overload]

    def close(self) -> None:
        for holder in self.holders:
            holder.kill()
            holder.wait()
        self.holders.clear()
