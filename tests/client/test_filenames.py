"""Received files get safe names and never overwrite anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatroom.client.filenames import MAX_NAME_BYTES, keep, safe_name


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        ("notes.pdf", "notes.pdf"),
        ("../../etc/passwd", "passwd"),
        ("/etc/shadow", "shadow"),
        ("C:\\Windows\\system32\\evil.dll", "evil.dll"),
        ("..", "file"),
        ("../..", "file"),
        ("", "file"),
        (".bashrc", "bashrc"),
        ("...hidden", "hidden"),
        ("trailing dots...", "trailing dots"),
        ("\x1b[2J\x1b[31mred.txt", "[2J[31mred.txt"),
        ("report\u202egnp.exe", "reportgnp.exe"),  # a right-to-left override would disguise .exe
        ("zero\u200bwidth.txt", "zerowidth.txt"),
        ("tab\there.txt", "tabhere.txt"),
        ("what?.txt", "what_.txt"),
        ("a<b>c|d.txt", "a_b_c_d.txt"),
        ("CON.txt", "_CON.txt"),
        ("nul", "_nul"),
        ("résumé.pdf", "résumé.pdf"),
        ("dir/", "dir"),
    ],
)
def test_safe_name(offered: str, expected: str) -> None:
    assert safe_name(offered) == expected


def test_very_long_names_are_cut_and_keep_their_extension() -> None:
    name = safe_name("A" * 5000 + ".pdf")
    assert name.endswith(".pdf")
    assert len(name.encode()) <= MAX_NAME_BYTES
    wide = safe_name("日本語" * 400 + ".txt")  # multi-byte: cut on a character boundary
    assert wide.endswith(".txt") and len(wide.encode()) <= MAX_NAME_BYTES
    wide.encode().decode("utf-8")


def test_safe_names_have_no_separators_controls_or_dots_first() -> None:
    for hostile in ["../" * 50 + "x", "a/../../b", "\\\\server\\share\\..\\x", "\x00\x01\x7f.txt", "\u0085x"]:
        name = safe_name(hostile)
        assert "/" not in name and "\\" not in name
        assert not name.startswith(".")
        assert all(ord(c) >= 32 and c != "\x7f" and not 0x80 <= ord(c) < 0xA0 for c in name), name


def _temp(directory: Path, content: bytes) -> Path:
    temp = directory / f".incoming-{len(list(directory.iterdir()))}.part"
    temp.write_bytes(content)
    return temp


def test_keep_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "notes.pdf").write_bytes(b"mine")
    first = keep(_temp(tmp_path, b"one"), tmp_path, "notes.pdf")
    second = keep(_temp(tmp_path, b"two"), tmp_path, "../notes.pdf")
    assert first.name == "notes (1).pdf" and second.name == "notes (2).pdf"
    assert (tmp_path / "notes.pdf").read_bytes() == b"mine"
    assert first.read_bytes() == b"one" and second.read_bytes() == b"two"
    no_ext = keep(_temp(tmp_path, b"a"), tmp_path, "README")
    again = keep(_temp(tmp_path, b"b"), tmp_path, "README")
    assert (no_ext.name, again.name) == ("README", "README (1)")
    # The temporary files are gone; only final names are left.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "README", "README (1)", "notes (1).pdf", "notes (2).pdf", "notes.pdf"]


def test_keep_stays_inside_the_directory(tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    kept = keep(_temp(downloads, b"x"), downloads, "../../escape.txt")
    assert kept.parent == downloads and kept.name == "escape.txt"
    assert not (tmp_path / "escape.txt").exists()
