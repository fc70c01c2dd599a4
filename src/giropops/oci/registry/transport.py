"""HTTP for the distribution API: one pooled session per client (``http.py``), timeouts, bounded retries.

Transient failures are retried with exponential backoff: HTTP 429 and 5xx, dropped
or refused connections and timeouts.  A ``Retry-After`` header (seconds or an HTTP
date) is honoured, capped so a hostile server cannot park us forever.  Bodies are
given as bytes or as an *opener* (a callable returning a fresh stream), so a retry
can replay an upload without buffering it in memory.

Every request has a total deadline (``RetryPolicy.total()``: connecting, all retries and
the sleeps between them, and reading a small body afterwards); uploads get their size at
the minimum blob speed on top, and blob downloads are held to that speed instead (see
``deadline.py``, which enforces both, and ``giropops.timeouts`` for the defaults).

Nothing here knows about authentication; ``client.py`` layers the challenge flow on
top.  Error messages name the host and what was being done, never a header value
(``Authorization`` carries secrets).
"""

from __future__ import annotations

import _socket  # socket's C module: gaierror without socket.py's enums (a start-up cost)
import time
from collections.abc import Callable, Iterator, Mapping

from giropops import timeouts
from giropops.errors import RegistryError
from giropops.oci.registry import deadline
from giropops.oci.registry.http import HTTP_ERRORS, HTTPSetupError, ProtocolError, Response, Session, TLSError
from giropops.record import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from typing import BinaryIO

    Body = bytes | Callable[[], BinaryIO] | None

#: Statuses worth another try: the server said "later" or had a bad moment.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@record
class RetryPolicy:
    """How hard to try: ``attempts`` in total, sleeping ``backoff * 2**n`` (capped) in between."""

    attempts: int = 5
    backoff: float = 0.25
    max_sleep: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    timeout: float | None = None  # total per request, retries included; None: the process default (--timeout)
    min_blob_rate: float = timeouts.MIN_BLOB_RATE  # bytes/s a blob transfer must average...
    rate_window: float = timeouts.RATE_WINDOW  # ...over each window of this many seconds

    def total(self) -> float:
        """Seconds a request may take in all: ``timeout``, else ``giropops.timeouts.request_timeout()``."""
        return self.timeout if self.timeout is not None else timeouts.request_timeout()

    def window(self) -> float:
        return min(self.rate_window, self.total())

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_sleep)
        return float(min(self.backoff * (2**attempt), self.max_sleep))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent/garbage."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _Chunks:
    """An upload stream sent as ``CHUNK``-sized pieces (with the Content-Length given), reporting progress."""

    CHUNK = 256 * 1024

    def __init__(self, raw: BinaryIO, on_read: Callable[[int], None] | None) -> None:
        self._raw = raw
        self._on_read = on_read

    def __iter__(self) -> Iterator[bytes]:
        while True:
            chunk = self._raw.read(self.CHUNK)
            if not chunk:
                return
            if self._on_read is not None:
                self._on_read(len(chunk))
            yield chunk

    def close(self) -> None:
        self._raw.close()


class Upload:
    """A streaming request body: ``opener`` gives a fresh stream of exactly ``length`` bytes each try."""

    __slots__ = ("length", "on_read", "opener")

    def __init__(
        self, opener: Callable[[], BinaryIO], length: int, on_read: Callable[[int], None] | None = None
    ) -> None:
        self.opener = opener
        self.length = length
        self.on_read = on_read


