"""``mkstemp`` without ``tempfile``, whose imports (shutil, random, weakref...) show in every short command,
and ``unlink_quietly`` for what such a file leaves when its write fails."""

from __future__ import annotations

import os


def mkstemp(directory: str | os.PathLike[str], prefix: str = "", suffix: str = "") -> tuple[int, str]:
    """A new file ``directory/<prefix><random><suffix>``, created exclusively with mode 0600, opened read-write."""
    while True:
        path = os.path.join(directory, f"{prefix}{os.urandom(8).hex()}{suffix}")
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), path
        except FileExistsError:
            continue


def unlink_quietly(path: str) -> None:
    """Remove ``path`` if it can be (a temporary file after a failed write, a stale cache entry): best effort."""
    try:
        os.unlink(path)
    except OSError:
        pass
