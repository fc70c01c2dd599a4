"""A lean HTTP/1.1 client on sockets for the distribution API: pooled keep-alive connections,
redirects, proxies from the environment, TLS verification.

Why not ``requests``, or even ``http.client``: importing requests and urllib3 costs ~0.1 s, more than
the whole of a warm push's own work, and ``http.client`` drags in the ``email`` package (~10 ms) to
parse headers.  The registry client needs a small part of HTTP/1.1, written out here on ``socket``
(``ssl`` is imported only for an https URL).

- **Messages**: requests with ``Content-Length`` (never chunked); answers framed by ``Content-Length``,
  ``Transfer-Encoding: chunked`` or the end of the connection, HEAD/204/304 without a body, 1xx skipped.
  Bounded: a status or header line of at most ``MAX_LINE`` bytes, at most ``MAX_HEADERS`` headers; a
  body that ends before its declared length raises ``IncompleteRead``.
- **Connections** are kept alive and reused per (scheme, host, port, proxy): at most ``MAX_IDLE`` idle
  ones are kept per host, each thread takes its own (the copy's ``--jobs`` bounds how many are in use
  at once).  A pooled connection the server has closed is noticed before reuse; a request that fails on
  a reused connection before any answer is sent once more on a fresh one.
- **Timeouts**: ``connect_timeout`` for connecting, ``read_timeout`` for every read after that; the
  watchdog of ``deadline.py`` watches each connection in use (a total deadline, a minimum blob speed)
  and shuts its socket down when either is broken.
- **Redirects** (301, 302, 303, 307, 308; at most ``MAX_REDIRECTS``) are followed as browsers and
  ``requests`` do: 303 (and 301/302 after a POST) turn into a GET without a body.  ``Authorization`` is
  dropped when the redirect leaves the host (scheme, name or port: a blob redirected to storage must not
  carry the registry's credentials), except for an upgrade from http to https on the default ports.
- **Proxies**: ``http_proxy`` / ``https_proxy`` / ``all_proxy`` (lower case first, then upper case),
  bypassed for the hosts in ``no_proxy`` (names and their subdomains, ``host:port``, IP addresses,
  CIDR ranges, ``*``).  Plain HTTP goes through the proxy with absolute URLs; HTTPS through a
  ``CONNECT`` tunnel.  Credentials in the proxy URL are sent as ``Proxy-Authorization``.
- **TLS**: verified against ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` when set, else certifi's bundle
  when installed, else the system's store (what ``requests`` did); ``verify=False`` for ``--insecure``.
  A failed handshake raises ``TLSError`` (not worth a retry).
- Bodies are never decoded (``Accept-Encoding: identity``): digests are of the bytes as sent.

Errors: ``OSError`` (refused, reset, timed out, name resolution, ``TLSError``) and ``ProtocolError``
(a broken or oversized answer); ``HTTP_ERRORS`` names both.  ``HTTPSetupError``: a request that
cannot be sent as asked (bad URL, proxy setting or header).
"""

from __future__ import annotations

import _socket  # the C module: socket.py wraps it in enums (a start-up cost); https imports ssl and socket
import _thread
import os
import select
from collections.abc import Iterable, Mapping

from giropops.oci.registry import deadline

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from typing import Any

MAX_IDLE = 16
MAX_REDIRECTS = 30
MAX_LINE = 65536
MAX_HEADERS = 100
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "giropops"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_BUFFER = 64 * 1024


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x as we accept it."""


class RemoteDisconnected(ProtocolError, ConnectionResetError):
    """The connection closed before a status line came."""


class IncompleteRead(ProtocolError):
    """A body ended before its declared length (or its last chunk)."""


class TLSError(OSError):
    """The TLS handshake failed: a certificate that does not verify, or a server not speaking TLS."""


class HTTPSetupError(ValueError):
    """A request that cannot be sent as given (a bad URL, proxy or header); not worth a retry."""


#: What a request or a body read raises when the connection or the answer is broken.
HTTP_ERRORS = (ProtocolError, OSError)


class Headers:
    """Response header fields: ``get`` (the first of that name) and ``get_all``, names case-insensitive."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for k, v in self._fields:
            if k.lower() == name:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self._fields if k.lower() == name]

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)


