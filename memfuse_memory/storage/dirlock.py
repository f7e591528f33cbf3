"""An exclusive lock on a data directory, so two processes never open one embedded store.

Embedded Chroma is not safe for several processes on one folder (use the server mode for that).
Engines of one process share the lock (counted), and the OS releases it when a process dies,
even by SIGKILL.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from memfuse_memory.errors import DataDirError, StorageError

_held: dict[Path, tuple[int, int]] = {}
_lock = threading.Lock()


def ensure_dir(data_dir: Path) -> Path:
    """Create the data directory if needed; a path that is a file or cannot be created raises
    DataDirError naming it. Returns the resolved path."""
    key = Path(data_dir).expanduser().resolve()
    if key.exists() and not key.is_dir():
        raise DataDirError(f"data directory {key} is not a directory (a file is in the way)")
    try:
        key.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"data directory {key} cannot be created: {exc.strerror or exc}") from exc
    return key


def acquire(data_dir: Path) -> Path:
    """Take (or share, within this process) the lock of ``data_dir``; return its key."""
    key = data_dir.resolve()
    with _lock:
        if key in _held:
            fd, count = _held[key]
            _held[key] = (fd, count + 1)
            return key
        ensure_dir(key)
        fd = os.open(key / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise StorageError(
                f"data directory {key} is in use by another process; share it through a Chroma server "
                "(storage.vector_store.mode: server) or use another data_dir"
            ) from exc
        _held[key] = (fd, 1)
        return key


def release(key: Path) -> None:
    """Give back one share of the lock; the last one unlocks it."""
    with _lock:
        if key not in _held:
            return
        fd, count = _held[key]
        if count > 1:
            _held[key] = (fd, count - 1)
            return
        del _held[key]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
