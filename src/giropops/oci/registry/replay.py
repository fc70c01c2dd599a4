"""Push replay records: a warm push of an unchanged archive, done again from what the last push concluded.

A successful push of ``archive://FILE`` to a loopback registry (``cli.copy``) records what it found out:
the archive's identity (``st_dev``, ``st_ino``, ``st_size``, ``st_mtime_ns``, ``st_ctime_ns``), the source
image's digest, the manifest bytes it PUT with their media type and digest, and every blob they name.
A later plain push of the same file whose identity still matches (``cli._replay``) need not open the
archive, compress anything or import the image code: it asks the registry whether every blob is there
(a HEAD in the destination repository; for another repository, a cross-repository mount from the one
recorded first), and only when every answer confirms the digest and size, PUTs the recorded manifest and
checks the registry's ``Docker-Content-Digest``.  The blobs are asked for on up to ``MAX_CONNECTIONS``
keep-alive connections at once.

A record is a hint: the registry's answers decide.  ``replay`` returns None, having PUT nothing, at the
first thing it does not expect (a blob missing or of another size, a 401, a redirect, any other status,
a broken connection, the whole replay taking longer than the request timeout); the caller then runs
the normal push from the start.  The manifest is the last request, so nothing is ever half done: at
worst blobs were mounted that the normal push mounts anyway.

Storage: ``push-replay-v1`` in the giropops cache, one file per (archive path, registry host), named by
the sha256 of both; a small text format (no ``json``: its ``re`` import costs more than the replay's own
work), at most ``MAX_RECORD_BYTES``, written atomically, at most ``MAX_RECORDS`` files (the oldest go
first).  A file that is not exactly ours (another magic line, a field missing or malformed, a manifest
that does not hash to its recorded digest, too large) is a miss.  Never fatal: a record that cannot be
written is simply not there next time.

Imports: ``os`` and the interpreter's ``_sha256``; ``replay`` adds ``http`` (the client's own HTTP code).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from giropops.oci.registry.http import Session

DIR_NAME = "push-replay-v1"
MAGIC = b"giropops-push-replay 1\n"
#: A record larger than this is not ours (and a manifest that would not fit is not recorded).
MAX_RECORD_BYTES = 128 * 1024
#: Records kept; writing one more removes the least recently written.
MAX_RECORDS = 256
#: Connections a replay asks on at once (a HEAD, or a mount and a HEAD, per blob).
MAX_CONNECTIONS = 3
#: Blobs a recorded manifest may name (a config and its layers).
MAX_BLOBS = 1000
#: Environment variables whose values change what a push does (credentials, Docker's configuration,
#: every GIROPOPS_ setting): a record made under others is a miss.
_ENV_PREFIX = "GIROPOPS_"
_ENV_NAMES = ("DOCKER_CONFIG", "HOME")
_HEX = frozenset("0123456789abcdef")


def _sha256_hex(data: bytes) -> str:
    try:
        import _sha256

        return str(_sha256.sha256(data).hexdigest())
    except ImportError:  # another interpreter or version
        import hashlib

        return hashlib.sha256(data).hexdigest()


def is_digest(text: str) -> bool:
    return len(text) == 71 and text.startswith("sha256:") and _HEX.issuperset(text[7:])


class Record:
    """What a push of an archive to a registry concluded (see the module docstring)."""

    __slots__ = ("blobs", "digest", "environment", "host", "identity", "manifest", "media_type", "repo", "source")

    def __init__(self, identity: tuple[int, ...], environment: str, host: str, repo: str, source: str,
                 media_type: str, manifest: bytes, blobs: list[tuple[str, int]]) -> None:
        self.identity = identity
        self.environment = environment
        self.host = host
        self.repo = repo
        self.source = source
        self.media_type = media_type
        self.manifest = manifest
        self.digest = "sha256:" + _sha256_hex(manifest)
        self.blobs = blobs

    def encode(self) -> bytes:
        lines = [
            "identity " + " ".join(str(n) for n in self.identity),
            "environment " + self.environment,
            "host " + self.host,
            "repo " + self.repo,
            "source " + self.source,
            "media-type " + self.media_type,
            "digest " + self.digest,
            *(f"blob {digest} {size}" for digest, size in self.blobs),
            f"manifest {len(self.manifest)}",
        ]
        return MAGIC + "\n".join(lines).encode("ascii") + b"\n" + self.manifest


def decode(data: bytes) -> Record | None:
    """The record ``data`` holds, or None when it is not exactly one of ours."""
    if not data.startswith(MAGIC) or len(data) > MAX_RECORD_BYTES:
        return None
    fields: dict[str, str] = {}
    blobs: list[tuple[str, int]] = []
    pos = len(MAGIC)
    try:
        while True:
            end = data.index(b"\n", pos)
            name, _, value = data[pos:end].decode("ascii").partition(" ")
            pos = end + 1
            if name == "blob":
                digest, _, size = value.partition(" ")
                if not is_digest(digest) or not size.isdigit() or len(blobs) >= MAX_BLOBS:
                    return None
                blobs.append((digest, int(size)))
            elif name == "manifest":
                manifest = data[pos:]
                if not value.isdigit() or int(value) != len(manifest):
                    return None
                break
            elif name in fields or not value:
                return None
            else:
                fields[name] = value
        identity = tuple(int(n) for n in fields["identity"].split(" "))
        record = Record(identity, fields["environment"], fields["host"], fields["repo"], fields["source"],
                        fields["media-type"], manifest, blobs)
    except (ValueError, KeyError, UnicodeDecodeError):
        return None
    if len(identity) != 5 or record.digest != fields["digest"] or not blobs or not is_digest(record.source):
        return None
    return record


def identity(path: str) -> tuple[int, ...] | None:
    """What tells the archive at ``path`` from any other (or the same after a change); None if unreadable."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def environment() -> str:
    """A digest of the environment variables that change what a push does (their values are not stored)."""
    names = sorted(n for n in os.environ if n.startswith(_ENV_PREFIX) or n in _ENV_NAMES)
    text = "\0".join(f"{n}={os.environ[n]}" for n in names)
    return _sha256_hex(text.encode("utf-8", "surrogateescape"))[:32]