class _Reader:
    """A buffered reader on a socket that can tell whether it holds unread bytes (``pending``)."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""

    def pending(self) -> bool:
        return bool(self._buf)

    def _fill(self, want: int) -> bytes:
        return bytes(self._sock.recv(max(want, _BUFFER)))

    def read1(self, n: int) -> bytes:
        """At most ``n`` bytes with at most one receive; b"" at the end of the stream."""
        if self._buf:
            data, self._buf = self._buf[:n], self._buf[n:]
            return data
        data = self._fill(n)
        if len(data) > n:
            data, self._buf = data[:n], data[n:]
        return data

    def readinto1(self, view: memoryview) -> int:
        """Like ``read1`` into ``view``: straight from the socket when nothing is buffered (no copy)."""
        if self._buf:
            n = min(len(view), len(self._buf))
            view[:n] = self._buf[:n]
            self._buf = self._buf[n:]
            return n
        return int(self._sock.recv_into(view))

    def read(self, n: int) -> bytes:
        """``n`` bytes, fewer only at the end of the stream."""
        parts: list[bytes] = []
        got = 0
        while got < n:
            data = self.read1(n - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def readline(self, limit: int) -> bytes:
        """One line with its end, at most ``limit`` bytes (cut there), or what is left at the end of the stream."""
        while True:
            end = self._buf.find(b"\n", 0, limit)
            if end >= 0:
                line, self._buf = self._buf[: end + 1], self._buf[end + 1:]
                return line
            if len(self._buf) >= limit:
                line, self._buf = self._buf[:limit], self._buf[limit:]
                return line
            data = self._fill(_BUFFER)
            if not data:
                line, self._buf = self._buf, b""
                return line
            self._buf += data


class _Connection:
    """One TCP (or TLS) connection to an origin, possibly through a proxy."""

    def __init__(self, scheme: str, host: str, port: int, proxy: tuple[str, int, str | None] | None,
                 session: Session) -> None:
        self.scheme, self.host, self.port, self.proxy = scheme, host, port, proxy
        self.session = session
        self.connect_timeout = session.connect_timeout
        self.read_timeout = session.read_timeout
        self.sock: Any = None
        self.watch_sock: Any = None  # what the watchdog cuts (``deadline._fire``)
        self.rfile: _Reader | None = None

    def connect(self) -> None:
        host, port = (self.proxy[0], self.proxy[1]) if self.proxy else (self.host, self.port)
        # An ASCII name goes to getaddrinfo as bytes: a str would be encoded with the idna codec, whose
        # import (stringprep, unicodedata) costs more than the whole connect on loopback.
        address: Any = (host.encode("ascii") if host.isascii() else host, port)  # typeshed: str only
        sock: Any
        if self.scheme == "https":  # ssl wraps a socket.socket
            import socket

            sock = socket.create_connection(address, timeout=self.connect_timeout)
        else:
            sock = _create_connection(address, self.connect_timeout)
        self.watch_sock = sock
        try:
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            if self.scheme == "https":
                if self.proxy is not None:
                    _tunnel(sock, self.host, self.port, self.proxy[2])
                import ssl

                try:
                    sock = self.session.ssl_context().wrap_socket(sock, server_hostname=self.host)
                except ssl.SSLError as exc:
                    raise TLSError(str(exc)) from exc
                self.watch_sock = sock
            sock.settimeout(self.read_timeout)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.rfile = _Reader(sock)

    def send(self, head: bytes, body: bytes | Iterable[bytes] | None) -> None:
        if self.sock is None:
            self.connect()
        sock = self.sock
        if isinstance(body, bytes):
            if len(body) <= _BUFFER:
                sock.sendall(head + body)
            else:
                sock.sendall(head)
                sock.sendall(body)
            return
        sock.sendall(head)
        if body is not None:
            for chunk in body:
                sock.sendall(chunk)

    def close(self) -> None:
        deadline.WATCHDOG.forget(self)
        sock = self.sock
        self.rfile = self.sock = None
        if sock is not None:
            sock.close()


def _create_connection(address: tuple[Any, int], timeout: float) -> _socket.socket:
    """``socket.create_connection(address, timeout)`` on ``_socket``: each address ``getaddrinfo`` gives, in
    order, until one connects; else the last one's error."""
    host, port = address
    last: OSError | None = None
    for family, kind, proto, _name, sockaddr in _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock
    if last is not None:
        raise last
    raise OSError(f"no address to connect to for {host}")


