"""Shared helpers below every writer: atomic writes and safe output paths (no imports from the writers).

Atomic means: write to a temp file in the destination folder, fsync, `os.replace`. A run killed at any moment
leaves either the old file or the new one, never half of one. File modes are those of a plain write: a new file
gets 0666 less the umask (0644 under the usual 022), a rewritten file keeps its mode.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import threading
import unicodedata
from pathlib import Path, PurePosixPath

from docvlm.errors import OutputError

# --- atomic writes -----------------------------------------------------------------------------------------


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically: temp file in the same folder, fsync, rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600: give the file the mode `open(path, "w")` would
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Ctrl-C or a full disk in the middle: the old file is untouched, the temp file goes away
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


NEW_FILE_MODE = 0o666
"""The mode a new output asks for before the umask, as `open(path, "w")` does."""

_UMASK_LOCK = threading.Lock()


def _file_mode(path: Path) -> int:
    """The mode the written file gets: the mode of the file it replaces, else `NEW_FILE_MODE` less the umask."""
    try:
        if not path.is_symlink():  # the link is replaced, not followed: its target's mode is not ours to copy
            return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        pass
    with _UMASK_LOCK:  # the umask can only be read by setting it: set it back at once
        umask = os.umask(0o077)
        os.umask(umask)
    return NEW_FILE_MODE & ~umask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- safe output names -------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^\w.\- +=,@()\[\]]", re.UNICODE)
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def safe_relpath(relpath: str) -> str:
    """A relative output path that mirrors `relpath` but cannot escape the output folder.

    Backslashes count as separators, '.', '..' and empty parts are dropped, control and shell-hostile
    characters become '_', leading dots are removed (no hidden files), each part is at most 200 bytes.
    """
    parts = []
    for raw in re.split(r"[\\/]+", relpath):
        part = unicodedata.normalize("NFC", raw).strip()
        if part in ("", ".", ".."):
            continue
        part = _UNSAFE.sub("_", part).lstrip(".").strip()
        if not part:
            part = "_"
        if part.split(".")[0].lower() in _WINDOWS_RESERVED:
            part = "_" + part
        while len(part.encode("utf-8")) > 200:
            part = part[:-1]
        parts.append(part)
    return "/".join(parts) or "_"


def output_path(out_dir: str | Path, relpath: str, suffix: str) -> Path:
    """`out/sub/dir/name.pdf` + suffix (e.g. '.json'), guaranteed inside `out_dir`.

    Raises:
        OutputError: a symbolic link inside `out_dir` would lead the output outside it (outputs are written
            only inside the output folder).
    """
    root = Path(out_dir).resolve()
    target = (root / PurePosixPath(safe_relpath(relpath) + suffix)).resolve()
    if root != target and root not in target.parents:  # safe_relpath prevents '..': a symbolic link did it
        lexical = root / PurePosixPath(safe_relpath(relpath) + suffix)
        link = next((p for p in [*reversed(lexical.parents), lexical] if root in p.parents and p.is_symlink()),
                    lexical)
        raise OutputError(f"{link} is a symbolic link leading outside the output folder {root} (to {target}); "
                          "outputs are written only inside the output folder: remove the link or choose "
                          "another -o")
    return target
