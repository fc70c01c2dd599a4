"""An exclusive, inter-process lock on a file: ``fcntl.flock`` on a lock file beside it.

``exclusive(path)`` locks ``<dir>/.<name>.lock``, created if needed and removed by
its holder on release.  Removing it is safe because a waiter, once it has the lock,
checks that the file it locked is still the one at that path (else it locked a
removed file and starts over).  The kernel drops the lock when its holder exits,
even when killed, so no stale lock survives a crash (the empty file may stay).
A holder may take the same lock again in the same thread (nested ``with``)
without deadlocking on itself; other threads wait like other processes.  When
the lock is busy, ``on_wait`` is told once (the CLI prints it) and the caller
waits up to ``timeout`` seconds, then gets ``LockTimeout``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from giropops.errors import GiropopsError

POLL_SECONDS = 0.1

_held: dict[tuple[int, str], int] = {}  # (thread, lock file) -> nesting depth
_held_lock = threading.Lock()


class LockError(GiropopsError):
    """The lock file cannot be created or locked."""


class LockTimeout(LockError):
    """Another process held the lock for longer than we were willing to wait."""


def lock_path_for(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


@contextlib.contextmanager
def exclusive(path: Path, *, timeout: float, what: str,
              on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the exclusive lock on ``path`` (``what`` names it in messages) for the ``with`` block."""
    lock_file = lock_path_for(path)
    key = (threading.get_ident(), str(lock_file.absolute()))
    with _held_lock:
        if key in _held:
            _held[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _held_lock:
                _held[key] -= 1
        return
    deadline = time.monotonic() + timeout
    told = False
    while True:
        fd = _open(lock_file, path, what)
        try:
            if _try_lock(fd, lock_file, path, what):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        if not told and on_wait is not None:
            on_wait(f"waiting for another giropops process to finish with {what} {path}")
            told = True
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"{what} {path} is still locked by another process after {timeout:g} s; "
                f"try again later (the lock is {lock_file.name} beside it)"
            )
        time.sleep(POLL_SECONDS)
    with _held_lock:
        _held[key] = 1
    try:
        yield
    finally:
        with _held_lock:
            del _held[key]
        try:
            lock_file.unlink(missing_ok=True)  # still ours: we hold the lock on this very file
        except OSError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _open(lock_file: Path, path: Path, what: str) -> int:
    try:
        return os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise LockError(f"cannot create the lock file for {what} {path}: {exc.strerror}") from exc


def _try_lock(fd: int, lock_file: Path, path: Path, what: str) -> bool:
    """Lock ``fd`` without blocking; True when locked and ``fd`` is still the file at ``lock_file``."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        raise LockError(f"cannot lock {what} {path}: {exc.strerror}") from exc
    mine = os.fstat(fd)
    try:
        there = os.stat(lock_file)
    except FileNotFoundError:
        there = None
    if there is None or (there.st_dev, there.st_ino) != (mine.st_dev, mine.st_ino):
        fcntl.flock(fd, fcntl.LOCK_UN)  # the previous holder removed it: lock the new file instead
        return False
    return True
