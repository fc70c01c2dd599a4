"""The OCI distribution API, one registry host at a time.

Every response body we parse is size-bounded; every byte we hand out is verified
(manifests against the digest asked for or announced, blobs through
``giropops.oci.blob.verified``).  Failures become ``RegistryError`` subclasses whose
message names the host, the repository and what was being done.
"""

from __future__ import annotations

import _thread
import io
import re
from collections.abc import Callable, Mapping
from urllib.parse import urljoin

from giropops import jsonio
from giropops.errors import (
    AuthError,
    BlobError,
    ConfigError,
    ImageError,
    ImageReferenceError,
    ManifestError,
    NotFoundError,
    RegistryError,
    quote_for_error,
)
from giropops.oci import mediatypes as mt
from giropops.oci.blob import verified
from giropops.oci.model import Descriptor, Digest, Index, parse_json_document, sniff_media_type
from giropops.oci.reference import Reference
from giropops.oci.registry import deadline
from giropops.oci.registry.auth import Authenticator, resolve_credentials
from giropops.oci.registry.http import HTTP_ERRORS, Response
from giropops.oci.registry.transport import RetryPolicy, Transport, Upload
from giropops.progress import NO_PROGRESS, Progress
from giropops.record import field, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, BinaryIO, cast
else:
    def cast(_type: object, value: object) -> object:  # typing.cast, without importing typing
        return value

ACCEPT_MANIFESTS = ", ".join(
    [mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST]
)
MAX_ERROR_BODY = 64 * 1024
MAX_TAGS_BODY = 16 * 1024 * 1024
MAX_TAG_PAGES = 10_000
MAX_CATALOG_BODY = 16 * 1024 * 1024
MAX_CATALOG_PAGES = 10_000
#: Upload sessions tried per blob before giving up (each one already retries its requests).
UPLOAD_SESSIONS = 3


class _UploadSessionLost(RegistryError):
    """The registry no longer knows an upload session we were writing to."""


@record
class RegistryOptions:
    """How to reach a registry.

    ``insecure`` allows plain HTTP and unverified TLS for hosts that are not loopback
    (loopback registries always speak plain HTTP, as Docker allows).  Credentials not
    given here come from ``GIROPOPS_REGISTRY_USERNAME``/``_PASSWORD`` or the Docker
    configuration (see ``auth.py``).  ``chunk_size`` None uploads each blob in one PUT;
    a number uploads it in PATCH requests of that many bytes.
    """

    insecure: bool = False
    username: str | None = None
    password: str | None = None
    docker_config: Path | None = None
    chunk_size: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.chunk_size is not None and self.chunk_size <= 0:
            raise ConfigError(f"chunk size must be positive, got {self.chunk_size}")

    def __repr__(self) -> str:  # never show the password
        return (
            f"RegistryOptions(insecure={self.insecure}, username={self.username!r}, "
            f"docker_config={self.docker_config!r}, chunk_size={self.chunk_size})"
        )


def _is_loopback(host: str) -> bool:
    return Reference(host, "x").is_loopback()


_REPO_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")


def _check_repo(repo: str) -> str:
    if not isinstance(repo, str) or len(repo) > 255 or not _REPO_RE.match(repo):
        raise ImageReferenceError(f"invalid repository name {str(repo)[:100]!r}")
    return repo


def _check_reference(reference: str) -> str:
    """A tag or a digest; anything else could walk out of the API path."""
    if isinstance(reference, str) and ":" in reference:
        return str(Digest.parse(reference))
    if not isinstance(reference, str) or not _TAG_RE.match(reference):
        raise ImageReferenceError(f"invalid tag {str(reference)[:100]!r}")
    return reference


def _pull(repo: str) -> str:
    return f"repository:{repo}:pull"


def _push(repo: str) -> str:
    return f"repository:{repo}:pull,push"


#: Bytes a resumed connection must carry before its failures are forgiven (see ``_ResponseStream``).
RESUME_PROGRESS = 1 << 20


