"""Files written whole or not at all, and files read no further than a limit.

``atomic_write`` writes beside the destination and renames over it, so a reader (or a crash)
never sees half a file and a failed write leaves nothing behind.  ``read_bounded`` reads at most
``limit + 1`` bytes, so the caller can tell "too large" from "exactly the limit" without reading a
hostile file whole.

An output path a user named (``FOLLOW_UMASK``) that is something other than a regular file
(``/dev/null``, ``/dev/stdout`` leading to a pipe or a terminal, a FIFO) is written into where it is:
renaming a file over it would replace the device or the link in ``/dev`` for every program on the
machine.  A symbolic link to a regular file keeps being a link: the file it leads to is the one replaced
(``output_target``).
"""

from __future__ import annotations

import os

from giropops.errors import GiropopsError
from giropops.tmpfiles import mkstemp

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy knows it

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["FOLLOW_UMASK", "atomic_write", "output_target", "read_bounded"]

#: ``atomic_write``'s mode meaning "as ``open(path, 'w')`` would: 0666 less the umask".
FOLLOW_UMASK = -1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def output_target(path: Path | str) -> tuple[str, bool]:
    """Where an output named ``path`` is written, and whether in place (True) rather than renamed over.

    In place: ``path`` exists and, its links followed, is not a regular file or a directory (a device,
    a FIFO, a socket, a terminal): it cannot be replaced and must not be.  A symbolic link (to a regular
    file, or dangling): the path it leads to, so that the link stays.  Anything else: ``path`` itself
    (a directory there fails the rename, with the system's error)."""
    import stat

    text = os.fspath(path)
    try:
        mode = os.stat(text).st_mode
    except OSError:  # missing, a dangling link, a parent that is not a directory...
        mode = None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        return text, True
    if os.path.islink(text):
        return os.path.realpath(text), False
    return text, False


def write_in_place(path: str, data: bytes) -> None:
    """``data`` written into the existing non-regular file ``path`` (``output_target`` said in place)."""
    with open(path, "wb") as f:
        f.write(data)


def atomic_write(path: Path | str, data: bytes, mode: int = 0o644, *, fsync: bool = False) -> None:
    """``path`` holds ``data`` (with ``mode``; ``FOLLOW_UMASK`` for a normal output file), or is unchanged.

    ``fsync``: on disk before the rename (files a user asked for, not caches).  A file a user asked for
    (``FOLLOW_UMASK``) goes where ``output_target`` says: into ``/dev/null`` or a pipe, through a link.
    Any other (a cache, a state file) is replaced by the rename whatever is in its place: a link planted
    there is not followed, a FIFO is not waited on."""
    text = os.fspath(path).rstrip("/") or "/"  # as Path() reads it: "out/" is "out"
    if mode == FOLLOW_UMASK:
        text, in_place = output_target(text)
        if in_place:
            write_in_place(text, data)
            return
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
