"""The blob-info cache: which compressed blobs an uncompressed layer was pushed as, and where.

A row says: the layer whose uncompressed tar has digest ``diff_id`` was seen in registry
``registry``, repository ``repository``, as the blob ``digest`` (``size`` bytes, pushed with
media type ``media_type``).  Before compressing a layer for a push, the push path
(``remote.py``) asks for the compressed forms of its diff_id and tries them against the
destination: a HEAD in the destination repository, a cross-repository mount from another
repository of the same registry.  Only when neither works is the layer read and compressed;
what was pushed is then recorded.  An entry is a hint, never a fact: the registry's answer
(present, and of the recorded size) decides, and an entry it contradicts is forgotten.

Storage: a directory in the giropops cache (``blob-info-v2``) holding one small JSON file per
diff_id (``sha256-<hex>``), with the rows of that layer.  A warm push reads the few files of its
layers and writes nothing (a row confirmed within ``REFRESH_AFTER`` is left as it is): no
database to import, open and close, which was a good part of a warm push's own time.  A config
blob is its own diff_id (stored as it is), so every row is found through the diff_id the
pushing image names.

Several giropops processes push at once (CI jobs, the fleet): readers need no lock (a file is
replaced whole, by a rename, never written in place); writers take an exclusive ``flock`` on
``.lock`` in the directory (waiting at most ``busy_timeout`` seconds, else the push goes on
without recording), so that two pushes adding rows to the same layer both keep theirs.

Bounded: at most ``max_entries`` layers (files), ``MAX_ROWS`` rows each; when a write creates a
file beyond that, the least recently confirmed layers are evicted (a file's modification time is
the time its newest row was confirmed).  Never fatal: a file that is not ours (not JSON, another
shape, rows that do not hold together, too large) is a miss and is replaced by the next write of
that layer; if the directory cannot be created or written (no space, no permission) the push goes
on without the cache.
"""

from __future__ import annotations

import _thread
import json
import os
import stat
import time
from collections.abc import Iterable

from giropops.errors import ImageReferenceError, ManifestError
from giropops.oci.model import Digest
from giropops.oci.registry.client import _check_repo
from giropops.record import record
from giropops.tmpfiles import mkstemp, unlink_quietly

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy knows it

if TYPE_CHECKING:
    from pathlib import Path

DIR_NAME = "blob-info-v2"
FORMAT_VERSION = 2
DEFAULT_MAX_ENTRIES = 50_000
#: Rows kept per layer (most recently confirmed first): the repositories and registries it was pushed to.
MAX_ROWS = 64
#: A layer file larger than this is not ours (``MAX_ROWS`` rows of the longest names fit well within it).
MAX_FILE_BYTES = 256 * 1024
#: Rows of other repositories of the push's registry, and of other registries, a lookup ``near`` a push
#: returns per layer: a push tries at most that many (``remote.MAX_REUSE_TRIES``).
NEAR_ROWS = 4
BUSY_TIMEOUT = 10.0
#: Seconds: a row confirmed less recently than this is written again when a push confirms it once
#: more; a fresher one is left as it is.  Eviction is least-recently-confirmed, an hour is nothing to
#: it, and a warm push then writes nothing at all.
REFRESH_AFTER = 3600.0
_LOCK_NAME = ".lock"
_TMP_PREFIX = ".tmp-"


@record
class BlobLocation:
    """One compressed form of a layer, seen in one repository of one registry."""

    diff_id: Digest
    digest: Digest
    media_type: str
    size: int
    registry: str
    repository: str


#: A stored row: the location, and when it was last confirmed (ns since the epoch).
_Row = tuple[BlobLocation, int]
_Key = tuple[str, str, Digest, Digest]


