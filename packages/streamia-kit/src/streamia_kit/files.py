"""Files that hold accounts, media or mail: created readable by their owner only."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) as 0700; an existing folder is left as it is."""
    if not path.parent.exists():
        private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    return path


def private_file(path: Path) -> Path:
    """Create an empty `path` as 0600 unless it exists (SQLite gives its -wal/-shm files the
    database file's mode, so creating the database this way covers them too)."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    return path
