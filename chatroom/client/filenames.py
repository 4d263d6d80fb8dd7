"""Names for received files: a peer chose them, so they are hostile until cleaned.

:func:`safe_name` turns any offered name into one plain file name -- no directories,
no ``..``, no control or formatting characters, no leading dot, not too long --
and :func:`keep` moves a verified download to that name in the downloads directory
without ever overwriting anything: ``notes.pdf``, then ``notes (1).pdf``, ...
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from chatroom.text import shorten

__all__ = ["safe_name", "keep", "MAX_NAME_BYTES"]

#: Most file systems allow 255 bytes; leave room for " (99)".
MAX_NAME_BYTES = 200

#: Characters Windows, macOS or shells trip over (a share may end up on any of them).
_RESERVED = re.compile(r'[<>:"|?*]')
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def safe_name(offered: str) -> str:
    """A harmless file name for ``offered``, keeping as much of it as is safe."""
    text = unicodedata.normalize("NFC", offered)
    # Control, formatting (bidi overrides, zero-width) and unassigned characters go.
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C")
    # Only the last path component counts, whichever separator the sender's system uses.
    parts = [p for p in re.split(r"[/\\]", text) if p.strip(" .")]
    name = parts[-1] if parts else ""
    name = _RESERVED.sub("_", name).strip().lstrip(".").rstrip(". ")
    stem = name.partition(".")[0]  # "con.txt" is the device too
    if stem.casefold() in _WINDOWS_DEVICES:
        name = f"_{name}"
    name = shorten(name, MAX_NAME_BYTES) if name else ""
    return name or "file"


def _numbered(name: str, n: int) -> str:
    if n == 0:
        return name
    stem, dot, ext = name.rpartition(".")
    if dot and stem:
        return f"{stem} ({n}).{ext}"
    return f"{name} ({n})"


def keep(temp: Path, directory: Path, offered: str) -> Path:
    """Move the finished ``temp`` file into ``directory`` under a safe, unused name.

    The final name appears at once and complete (a hard link, then the temporary name
    goes), and an existing file is never replaced.  Where hard links are not possible
    (some USB sticks), the name is reserved with an exclusive create and replaced.
    """
    name = safe_name(offered)
    for n in range(10_000):
        final = directory / _numbered(name, n)
        try:
            os.link(temp, final)
        except FileExistsError:
            continue
        except OSError:
            try:
                fd = os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                continue
            os.close(fd)
            os.replace(temp, final)
            return final
        os.unlink(temp)
        return final
    raise FileExistsError(f"no free name for {name} in {directory}")
