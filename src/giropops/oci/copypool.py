"""Copying several blobs at once: a bounded pool of threads, the first failure stopping the rest.

A pull (registry -> archive or layout) spends its time waiting on the network, hashing and
writing; fetching a few layers at once overlaps them, as crane (``--jobs``, one per CPU by default)
and skopeo (six layers per image) do.  ``DEFAULT_JOBS`` (4, the ``--jobs`` default of ``giropops copy``) bounds
the layers in flight, so a pull never holds more than that many blob downloads (connections) at
once; pushes use the same bound.  Four keep a link busy while one layer is hashed or written;
more add sockets and memory, not speed, on the machines this runs on.

``run_jobs`` runs tasks on at most ``jobs`` threads.  Each task gets a ``Cancel`` whose
``check`` it calls between chunks: the first failure (or an interrupt of the waiting thread)
cancels the tasks not started yet, makes the running ones stop at their next chunk and cuts the
registry connections they are blocked on; it is re-raised only once every task has stopped, so
the caller's clean-up (removing a temporary file) never races a writer.

``Pool`` is a small thread pool (``submit`` returns a ``Job``; ``wait_first_failure``): what the push
path needs of ``concurrent.futures``, whose import (``logging``, ~4 ms) is a visible part of a warm push.

``write_tar`` writes a tarball whose blob members are filled in parallel with ``os.pwrite`` at
offsets known in advance (a member's header depends only on its name and size): byte for byte
the tar that ``tarfile`` writes one member after the other, without staging any layer twice.
Every blob is read to its end, so a verifying stream checks its size and digest; a blob longer
or shorter than declared is a ``BlobError``.
"""

from __future__ import annotations

import _thread
import collections
import io
import os
import sys
from collections.abc import Callable, Sequence

from giropops.errors import BlobError
from giropops.progress import Progress

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    import tarfile
    from typing import Any, BinaryIO, Generic, Protocol, TypeVar, cast

    from giropops.oci.model import Digest

    Member = tuple[tarfile.TarInfo, "bytes | Source"]
    T = TypeVar("T")

    class _Generic(Generic[T]):
        """``Job``'s base for the type checker: generic in its result."""
else:
    # At run time, without typing: no generic machinery (``Job[X]`` only appears in annotations, which are
    # not evaluated), a plain base for the protocol, and ``cast`` returning its value.
    class _Generic:
        def __class_getitem__(cls, item: object) -> type:
            return cls

    T = Protocol = object

    def cast(_type: object, value: object) -> object:
        return value

#: Blobs transferred at once by default (``giropops copy --jobs``).
DEFAULT_JOBS = 4
#: The most ``--jobs`` accepts: the registry client keeps up to 16 connections per host.
MAX_JOBS = 16

_CHUNK = 1 << 20


class Event:
    """``threading.Event``'s ``set`` / ``is_set`` / ``wait`` (without a timeout), on bare ``_thread`` locks.

    A push imports nothing of ``threading`` (0.8 ms of a warm push): its pool, jobs and watchdog use
    ``_thread`` directly.  ``wait`` blocks on a lock held until ``set``; each waiter passes it on.
    """

    __slots__ = ("_flag", "_gate", "_mutex")

    def __init__(self) -> None:
        self._flag = False
        self._mutex = _thread.allocate_lock()
        self._gate = _thread.allocate_lock()
        self._gate.acquire()

    def set(self) -> None:
        with self._mutex:
            if not self._flag:
                self._flag = True
                self._gate.release()

    def is_set(self) -> bool:
        return self._flag

    def wait(self) -> None:
        if self._flag:
            return
        self._gate.acquire()  # released by set(): take it and hand it on to the next waiter
        self._gate.release()


class Condition:
    """``threading.Condition``'s ``with`` / ``wait`` (without a timeout) / ``notify`` / ``notify_all`` on a bare
    lock, as ``threading`` implements them: each waiter blocks on a lock of its own that a notify releases."""

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._waiters: collections.deque[Any] = collections.deque()

    def __enter__(self) -> Condition:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def wait(self) -> None:
        """Release the lock, block until notified, take the lock again (the caller holds it)."""
        waiter = _thread.allocate_lock()
        waiter.acquire()
        self._waiters.append(waiter)
        self._lock.release()
        try:
            waiter.acquire()
        finally:
            self._lock.acquire()
            try:
                self._waiters.remove(waiter)  # still queued only if interrupted before a notify
            except ValueError:
                pass

    def notify(self) -> None:
        if self._waiters:
            self._waiters.popleft().release()

    def notify_all(self) -> None:
        while self._waiters:
            self._waiters.popleft().release()


class Cancelled(Exception):
    """A task stopped because another one failed (never the error reported)."""


