"""A lean HTTP/1.1 client on ``http.client`` for the distribution API: pooled keep-alive connections,
redirects, proxies from the environment, TLS verification.

Why not ``requests``: importing it (and urllib3) costs ~0.1 s, more than the whole of a warm push's
own work; the registry client needs a small part of it, written out here on the standard library.

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
- Bodies are never decoded (``Accept-Encoding: identity``): digests are of the bytes as sent.

Errors are the standard library's: ``OSError`` (refused, reset, timed out, TLS, name resolution) and
``http.client.HTTPException`` (a broken or oversized answer); ``HTTP_ERRORS`` names both.
"""

from __future__ import annotations

import base64
import http.client
import os
import select
import socket
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlencode, urljoin, urlsplit

from giropops.oci.registry import deadline

#: What a request or a body read raises when the connection or the answer is broken.
HTTP_ERRORS = (http.client.HTTPException, OSError)
MAX_IDLE = 16
MAX_REDIRECTS = 30
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "giropops"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class HTTPSetupError(ValueError):
    """A request that cannot be sent as given (a bad URL, proxy or header); not worth a retry."""


class _Watched:
    """Mix-in: the socket stays known to the watchdog (``watch_sock``) even after ``http.client`` hands
    it over to a response that closes the connection, and the read timeout applies once connected."""

    read_timeout: float | None = None
    watch_sock: socket.socket | None = None
    sock: Any

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.watch_sock = self.sock
        if self.read_timeout is not None:
            self.sock.settimeout(self.read_timeout)


class _HTTPConnection(_Watched, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_Watched, http.client.HTTPSConnection):
    pass


_Conn = _HTTPConnection | _HTTPSConnection


class Response:
    """An answer whose body is read on demand (bounded by the caller); ``close`` releases the connection:
    back to the pool when the body was read to its end, else closed."""

    def __init__(self, session: Session, conn: _Conn, key: tuple[str, ...], raw: http.client.HTTPResponse,
                 url: str) -> None:
        self._session = session
        self._conn: _Conn | None = conn
        self._key = key
        self._raw = raw
        self.url = url
        self.status_code = raw.status
        self.reason = raw.reason
        self.headers = raw.msg  # case-insensitive ``get``
        self.connection = conn

    def read(self, amt: int) -> bytes:
        """Up to ``amt`` bytes (fewer only at the end of the body); a body cut short raises IncompleteRead."""
        if self._conn is None:
            return b""
        before = self._raw.length
        data = self._raw.read(amt)
        if before is not None and len(data) < min(amt, before):
            raise http.client.IncompleteRead(data, before - len(data))
        if len(data) < amt:
            self._release()
        return data

    def read1(self, amt: int) -> bytes:
        """What one receive gives, up to ``amt`` bytes; b"" at the end of the body."""
        if self._conn is None or amt <= 0:
            return b""
        before = self._raw.length
        data = self._raw.read1(amt)
        if not data:
            if before:  # http.client ends a body cut short quietly
                raise http.client.IncompleteRead(data, before)
            self._release()
        return data

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The ``Link`` header by relation: ``{"next": {"url": ..., "rel": "next"}}``."""
        out: dict[str, dict[str, str]] = {}
        for value in self.headers.get_all("Link") or ():
            for part in str(value).split(",<"):
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

    def _reusable(self) -> bool:
        """Whether the body was read to its end on a connection that stays open."""
        raw = self._raw
        if not raw.isclosed() and not raw.chunked and raw.length == 0:
            raw.close()  # ``read1`` does not mark a body read to its Content-Length as done
        return raw.isclosed() and not raw.will_close

    def _release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            reusable = self._reusable()
            if not reusable:
                self._raw.close()
            self._session.give_back(self._key, conn, reusable)

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
        self._idle: dict[tuple[str, ...], list[_Conn]] = {}
        self._lock = threading.Lock()
        self._ssl: Any = None
        self._closed = False

    # -- connections -------------------------------------------------------------------------

    def _ssl_context(self) -> Any:
        import ssl

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

    def _take(self, key: tuple[str, ...]) -> _Conn | None:
        with self._lock:
            idle = self._idle.get(key)
            while idle:
                conn = idle.pop()
                if not _dropped(conn):
                    return conn
                conn.close()
        return None

    def give_back(self, key: tuple[str, ...], conn: _Conn, reusable: bool) -> None:
        deadline.WATCHDOG.forget(conn)
        if reusable and conn.sock is not None:
            with self._lock:
                idle = self._idle.setdefault(key, [])
                if not self._closed and len(idle) < MAX_IDLE:
                    idle.append(conn)
                    return
        conn.close()

    def _new(self, scheme: str, host: str, port: int, proxy: tuple[str, int, str | None] | None) -> _Conn:
        conn: _Conn
        if scheme == "https":
            if proxy is None:
                conn = _HTTPSConnection(host, port, timeout=self.connect_timeout, context=self._ssl_context())
            else:
                conn = _HTTPSConnection(proxy[0], proxy[1], timeout=self.connect_timeout,
                                        context=self._ssl_context())
                tunnel_headers = {"Proxy-Authorization": proxy[2]} if proxy[2] else None
                conn.set_tunnel(host, port, headers=tunnel_headers)
        elif proxy is None:
            conn = _HTTPConnection(host, port, timeout=self.connect_timeout)
        else:
            conn = _HTTPConnection(proxy[0], proxy[1], timeout=self.connect_timeout)
        conn.read_timeout = self.read_timeout
        return conn

    # -- requests ----------------------------------------------------------------------------

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
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise HTTPSetupError(f"unsupported URL {url[:200]!r}")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError as exc:
            raise HTTPSetupError(f"invalid port in {url[:200]!r}") from exc
        host = parts.hostname
        proxy = _proxy_for(scheme, host, port)
        key = (scheme, host, str(port), repr(proxy))
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        send_headers = dict(hdrs)
        if proxy is not None and scheme == "http":
            target = f"http://{parts.netloc.rpartition('@')[2]}{target}"  # absolute form, through the proxy
            if proxy[2]:
                send_headers["Proxy-Authorization"] = proxy[2]
        if length is not None and not isinstance(body, bytes):
            send_headers["Content-Length"] = str(length)
        for fresh in (False, True):
            conn = None if fresh else self._take(key)
            reused = conn is not None
            if conn is None:
                conn = self._new(scheme, host, port, proxy)
            if timeouts is not None:
                conn.timeout, conn.read_timeout = timeouts
                if conn.sock is not None:
                    conn.sock.settimeout(timeouts[1])
            if deadline.aborted():
                conn.close()
                raise ConnectionAbortedError("the copy was cancelled")
            deadline.WATCHDOG.watch(conn, deadline.current_deadline())
            try:
                try:
                    conn.request(method, target, body=body, headers=send_headers)
                except (BrokenPipeError, ConnectionResetError):
                    # The server may have answered early (an error) and closed: read what it said.
                    pass
                raw = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                deadline.WATCHDOG.forget(conn)
                conn.close()
                if reused and (body is None or isinstance(body, bytes)):
                    continue  # a keep-alive connection the server closed meanwhile: once more, fresh
                raise
            except BaseException:
                deadline.WATCHDOG.forget(conn)
                conn.close()
                raise
            return Response(self, conn, key, raw, url)
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for c in conns:
            c.close()


def _dropped(conn: _Conn) -> bool:
    """Whether an idle connection was closed by the server (or sent something unasked)."""
    sock = conn.sock
    if sock is None:
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


def _origin(url: str) -> tuple[str, str, int | None]:
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
        auth = "Basic " + base64.b64encode(pair.encode()).decode()
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