def _tunnel(sock: Any, host: str, port: int, auth: str | None) -> None:
    """``CONNECT host:port`` through an HTTP proxy; reads the proxy's answer byte by byte (it is short)."""
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    if auth:
        head += f"Proxy-Authorization: {auth}\r\n"
    sock.sendall((head + "\r\n").encode("latin-1"))
    answer = b""
    while not answer.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise RemoteDisconnected("the proxy closed the connection during CONNECT")
        answer += byte
        if len(answer) > MAX_LINE:
            raise ProtocolError("the proxy's answer to CONNECT is too long")
    status = answer.split(b"\r\n", 1)[0].split(None, 2)
    if len(status) < 2 or status[1] != b"200":
        raise OSError(f"the proxy refused the tunnel to {target} ({status[1:2] and status[1].decode('latin-1')})")


def _readline(rfile: _Reader, what: str) -> bytes:
    line = rfile.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise ProtocolError(f"{what} longer than {MAX_LINE} bytes")
    return line


class _Body:
    """The framing of one answer's body on a connection's reader."""

    def __init__(self, rfile: _Reader, method: str, status: int, headers: Headers,
                 keep_alive: bool) -> None:
        self.rfile = rfile
        self.chunked = False
        self.length: int | None = None  # bytes left (Content-Length framing)
        self.chunk_left = 0
        self.done = False
        self.will_close = not keep_alive
        te = (headers.get("Transfer-Encoding") or "").lower()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self.length = 0
        elif te:
            if te.replace(" ", "").split(",")[-1] != "chunked":
                raise ProtocolError(f"unsupported Transfer-Encoding {te[:50]!r}")
            self.chunked = True
        else:
            lengths = {v.strip() for v in headers.get_all("Content-Length")}
            if len(lengths) > 1 or any(not v.isdigit() for v in lengths):
                raise ProtocolError("invalid Content-Length")
            if lengths:
                self.length = int(lengths.pop())
            else:
                self.will_close = True  # the body ends with the connection
        if self.length == 0:
            self.done = True

    def _next_chunk(self) -> None:
        """Start the next chunk (``chunk_left``), or end the body after the last one and its trailer."""
        line = _readline(self.rfile, "a chunk size line")
        if not line:
            raise IncompleteRead("the connection closed inside a chunked body")
        size = line.split(b";", 1)[0].strip()
        try:
            self.chunk_left = int(size, 16)
        except ValueError:
            raise ProtocolError("invalid chunk size") from None
        if self.chunk_left < 0:
            raise ProtocolError("invalid chunk size")
        if self.chunk_left == 0:
            for _ in range(MAX_HEADERS + 1):
                trailer = _readline(self.rfile, "a trailer line")
                if trailer in (b"\r\n", b"\n", b""):
                    self.done = True
                    return
            raise ProtocolError("too many trailer lines")

    def read1(self, amt: int) -> bytes:
        if self.done or amt <= 0:
            return b""
        rfile = self.rfile
        if self.chunked:
            if self.chunk_left == 0:
                self._next_chunk()
                if self.done:
                    return b""
            data = rfile.read1(min(amt, self.chunk_left))
            if not data:
                raise IncompleteRead("the connection closed inside a chunk")
            self.chunk_left -= len(data)
            if self.chunk_left == 0 and rfile.read(2) not in (b"\r\n",):
                raise ProtocolError("a chunk does not end with CRLF")
            return data
        if self.length is None:
            data = rfile.read1(amt)
            if not data:
                self.done = True
            return data
        data = rfile.read1(min(amt, self.length))
        if not data:
            raise IncompleteRead(f"the body ended {self.length} bytes short")
        self.length -= len(data)
        if self.length == 0:
            self.done = True
        return data

    def readinto1(self, view: memoryview) -> int:
        """Like ``read1``, into ``view`` (no copy for a body framed by Content-Length or the connection)."""
        if self.done or not len(view):
            return 0
        if self.chunked:
            data = self.read1(len(view))
            view[: len(data)] = data
            return len(data)
        if self.length is not None:
            view = view[: self.length]
        n = self.rfile.readinto1(view)
        if self.length is None:
            if not n:
                self.done = True
            return n
        if not n:
            raise IncompleteRead(f"the body ended {self.length} bytes short")
        self.length -= n
        if self.length == 0:
            self.done = True
        return n

    def read(self, amt: int) -> bytes:
        if self.done or amt <= 0:
            return b""
        if not self.chunked and self.length is not None:
            want = min(amt, self.length)
            data = self.rfile.read(want)
            if len(data) < want:
                raise IncompleteRead(f"the body ended {self.length - len(data)} bytes short")
            self.length -= len(data)
            if self.length == 0:
                self.done = True
            return data
        parts: list[bytes] = []
        got = 0
        while got < amt:
            data = self.read1(amt - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b"".join(parts)


def _read_head(rfile: _Reader) -> tuple[int, str, Headers, bool]:
    """Status, reason, headers and whether the connection stays open, skipping 1xx interim answers."""
    for _ in range(10):
        line = _readline(rfile, "the status line")
        if not line:
            raise RemoteDisconnected("the server closed the connection without an answer")
        parts = line.decode("latin-1").rstrip("\r\n").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not (parts[1].isdigit() and len(parts[1]) == 3):
            raise ProtocolError(f"not an HTTP/1.x status line: {line[:100]!r}")
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        fields: list[tuple[str, str]] = []
        while True:
            hline = _readline(rfile, "a header line")
            if hline in (b"\r\n", b"\n"):
                break
            if not hline:
                raise RemoteDisconnected("the connection closed inside the headers")
            text = hline.decode("latin-1").rstrip("\r\n")
            if text[:1] in (" ", "\t") and fields:  # obsolete line folding
                fields[-1] = (fields[-1][0], fields[-1][1] + " " + text.strip())
                continue
            name, colon, value = text.partition(":")
            if not colon:
                raise ProtocolError(f"invalid header line {hline[:100]!r}")
            fields.append((name.strip(), value.strip()))
            if len(fields) > MAX_HEADERS:
                raise ProtocolError(f"more than {MAX_HEADERS} headers")
        if 100 <= status < 200:
            continue
        headers = Headers(fields)
        conn_tokens = {t.strip().lower() for t in (headers.get("Connection") or "").split(",")}
        keep = ("keep-alive" in conn_tokens) if parts[0] == "HTTP/1.0" else ("close" not in conn_tokens)
        return status, reason, headers, keep
    raise ProtocolError("too many interim (1xx) answers")


class Response:
    """An answer whose body is read on demand (bounded by the caller); ``close`` releases the connection:
    back to the pool when the body was read to its end, else closed."""

    def __init__(self, session: Session, conn: _Connection, key: tuple[str, ...], method: str, url: str) -> None:
        assert conn.rfile is not None
        status, reason, headers, keep = _read_head(conn.rfile)
        self._session = session
        self._conn: _Connection | None = conn
        self._key = key
        self.url = url
        self.status_code = status
        self.reason = reason
        self.headers = headers
        self.connection = conn
        self._body = _Body(conn.rfile, method, status, headers, keep)
        if self._body.done:
            self._release()

    def read(self, amt: int) -> bytes:
        """Up to ``amt`` bytes (fewer only at the end of the body); a body cut short raises IncompleteRead."""
        if self._conn is None:
            return b""
        data = self._body.read(amt)
        if self._body.done:
            self._release()
        return data

    def read1(self, amt: int) -> bytes:
        """What one receive gives, up to ``amt`` bytes; b"" at the end of the body."""
        if self._conn is None:
            return b""
        data = self._body.read1(amt)
        if self._body.done:
            self._release()
        return data

    def readinto1(self, view: memoryview) -> int:
        """``read1`` into ``view``; 0 at the end of the body."""
        if self._conn is None:
            return 0
        n = self._body.readinto1(view)
        if self._body.done:
            self._release()
        return n

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The ``Link`` header by relation: ``{"next": {"url": ..., "rel": "next"}}``."""
        out: dict[str, dict[str, str]] = {}
        for value in self.headers.get_all("Link"):
            for part in value.split(",<"):
                part = part.strip()
                if not part.startswith("<"):
                    part = "<" + part
                target, _, params = part.partition(">")
                link = {"url": target[1:].strip()}
                for param in params.split(";"):
                    name, eq, val = param.partition("=")
                    if eq:
                        link[name.strip().lower()] = val.strip().strip("'\"")
                out[link.get("rel") or link["url"]] = link
        return out

    def _release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            self._session.give_back(self._key, conn, self._body.done and not self._body.will_close)

    def close(self) -> None:
        self._release()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Session:
    """Keep-alive connections to the hosts one client talks to (the registry, its token server, storage)."""

    def __init__(self, verify: bool, connect_timeout: float, read_timeout: float) -> None:
        self.verify = verify
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: dict[tuple[str, ...], list[_Connection]] = {}
        self._lock = _thread.allocate_lock()
        self._ssl: Any = None
        self._closed = False

    def ssl_context(self) -> Any:
        import ssl

        with self._lock:
            if self._ssl is None:
                if not self.verify:
                    ctx = ssl.create_default_context()
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                else:
                    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or _certifi()
                    if bundle and os.path.isdir(bundle):
                        ctx = ssl.create_default_context(capath=bundle)
                    else:
                        ctx = ssl.create_default_context(cafile=bundle or None)
                self._ssl = ctx
            return self._ssl

    def _take(self, key: tuple[str, ...]) -> _Connection | None:
        with self._lock:
            idle = self._idle.get(key)
            while idle:
                conn = idle.pop()
                if not _dropped(conn):
                    return conn
                conn.close()
        return None

    def give_back(self, key: tuple[str, ...], conn: _Connection, reusable: bool) -> None:
        deadline.WATCHDOG.forget(conn)
        if reusable and conn.sock is not None:
            with self._lock:
                idle = self._idle.setdefault(key, [])
                if not self._closed and len(idle) < MAX_IDLE:
                    idle.append(conn)
                    return
        conn.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | list[tuple[str, str]] | None = None,
        body: bytes | Iterable[bytes] | None = None,
        length: int | None = None,
        allow_redirects: bool = True,
        timeouts: tuple[float, float] | None = None,
    ) -> Response:
        """Send one request (following redirects); the body of the answer is left to read.

        ``body`` is bytes, or an iterable of chunks of ``length`` bytes in all (sent with that
        Content-Length; the iterable is consumed, so a redirect that keeps the body needs bytes).
        """
        if params:
            from urllib.parse import urlencode

            url += ("&" if "?" in url else "?") + urlencode(list(params.items()) if isinstance(params, Mapping)
                                                            else params)
        hdrs = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        hdrs.update(headers or {})
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._send_once(method, url, hdrs, body, length, timeouts)
            if not allow_redirects or resp.status_code not in REDIRECTS:
                return resp
            location = resp.headers.get("Location")
            if not location:
                return resp
            _drain(resp)
            from urllib.parse import urljoin

            new_url = urljoin(url, location)
            if (resp.status_code == 303 and method != "HEAD") or (resp.status_code in (301, 302) and method == "POST"):
                method, body, length = "GET", None, None
                for name in [h for h in hdrs if h.lower() in ("content-type", "content-length")]:
                    del hdrs[name]
            elif body is not None and not isinstance(body, bytes):
                raise HTTPSetupError(f"HTTP {resp.status_code} redirect of a streamed upload is not supported")
            if _strips_auth(url, new_url):
                for name in [h for h in hdrs if h.lower() == "authorization"]:
                    del hdrs[name]
            url = new_url
        raise HTTPSetupError(f"more than {MAX_REDIRECTS} redirects")

    def _send_once(
        self, method: str, url: str, hdrs: dict[str, str], body: bytes | Iterable[bytes] | None,
        length: int | None, timeouts: tuple[float, float] | None,
    ) -> Response:
        scheme, netloc, host, port, target = _split_url(url)
        proxy = _proxy_for(scheme, host, port)
        key = (scheme, host, str(port), repr(proxy))
        send_headers = {"Host": netloc, **hdrs}
        if proxy is not None and scheme == "http":
            target = f"http://{netloc}{target}"  # absolute form, through the proxy
            if proxy[2]:
                send_headers["Proxy-Authorization"] = proxy[2]
        if isinstance(body, bytes):
            send_headers["Content-Length"] = str(len(body))
        elif body is not None:
            send_headers["Content-Length"] = str(length or 0)
        elif method in ("POST", "PUT", "PATCH"):
            send_headers["Content-Length"] = "0"
        head = _head(method, target, send_headers)
        for fresh in (False, True):
            conn = None if fresh else self._take(key)
            reused = conn is not None
            if conn is None:
                conn = _Connection(scheme, host, port, proxy, self)
            if timeouts is not None:
                conn.connect_timeout, conn.read_timeout = timeouts
                if conn.sock is not None:
                    conn.sock.settimeout(timeouts[1])
            if deadline.aborted():
                conn.close()
                raise ConnectionAbortedError("the copy was cancelled")
            deadline.WATCHDOG.watch(conn, deadline.current_deadline())
            try:
                try:
                    conn.send(head, body)
                except (BrokenPipeError, ConnectionResetError):
                    if conn.rfile is None:
                        raise
                    # The server may have answered early (an error) and closed: read what it said.
                return Response(self, conn, key, method, url)
            except (RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if reused and (body is None or isinstance(body, bytes)):
                    continue  # a keep-alive connection the server closed meanwhile: once more, fresh
                raise
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for c in conns:
            c.close()


def _head(method: str, target: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers.items():
        lines.append(f"{name}: {value}")
    if any(c in line for line in lines for c in "\r\n\0") or " " in target or not method.isalpha():
        raise HTTPSetupError("a request line or header holds a line break, NUL or space")
    text = "\r\n".join(lines)
    try:
        return (text + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise HTTPSetupError("a request line or header is not Latin-1") from None


def _dropped(conn: _Connection) -> bool:
    """Whether an idle connection was closed by the server (or sent something unasked)."""
    sock = conn.sock
    if sock is None or conn.rfile is None or conn.rfile.pending():
        return True
    try:
        readable, _w, _x = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _drain(resp: Response) -> None:
    try:
        resp.read(64 * 1024)
    except HTTP_ERRORS:
        pass
    finally:
        resp.close()


#: Characters of a URL that ``_split_url`` reads without ``urllib.parse`` (printable ASCII but these).
_PLAIN_URL = frozenset(chr(c) for c in range(0x21, 0x7F)) - set("@#[]\\")


def _split_url(url: str) -> tuple[str, str, str, int, str]:
    """(scheme, netloc without credentials, host name in lower case, port, request target) of ``url``.

    ``http(s)://HOST[:PORT]/PATH[?QUERY]`` in plain printable ASCII (no credentials, fragment, IPv6
    literal, space or backslash: every URL of a registry on loopback) is split here, as ``urlsplit`` splits
    it; anything else by ``urlsplit`` (whose import, with ``re``, ``ipaddress`` and ``enum``, costs more
    than a replayed warm push's own requests)."""
    scheme, sep, rest = url.partition("://")
    lowered = scheme.lower()
    if sep and lowered in _DEFAULT_PORTS and _PLAIN_URL.issuperset(rest):
        netloc, slash, path = rest.partition("/")
        name, colon, port_text = netloc.partition(":")
        port_ok = not colon or (port_text.isdigit() and 0 < int(port_text) < 65536)
        if name and "?" not in netloc and port_ok:
            path, _, query = (slash + path).partition("?")
            return (lowered, netloc, name.lower(), int(port_text) if colon else _DEFAULT_PORTS[lowered],
                    (path or "/") + ("?" + query if query else ""))
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise HTTPSetupError(f"unsupported URL {url[:200]!r}")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise HTTPSetupError(f"invalid port in {url[:200]!r}") from exc
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return scheme, parts.netloc.rpartition("@")[2], parts.hostname, port, target


def _origin(url: str) -> tuple[str, str, int | None]:
    from urllib.parse import urlsplit

    p = urlsplit(url)
    scheme = p.scheme.lower()
    try:
        port = p.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    return scheme, (p.hostname or "").lower(), port


def _strips_auth(old: str, new: str) -> bool:
    """Whether a redirect from ``old`` to ``new`` must drop ``Authorization`` (it leaves the origin)."""
    o, n = _origin(old), _origin(new)
    if o[1] != n[1]:
        return True
    if o == n:
        return False
    # http -> https on the same host and the default ports is the one change that keeps credentials
    return not (o[0] == "http" and n[0] == "https" and o[2] == 80 and n[2] == 443)


def _env(name: str) -> str:
    return os.environ.get(name.lower()) or os.environ.get(name.upper()) or ""


def _proxy_for(scheme: str, host: str, port: int) -> tuple[str, int, str | None] | None:
    """(host, port, Proxy-Authorization) of the proxy for ``scheme://host:port``, None: go direct."""
    url = _env(f"{scheme}_proxy") or _env("all_proxy")
    if not url or _bypassed(host, port):
        return None
    if "://" not in url:
        url = "http://" + url
    from urllib.parse import unquote, urlsplit

    p = urlsplit(url)
    if p.scheme.lower() != "http" or not p.hostname:
        raise HTTPSetupError(f"unsupported proxy {p.scheme}://{p.hostname or ''} (only http:// proxies)")
    try:
        proxy_port = p.port or 80
    except ValueError as exc:
        raise HTTPSetupError("invalid port in the proxy URL") from exc
    auth = None
    if p.username is not None:
        pair = f"{unquote(p.username)}:{unquote(p.password or '')}"
        import binascii  # a proxy with credentials only

        auth = "Basic " + binascii.b2a_base64(pair.encode(), newline=False).decode()
    return p.hostname, proxy_port, auth


def _bypassed(host: str, port: int) -> bool:
    entries = [e.strip() for e in _env("no_proxy").split(",") if e.strip()]
    if not entries:
        return False
    host = host.lower().strip("[]")
    for entry in entries:
        entry = entry.lower()
        if entry == "*":
            return True
        if entry.startswith("[") or entry.count(":") > 1 or "/" in entry or entry.replace(".", "").isdigit():
            if _ip_match(host, entry.strip("[]")):
                return True
            continue
        name, _, entry_port = entry.partition(":")
        if entry_port and entry_port != str(port):
            continue
        name = name.lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def _ip_match(host: str, entry: str) -> bool:
    import ipaddress

    try:
        addr = ipaddress.ip_address(host)
        return addr in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False


def _certifi() -> str | None:
    try:
        import certifi
    except ImportError:
        return None
    return str(certifi.where())