class Cancel:
    """Shared by the tasks of one ``run_jobs``: set on the first failure (or an interrupt)."""

    def __init__(self) -> None:
        self._event = Event()
        self._lock = _thread.allocate_lock()
        self._threads: set[int] = set()  # the workers inside a task now

    def set(self) -> None:
        """Stop every task: at its next ``check``, and at once for registry transfers blocked on a read."""
        self._event.set()
        with self._lock:
            threads = frozenset(self._threads)
        # Only when the registry client is in use (a local copy never imports it): cut the connections
        # the workers read from, so that a stalled server cannot hold the clean-up (Ctrl-C, SIGTERM).
        deadline = sys.modules.get("giropops.oci.registry.deadline")
        if threads and deadline is not None:
            deadline.abort_threads(threads)

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled: another transfer failed")

    def run(self, task: Task) -> None:
        """``task(self)`` on this thread, which ``set`` may abort."""
        me = _thread.get_ident()
        with self._lock:
            self._threads.add(me)  # before the check: a ``set`` now either sees this thread or is seen
        try:
            self.check()  # not started before the failure: not started at all
            task(self)
        finally:
            with self._lock:
                self._threads.discard(me)
            deadline = sys.modules.get("giropops.oci.registry.deadline")
            if deadline is not None:
                deadline.release_thread(me)


Task = Callable[[Cancel], None]