class _ResponseStream(io.RawIOBase):
    """A streaming blob body that resumes after a dropped connection.

    When the connection breaks mid-body, ``reopen(offset)`` asks again from that byte
    (a ``Range`` request), up to the retry policy's attempts in a row (a connection that
    carries ``RESUME_PROGRESS`` bytes ends the row); the verifying reader on top still
    checks the whole blob.  ``close`` releases the connection.
    """

    def __init__(
        self, resp: Response, what: str, reopen: Callable[[int], Response], policy: RetryPolicy,
        sleep: Callable[[float], None], too_slow: Callable[[], Exception] | None = None,
    ) -> None:
        super().__init__()
        self._resp = resp
        self._what = what
        self._reopen = reopen
        self._policy = policy
        self._sleep = sleep
        self._offset = 0
        self.resumed = 0
        self._failures = 0  # connection failures since the last connection that carried RESUME_PROGRESS
        self._progress = 0  # bytes the current connection has carried
        self._too_slow = too_slow
        self._watch = self._hold(resp)

    def readable(self) -> bool:
        return True

    def _hold(self, resp: Response) -> deadline.Watch | None:
        """Hold the body's connection to the minimum speed (not to the request deadline) while we read it."""
        if self._policy.min_blob_rate <= 0:
            return None
        return deadline.hold_to_speed(resp, self._policy.min_blob_rate, self._policy.window())

    def _check_speed(self) -> None:
        if self._watch is not None and self._watch.fired is not None:
            self._resp.close()
            if self._watch.fired == deadline.CANCELLED:  # another transfer of the same copy failed
                raise BlobError(f"{self._what}: cancelled")
            raise self._too_slow() if self._too_slow else BlobError(f"{self._what}: the transfer is too slow")

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        while True:
            try:
                # one receive, straight into the caller's buffer: a big buffer costs no waiting, and the
                # watchdog sees every byte as it comes
                n = self._resp.readinto1(view)
                self._check_speed()
                break
            except HTTP_ERRORS as exc:
                self._check_speed()
                self._resp.close()
                self._failures += 1
                self._progress = 0
                if self._failures >= self._policy.attempts:
                    raise BlobError(
                        f"{self._what}: connection failed while reading at byte {self._offset}, "
                        f"{self._failures} times ({type(exc).__name__})"
                    ) from exc
                self._sleep(self._policy.delay(self._failures - 1, None))
                self._resp = self._reopen(self._offset)
                self._watch = self._hold(self._resp)
                self.resumed += 1
        # Failures count until a connection has carried RESUME_PROGRESS bytes: a server that breaks
        # every connection after a few bytes cannot keep us resuming for ever.
        self._progress += n
        if self._progress >= RESUME_PROGRESS:
            self._failures = 0
        if self._watch is not None:
            self._watch.received += n
        self._offset += n
        return n

    def close(self) -> None:
        try:
            self._resp.close()
        finally:
            super().close()


