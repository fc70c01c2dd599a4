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

A request that is *wholly* there — its head and its whole body of known length, no ``Expect``, no
``Transfer-Encoding`` — is answered right there in the event loop ("inline"), without a thread: no hand-over
to the pool and back (two thread wake-ups, a pipe write and four poller changes per request), and the answer
is collected and sent with one non-blocking ``send`` (gunicorn writes the head and the body separately).
Measured with bench/app_wrk.py (32 connections): about a quarter of the server's CPU per request, and
voluntary context switches from about 5 per request to 0.5.
Nothing inline can block the loop on a client: the parser finds every byte it needs in memory (the socket
stays non-blocking), an answer the client does not read stays in the worker and leaves as the socket takes
it (``EVENT_WRITE``, cut off after ``WRITE_TIMEOUT``), and a connection that must close is half-closed and
drained in the loop.  What can block is the app itself — a store that stops answering takes up to its
timeout — so an inline request slower than ``INLINE_SLOW`` sends every request to the thread pool for the
next ``INLINE_PAUSE`` seconds (the thread pool is also where every other request goes, as before).

The commonest requests skip even that: a request whose head is of a narrow, plain form (:func:`simple_request`:
``GET`` or ``POST`` of a plain path over HTTP/1.1, only everyday fields — ``Host``, ``Accept``, ``User-Agent``,
``Content-Type``, ``Content-Length``, ``Connection`` ... — each once, in plain ASCII, no body but the
``Content-Length`` one, nothing pipelined) is handed to the app's own fast entry (``DIRECT``: the password
routes), which answers it without WSGI; the worker writes the answer as gunicorn's ``Response`` would (status
line, ``Server``, ``Date``, ``Connection``, the app's headers checked as gunicorn checks them, the body).
Every other request, and one the app does not take, goes through gunicorn as above; so does every request when
gunicorn is set up to do more per request (an access log, request hooks, TLS, the proxy protocol, a
``SCRIPT_NAME``, tighter limits than the form allows).  Measured with bench/app_wrk.py: gunicorn's parser,
environ and response were more than half of the worker's user CPU per request left (GET 166 -> 71 us).