class Job(_Generic[T]):
    """One call submitted to a ``Pool``: its result or exception once done; ``cancel`` before it starts."""

    def __init__(self, fn: Callable[..., T], args: tuple[Any, ...]) -> None:
        self._fn = fn
        self._args = args
        self._lock = _thread.allocate_lock()
        self._done = Event()
        self._started = False
        self._cancelled = False
        self._result: T | None = None
        self._exc: BaseException | None = None
        self._callbacks: list[Callable[[Job[T]], None]] = []

    def _run(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            self._started = True
        try:
            self._result = self._fn(*self._args)
        except BaseException as exc:  # noqa: BLE001 - kept for whoever asks for the result
            self._exc = exc
        self._finish()

    def _finish(self) -> None:
        with self._lock:
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb(self)

    def cancel(self) -> bool:
        """Keep it from starting; False if it has started already."""
        with self._lock:
            if self._started or self._done.is_set():
                return self._cancelled
            self._cancelled = True
        self._finish()
        return True

    def done(self) -> bool:
        return self._done.is_set()

    def add_done_callback(self, cb: Callable[[Job[T]], None]) -> None:
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(cb)
                return
        cb(self)

    def exception(self) -> BaseException | None:
        self._done.wait()
        if self._cancelled:
            return Cancelled("cancelled before it started")
        return self._exc

    def result(self) -> T:
        exc = self.exception()
        if exc is not None:
            raise exc
        return cast("T", self._result)


class Pool:
    """At most ``workers`` threads running submitted calls in order; leaving the ``with`` waits for them.

    Workers are started with ``_thread``: ``threading.Thread.start`` waits until the new thread runs, and
    the new thread runs its first call up to a blocking system call before it lets go of the GIL (or
    until the 5 ms switch interval): the caller submitting a handful of registry requests waited for
    each in turn.  Now it submits them all, then waits for results while they run.  Leaving waits for
    the calls, not for the idle workers to wake up and return: they end on their own.
    """

    def __init__(self, workers: int, name: str = "giropops-pool") -> None:
        self._max = max(1, workers)
        self.name = name
        self._queue: collections.deque[Job[Any]] = collections.deque()
        self._cv = Condition()
        self._started = 0  # workers started
        self._active = 0  # calls running now
        self._idle = 0
        self._closing = False

    def submit(self, fn: Callable[..., T], *args: Any) -> Job[T]:
        job: Job[T] = Job(fn, args)
        with self._cv:
            if self._closing:
                raise RuntimeError("the pool is shut down")
            self._queue.append(job)
            if self._idle == 0 and self._started < self._max:
                self._started += 1
                try:
                    _thread.start_new_thread(self._work, ())
                except BaseException:
                    self._started -= 1
                    self._queue.pop()
                    raise
            else:
                self._cv.notify()
        return job

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closing:
                    self._idle += 1
                    self._cv.wait()
                    self._idle -= 1
                if not self._queue:
                    return
                job = self._queue.popleft()
                self._active += 1
            try:
                job._run()
            finally:
                with self._cv:
                    self._active -= 1
                    if self._closing:
                        self._cv.notify_all()

    def shutdown(self, cancel_pending: bool = False) -> None:
        """Wait for the calls submitted (``cancel_pending``: only those already started) to end."""
        with self._cv:
            if cancel_pending:
                pending = list(self._queue)
                self._queue.clear()
            else:
                pending = []
            self._closing = True
            self._cv.notify_all()
        for job in pending:
            job.cancel()
        with self._cv:
            while self._queue or self._active:
                self._cv.wait()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def wait_first_failure(jobs: Sequence[Job[Any]]) -> tuple[list[Job[Any]], list[Job[Any]]]:
    """Wait until every job is done or one has failed; (done, not done)."""
    flag = Event()
    left = [len(jobs)]
    lock = _thread.allocate_lock()

    def seen(job: Job[Any]) -> None:
        with lock:
            left[0] -= 1
            if left[0] == 0 or job._exc is not None:
                flag.set()

    if not jobs:
        return [], []
    for job in jobs:
        job.add_done_callback(seen)
    flag.wait()
    done = [j for j in jobs if j.done()]
    return done, [j for j in jobs if not j.done()]


def run_jobs(tasks: Sequence[Task], jobs: int = DEFAULT_JOBS) -> None:
    """Run every task, at most ``jobs`` at a time; the first failure is raised once all have stopped.

    What tasks raise after the first failure (being cancelled, or cut off) is its consequence, not news.
    """
    cancel = Cancel()
    if jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            task(cancel)
        return
    first: list[BaseException] = []
    lock = _thread.allocate_lock()

    def worker(task: Task) -> None:
        try:
            cancel.run(task)
        except Exception as exc:  # noqa: BLE001 - any task's failure is the copy's, raised below
            with lock:
                if not first and not cancel.is_set():
                    first.append(exc)
            cancel.set()

    pool = Pool(min(jobs, len(tasks)), "giropops-copy")
    try:
        for task in tasks:
            pool.submit(worker, task)
        pool.shutdown()
    except BaseException:  # interrupted (Ctrl-C, SIGTERM): stop the workers before the caller cleans up
        cancel.set()
        pool.shutdown(cancel_pending=True)
        raise
    if first:
        raise first[0]


class Source(Protocol):
    """A blob to copy (``giropops.oci.layout.BlobSource`` is one)."""

    @property
    def digest(self) -> Digest: ...

    @property
    def size(self) -> int: ...

    @property
    def label(self) -> str: ...

    def open(self) -> BinaryIO: ...


def copy_into(
    src: Source, write: Callable[[memoryview, int], object], progress: Progress, cancel: Cancel | None = None
) -> None:
    """Read ``src`` to its end (its verifier checks size and digest) and ``write(chunk, position)`` it."""
    key = str(src.digest)
    progress.start(key, src.label, src.size)
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    done = 0
    with src.open() as f:
        readinto = cast(io.BufferedIOBase, f).readinto  # the streams are buffered readers
        while True:
            if cancel is not None:
                cancel.check()
            n = readinto(view)
            if not n:
                break
            if done + n > src.size:
                raise BlobError(f"{src.label} {src.digest}: longer than its {src.size} bytes")
            write(view[:n], done)
            done += n
            progress.advance(key, n)
    if done != src.size:
        raise BlobError(f"{src.label} {src.digest}: shorter than its {src.size} bytes")
    progress.finish(key)


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        n = os.pwrite(fd, data, offset)
        data = data[n:]
        offset += n


def write_tar(fd: int, members: Sequence[Member], progress: Progress, jobs: int = DEFAULT_JOBS) -> int:
    """Write ``members`` (header, then bytes or a blob to stream) as ``tarfile`` would; the tar's size.

    ``fd`` is a new, empty file.  Headers, documents and the end-of-archive blocks are written
    first; the blobs then fill their places, ``jobs`` at a time.
    """
    import tarfile  # writing archives only: layouts and pushes use this module too

    fills: list[tuple[int, Source]] = []
    offset = 0
    for info, content in members:
        header = info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
        _pwrite_all(fd, memoryview(header), offset)
        offset += len(header)
        if isinstance(content, bytes):
            if len(content) != info.size:
                raise ValueError(f"tar member {info.name}: {len(content)} bytes, header says {info.size}")
            if content:
                _pwrite_all(fd, memoryview(content), offset)
        else:
            fills.append((offset, content))
        offset += -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE  # data, zero-padded to a block
    offset += 2 * tarfile.BLOCKSIZE  # two zero blocks end the archive...
    offset += -offset % tarfile.RECORDSIZE  # ...padded to a whole record, as tarfile pads it
    os.ftruncate(fd, offset)  # every byte not written below (padding, end blocks) reads as zero

    def task(start: int, src: Source) -> Task:
        return lambda cancel: copy_into(src, lambda chunk, pos: _pwrite_all(fd, chunk, start + pos), progress, cancel)

    run_jobs([task(start, src) for start, src in fills], jobs)
    return offset