class RegistryClient:
    """A client for one registry host.  Thread-safe: blobs may be pulled and pushed in parallel."""

    def __init__(self, host: str, options: RegistryOptions = RegistryOptions()) -> None:
        self.host = host
        self.options = options
        self._loopback = _is_loopback(host)
        self._transport: Transport | None = None
        self._lock = _thread.allocate_lock()
        self._auth = Authenticator(
            host, lambda: resolve_credentials(host, options.username, options.password, options.docker_config)
        )

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        with self._lock:
            if self._transport is None:
                self._transport = self._connect()
            return self._transport

    def _connect(self) -> Transport:
        if self._loopback:
            return Transport(self.host, f"http://{self.host}", True, self.options.retry)
        if not self.options.insecure:
            return Transport(self.host, f"https://{self.host}", True, self.options.retry)
        # Insecure: HTTPS without verification if the host speaks it, else plain HTTP (Docker's order).
        t = Transport(self.host, f"https://{self.host}", False, self.options.retry)
        if t.probe("/v2/"):
            return t
        t.close()
        return Transport(self.host, f"http://{self.host}", True, self.options.retry)

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._transport is not None:
                self._transport.close()
                self._transport = None

    def _send(
        self,
        method: str,
        path: str,
        what: str,
        scopes: tuple[str, ...],
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | list[tuple[str, str]] | None = None,
        body: bytes | Upload | None = None,
    ) -> Response:
        t = self.transport
        hdrs = dict(headers or {})
        ours = t.url(path).startswith(t.base_url + "/")
        auth = self._auth.header_for(scopes) if ours else None
        if auth:
            hdrs["Authorization"] = auth
        # Always streamed: no response body is read without a bound (see _finish / _read_bounded).
        resp = t.request(method, path, what, headers=hdrs, params=params, body=body, stream=True)
        if resp.status_code == 401 and ours:
            challenge = resp.headers.get("WWW-Authenticate")
            self._finish(resp)
            hdrs["Authorization"] = self._auth.answer(challenge, scopes, t, what, refused=auth)
            resp = t.request(method, path, what, headers=hdrs, params=params, body=body, stream=True)
        if resp.status_code in (401, 403):
            detail = self._error_detail(resp)
            creds = self._auth.credentials
            who = f"as {quote_for_error(creds.username)} ({creds.source})" if creds.username else "anonymously"
            raise AuthError(f"{self.host}: {what}: access denied {who} (HTTP {resp.status_code}{detail})")
        return resp

    @staticmethod
    def _finish(resp: Response) -> None:
        """Done with a response: drain a small body so the connection goes back to the pool, else drop it."""
        try:
            resp.read(MAX_ERROR_BODY)
        except HTTP_ERRORS:
            pass
        finally:
            resp.close()

    def _error_detail(self, resp: Response) -> str:
        """``: CODE message`` from a distribution error body, bounded; empty if there is none."""
        try:
            raw = resp.read(MAX_ERROR_BODY)
        except HTTP_ERRORS:
            raw = b""
        finally:
            resp.close()
        try:
            obj = jsonio.loads(raw, "error body")
        except jsonio.DocumentError:
            return ""
        errs = obj.get("errors") if isinstance(obj, dict) else None
        if not isinstance(errs, list):
            return ""
        parts = []
        for e in errs[:5]:
            if isinstance(e, dict):
                code, msg = e.get("code"), e.get("message")
                parts.append(" ".join(str(x)[:200] for x in (code, msg) if x))
        return (": " + "; ".join(parts)) if parts else ""

    def _fail(self, resp: Response, what: str) -> ImageError:
        status = resp.status_code
        detail = self._error_detail(resp)
        if status == 404:
            return NotFoundError(f"{self.host}: {what}: not found{detail}")
        if status == 400 and ("DIGEST_INVALID" in detail or "SIZE_INVALID" in detail):
            return BlobError(f"{self.host}: {what}: the registry rejected the content (HTTP 400{detail})")
        return RegistryError(f"{self.host}: {what}: HTTP {status}{detail}")

    def _read_bounded(self, resp: Response, limit: int, what: str, error: type[ImageError]) -> bytes:
        length = resp.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > limit:
            resp.close()
            raise error(f"{self.host}: {what}: {length} bytes is more than the {limit}-byte limit")
        t = self.transport
        try:
            data = resp.read(limit + 1)
        except HTTP_ERRORS as exc:
            if t.deadline_passed():
                raise t.deadline_error(what) from None
            raise RegistryError(f"{self.host}: {what}: connection failed while reading") from exc
        finally:
            resp.close()
        if t.deadline_passed():  # the watchdog cut the body short
            raise t.deadline_error(what)
        if len(data) > limit:
            raise error(f"{self.host}: {what}: more than the {limit}-byte limit")
        return bytes(data)

    def _location(self, resp: Response, what: str) -> str:
        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError(f"{self.host}: {what}: the registry sent no upload Location")
        return urljoin(resp.url or self.transport.url("/"), loc)

    # -- manifests ---------------------------------------------------------------------------

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, Digest]:
        _check_repo(repo)
        _check_reference(reference)
        what = f"manifest {repo}@{reference}" if ":" in reference else f"manifest {repo}:{reference}"
        resp = self._send(
            "GET", f"/v2/{repo}/manifests/{reference}", what, (_pull(repo),),
            headers={"Accept": ACCEPT_MANIFESTS},
        )
        if resp.status_code != 200:
            raise self._fail(resp, what)
        header_digest = resp.headers.get("Docker-Content-Digest")
        content_type = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
        raw = self._read_bounded(resp, mt.MAX_MANIFEST_BYTES, what, ManifestError)
        expected: Digest | None = None
        source = ""
        if ":" in reference:
            expected, source = Digest.parse(reference), "the digest asked for"
        elif header_digest:
            try:
                expected, source = Digest.parse(header_digest.strip()), "the Docker-Content-Digest header"
            except ManifestError as exc:
                raise ManifestError(f"{self.host}: {what}: invalid Docker-Content-Digest header") from exc
        actual = Digest.of(raw, expected.algorithm if expected else "sha256")
        if expected is not None and actual != expected:
            raise ManifestError(f"{self.host}: {what}: content is {actual}, does not match {source} {expected}")
        if content_type not in mt.MANIFEST_TYPES | mt.INDEX_TYPES:
            content_type = sniff_media_type(parse_json_document(raw, f"{self.host}: {what}", mt.MAX_MANIFEST_BYTES))
        return raw, content_type, actual

    def head_manifest(self, repo: str, reference: str) -> Descriptor | None:
        _check_repo(repo)
        _check_reference(reference)
        what = f"manifest {repo}:{reference}"
        resp = self._head(f"/v2/{repo}/manifests/{reference}", what, (_pull(repo),), {"Accept": ACCEPT_MANIFESTS})
        if resp is None:
            return None
        digest_h = resp.headers.get("Docker-Content-Digest")
        length = resp.headers.get("Content-Length")
        ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
        if not digest_h or not length or not length.isdigit() or ctype not in mt.MANIFEST_TYPES | mt.INDEX_TYPES:
            raw, ctype, digest = self.get_manifest(repo, reference)
            return Descriptor(ctype, digest, len(raw))
        try:
            digest = Digest.parse(digest_h.strip())
        except ManifestError as exc:
            raise ManifestError(f"{self.host}: {what}: invalid Docker-Content-Digest header") from exc
        if ":" in reference and str(digest) != reference:
            raise ManifestError(f"{self.host}: {what}: registry answered for {digest}")
        return Descriptor(ctype, digest, int(length))

    def _head(
        self, url: str, what: str, scopes: tuple[str, ...], headers: dict[str, str] | None = None
    ) -> Response | None:
        """The finished answer to HEAD ``url``: None for 404, ``_fail`` for anything but 200."""
        resp = self._send("HEAD", url, what, scopes, headers=headers)
        if resp.status_code == 404:
            self._finish(resp)
            return None
        if resp.status_code != 200:
            raise self._fail(resp, what)
        self._finish(resp)
        return resp

    def put_manifest(self, repo: str, reference: str, raw: bytes, media_type: str) -> Digest:
        _check_repo(repo)
        _check_reference(reference)
        what = f"push manifest {repo}:{reference}"
        if len(raw) > mt.MAX_MANIFEST_BYTES:
            raise ManifestError(f"{what}: {len(raw)} bytes is more than the {mt.MAX_MANIFEST_BYTES}-byte limit")
        digest = Digest.of(raw, Digest.parse(reference).algorithm if ":" in reference else "sha256")
        if ":" in reference and str(digest) != reference:
            raise ManifestError(f"{what}: content is {digest}, not the digest it is pushed as")
        resp = self._send(
            "PUT", f"/v2/{repo}/manifests/{reference}", what, (_push(repo),),
            headers={"Content-Type": media_type}, body=raw,
        )
        if resp.status_code not in (200, 201, 202):
            raise self._fail(resp, what)
        echoed = resp.headers.get("Docker-Content-Digest")
        oci_subject = resp.headers.get("OCI-Subject")
        self._finish(resp)
        if echoed and echoed.strip().startswith(f"{digest.algorithm}:") and echoed.strip() != str(digest):
            raise RegistryError(f"{self.host}: {what}: registry stored {echoed.strip()}, we sent {digest}")
        subject = _subject_of(raw)
        if subject is not None and not oci_subject:
            # No referrers API: maintain the fallback tag index, as the OCI distribution spec asks.
            self._add_to_referrers_tag(repo, subject, Descriptor(media_type, digest, len(raw)), raw)
        return digest

    def delete_manifest(self, repo: str, digest: Digest) -> None:
        _check_repo(repo)
        what = f"delete manifest {repo}@{digest}"
        resp = self._send("DELETE", f"/v2/{repo}/manifests/{digest}", what, (f"repository:{repo}:delete",))
        if resp.status_code not in (200, 202):
            raise self._fail(resp, what)
        self._finish(resp)

    # -- blobs -------------------------------------------------------------------------------

    def blob_exists(self, repo: str, digest: Digest) -> bool:
        _check_repo(repo)
        return self._blob_exists(repo, digest, (_pull(repo),))

    def _blob_exists(self, repo: str, digest: Digest, scopes: tuple[str, ...]) -> bool:
        what = f"blob {repo}@{digest}"
        return self._head(f"/v2/{repo}/blobs/{digest}", what, scopes) is not None

    def blob_size(self, repo: str, digest: Digest) -> int | None:
        """The size the registry reports for a blob of ``repo`` (HEAD, push scope); None if it is absent.

        -1 when the registry answers without a usable Content-Length.
        """
        _check_repo(repo)
        what = f"blob {repo}@{digest}"
        resp = self._head(f"/v2/{repo}/blobs/{digest}", what, (_push(repo),))
        if resp is None:
            return None
        length = (resp.headers.get("Content-Length") or "").strip()
        return int(length) if length.isdigit() else -1

    def mount_blob(self, repo: str, digest: Digest, from_repo: str) -> bool:
        """Cross-repository mount of ``digest`` from ``from_repo``; False (nothing left open) if it did not happen.

        Unlike ``push_blob`` this never uploads: a registry that cannot mount answers with an
        upload session, which is cancelled so the caller can decide what to upload.
        """
        _check_repo(repo)
        _check_repo(from_repo)
        what = f"mount blob {repo}@{digest} from {from_repo}"
        resp = self._send(
            "POST", f"/v2/{repo}/blobs/uploads/", what, (_push(repo), _pull(from_repo)),
            params={"mount": str(digest), "from": from_repo}, body=b"",
        )
        if resp.status_code == 201:
            self._finish(resp)
            return True
        if resp.status_code != 202:
            raise self._fail(resp, what)
        location = resp.headers.get("Location")
        self._finish(resp)
        if location:
            url = urljoin(resp.url or self.transport.url("/"), location)
            cancel = self._send("DELETE", url, f"cancel upload to {repo}", (_push(repo),))
            self._finish(cancel)  # best effort: a registry also drops idle sessions by itself
        return False

    def open_blob(self, repo: str, digest: Digest, size: int | None) -> BinaryIO:
        _check_repo(repo)
        what = f"blob {repo}@{digest}"
        resp = self._send(
            "GET", f"/v2/{repo}/blobs/{digest}", what, (_pull(repo),),
            headers={"Accept-Encoding": "identity"},
        )
        if resp.status_code != 200:
            raise self._fail(resp, what)
        path = f"/v2/{repo}/blobs/{digest}"

        def reopen(offset: int) -> Response:
            again = self._send(
                "GET", path, f"{what} from byte {offset}", (_pull(repo),),
                headers={"Accept-Encoding": "identity", "Range": f"bytes={offset}-"},
            )
            if again.status_code == 206:
                got = (again.headers.get("Content-Range") or "").removeprefix("bytes ").split("-")[0]
                if got != str(offset):
                    again.close()
                    raise BlobError(f"{self.host}: {what}: asked to resume at {offset}, got range "
                                    f"{quote_for_error(got)}")
                return again
            if again.status_code == 200:  # no range support: skip what we already have
                skipped = 0
                while skipped < offset:
                    chunk = again.read(min(1 << 20, offset - skipped))
                    if not chunk:
                        break
                    skipped += len(chunk)
                return again
            raise self._fail(again, what)

        t = self.transport
        stream = cast("BinaryIO", _ResponseStream(resp, f"{self.host}/{repo}: blob {digest}", reopen, t.policy,
                                                  t.sleep, too_slow=lambda: t.slow_error(what)))
        return verified(stream, digest, size, f"{self.host}/{repo}: blob")

    def push_blob(
        self,
        repo: str,
        digest: Digest,
        size: int,
        opener: Callable[[], BinaryIO],
        mount_from: str | None = None,
        progress: Progress = NO_PROGRESS,
    ) -> None:
        _check_repo(repo)
        if mount_from is not None:
            _check_repo(mount_from)
        key = str(digest)
        what = f"push blob {repo}@{digest}"
        progress.start(key, f"{digest.short}", size)
        meter = _Meter(progress, key)
        # A mount from another repository is asked for at once: the registry answers 201 when it holds
        # the blob (now in this repository too, whether it was there or not), else opens an upload.
        mount_first = mount_from is not None and mount_from != repo
        for session in range(UPLOAD_SESSIONS):
            # Ask with the push scope: one token then serves the whole push.
            if not (session == 0 and mount_first) and self._blob_exists(repo, digest, (_push(repo),)):
                progress.finish(key, "already exists" if session == 0 else "pushed")
                return
            meter.restart()
            try:
                how = self._upload(repo, digest, size, opener, mount_from, what, meter)
            except _UploadSessionLost:
                # The registry forgot the upload (e.g. a response was lost and a retry hit a stale
                # session state): start a new session, which first checks whether the blob landed.
                if session == UPLOAD_SESSIONS - 1:
                    raise
                continue
            progress.finish(key, how)
            return

    def _upload(
        self, repo: str, digest: Digest, size: int, opener: Callable[[], BinaryIO],
        mount_from: str | None, what: str, advance: Callable[[int], None],
    ) -> str:
        scopes: tuple[str, ...] = (_push(repo),)
        params: dict[str, str] = {}
        if mount_from and mount_from != repo:
            scopes = (_push(repo), _pull(mount_from))
            params = {"mount": str(digest), "from": mount_from}
        resp = self._send("POST", f"/v2/{repo}/blobs/uploads/", what, scopes, params=params, body=b"")
        if resp.status_code == 201 and params:
            self._finish(resp)
            return f"mounted from {mount_from}"
        if resp.status_code != 202:
            raise self._fail(resp, what)
        location = self._location(resp, what)
        self._finish(resp)
        if self.options.chunk_size is None:
            self._put_monolithic(repo, location, digest, size, opener, what, advance)
        else:
            self._put_chunked(repo, location, digest, size, opener, what, advance)
        return "pushed"

    def _upload_failed(self, resp: Response, what: str) -> ImageError:
        if resp.status_code in (404, 416):
            return _UploadSessionLost(f"{self.host}: {what}: upload session lost (HTTP {resp.status_code}"
                                      f"{self._error_detail(resp)})")
        return self._fail(resp, what)

    def _put_monolithic(
        self, repo: str, location: str, digest: Digest, size: int,
        opener: Callable[[], BinaryIO], what: str, advance: Callable[[int], None],
    ) -> None:
        body = Upload(_restarting(opener, advance), size, advance)
        resp = self._send(
            "PUT", location, what, (_push(repo),), params={"digest": str(digest)},
            headers={"Content-Type": "application/octet-stream"}, body=body,
        )
        if resp.status_code not in (201, 204):
            raise self._upload_failed(resp, what)
        self._finish(resp)

    def _put_chunked(
        self, repo: str, location: str, digest: Digest, size: int,
        opener: Callable[[], BinaryIO], what: str, advance: Callable[[int], None],
    ) -> None:
        chunk_size = self.options.chunk_size or size
        offset = 0
        with opener() as src:
            while offset < size:
                chunk = src.read(min(chunk_size, size - offset))
                if not chunk:
                    raise BlobError(f"{what}: source ended after {offset} of {size} bytes")
                end = offset + len(chunk) - 1
                resp = self._send(
                    "PATCH", location, f"{what} (bytes {offset}-{end})", (_push(repo),), body=chunk,
                    headers={"Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{end}"},
                )
                if resp.status_code != 202:
                    raise self._upload_failed(resp, f"{what} (bytes {offset}-{end})")
                location = self._location(resp, what)
                self._finish(resp)
                offset += len(chunk)
                advance(len(chunk))
            if src.read(1):
                raise BlobError(f"{what}: source has more than the declared {size} bytes")
        resp = self._send("PUT", location, what, (_push(repo),), params={"digest": str(digest)}, body=b"")
        if resp.status_code not in (201, 204):
            raise self._upload_failed(resp, what)
        self._finish(resp)

    # -- tags and referrers ------------------------------------------------------------------

    def list_tags(self, repo: str, page_size: int | None = None) -> list[str]:
        _check_repo(repo)
        return self._paged_names(f"/v2/{repo}/tags/list", f"list tags of {repo}", (_pull(repo),), page_size, "tags",
                                 MAX_TAG_PAGES, MAX_TAGS_BODY, absent_is_empty=True, loop_clip=None)

    def list_repositories(self, page_size: int | None = None) -> list[str]:
        """Every repository of the registry through the catalog API."""
        return self._paged_names("/v2/_catalog", "list repositories (catalog)", ("registry:catalog:*",), page_size,
                                 "repositories", MAX_CATALOG_PAGES, MAX_CATALOG_BODY, absent_is_empty=False,
                                 loop_clip=200)

    def _paged_names(
        self, url: str | None, what: str, scopes: tuple[str, ...], page_size: int | None, key: str,
        max_pages: int, max_body: int, *, absent_is_empty: bool, loop_clip: int | None,
    ) -> list[str]:
        """The strings under ``key`` of every page from ``url`` on, following ``Link: <...>; rel="next"``
        within the registry (``absent_is_empty``: a page without ``key`` is an empty one)."""
        params: dict[str, str] | None = {"n": str(page_size)} if page_size else None
        names: list[str] = []
        seen: set[str] = set()
        for _ in range(max_pages):
            if url is None:
                return names
            if url in seen:
                raise RegistryError(f"{self.host}: {what}: pagination loops back to {url[:loop_clip]}")
            seen.add(url)
            resp = self._send("GET", url, what, scopes, params=params)
            if resp.status_code != 200:
                raise self._fail(resp, what)
            nxt = resp.links.get("next", {}).get("url")
            base = resp.url
            raw = self._read_bounded(resp, max_body, what, RegistryError)
            obj = jsonio.loads(raw, f"{self.host}: {what}: response", error=RegistryError)
            page = obj.get(key) if isinstance(obj, dict) else None
            if page is None and absent_is_empty and isinstance(obj, dict):
                page = []
            if not isinstance(page, list) or not all(isinstance(t, str) for t in page):
                raise RegistryError(f"{self.host}: {what}: '{key}' is not a list of strings")
            names.extend(page)
            url = urljoin(base, nxt) if nxt else None
            if url is not None and not url.startswith(self.transport.base_url + "/"):
                raise RegistryError(f"{self.host}: {what}: next page link leaves the registry: {url[:200]}")
            params = None  # the Link URL carries the paging state
        raise RegistryError(f"{self.host}: {what}: more than {max_pages} pages")

    def referrers(self, repo: str, digest: Digest, artifact_type: str | None = None) -> Index:
        _check_repo(repo)
        what = f"referrers of {repo}@{digest}"
        params = {"artifactType": artifact_type} if artifact_type else None
        resp = self._send(
            "GET", f"/v2/{repo}/referrers/{digest}", what, (_pull(repo),),
            headers={"Accept": mt.OCI_INDEX}, params=params,
        )
        filtered = False
        if resp.status_code == 200:
            filtered = "artifacttype" in (resp.headers.get("OCI-Filters-Applied") or "").lower()
            raw = self._read_bounded(resp, mt.MAX_MANIFEST_BYTES, what, ManifestError)
            index = Index.from_bytes(raw)
        elif resp.status_code in (404, 405):
            self._finish(resp)
            index = self._referrers_tag_index(repo, digest)
        else:
            raise self._fail(resp, what)
        if artifact_type and not filtered:
            index = Index(
                index.media_type,
                tuple(d for d in index.manifests if d.artifact_type == artifact_type),
                index.annotations,
            )
        return index

    def _referrers_tag_index(self, repo: str, digest: Digest) -> Index:
        try:
            raw, mtype, _ = self.get_manifest(repo, referrers_tag(digest))
        except NotFoundError:
            return Index(mt.OCI_INDEX, ())
        if mtype not in mt.INDEX_TYPES:
            raise ManifestError(
                f"{self.host}: referrers tag {repo}:{referrers_tag(digest)} is a {mtype}, not an index"
            )
        return Index.from_bytes(raw)

    def _add_to_referrers_tag(self, repo: str, subject: Digest, desc: Descriptor, raw: bytes) -> None:
        doc = jsonio.loads(raw, "referrer manifest", error=ManifestError)
        if not isinstance(doc, dict):
            raise ManifestError("referrer manifest must be a JSON object")
        at = doc.get("artifactType")
        if not isinstance(at, str):
            cfg = doc.get("config")
            at = cfg.get("mediaType") if isinstance(cfg, dict) else None
        ann = doc.get("annotations")
        entry = Descriptor(
            desc.media_type, desc.digest, desc.size,
            annotations=ann if isinstance(ann, dict) else {},
            artifact_type=at if isinstance(at, str) else None,
        )
        current = self._referrers_tag_index(repo, subject)
        if any(d.digest == entry.digest for d in current.manifests):
            return
        updated = Index(mt.OCI_INDEX, (*current.manifests, entry))
        self.put_manifest(repo, referrers_tag(subject), updated.to_bytes(), mt.OCI_INDEX)