It subclasses gunicorn's ``ThreadWorker`` and relies on its 27.x internals (``enqueue_req``, ``handle``,
``murder_pending``, ``poller``, ``method_queue``, ``STOP_KEEPALIVE_LINGER``, the connection's ``sock``,
``parser.unreader`` and ``data_ready``); ``supported()`` says whether
the installed gunicorn has them, and ``serve`` falls back to plain gthread (with a warning) when not.
"""

from __future__ import annotations

import gc
import os
import re
import selectors
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn import SERVER
from gunicorn.config import PostRequest, PreRequest
from gunicorn.http.errors import InvalidResponseHeader, InvalidResponseHeaderName
from gunicorn.http.message import TOKEN_RE
from gunicorn.http.wsgi import HEADER_VALUE_RE
from gunicorn.util import http_date, is_hoppish
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, ThreadWorker

HEAD_TIMEOUT = 10.0  # seconds for a whole request head (and a small body) to arrive
MAX_HEAD = 64 * 1024  # gunicorn's own limits (request line 4094, 100 fields of 8190) apply after this
MAX_EARLY_BODY = 64 * 1024  # a body of known length up to this is read before a thread takes the request
WRITE_TIMEOUT = 10.0  # seconds for a client to take an inline answer the socket could not take at once
CLOSE_LINGER = 2.0  # seconds a closing connection is drained before it is closed (as gunicorn's close_graceful)
INLINE_SLOW = 0.25  # an inline request slower than this (seconds; a store timing out takes 1 s) ...
INLINE_PAUSE = 5.0  # ... sends every request to the thread pool for this long
_SCAN_EVERY = 0.25  # seconds between two scans for connections past their deadline
NOTIFY_EVERY = 1.0  # seconds between two heartbeats to the arbiter (it kills a worker silent for ``timeout``, 30 s)

_CONTENT_LENGTH = re.compile(rb"(?im)^content-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r?$")
_CHUNKED = re.compile(rb"(?im)^transfer-encoding[ \t]*:.*chunked")
_EXPECT = re.compile(rb"(?im)^expect[ \t]*:")
_ANY_CONTENT_LENGTH = re.compile(rb"(?im)^content-length[ \t]*:")
_TRANSFER_ENCODING = re.compile(rb"(?im)^transfer-encoding[ \t]*:")
DIRECT = "giropops_direto"
"""The WSGI app's attribute (giropops_senhas.app.DIRETO) taking a simple request directly:
``direct(method, path, content_type, body)`` returns ``(status, headers, body)``, or a mapping of environ entries
for the WSGI path to answer the request with (empty when the request is not one it takes)."""
MAX_SIMPLE_HEAD = 4094  # gunicorn's default request-line limit: no line of a simple head can pass any limit
_SIMPLE_LINE = re.compile(rb"(GET|POST) (/[A-Za-z0-9._~/-]*) HTTP/1\.1")
_SIMPLE_FIELD = re.compile(rb"([A-Za-z-]+): ([!-~](?:[ !-~]*[!-~])?)")
_SIMPLE_FIELDS = frozenset(
    (b"host", b"user-agent", b"accept", b"accept-encoding", b"accept-language", b"content-type",
     b"content-length", b"connection")
)
_HEADER_CACHE = 512  # validated response header lines kept (a Content-Length per body size, a few constants)
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
    kept: bool = False  # a kept-alive connection waiting for its next request (deadline: the keep-alive timeout)


@dataclass
class _Leaving:
    """An inline answer the socket has not taken yet, or a connection being drained before it closes."""

    deadline: float
    rest: memoryview | None  # bytes still to send; None once draining
    keep: bool = False


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


def request_buffered(data: bytes) -> bool:
    """Whether ``data`` (a complete request per :func:`request_complete`) holds every byte gunicorn's parser will
    read for its first request: a head with neither ``Expect`` nor ``Transfer-Encoding``, and a body, if any,
    of one plain ``Content-Length`` that is all there.  Anything else is read by a thread, as before."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = data[:end]
    if _EXPECT.search(head) or _TRANSFER_ENCODING.search(head):
        return False
    lengths = _CONTENT_LENGTH.findall(head)
    if len(lengths) != len(_ANY_CONTENT_LENGTH.findall(head)) or len(lengths) > 1:
        return False  # an odd or repeated Content-Length: gunicorn's parser decides, in a thread
    return not lengths or len(data) - end - 4 >= int(lengths[0])


def simple_request(data: bytes | bytearray) -> tuple[str, str, str | None, bytes, bool] | None:
    """``(method, path, content type, body, close)`` when ``data`` is exactly one request of the plain form the fast
    path takes (module docstring), else None (gunicorn parses it).

    The form is a strict subset of what gunicorn accepts, read the way gunicorn reads it: one of two methods, a
    path of unreserved characters (nothing to unquote, no query), HTTP/1.1, known field names each at most once
    with one space after the colon and printable ASCII values, a ``Host``, ``Connection`` only as
    ``keep-alive`` or ``close`` (``close`` is True then), and a body exactly as long as a ``POST``'s
    ``Content-Length`` (a ``GET`` has neither)."""
    end = data.find(b"\r\n\r\n", 0, MAX_SIMPLE_HEAD)  # bounded: called as the bytes of a request arrive
    if end < 0:
        return None
    lines = bytes(data[:end]).split(b"\r\n")
    line = _SIMPLE_LINE.fullmatch(lines[0])
    if line is None:
        return None
    fields: dict[bytes, bytes] = {}
    for raw in lines[1:]:
        field = _SIMPLE_FIELD.fullmatch(raw)
        if field is None:
            return None
        name = field[1].lower()
        if name not in _SIMPLE_FIELDS or name in fields:
            return None
        fields[name] = field[2]
    connection = fields.get(b"connection", b"keep-alive").lower()
    if b"host" not in fields or connection not in (b"keep-alive", b"close"):
        return None
    body = bytes(data[end + 4:])
    length = fields.get(b"content-length")
    method = line[1].decode()
    if method == "GET":
        if length is not None or body:
            return None
    elif (
        length is None
        or not length.isdigit()
        or len(length) > 6
        or (length.startswith(b"0") and length != b"0")
        or int(length) != len(body)
    ):
        return None
    content_type = fields.get(b"content-type")
    content = None if content_type is None else content_type.decode()
    return method, line[2].decode(), content, body, connection == b"close"


