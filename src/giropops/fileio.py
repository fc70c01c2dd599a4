"""Files written whole or not at all, and files read no further than a limit.

``atomic_write`` writes beside the destination and renames over it, so a reader (or a crash)
never sees half a file and a failed write leaves nothing behind.  ``read_bounded`` reads at most
``limit + 1`` bytes, so the caller can tell "too large" from "exactly the limit" without reading a
hostile file whole.
"""

from __future__ import annotations

import os

from giropops.errors import GiropopsError
from giropops.tmpfiles import mkstemp

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy knows it

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["FOLLOW_UMASK", "atomic_write", "read_bounded"]

#: ``atomic_write``'s mode meaning "as ``open(path, 'w')`` would: 0666 less the umask".
FOLLOW_UMASK = -1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path | str, data: bytes, mode: int = 0o644, *, fsync: bool = False) -> None:
    """``path`` holds ``data`` (with ``mode``; ``FOLLOW_UMASK`` for a normal output file), or is unchanged.

    ``fsync``: on disk before the rename (files a user asked for, not caches)."""
    text = os.fspath(path).rstrip("/") or "/"  # as Path() reads it: "out/" is "out"
    fd, tmp = mkstemp(os.path.dirname(text) or ".", f".{os.path.basename(text)}.", ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask() if mode == FOLLOW_UMASK else mode)
        os.replace(tmp, text)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_bounded(path: Path, limit: int, what: str, error: type[GiropopsError]) -> bytes:
    """``path``'s bytes, read no further than ``limit + 1``; ``error("cannot read WHAT PATH: why")`` or
    ``error("WHAT PATH is larger than LIMIT bytes")`` otherwise (``what``: "policy file", "catalog"...)."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or type(exc).__name__}") from exc
    if len(data) > limit:
        raise error(f"{what} {path} is larger than {limit} bytes")
    return data