class _Meter:
    """Reports upload progress once per byte even when a retry sends the same bytes again."""

    def __init__(self, progress: Progress, key: str) -> None:
        self._progress = progress
        self._key = key
        self._reported = 0
        self._position = 0

    def restart(self) -> None:
        self._position = 0

    def __call__(self, n: int) -> None:
        self._position += n
        if self._position > self._reported:
            self._progress.advance(self._key, self._position - self._reported)
            self._reported = self._position


def _restarting(opener: Callable[[], BinaryIO], advance: Callable[[int], None]) -> Callable[[], BinaryIO]:
    """An opener that rewinds the meter each time the body is sent from the start again."""

    def reopen() -> BinaryIO:
        if isinstance(advance, _Meter):
            advance.restart()
        return opener()

    return reopen


def referrers_tag(digest: Digest) -> str:
    """The fallback tag schema of the OCI distribution spec: ``<alg>-<hex>``, cut to the 128-character tag limit."""
    return f"{digest.algorithm}-{digest.hex}"[:128]


def _subject_of(raw: bytes) -> Digest | None:
    doc = jsonio.loads(raw, "manifest", error=ManifestError)
    subj = doc.get("subject") if isinstance(doc, dict) else None
    if subj is None:
        return None
    return Descriptor.from_json(subj).digest
