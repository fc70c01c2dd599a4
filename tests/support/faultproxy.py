"""A loopback reverse proxy in front of a real registry that misbehaves on purpose.

Each request is matched against ``faults`` in order; the first fault whose
predicate matches and that still has ``times`` left decides what happens instead
of (or to) the real answer:

* ``status``: answer with that HTTP status (e.g. 503, 429) and optional ``Retry-After``;
* ``drop``: read the request, answer nothing, close the connection;
* ``respond``: answer ``(status, headers, body)`` without asking the registry (an API it lacks);
* ``truncate``: forward, announce the full Content-Length, send half the body, close;
* ``lose_response``: forward to the registry (which acts on it), then close without answering;
* ``corrupt``: forward, then flip one byte of the registry's body (same length);
* ``body``: forward, then replace the body (``no_length`` drops Content-Length and closes instead);
* ``hang``: read the request and never answer (until the proxy stops);
* ``dribble``: forward, then send the whole answer one byte every ``dribble`` seconds;
* ``dribble_body``: forward, send the headers at once, then the body one byte every ``dribble_body`` seconds;
* ``delay``: wait that many seconds before forwarding (so that concurrent requests overlap for sure).

``counted`` (a predicate like a fault's) makes the proxy count the matching requests in flight at once
(``max_in_flight``); ``max_connections`` is the most client connections it had open at once.

Everything else is forwarded unchanged, Host header included, so the registry's
upload ``Location`` URLs point back at the proxy.  ``log`` records what passed.

With ``paginate_tags`` the proxy pages ``/tags/list?n=N&last=T`` the way the
distribution spec describes (lexical order, ``Link: <...>; rel="next"``):
distribution 2.8 ignores ``n`` and always returns every tag.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class QuietServer(ThreadingHTTPServer):
    """Clients hanging up on purpose (or on shutdown) are no news: no traceback on stderr."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass
class Fault:
    match: Callable[[str, str], bool]  # (method, path) -> applies?
    times: int | None = 1  # None: forever
    status: int | None = None
    retry_after: str | None = None
    drop: bool = False
    lose_response: bool = False
    truncate: bool = False
    respond: tuple[int, dict[str, str], bytes] | None = None
    corrupt: bool = False
    body: bytes | None = None
    no_length: bool = False
    hang: bool = False
    dribble: float = 0.0
    dribble_body: float = 0.0
    delay: float = 0.0


def any_request(method: str, path: str) -> bool:
    return True


def blob_get(method: str, path: str) -> bool:
    return method == "GET" and "/blobs/sha256:" in path


def manifest_get(method: str, path: str) -> bool:
    return method == "GET" and "/manifests/" in path