def record_path(cache_root: str, archive: str, host: str) -> str:
    """The record of pushes of ``archive`` (an absolute path) to registry ``host``."""
    key = _sha256_hex(f"{archive}\0{host}".encode("utf-8", "surrogateescape"))
    return os.path.join(cache_root, DIR_NAME, key[:40])


def load(path: str) -> Record | None:
    """The record at ``path``; None when it is missing, unreadable or not ours."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except (OSError, ValueError):
        return None
    try:
        data = os.read(fd, MAX_RECORD_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return decode(data)


def save(path: str, record: Record) -> None:
    """Write ``record`` at ``path`` (atomically; the oldest records go beyond ``MAX_RECORDS``); never raises
    for a cache that cannot be written."""
    data = record.encode()
    if len(data) > MAX_RECORD_BYTES:
        return
    from giropops.fileio import atomic_write

    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        atomic_write(path, data, 0o600)
        _evict(directory)
    except OSError:
        return


def _evict(directory: str) -> None:
    entries = []
    with os.scandir(directory) as it:
        for entry in it:
            if len(entry.name) == 40 and _HEX.issuperset(entry.name):
                try:
                    entries.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.path))
                except OSError:
                    continue
    entries.sort()
    for _mtime, path in entries[: max(0, len(entries) - MAX_RECORDS)]:
        try:
            os.unlink(path)
        except OSError:
            pass


def forget(path: str) -> None:
    """Remove the record at ``path`` (one the registry contradicted)."""
    try:
        os.unlink(path)
    except OSError:
        pass


def replay(record: Record, repo: str, tag: str, timeout: float) -> str | None:
    """Push ``record``'s manifest to ``repo:tag`` of the recorded (loopback, plain HTTP) registry once every
    blob is confirmed there; its digest, or None (with no manifest PUT) at the first unexpected answer."""
    import time

    from giropops.oci.registry import deadline, http

    # one deadline for the whole replay: a server that stalls or trickles is cut by the watchdog
    end = time.monotonic() + timeout
    deadline.set_deadline(end)
    session = http.Session(verify=True, connect_timeout=timeout, read_timeout=timeout)
    base = f"http://{record.host}/v2/"
    try:
        if not _all_there(session, base, record.repo, repo, record.blobs, end):
            return None
        headers = {"Content-Type": record.media_type}
        url = f"{base}{repo}/manifests/{tag}"
        with session.request("PUT", url, headers=headers, body=record.manifest, allow_redirects=False) as resp:
            resp.read(64 * 1024)
            if resp.status_code not in (200, 201, 202):
                return None
            echoed = (resp.headers.get("Docker-Content-Digest") or "").strip()
        if echoed != record.digest or resp.headers.get("OCI-Subject"):
            return None
        return record.digest
    except (*http.HTTP_ERRORS, http.HTTPSetupError):
        return None
    finally:
        session.close()
        deadline.set_deadline(None)


def _all_there(session: Session, base: str, from_repo: str, repo: str, blobs: list[tuple[str, int]],
               end: float) -> bool:
    """Every blob is in ``repo`` (``_blob_there``), asked on at most ``MAX_CONNECTIONS`` connections at once
    (this thread and short-lived ``_thread`` workers, each with its own keep-alive connection)."""
    import _thread

    from giropops.oci.registry import deadline

    pending = list(reversed(blobs))
    state = {"failed": False, "running": min(MAX_CONNECTIONS, len(pending))}
    lock = _thread.allocate_lock()
    finished = _thread.allocate_lock()
    finished.acquire()

    def work() -> None:
        deadline.set_deadline(end)
        try:
            while True:
                with lock:
                    if state["failed"] or not pending:
                        return
                    digest, size = pending.pop()
                try:
                    there = _blob_there(session, base, from_repo, repo, digest, size)
                except Exception:  # noqa: BLE001 - a worker's error must not print a traceback: a miss
                    there = False
                if not there:
                    with lock:
                        state["failed"] = True
        finally:
            with lock:
                state["running"] -= 1
                if state["running"] == 0:
                    finished.release()

    for _ in range(state["running"] - 1):
        _thread.start_new_thread(work, ())
    work()
    finished.acquire()  # every worker is done: none is left running when the process exits
    return not state["failed"]


def _blob_there(session: Session, base: str, from_repo: str, repo: str, digest: str, size: int) -> bool:
    """``digest`` is in ``repo`` with ``size`` bytes (mounted from ``from_repo`` for another repository)."""
    if repo != from_repo:
        url = f"{base}{repo}/blobs/uploads/?mount={digest}&from={from_repo}"
        with session.request("POST", url, body=b"", allow_redirects=False) as resp:
            resp.read(64 * 1024)
            status = resp.status_code
            location = resp.headers.get("Location")
            echoed = (resp.headers.get("Docker-Content-Digest") or "").strip()
        if status == 202 and location:  # no mount, an upload session instead: cancel it (best effort)
            from urllib.parse import urljoin

            with session.request("DELETE", urljoin(base, location), allow_redirects=False) as cancel:
                cancel.read(64 * 1024)
        if status != 201 or echoed not in ("", digest):
            return False
    with session.request("HEAD", f"{base}{repo}/blobs/{digest}", allow_redirects=False) as resp:
        length = (resp.headers.get("Content-Length") or "").strip()
        echoed = (resp.headers.get("Docker-Content-Digest") or "").strip()
        return resp.status_code == 200 and length == str(size) and echoed in ("", digest)


__all__ = ["DIR_NAME", "MAX_CONNECTIONS", "MAX_RECORDS", "MAX_RECORD_BYTES", "Record", "decode", "environment",
           "forget", "identity", "is_digest", "load", "record_path", "replay", "save"]
