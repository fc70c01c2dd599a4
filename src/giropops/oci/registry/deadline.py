"""Deadlines that a slow server cannot stretch: a total time per request, a minimum speed per blob.

Socket timeouts bound each *read*, not the whole: a server sending one byte every
second never trips a 120-second read timeout and holds a request for hours.  Here a
single watchdog thread watches every connection in use.  ``Transport.request`` gives
each request a deadline (covering connecting, sending, every retry and the backoff
sleeps in between, and reading a small body afterwards); a blob download is instead
held to a minimum average speed over a window.  When either is broken the watchdog
shuts the connection's socket down, so the read blocked on it fails at once; the
code that was reading then sees why (``Watch.fired``) and raises one clear error.

The HTTP session (``http.py``) registers each connection it sends on with the deadline
of the sending thread (``WATCHDOG.watch``) and forgets it when it goes back to the pool
or is closed.
"""

from __future__ import annotations

import _socket  # socket's C module: the constant below without socket.py's enums (a start-up cost)
import _thread
import collections
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from typing import Any

POLL_SECONDS = 0.05

DEADLINE = "deadline"
TOO_SLOW = "too slow"
CANCELLED = "cancelled"

_local = _thread._local()  # .deadline: the absolute (monotonic) deadline of this thread's current request


class Watch:
    """What the watchdog knows about one connection in use (a plain class: no dataclass code generated at
    import for an object that is never compared or shown)."""

    __slots__ = ("conn", "deadline", "fired", "mark_bytes", "mark_time", "min_rate", "received", "thread", "window")

    def __init__(self, conn: Any, deadline: float | None) -> None:
        self.conn = conn  # an ``http._Connection``: its ``watch_sock`` (else ``sock``) is cut when a limit is broken
        self.deadline = deadline
        self.min_rate = 0.0  # bytes per second; 0: no speed floor
        self.window = 0.0
        self.received = 0
        self.mark_time = time.monotonic()
        self.mark_bytes = 0
        self.fired: str | None = None
        self.thread = _thread.get_ident()  # the thread sending on the connection


class _Watchdog:
    def __init__(self) -> None:
        self._watches: dict[int, Watch] = {}
        self._lock = _thread.allocate_lock()
        self._started = False
        # Connections closed since the table was last tidied.  ``forget`` may run from a connection's
        # ``close`` called by a garbage-collection finalizer: on any thread, at any allocation, possibly while
        # that very thread holds ``_lock``.  So it never takes the lock (a deque's append is atomic); the
        # table is tidied under the lock by whoever uses it next.
        self._gone: collections.deque[int] = collections.deque()

    def _tidy(self) -> None:
        """Drop what was forgotten (``_lock`` held).  A closed connection's id cannot belong to a newer
        connection before its ``forget`` was queued: the object is still alive while ``close`` runs."""
        while self._gone:
            self._watches.pop(self._gone.popleft(), None)

    def watch(self, conn: Any, deadline: float | None) -> Watch:
        w = Watch(conn, deadline)
        with self._lock:
            self._tidy()
            self._watches[id(conn)] = w
            if not self._started:
                # _thread, not threading.Thread: start() would wait until the new thread runs, which it does
                # only when this one blocks or its GIL time slice (5 ms) ends; the first request would wait
                _thread.start_new_thread(self._run, ())
                self._started = True
        return w

    def get(self, conn: object) -> Watch | None:
        with self._lock:
            self._tidy()
            return self._watches.get(id(conn))

    def forget(self, conn: object) -> None:
        self._gone.append(id(conn))

    def abort_threads(self, threads: frozenset[int]) -> None:
        """Cut the connections these threads are using now, so that their blocked reads end at once."""
        with self._lock:
            self._tidy()
            watches = [w for w in self._watches.values() if w.thread in threads and w.fired is None]
        for w in watches:
            _fire(w, CANCELLED)

    def _run(self) -> None:
        while True:
            time.sleep(POLL_SECONDS)
            now = time.monotonic()
            with self._lock:
                self._tidy()
                watches = list(self._watches.values())
            for w in watches:
                if w.fired is not None:
                    continue
                if w.deadline is not None and now >= w.deadline:
                    _fire(w, DEADLINE)
                elif w.min_rate > 0 and now - w.mark_time >= w.window:
                    if (w.received - w.mark_bytes) < w.min_rate * (now - w.mark_time):
                        _fire(w, TOO_SLOW)
                    else:
                        w.mark_time, w.mark_bytes = now, w.received


def _fire(w: Watch, why: str) -> None:
    w.fired = why
    sock = getattr(w.conn, "watch_sock", None) or getattr(w.conn, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(_socket.SHUT_RDWR)  # the blocked read returns; the owner closes the connection
        except OSError:
            pass


WATCHDOG = _Watchdog()


_aborted: set[int] = set()  # threads of a cancelled copy: they send nothing more until released


def abort_threads(threads: frozenset[int]) -> None:
    """``giropops.oci.copypool``'s hook: a cancelled copy stops its other transfers without waiting.

    Their connections in use are cut now, and any request they would send next (a retry, a resume)
    fails at once (``aborted``), until ``release_thread``."""
    _aborted.update(threads)
    WATCHDOG.abort_threads(threads)


def release_thread(thread: int) -> None:
    _aborted.discard(thread)


def aborted() -> bool:
    """Whether this thread's transfers were cancelled (``abort_threads``)."""
    return _thread.get_ident() in _aborted


def set_deadline(deadline: float | None) -> None:
    """The deadline (``time.monotonic()`` value) of the request this thread is about to send."""
    _local.deadline = deadline


def current_deadline() -> float | None:
    return getattr(_local, "deadline", None)


def watch_of(resp: Any) -> Watch | None:
    """The watch of the connection a response (``http.Response``) is read from."""
    conn = getattr(resp, "connection", None)
    return WATCHDOG.get(conn) if conn is not None else None


def hold_to_speed(resp: Any, min_rate: float, window: float) -> Watch | None:
    """From now on, hold ``resp``'s connection to ``min_rate`` bytes/s over each ``window``, not to a deadline."""
    w = watch_of(resp)
    if w is not None:
        w.deadline = None
        w.window = window
        w.mark_time = time.monotonic()
        w.mark_bytes = w.received
        w.min_rate = min_rate
    return w