class FaultProxy:
    def __init__(
        self, upstream_port: int, faults: list[Fault] | None = None, paginate_tags: bool = False,
        counted: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.upstream_port = upstream_port
        self.counted = counted
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections = 0
        self.max_connections = 0
        self.paginate_tags = paginate_tags
        self.faults = list(faults or [])
        self.log: list[tuple[str, str, str]] = []  # (method, path, what happened)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = QuietServer(("127.0.0.1", 0), self._handler())
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if (f.times is None or f.times > 0) and f.match(method, path):
                    if f.times is not None:
                        f.times -= 1
                    return f
        return None

    def _record(self, method: str, path: str, what: str) -> None:
        with self._lock:
            self.log.append((method, path, what))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy.connections += 1
                    proxy.max_connections = max(proxy.max_connections, proxy.connections)

            def finish(self) -> None:
                with proxy._lock:
                    proxy.connections -= 1
                super().finish()

            def _handle(self) -> None:
                counted = proxy.counted is not None and proxy.counted(self.command, self.path)
                if counted:
                    with proxy._lock:
                        proxy.in_flight += 1
                        proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                try:
                    self._handle_one()
                finally:
                    if counted:
                        with proxy._lock:
                            proxy.in_flight -= 1

            def _handle_one(self) -> None:
                method = self.command
                if self.headers.get("Transfer-Encoding"):
                    self._send(411, {}, b"")  # our client always sends Content-Length
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._pick(method, self.path)
                if fault is not None and fault.delay:
                    proxy._stopping.wait(fault.delay)
                if fault is not None and fault.hang:
                    proxy._record(method, self.path, "hung")
                    proxy._stopping.wait()
                    self.close_connection = True
                    return
                if fault is not None and fault.drop:
                    proxy._record(method, self.path, "dropped")
                    self.close_connection = True
                    return
                if fault is not None and fault.respond is not None:
                    status, extra, payload = fault.respond
                    proxy._record(method, self.path, f"answered {status}")
                    self._send(status, extra, payload)
                    return
                if fault is not None and fault.status is not None:
                    proxy._record(method, self.path, f"fault {fault.status}")
                    extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    self._send(fault.status, extra, b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}')
                    return
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                paging = proxy.paginate_tags and url.path.endswith("/tags/list") and "n" in query
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    headers: dict[str, str] = {}
                    for k, v in self.headers.items():  # repeated headers (skopeo's Accept lines) joined
                        if k.lower() not in HOP_BY_HOP:
                            headers[k] = f"{headers[k]}, {v}" if k in headers else v
                    target = url.path if paging else self.path
                    conn.request(method, target, body=body if (body or length) else None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    out_headers = {k: v for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP}
                finally:
                    conn.close()
                what = f"forwarded {resp.status}"
                if fault is not None and fault.lose_response:
                    proxy._record(method, self.path, f"{what}, response lost")
                    self.close_connection = True
                    return
                if paging and resp.status == 200:
                    doc = json.loads(data)
                    tags = sorted(doc.get("tags") or [])
                    last = query.get("last", [""])[0]
                    n = int(query["n"][0])
                    rest = [t for t in tags if t > last]
                    doc["tags"] = rest[:n]
                    data = json.dumps(doc).encode()
                    if len(rest) > n:
                        nxt = urlencode({"n": n, "last": doc["tags"][-1]})
                        out_headers["Link"] = f'<{url.path}?{nxt}>; rel="next"'
                    what += " paged"
                no_length = False
                if fault is not None and resp.status == 200 and method != "HEAD":
                    if fault.corrupt and data:
                        data = bytes([data[0] ^ 0xFF]) + data[1:]
                        what += " corrupted"
                    if fault.body is not None:
                        data = fault.body
                        no_length = fault.no_length
                        what += " replaced"
                if fault is not None and fault.truncate and method != "HEAD" and len(data) > 1:
                    proxy._record(method, self.path, f"{what} truncated")
                    out_headers["Content-Length"] = str(len(data))
                    self.send_response(resp.status)
                    for k, v in out_headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.close_connection = True
                    return
                if fault is not None and (fault.dribble or fault.dribble_body):
                    proxy._record(method, self.path, f"{what} dribbled")
                    head = f"HTTP/1.1 {resp.status} {resp.reason}\r\n".encode()
                    out_headers["Content-Length"] = str(len(data))
                    head += b"".join(f"{k}: {v}\r\n".encode() for k, v in out_headers.items()) + b"\r\n"
                    self.close_connection = True
                    if fault.dribble_body:
                        self.wfile.write(head)
                        self.wfile.flush()
                    slow = head + data if fault.dribble else data
                    pause = fault.dribble or fault.dribble_body
                    for i in range(len(slow)):
                        if proxy._stopping.wait(pause):
                            return
                        self.wfile.write(slow[i : i + 1])
                        self.wfile.flush()
                    return
                proxy._record(method, self.path, what)
                if method == "HEAD":
                    self._send(resp.status, out_headers, b"", head=True)
                else:
                    out_headers.pop("Content-Length", None)
                    self._send(resp.status, out_headers, data, no_length=no_length)

            def _send(
                self, status: int, headers: dict[str, str], data: bytes, head: bool = False, no_length: bool = False
            ) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if no_length:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                elif not head:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not head:
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        return Handler