class BlobInfoCache:
    """The cache in one directory of small files; thread-safe (writes under a lock)."""

    def __init__(
        self, directory: Path | str, max_entries: int = DEFAULT_MAX_ENTRIES, busy_timeout: float = BUSY_TIMEOUT,
        refresh_after: float = REFRESH_AFTER,
    ) -> None:
        if max_entries <= 0:
            raise ValueError(f"max_entries must be positive, got {max_entries}")
        self.path = os.fspath(directory)
        self.refresh_after_ns = int(refresh_after * 1e9)
        self.max_entries = max_entries
        self.busy_timeout = busy_timeout
        self.disabled_reason: str | None = None
        self._lock = _thread.allocate_lock()
        #: the rows each layer file held when ``lookup`` read it: ``update`` writes nothing when they
        #: hold what it is told already (a warm push reads each file once and writes none)
        self._read_rows: dict[Digest, list[_Row]] = {}

    @classmethod
    def default(cls) -> BlobInfoCache:
        """The cache in the giropops cache directory (``$GIROPOPS_CACHE_DIR`` or ``~/.cache/giropops``)."""
        from giropops.cachedir import cache_root_text

        return cls(os.path.join(cache_root_text(), DIR_NAME))

    def close(self) -> None:
        """Nothing is held open between calls (kept for the ``with`` statement)."""

    def __enter__(self) -> BlobInfoCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- files -----------------------------------------------------------------------------------

    def _file(self, diff_id: Digest) -> str:
        # algorithm and hex were validated by Digest: the name never leaves the directory
        return os.path.join(self.path, f"{diff_id.algorithm}-{diff_id.hex}")

    def _read(self, diff_id: Digest, near: tuple[str, str] | None = None) -> list[_Row]:
        """The rows stored for ``diff_id``; [] for no file, or a file that is not ours.

        ``near`` (registry, repository): only the rows a push there can use (``lookup``)."""
        try:
            # not following a link, not waiting on a FIFO: only a regular file of the directory is read
            fd = os.open(self._file(diff_id), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:  # absent (the common miss), a link, unreadable: nothing known
            return []
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return []
            data = b""
            while len(data) <= MAX_FILE_BYTES and (chunk := os.read(fd, MAX_FILE_BYTES + 1 - len(data))):
                data += chunk
        except OSError:
            return []
        finally:
            os.close(fd)
        if len(data) > MAX_FILE_BYTES:
            return []
        try:
            doc = json.loads(data)
        except ValueError:  # not JSON, not UTF-8, cut short
            return []
        if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION or not isinstance(doc.get("rows"), list):
            return []
        rows = []
        parsed: dict[str, Digest | None] = {}  # a layer's rows mostly name one blob in many repositories
        repos: dict[str, bool] = {}
        name = str(diff_id)
        raws = doc["rows"][:MAX_ROWS]
        if near is not None:
            raws = _near(raws, near)
        for raw in raws:
            row = _row(diff_id, name, raw, parsed, repos)
            if row is not None:
                rows.append(row)
        return rows

    def _write(self, diff_id: Digest, rows: list[_Row]) -> None:
        """Replace the file of ``diff_id`` whole (``rows`` empty: remove it); its mtime is its newest row's."""
        path = self._file(diff_id)
        if not rows:
            try:
                os.unlink(path)
            except FileNotFoundError:  # any other failure disables the cache (``update``)
                pass
            return
        doc = {"version": FORMAT_VERSION, "rows": [
            [str(loc.diff_id), str(loc.digest), loc.media_type, loc.size, loc.registry, loc.repository, seen]
            for loc, seen in rows
        ]}
        data = json.dumps(doc, separators=(",", ":")).encode()
        newest = max(seen for _loc, seen in rows)
        fd, tmp = mkstemp(self.path, _TMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.utime(tmp, ns=(newest, newest))
            os.replace(tmp, path)
        except BaseException:
            unlink_quietly(tmp)
            raise

    # -- queries -------------------------------------------------------------------------------

    def lookup(
        self, diff_ids: Iterable[Digest] = (), digests: Iterable[Digest] = (), *, near: tuple[str, str] | None = None
    ) -> list[BlobLocation]:
        """Every row about these diff_ids (or a blob stored as it is: its digest is its diff_id), most
        recently confirmed first.  Compressed ``digests`` are found through the diff_id of their layer.

        ``near`` (registry, repository) of a push: per layer, only the rows it can use, i.e. those of that
        repository, and the ``NEAR_ROWS`` most recent of other repositories of that registry (mounts) and
        of other registries (a HEAD each): a layer pushed to many places does not cost a row each."""
        keys = {d for d in diff_ids} | {d for d in digests}
        if not keys or self.disabled_reason is not None:
            return []
        rows: list[_Row] = []
        for key in sorted(keys, key=str):
            found = self._read(key, near)
            with self._lock:
                self._read_rows[key] = found
            rows.extend(found)
        rows.sort(key=lambda r: r[1], reverse=True)
        out: list[BlobLocation] = []
        seen: set[tuple[str, str, str, str, str, int]] = set()
        for loc, _when in rows:
            ident = (loc.registry, loc.repository, loc.digest.hex, loc.diff_id.hex, loc.media_type, loc.size)
            if ident not in seen:  # (a file written by another hand may repeat a row)
                seen.add(ident)
                out.append(loc)
        return out

    def update(self, add: Iterable[BlobLocation] = (), forget: Iterable[BlobLocation] = ()) -> None:
        """Forget rows the registry contradicted, record (or re-confirm) what it holds; never raises for I/O."""
        add, forget = list(add), list(forget)
        if (not add and not forget) or self.disabled_reason is not None:
            return
        now = time.time_ns()
        dropped = {_key(loc) for loc in forget}  # a row forgotten and added back must be written
        by_layer: dict[Digest, tuple[list[BlobLocation], list[BlobLocation]]] = {}
        for loc in add:
            by_layer.setdefault(loc.diff_id, ([], []))[0].append(loc)
        for loc in forget:
            by_layer.setdefault(loc.diff_id, ([], []))[1].append(loc)
        with self._lock:
            # what needs writing, judged without the lock first: a warm push confirms only fresh rows
            pending = {d: (a, f) for d, (a, f) in by_layer.items()
                       if f or self._stale(self._read_rows.get(d) or self._read(d), a, dropped, now)}
            if not pending:
                return
            try:
                os.makedirs(self.path, exist_ok=True)
                with _FileLock(os.path.join(self.path, _LOCK_NAME), self.busy_timeout) as locked:
                    if not locked:
                        return  # another process holds the cache for too long: this push goes without
                    created = False
                    for diff_id, (adds, forgets) in sorted(pending.items(), key=lambda kv: str(kv[0])):
                        rows = self._read(diff_id)
                        existed = os.path.exists(self._file(diff_id))
                        merged = _merge(rows, adds, forgets, dropped, now, self.refresh_after_ns)
                        if merged != rows:
                            self._write(diff_id, merged)
                            self._read_rows[diff_id] = merged
                            created = created or (not existed and bool(merged))
                    if created:
                        self._evict()
            except OSError as exc:
                self.disabled_reason = f"{self.path}: {exc.strerror or exc}"

    def _stale(self, rows: list[_Row], adds: list[BlobLocation], dropped: set[_Key], now: int) -> bool:
        """Whether any of ``adds`` is not held exactly as it is, confirmed within the refresh time."""
        have = {_key(loc): (loc, seen) for loc, seen in rows}
        for loc in adds:
            old = have.get(_key(loc))
            if _key(loc) in dropped or old is None or old[0] != loc or not 0 <= now - old[1] < self.refresh_after_ns:
                return True
        return False

    def _evict(self) -> None:
        """Down to ``max_entries`` layer files: the least recently confirmed go (and stale temporary files)."""
        entries: list[tuple[int, str]] = []
        old_tmp = time.time_ns() - int(3600e9)
        with os.scandir(self.path) as it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if e.name.startswith(_TMP_PREFIX):
                    if st.st_mtime_ns < old_tmp:  # left by a process that died while writing
                        unlink_quietly(e.path)
                elif not e.name.startswith("."):
                    entries.append((st.st_mtime_ns, e.name))
        if len(entries) <= self.max_entries:
            return
        entries.sort()
        for _mtime, name in entries[: len(entries) - self.max_entries]:
            unlink_quietly(os.path.join(self.path, name))

    def __len__(self) -> int:
        """How many layers the cache knows about."""
        try:
            return sum(1 for name in os.listdir(self.path) if not name.startswith("."))
        except OSError:
            return 0


class _FileLock:
    """An exclusive ``flock`` on ``path``, waited for at most ``timeout`` seconds (False: not taken)."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.fd = -1

    def __enter__(self) -> bool:
        import fcntl  # writers only

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        end = time.monotonic() + self.timeout
        pause = 0.001
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= end:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, 0.05)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing releases the lock


def _key(loc: BlobLocation) -> _Key:
    return loc.registry, loc.repository, loc.digest, loc.diff_id


def _merge(
    rows: list[_Row], adds: list[BlobLocation], forgets: list[BlobLocation], dropped: set[_Key],
    now: int, refresh_after_ns: int,
) -> list[_Row]:
    """``rows`` less the forgotten ones, with ``adds`` recorded (fresh identical rows kept as they are),
    newest first, at most ``MAX_ROWS``."""
    gone = {_key(loc) for loc in forgets}
    kept = {_key(loc): (loc, seen) for loc, seen in rows if _key(loc) not in gone}
    for loc in adds:
        old = kept.get(_key(loc))
        fresh = old is not None and old[0] == loc and 0 <= now - old[1] < refresh_after_ns
        if not fresh or _key(loc) in dropped:
            kept[_key(loc)] = (loc, now)
    merged = sorted(kept.values(), key=lambda r: r[1], reverse=True)[:MAX_ROWS]
    # the same rows in the same order: nothing to write
    return rows if merged == rows else merged


def _near(raws: list[object], near: tuple[str, str]) -> list[object]:
    """Of a file's raw rows, those a push to ``near`` can use (see ``lookup``), most recent first."""
    registry, repository = near

    def seen(raw: object) -> int:
        when = raw[6] if isinstance(raw, list) and len(raw) == 7 else None
        return when if isinstance(when, int) and not isinstance(when, bool) else -1

    here: list[object] = []
    mounts: list[object] = []
    others: list[object] = []
    for raw in sorted(raws, key=seen, reverse=True):
        if not isinstance(raw, list) or len(raw) != 7:
            continue
        if raw[4] == registry:
            if raw[5] == repository:
                here.append(raw)
            elif len(mounts) < NEAR_ROWS:
                mounts.append(raw)
        elif len(others) < NEAR_ROWS:
            others.append(raw)
    return here + mounts + others


def _row(
    diff_id: Digest, name: str, raw: object, parsed: dict[str, Digest | None], repos: dict[str, bool]
) -> _Row | None:
    """A stored row as a location; None for a row that does not hold together (it is skipped, not trusted).

    ``name`` is ``str(diff_id)``; ``parsed`` and ``repos`` remember the digests and repository names
    already judged in this file."""
    if not isinstance(raw, list) or len(raw) != 7:
        return None
    stored_diff_id, digest, media_type, size, registry, repository, seen = raw
    if stored_diff_id != name:  # a row filed under another layer's name (or not a string)
        return None
    if not (isinstance(digest, str) and isinstance(media_type, str) and isinstance(registry, str)
            and isinstance(repository, str)):
        return None
    for n in (size, seen):
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            return None
    if digest not in parsed:
        try:
            parsed[digest] = Digest.parse(digest)
        except ManifestError:
            parsed[digest] = None
    if repository not in repos:
        try:
            # A row is data from a file: a repository name that is not one never shapes a request.
            _check_repo(repository)
            repos[repository] = True
        except ImageReferenceError:
            repos[repository] = False
    blob = parsed[digest]
    if blob is None or not repos[repository]:
        return None
    return BlobLocation(diff_id, blob, media_type, size, registry, repository), seen
