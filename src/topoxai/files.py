"""Write outputs all-or-nothing, so a failed run never leaves half a file behind."""

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield an empty sibling folder; on success it replaces `path`, on error it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path, "")
    tmp.mkdir(0o777)  # not mkdtemp's 0700: the kernel applies the umask, as to any new folder
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_sibling(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def json_text(data: Any) -> str:
    """Indented strict JSON with a final newline: readers (and DVC's metrics) choke on NaN."""
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def write_json(path: Path, data: Any) -> None:
    write_text(path, json_text(data))


def temp_sibling(path: Path) -> tuple[int, Path]:
    """Create an empty `.<name>.<random>.part` beside `path`; return its open fd and its path.

    Unlike mkstemp's 0600, the kernel gives it the permissions of any new file (0666 less
    the umask), so renaming it over `path` publishes a normal file. Reading the umask to
    chmod afterwards would mean setting it for a moment, a race with other threads.
    """
    tmp = _temp_name(path, ".part")
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp


def _temp_name(path: Path, suffix: str) -> Path:
    # 64 random bits: a clash is negligible, and O_EXCL / mkdir would refuse it, not reuse it.
    return path.parent / f".{path.name}.{secrets.token_hex(8)}{suffix}"


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