class Transport:
    """A keep-alive HTTP session (``http.Session``) with timeouts and bounded retries."""

    def __init__(self, host: str, base_url: str, verify_tls: bool, policy: RetryPolicy) -> None:
        self.host = host
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.session = Session(verify_tls, policy.connect_timeout, policy.read_timeout)
        self.sleep: Callable[[float], None] = time.sleep

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return self.base_url + path_or_url

    def probe(self, path: str) -> bool:
        """One GET of ``path`` without retries: whether the server answered at all (any status)."""
        deadline.set_deadline(time.monotonic() + self.policy.total())  # not an older request's
        try:
            self.session.request(
                "GET", self.url(path), timeouts=(self.policy.connect_timeout, self.policy.read_timeout)
            ).close()
        except (ProtocolError, OSError, HTTPSetupError):
            return False
        return True

    def request(
        self,
        method: str,
        path_or_url: str,
        what: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | list[tuple[str, str]] | None = None,
        body: bytes | Upload | None = None,
        stream: bool = True,
        allow_redirects: bool = True,
    ) -> Response:
        """Send with retries; returns the last response (any status) or raises RegistryError on I/O failure.

        The body of the answer is left to read (``stream``: always, kept for the callers' clarity).
        The whole call, and reading a small body from the response afterwards, must end within
        ``policy.total()`` seconds (plus the upload's size at ``policy.min_blob_rate``).
        """
        url = self.url(path_or_url)
        last_problem = ""
        budget = self.policy.total()
        if isinstance(body, Upload) and self.policy.min_blob_rate > 0:
            budget += body.length / self.policy.min_blob_rate
        end = time.monotonic() + budget
        deadline.set_deadline(end)
        for attempt in range(self.policy.attempts):
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise self.deadline_error(what, last_problem)
            data: bytes | _Chunks | None
            length: int | None = None
            if isinstance(body, Upload) and body.length == 0:
                data = b""
            elif isinstance(body, Upload):
                data, length = _Chunks(body.opener(), body.on_read), body.length
            else:
                data = body
            try:
                resp = self.session.request(
                    method,
                    url,
                    headers=headers,
                    params=params,
                    body=data,
                    length=length,
                    allow_redirects=allow_redirects,
                    timeouts=(min(self.policy.connect_timeout, remaining), min(self.policy.read_timeout, remaining)),
                )
            except HTTPSetupError as exc:
                raise RegistryError(f"{self.host}: {what}: HTTP request failed: {_brief(exc)}") from exc
            except TLSError as exc:
                # Not transient: a certificate problem or a plain-HTTP server will not change on retry.
                raise RegistryError(
                    f"{self.host}: {what}: TLS failed ({_brief(exc)}); "
                    "for a registry without valid HTTPS, use the insecure option"
                ) from exc
            except HTTP_ERRORS as exc:
                if isinstance(exc, _socket.gaierror):
                    # A name that does not resolve will not resolve in a second either: say so at once.
                    raise RegistryError(
                        f"{self.host}: {what}: cannot resolve the host name {self.host.split(':')[0]!r} "
                        f"({exc.strerror or exc}): check the registry's name and this machine's DNS"
                    ) from exc
                if deadline.aborted():  # another transfer of the same copy failed: no retry
                    raise RegistryError(f"{self.host}: {what}: cancelled") from None
                last_problem = f"connection failed ({_root_cause(exc)})"
                if self.deadline_passed():
                    raise self.deadline_error(what, last_problem) from None
                retry_after = None
            else:
                if resp.status_code not in RETRY_STATUSES:
                    return resp
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                last_problem = f"HTTP {resp.status_code}"
                if attempt == self.policy.attempts - 1:
                    return resp
                resp.close()
            finally:
                if isinstance(data, _Chunks):
                    data.close()
            if attempt < self.policy.attempts - 1:
                pause = self.policy.delay(attempt, retry_after)
                if time.monotonic() + pause >= end:
                    raise self.deadline_error(what, last_problem)
                self.sleep(pause)
        raise RegistryError(
            f"{self.host}: {what}: giving up after {self.policy.attempts} attempts, last: {last_problem}"
        )

    def deadline_passed(self) -> bool:
        """True once the deadline of this thread's current request has passed."""
        end = deadline.current_deadline()
        return end is not None and time.monotonic() >= end

    def deadline_error(self, what: str, last_problem: str = "") -> RegistryError:
        last = f" (last: {last_problem})" if last_problem else ""
        return RegistryError(
            f"{self.host}: {what}: no complete answer within the {self.policy.total():g} s deadline{last}; "
            "the registry is not answering or too slow (see --timeout)"
        )

    def slow_error(self, what: str) -> RegistryError:
        return RegistryError(
            f"{self.host}: {what}: slower than {self.policy.min_blob_rate / 1024:g} KiB/s for "
            f"{self.policy.window():g} s; giving up (see --timeout)"
        )

    def close(self) -> None:
        self.session.close()


def _root_cause(exc: BaseException) -> str:
    """The reason ("ConnectionRefusedError: Connection refused", "TimeoutError: timed out")."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return _brief(Exception(f"{type(exc).__name__}: {text}"))


def _brief(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "..."