class AnswerHead:
    """The head gunicorn's ``Response`` writes for an HTTP/1.1 answer with a ``Content-Length``: status line,
    ``Server``, ``Date``, ``Connection``, then the app's headers, each checked as ``Response.process_headers``
    checks it (and remembered once checked).  This path takes no header gunicorn would drop or rewrite
    (hop-by-hop fields, values with outer blanks): those raise, as do a missing or wrong ``Content-Length``."""

    def __init__(self) -> None:
        self._date = (0, "")  # gunicorn's Date header for the current second
        self._lines: dict[tuple[str, str], tuple[str, bool]] = {}  # checked header -> (its line, a length?)

    def __call__(self, status: str, headers: list[tuple[str, str]], length: int, close: bool = False) -> bytes:
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, http_date(now))
        connection = "close" if close else "keep-alive"
        lines = [f"HTTP/1.1 {status}\r\nServer: {SERVER}\r\nDate: {self._date[1]}\r\nConnection: {connection}\r\n"]
        sized = False
        for header in headers:
            line, is_length = self._lines.get(header) or self._line(header)
            if is_length:
                if sized or int(header[1]) != length:
                    raise InvalidResponseHeader("Content-Length")
                sized = True
            lines.append(line)
        if not sized:
            raise InvalidResponseHeader("Content-Length")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    def _line(self, header: tuple[str, str]) -> tuple[str, bool]:
        name, value = header
        if not isinstance(name, str) or not TOKEN_RE.fullmatch(name):
            raise InvalidResponseHeaderName(repr(name))
        if not isinstance(value, str) or not HEADER_VALUE_RE.fullmatch(value) or value != value.strip(" \t"):
            raise InvalidResponseHeader(repr(name))
        if is_hoppish(name):
            raise InvalidResponseHeader(repr(name))
        line = (f"{name}: {value}\r\n", name.lower() == "content-length")
        if len(self._lines) < _HEADER_CACHE:
            self._lines[header] = line
        return line


class _Socket(socket.socket):
    """A client socket whose writes can be collected (``out``), so an inline answer leaves in one ``send``.

    While collecting, gunicorn's writes land in ``out`` and its ``setblocking``/``settimeout`` calls are ignored
    (its body drain sets a timeout and puts the old one back, on every request: two ``ioctl`` calls for nothing
    here): the socket stays non-blocking, so nothing an inline request does can wait on the client."""

    out: bytearray | None = None
    carry: Any = None  # environ entries for the WSGI app from the fast path (see HeadFirstWorker._direct_call)

    @classmethod
    def adopt(cls, raw: socket.socket) -> _Socket:
        sock = cls(raw.family, raw.type, raw.proto, fileno=raw.detach())
        sock.setblocking(False)
        return sock

    def sendall(self, data: Any, flags: int = 0) -> None:
        if self.out is None:
            return super().sendall(data, flags)
        self.out += data
        return None

    def send(self, data: Any, flags: int = 0) -> int:
        if self.out is None:
            return super().send(data, flags)
        self.out += data
        return len(data)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        if self.out is None:
            return super().sendfile(file, offset, count)
        file.seek(offset)
        data = file.read() if count is None else file.read(count)
        self.out += data
        return len(data)

    def setblocking(self, flag: bool) -> None:
        if self.out is None:
            super().setblocking(flag)

    def settimeout(self, value: float | None) -> None:
        if self.out is None:
            super().settimeout(value)


