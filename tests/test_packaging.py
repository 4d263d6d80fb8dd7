"""The package as a stranger gets it: ``python -m build`` makes an sdist and a wheel (the
wheel built from the sdist), the wheel installs into a fresh venv -- not editable, no
clone on the path -- and that install serves a room, its web page, and knows look-alike
nicks.  A package-data file left out of either fails here."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from chatroom.protocol import PROTOCOL_VERSION, Error, ErrorCode, Hello, Welcome
from chatroom.web.pages import _FILES
from tests.server.test_metrics import http_get
from tests.terminal import ROOT
from tests.wire import WireClient

#: What must ship besides the Python modules.
STATIC = sorted({name for name, _ in _FILES.values()})


def clean_copy(into: Path) -> Path:
    """The clone's tracked files and nothing else: a build here must not be helped by
    what an editable install left behind (``chatroom.egg-info/SOURCES.txt`` lists the
    package data of its day, and setuptools reads it)."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, timeout=60)
    if listed.returncode != 0:
        pytest.skip("not a git clone: nothing says which files are the project's")
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file() and "egg-info" not in name:
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dist")
    source = clean_copy(tmp_path_factory.mktemp("source"))
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = out.glob("chatroom-*.tar.gz")
    (wheel,) = out.glob("chatroom-*.whl")
    return sdist, wheel


@pytest.fixture(scope="module")
def venv(built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, timeout=120)
    result = subprocess.run([str(home / "bin" / "pip"), "install", "-q", str(built[1])], capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return home


def test_the_sdist_and_the_wheel_carry_the_web_page_and_the_license(built):
    sdist, wheel = built
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    top = names[0].split("/")[0]
    for needed in ("LICENSE", "README.md", "pyproject.toml", *(f"chatroom/web/static/{n}" for n in STATIC)):
        assert f"{top}/{needed}" in names, needed
    with zipfile.ZipFile(wheel) as whl:
        inside = set(whl.namelist())
    for name in STATIC:
        assert f"chatroom/web/static/{name}" in inside, name
    assert not any(name.startswith("tests/") for name in inside)


def test_the_installed_wheel_serves_a_room_and_its_page(venv, tmp_path):
    python, chatroom = venv / "bin" / "python", venv / "bin" / "chatroom"
    where = subprocess.run([str(python), "-c", "import chatroom; print(chatroom.__file__)"], capture_output=True,
                           text=True, cwd=str(tmp_path), timeout=60, check=True).stdout.strip()
    assert where.startswith(str(venv)), where  # the wheel's copy, not this clone
    version = subprocess.run([str(chatroom), "--version"], capture_output=True, text=True, timeout=60).stdout
    assert "(protocol " in version
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data")}
    proc = subprocess.Popen([str(chatroom), "serve", "--port", "0", "--no-announce"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=str(tmp_path), env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"serving on 127\.0\.0\.1:(\d+)", line)
        assert match, line + (proc.stderr.read() if proc.stderr else "")
        port = int(match.group(1))
        ann = WireClient(port)
        assert isinstance(ann.hello("ann"), Welcome)
        mallory = WireClient(port)
        mallory.send(Hello(version=PROTOCOL_VERSION, nick="\u0430nn"))  # Cyrillic a: the confusables table
        assert mallory.expect(Error).code == ErrorCode.NICK_TAKEN.value
        for path, (name, _) in _FILES.items():
            status, headers, body = http_get(port, path)
            assert status == 200 and body == (ROOT / "chatroom" / "web" / "static" / name).read_bytes(), path
        assert http_get(port, "/healthz")[0] == 200
        assert (tmp_path / "data" / "chatroom" / "history.sqlite3").exists()
        ann.close()
        mallory.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
