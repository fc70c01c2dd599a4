"""A gunicorn ``gthread`` worker whose threads never wait for a slow client to finish sending its request.

gunicorn's gthread worker (27.x) hands a new connection to a thread at once: the thread waits up to 5 s for
the first bytes, then reads the request head from a blocking socket with no deadline.  A client that sends
its head a byte at a time holds a thread for as long as it likes; eight such clients held every thread of
the embedded-store server, and ``/healthz`` stopped answering until they left (issue 14, item 6).  More
threads only raise the number of clients an attacker needs.

``HeadFirstWorker`` reads the request in the worker's event loop instead — non-blocking, beside thousands of
other connections (``worker_connections``) — and submits the connection to the thread pool only once the
whole head is there, and the body too when it is small (``Content-Length`` up to ``MAX_EARLY_BODY``; the
app takes 4 KiB).  The bytes read are handed back to gunicorn's parser, which parses them as if it had read
them itself: limits, errors, keep-alive and pipelining stay gunicorn's.  A request that has not arrived
within ``HEAD_TIMEOUT`` seconds is answered 408 and closed, one whose head exceeds ``MAX_HEAD`` bytes 431, so
slow clients cost a file descriptor and a few bytes each, never a thread, and leave by themselves.

Kept-alive connections take the same path for their next request, as do bytes a client pipelined behind a
request.  A stopping worker closes connections that have sent nothing yet and lets the others finish their
request within the graceful timeout.

It subclasses gunicorn's ``ThreadWorker`` and relies on its 27.x internals (``enqueue_req``, ``handle``,
``murder_pending``, the connection's ``parser.unreader`` and ``data_ready``); ``supported()`` says whether
the installed gunicorn has them, and ``serve`` falls back to plain gthread (with a warning) when not.
"""

from __future__ import annotations

import re
import selectors
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

HEAD_TIMEOUT = 10.0  # seconds for a whole request head (and a small body) to arrive
MAX_HEAD = 64 * 1024  # gunicorn's own limits (request line 4094, 100 fields of 8190) apply after this
MAX_EARLY_BODY = 64 * 1024  # a body of known length up to this is read before a thread takes the request

_CONTENT_LENGTH = re.compile(rb"(?im)^content-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r?$")
_CHUNKED = re.compile(rb"(?im)^transfer-encoding[ \t]*:.*chunked")
_EXPECT = re.compile(rb"(?im)^expect[ \t]*:")
_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


def supported() -> bool:
    """Whether the installed gunicorn is a version whose gthread internals this worker was written against."""
    import gunicorn

    return tuple(gunicorn.version_info[:1]) == (27,)


@dataclass
class _Arriving:
    deadline: float
    data: bytearray = field(default_factory=bytearray)


def request_complete(data: bytes | bytearray) -> bool | None:
    """True when ``data`` holds a whole request head (and its small body); None when it never will (too large)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None if len(data) > MAX_HEAD else False
    head = bytes(data[:end])
    if _EXPECT.search(head):
        return True  # the client waits for "100 Continue" before it sends the body: gunicorn answers that
    body = len(data) - end - 4
    length = _CONTENT_LENGTH.search(head)
    if length is not None:
        wanted = int(length.group(1))
        return wanted > MAX_EARLY_BODY or body >= wanted
    if _CHUNKED.search(head):
        rest = bytes(data[end + 4:])
        return body > MAX_EARLY_BODY or rest.startswith(b"0\r\n") or b"\r\n0\r\n" in rest
    return True


class HeadFirstWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no type hints
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Connections whose request is still arriving, oldest (= earliest deadline) first.
        self._arriving: OrderedDict[Any, _Arriving] = OrderedDict()
        # The bytes read for a connection handed to a thread, until the thread gives them to the parser.
        self._ready: dict[Any, bytes] = {}

    # ---------------------------------------------------------------- event loop (the worker's main thread)

    def enqueue_req(self, conn: Any) -> None:
        """gunicorn calls this for a new connection, a readable kept-alive one and pipelined bytes."""
        early = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        arriving = _Arriving(time.monotonic() + HEAD_TIMEOUT, bytearray(early))
        if self._dispatch(conn, arriving):
            return
        conn.sock.setblocking(False)
        self._arriving[conn] = arriving
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: Any, _sock: Any) -> None:
        arriving = self._arriving.get(conn)
        if arriving is None:
            return
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client left
            self._forget(conn)
            self._close(conn)
            return
        arriving.data += data
        if self._dispatch(conn, arriving, registered=True):
            return

    def _dispatch(self, conn: Any, arriving: _Arriving, registered: bool = False) -> bool:
        """Hand the connection to a thread, or refuse it, when its request is complete or too large."""
        complete = request_complete(arriving.data)
        if complete is False:
            return False
        if registered:
            self._forget(conn)
        if complete is None:
            self._refuse(conn, _TOO_LARGE)
            return True
        self._ready[conn] = bytes(arriving.data)
        conn.data_ready = True  # gunicorn's handle() must not wait for more bytes first
        super().enqueue_req(conn)
        return True

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        if not self.alive:
            # Stopping: a connection that has sent nothing yet gets no request served; the others may finish.
            for conn in [c for c, a in self._arriving.items() if not a.data]:
                self._forget(conn)
                self._close(conn)
        while self._arriving:
            conn, arriving = next(iter(self._arriving.items()))
            if arriving.deadline > now:
                break
            self._forget(conn)
            if arriving.data:
                self._refuse(conn, _TIMEOUT)
            else:
                self._close(conn)

    def _forget(self, conn: Any) -> None:
        self._arriving.pop(conn, None)
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _refuse(self, conn: Any, answer: bytes) -> None:
        try:
            conn.sock.send(answer)  # non-blocking, best effort: the client may not be reading
            # Bytes left unread make close() send a reset, which can destroy the answer before the client
            # reads it: take what has arrived (a bounded amount) first.
            for _ in range(4):
                if not conn.sock.recv(65536):
                    break
        except OSError:
            pass
        self._close(conn)

    def _close(self, conn: Any) -> None:
        self.nr_conns -= 1
        conn.close()

    # ---------------------------------------------------------------- a thread of the pool

    def handle(self, conn: Any) -> Any:
        data = self._ready.pop(conn, None)
        if data is not None:
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(data)
        return super().handle(conn)