class Settings:
    """A worker's read-only view of gunicorn's ``Config``: every setting's value as a plain attribute.

    ``Config`` answers each ``cfg.name`` through ``__getattr__`` and the setting's ``get()``; its HTTP parser,
    WSGI environ and response read it some twenty times a request (measured: a third of gunicorn's parse and a
    sixth of its environ time).  Values are taken once, in the worker, after the fork — nothing sets them
    afterwards — as are the ``is_ssl`` and ``sendfile`` properties those paths read; anything else (methods,
    other properties, ``settings``) is the ``Config``'s own."""

    def __init__(self, cfg: Any) -> None:
        self._config = cfg
        for name, setting in cfg.settings.items():
            if not isinstance(getattr(type(cfg), name, None), property):  # worker_class, proc_name...: Config's
                self.__dict__[name] = setting.get()
        self.is_ssl = cfg.is_ssl
        self.sendfile = cfg.sendfile

    def __getattr__(self, name: str) -> Any:
        return getattr(self._config, name)


class HeadFirstWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no type hints
    cfg: Any
    wsgi: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Connections whose request is still arriving (or, kept alive, has not started to).
        self._arriving: dict[Any, _Arriving] = {}
        # Connections with an inline answer still to send, or being drained before they close.
        self._leaving: dict[Any, _Leaving] = {}
        # The bytes read for a connection handed to a thread, until the thread gives them to the parser.
        self._ready: dict[Any, bytes] = {}
        self._inline_from = 0.0  # no inline request before this (monotonic time): the app was slow
        self._next_scan = 0.0
        self._stopped_at: float | None = None
        self._next_notify = 0.0
        self._direct: Any = None  # the app's fast entry (DIRECT), when the fast path may be used
        self._answer_head = AnswerHead()

    def init_process(self) -> None:
        # In the worker process, before any connection: gunicorn's parser, environ and response take the
        # worker's cfg when they are made.
        self.cfg = Settings(self.cfg)
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self._direct = self._direct_entry()
        if self._direct is not None:
            app = self.wsgi

            def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
                sock = environ.get("gunicorn.socket")
                carry = getattr(sock, "carry", None)
                if carry:
                    environ.update(carry)
                    sock.carry = None  # type: ignore[union-attr]
                return app(environ, start_response)

            self.wsgi = wsgi
        # The app, Flask, gunicorn and their modules (about 47,000 objects) live as long as the worker: kept out
        # of the garbage collector's full scans, which took 25-60 ms each here and stall every connection of
        # an inline worker.
        gc.collect()
        gc.freeze()

    def _direct_entry(self) -> Any:
        """The app's fast entry, or None when this worker must not use it: the app has none, or gunicorn is set
        up to do more per request than the fast path does (see the module docstring)."""
        cfg = self.cfg
        direct = getattr(self.wsgi, DIRECT, None)
        limits = (cfg.limit_request_line, cfg.limit_request_field_size)
        if (
            not callable(direct)
            or cfg.is_ssl
            or cfg.proxy_protocol != "off"
            or getattr(cfg, "protocol", "http") != "http"
            or os.environ.get("SCRIPT_NAME")
            or not cfg.keepalive
            or self.log.access_log_enabled
            or cfg.pre_request is not PreRequest.default
            or cfg.post_request is not PostRequest.default
            or 0 < cfg.limit_request_fields < len(_SIMPLE_FIELDS)
            or any(0 < limit < MAX_SIMPLE_HEAD for limit in limits)
        ):
            return None
        return direct

    def notify(self) -> None:
        """gunicorn's heartbeat, a ``utime`` of a file, on every turn of the loop — about once a request under
        load; once a second is plenty for a 30 s timeout."""
        now = time.monotonic()
        if now >= self._next_notify:
            self._next_notify = now + NOTIFY_EVERY
            super().notify()

    # ---------------------------------------------------------------- event loop (the worker's main thread)

    def enqueue_req(self, conn: Any) -> None:
        """gunicorn calls this for a new connection, a readable kept-alive one and pipelined bytes."""
        if not isinstance(conn.sock, _Socket):  # a new connection
            conn.sock = _Socket.adopt(conn.sock)
        else:
            conn.sock.setblocking(False)
        early = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        arriving = _Arriving(time.monotonic() + HEAD_TIMEOUT, bytearray(early))
        if not early:
            # Often the request is there already (a kept-alive connection the poller just reported, a new one
            # whose request came with the handshake): read it now rather than after one more poll.
            try:
                data = conn.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._close(conn)
                return
            if data:
                arriving.data += data
        if self._dispatch(conn, arriving):
            return
        self._wait_for_request(conn, arriving)

    def _wait_for_request(self, conn: Any, arriving: _Arriving) -> None:
        self._arriving[conn] = arriving
        self._watch(conn, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _watch(self, conn: Any, events: int, callback: Any) -> None:
        """Register the socket with the poller, or change what it is watched for: a connection answered inline
        stays registered from one request to the next (two ``epoll_ctl`` calls fewer per request)."""
        try:
            self.poller.modify(conn.sock, events, callback)  # no system call when only the callback changes
        except KeyError:
            self.poller.register(conn.sock, events, callback)

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
        if arriving.kept:  # a kept-alive connection's next request begins: it has HEAD_TIMEOUT to arrive
            arriving.kept = False
            arriving.deadline = time.monotonic() + HEAD_TIMEOUT
        arriving.data += data
        self._dispatch(conn, arriving, registered=True)

    def _dispatch(self, conn: Any, arriving: _Arriving, registered: bool = False) -> bool:
        """Answer the request inline, hand it to a thread, or refuse it, once it is complete or too large."""
        if self._direct is not None and self.alive and time.monotonic() >= self._inline_from:
            simple = simple_request(arriving.data)
            if simple is not None:
                self._arriving.pop(conn, None)  # still registered with the poller: see _watch
                if self._direct_call(conn, simple):
                    return True
        complete = request_complete(arriving.data)
        if complete is False:
            return False
        data = bytes(arriving.data)
        inline = complete is True and self.alive and request_buffered(data) and time.monotonic() >= self._inline_from
        if inline:
            self._arriving.pop(conn, None)  # still registered with the poller: see _watch
        elif registered:
            self._forget(conn)
        if complete is None:
            self._refuse(conn, _TOO_LARGE)
            return True
        self._ready[conn] = data
        conn.data_ready = True  # gunicorn's handle() must not wait for more bytes first
        if inline:
            self._inline(conn)
        else:
            super().enqueue_req(conn)
        return True

    def _direct_call(self, conn: Any, simple: tuple[str, str, str | None, bytes, bool]) -> bool:
        """Answer a simple request through the app's fast entry; False when the request must take the WSGI path
        (the app does not take it, or gunicorn would not keep the connection alive after it)."""
        if (
            self.nr + 1 >= self.max_requests  # gunicorn restarts the worker after this one: its path says so
            or len(self.keepalived_conns) >= self.max_keepalived
        ):
            return False
        method, path, content_type, body, close = simple
        sock: _Socket = conn.sock
        self.log.debug("%s %s", method, path)  # gunicorn's default pre_request hook
        inicio = time.monotonic()
        try:
            answer = self._direct(method, path, content_type, body)
        except Exception as e:  # noqa: BLE001 - as gunicorn answers an app that raises: a 500, then close
            self._check_slow(inicio)
            self._fail(conn, e)
            return True
        self._check_slow(inicio)
        if not isinstance(answer, tuple):
            sock.carry = answer or None  # e.g. the store's failure: the WSGI app answers it without asking again
            return False
        self.nr += 1
        status, headers, payload = answer
        try:
            out = self._answer_head(status, headers, len(payload), close) + payload
        except (InvalidResponseHeader, InvalidResponseHeaderName) as e:
            self._fail(conn, e)
            return True
        if close:
            self.log.debug("Closing connection.")
        self._send(conn, out, keep=not close)
        return True

    def _fail(self, conn: Any, error: Exception) -> None:
        """gunicorn's answer to an app that failed (its ``handle_error``: logged, a 500), then the connection
        closes."""
        sock: _Socket = conn.sock
        sock.out = bytearray()
        try:
            self.handle_error(None, sock, conn.client, error)
        finally:
            out, sock.out = sock.out, None
        self._send(conn, out, keep=False)

    def _check_slow(self, inicio: float) -> None:
        if time.monotonic() - inicio > INLINE_SLOW:
            self._inline_from = time.monotonic() + INLINE_PAUSE
            self.log.warning(
                "a request took %.0f ms: requests go to the thread pool for %.0f s",
                (time.monotonic() - inicio) * 1000, INLINE_PAUSE,
            )

    def _inline(self, conn: Any) -> None:
        sock: _Socket = conn.sock
        sock.out = bytearray()
        inicio = time.monotonic()
        try:
            keep = self.handle(conn)  # gunicorn's own request handling; it catches and answers every error
        finally:
            out, sock.out = sock.out, None
        self._check_slow(inicio)
        self._send(conn, out, bool(keep))

    def _send(self, conn: Any, out: bytes | bytearray, keep: bool) -> None:
        """Send an answer collected in the loop with one non-blocking ``send``; what the socket does not take
        waits for it in the loop."""
        sock: _Socket = conn.sock
        sent = 0
        if out:
            try:
                sent = sock.send(out)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:  # the client left
                self._forget(conn)
                self._close(conn)
                return
        if sent < len(out):
            self._leaving[conn] = _Leaving(time.monotonic() + WRITE_TIMEOUT, memoryview(out)[sent:], keep)
            self._watch(conn, selectors.EVENT_WRITE, partial(self._on_writable, conn))
            return
        self._answered(conn, keep)

    def _on_writable(self, conn: Any, _sock: Any) -> None:
        leaving = self._leaving.get(conn)
        if leaving is None or leaving.rest is None:
            return
        try:
            sent = conn.sock.send(leaving.rest)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._forget(conn)
            self._close(conn)
            return
        leaving.rest = leaving.rest[sent:]
        if not leaving.rest:
            del self._leaving[conn]
            self._answered(conn, leaving.keep)

    def _answered(self, conn: Any, keep: bool) -> None:
        """An inline answer is out: wait for the next request (kept alive, as gunicorn would), or close."""
        if not keep:
            self._leave(conn)
            return
        if conn.parser is not None and conn.parser.unreader.buf.getvalue():
            # Pipelined bytes: served on the next turn of the loop, after the other connections' events.
            self._forget(conn)
            self.method_queue.defer(self.enqueue_req, conn)
            return
        self._wait_for_request(conn, _Arriving(time.monotonic() + self.cfg.keepalive, kept=True))

    def _leave(self, conn: Any) -> None:
        """Close as gunicorn's close_graceful does — FIN, then read what the client still sends until it closes
        too (so the kernel does not reset the answer away) — but in the loop, within CLOSE_LINGER."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._forget(conn)
            self._close(conn)
            return
        self._leaving[conn] = _Leaving(time.monotonic() + CLOSE_LINGER, None)
        self._watch(conn, selectors.EVENT_READ, partial(self._on_drain, conn))

    def _on_drain(self, conn: Any, _sock: Any) -> None:
        try:
            if conn.sock.recv(65536):
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._forget(conn)
        self._close(conn)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        if not self.alive:
            # Stopping: a connection that has sent nothing yet gets no request served; the others may finish.
            # A kept-alive one lingers a moment, as gunicorn's own do, for a request its client may be sending.
            for conn, arriving in list(self._arriving.items()):
                if arriving.kept:
                    arriving.deadline = min(arriving.deadline, self._stop_linger(now))
                elif not arriving.data:
                    self._forget(conn)
                    self._close(conn)
        if now < self._next_scan:
            return
        self._next_scan = now + _SCAN_EVERY
        for conn, arriving in [(c, a) for c, a in self._arriving.items() if a.deadline <= now]:
            self._forget(conn)
            if arriving.data:
                self._refuse(conn, _TIMEOUT)
            else:
                self._close(conn)
        for conn in [c for c, x in self._leaving.items() if x.deadline <= now]:
            self._forget(conn)
            self._close(conn)

    def _stop_linger(self, now: float) -> float:
        if self._stopped_at is None:
            self._stopped_at = now
        return self._stopped_at + float(STOP_KEEPALIVE_LINGER)

    def _forget(self, conn: Any) -> None:
        self._arriving.pop(conn, None)
        self._leaving.pop(conn, None)
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
        self._ready.pop(conn, None)
        self.nr_conns -= 1
        conn.close()

    # ---------------------------------------------------------------- a thread of the pool (or inline)

    def handle(self, conn: Any) -> Any:
        data = self._ready.pop(conn, None)
        if data is not None:
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(data)
        return super().handle(conn)

