"""The blob-info cache: which compressed blobs an uncompressed layer was pushed as, and where.

A row says: the layer whose uncompressed tar has digest ``diff_id`` was seen in registry
``registry``, repository ``repository``, as the blob ``digest`` (``size`` bytes, pushed with
media type ``media_type``).  Before compressing a layer for a push, the push path
(``remote.py``) asks for the compressed forms of its diff_id and tries them against the
destination: a HEAD in the destination repository, a cross-repository mount from another
repository of the same registry.  Only when neither works is the layer read and compressed;
what was pushed is then recorded.  An entry is a hint, never a fact: the registry's answer
(present, and of the recorded size) decides, and an entry it contradicts is forgotten.

Storage: one SQLite file in the giropops cache directory, in WAL mode with a busy timeout.
Several giropops processes push at once (CI jobs, the fleet); SQLite's locking keeps each
write a whole transaction, WAL lets readers go on while one process writes, and the busy
timeout makes a writer wait its turn instead of failing with "database is locked".  A
JSON file would need its own lock and a rewrite of the whole file per push.

Bounded: at most ``max_entries`` rows; after each write the least recently confirmed rows
beyond that are evicted.  Never fatal: a file that is not a database, is damaged, or holds
another schema is deleted and rebuilt; if the cache cannot be opened at all (no space, no
permission, locked for longer than the timeout) the push goes on without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from giropops.errors import ImageReferenceError, ManifestError
from giropops.oci.model import Digest
from giropops.oci.registry.client import _check_repo
from giropops.record import record

FILE_NAME = "blob-info-v1.sqlite"
SCHEMA_VERSION = 1
DEFAULT_MAX_ENTRIES = 50_000
BUSY_TIMEOUT = 10.0
#: Seconds: a row confirmed less recently than this is written again when a push confirms it once
#: more; a fresher one is left as it is.  Eviction is least-recently-confirmed, an hour is nothing to
#: it, and a warm push that writes nothing skips a write transaction and the WAL checkpoint on close
#: (10-20 ms here, a good part of a warm push's own work).
REFRESH_AFTER = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    diff_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    seen INTEGER NOT NULL,
    PRIMARY KEY (registry, repository, digest, diff_id)
);
CREATE INDEX IF NOT EXISTS blobs_by_diff_id ON blobs (diff_id);
CREATE INDEX IF NOT EXISTS blobs_by_digest ON blobs (digest);
CREATE INDEX IF NOT EXISTS blobs_by_seen ON blobs (seen);
"""


@record
class BlobLocation:
    """One compressed form of a layer, seen in one repository of one registry."""

    diff_id: Digest
    digest: Digest
    media_type: str
    size: int
    registry: str
    repository: str


class _Foreign(Exception):
    """The file is a database, but not one of ours (another schema or version)."""


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Damage (not a database, malformed) as opposed to a passing condition (locked, I/O, no space)."""
    return not isinstance(exc, sqlite3.OperationalError)


class BlobInfoCache:
    """The cache in one SQLite file; thread-safe (one connection, used under a lock)."""

    def __init__(
        self, path: Path, max_entries: int = DEFAULT_MAX_ENTRIES, busy_timeout: float = BUSY_TIMEOUT,
        refresh_after: float = REFRESH_AFTER,
    ) -> None:
        if max_entries <= 0:
            raise ValueError(f"max_entries must be positive, got {max_entries}")
        self.path = path
        self.refresh_after_ns = int(refresh_after * 1e9)
        self.max_entries = max_entries
        self.busy_timeout = busy_timeout
        self.rebuilt = 0  # how many times a damaged or foreign file was replaced (for tests and stats)
        self.disabled_reason: str | None = None
        self._conn: sqlite3.Connection | None = None
        self._inode: tuple[int, int] | None = None
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> BlobInfoCache:
        """The cache in the giropops cache directory (``$GIROPOPS_CACHE_DIR`` or ``~/.cache/giropops``)."""
        from giropops.cachedir import cache_root

        return cls(cache_root() / FILE_NAME)

    # -- opening, and rebuilding what is damaged -------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            st = os.stat(self.path)
            self._inode = (st.st_dev, st.st_ino)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    version = conn.execute("PRAGMA user_version").fetchone()[0]
                    if version == 0:
                        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                        if tables:
                            raise _Foreign(f"version 0 with {tables} schema objects")
                        for statement in _SCHEMA.split(";"):
                            if statement.strip():
                                conn.execute(statement)
                        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                        conn.execute("COMMIT")
                    elif version != SCHEMA_VERSION:
                        raise _Foreign(f"schema version {version}")
                    else:
                        conn.execute("COMMIT")
                finally:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
            conn.execute("SELECT diff_id, digest, media_type, size, registry, repository, seen FROM blobs LIMIT 1")
        except BaseException:
            conn.close()
            raise
        return conn

    def _discard(self) -> None:
        """Delete the damaged file (and its WAL), unless another process has already replaced it."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        lock_path = self.path.with_name(self.path.name + ".lock")
        import fcntl  # rebuilding only

        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                return
            if self._inode is not None and (st.st_dev, st.st_ino) != self._inode:
                return  # someone rebuilt it since we opened it
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")
        self.rebuilt += 1

    def _open(self) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        if self.disabled_reason is not None:
            return None
        for attempt in range(2):
            try:
                self._conn = self._connect()
                return self._conn
            except (_Foreign, sqlite3.DatabaseError) as exc:
                damaged = isinstance(exc, _Foreign) or _is_damage(exc)
                if damaged and attempt == 0:
                    try:
                        self._discard()
                    except OSError as err:
                        self.disabled_reason = f"cannot rebuild {self.path}: {err}"
                        return None
                    continue
                self.disabled_reason = f"{self.path}: {exc}"
                return None
            except (sqlite3.Error, OSError) as exc:
                self.disabled_reason = f"{self.path}: {exc}"
                return None
        return None

    @contextlib.contextmanager
    def _using(self) -> Iterator[sqlite3.Connection | None]:
        """The connection, under the lock; damage found while using it rebuilds the file for next time."""
        with self._lock:
            conn = self._open()
            try:
                yield conn
            except sqlite3.DatabaseError as exc:
                if conn is not None and conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if _is_damage(exc):
                    with contextlib.suppress(OSError):
                        self._discard()
                # locked past the timeout, disk full...: this push simply goes without the cache

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None

    def __enter__(self) -> BlobInfoCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries -------------------------------------------------------------------------------

    def lookup(self, diff_ids: Iterable[Digest] = (), digests: Iterable[Digest] = ()) -> list[BlobLocation]:
        """Every row about these diff_ids or compressed digests, most recently confirmed first."""
        keys_d = sorted({str(d) for d in diff_ids})
        keys_b = sorted({str(d) for d in digests})
        if not keys_d and not keys_b:
            return []
        out: list[BlobLocation] = []
        with self._using() as conn:
            if conn is None:
                return []
            rows = conn.execute(
                "SELECT diff_id, digest, media_type, size, registry, repository, seen FROM blobs "
                "WHERE diff_id IN (SELECT value FROM json_each(?)) OR digest IN (SELECT value FROM json_each(?))",
                (json.dumps(keys_d), json.dumps(keys_b)),
            ).fetchall()
            seen_rows: set[tuple[object, ...]] = set()
            for row in sorted(rows, key=lambda r: r[6] if isinstance(r[6], int) else 0, reverse=True):
                if row[:6] in seen_rows:
                    continue
                seen_rows.add(row[:6])
                loc = _location(row)
                if loc is not None:
                    out.append(loc)
        return out

    def update(self, add: Iterable[BlobLocation] = (), forget: Iterable[BlobLocation] = ()) -> None:
        """Forget rows the registry contradicted, record (or re-confirm) what it holds; one transaction."""
        add, forget = list(add), list(forget)
        if not add and not forget:
            return
        now = time.time_ns()
        with self._using() as conn:
            if conn is None:
                return
            dropped = {_key(loc) for loc in forget}  # a row forgotten and added back must be written
            add = [loc for loc in add if _key(loc) in dropped or not _fresh(conn, loc, now, self.refresh_after_ns)]
            if not add and not forget:
                return
            conn.execute("BEGIN IMMEDIATE")
            for loc in forget:
                conn.execute(
                    "DELETE FROM blobs WHERE registry = ? AND repository = ? AND digest = ? AND diff_id = ?",
                    (loc.registry, loc.repository, str(loc.digest), str(loc.diff_id)),
                )
            for loc in add:
                conn.execute(
                    "INSERT INTO blobs (diff_id, digest, media_type, size, registry, repository, seen) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (registry, repository, digest, diff_id) DO UPDATE "
                    "SET media_type = excluded.media_type, size = excluded.size, seen = excluded.seen",
                    (str(loc.diff_id), str(loc.digest), loc.media_type, loc.size, loc.registry, loc.repository, now),
                )
            count = conn.execute("SELECT count(*) FROM blobs").fetchone()[0]
            if count > self.max_entries:
                conn.execute(
                    "DELETE FROM blobs WHERE rowid IN (SELECT rowid FROM blobs ORDER BY seen ASC, rowid ASC LIMIT ?)",
                    (count - self.max_entries,),
                )
            conn.execute("COMMIT")

    def __len__(self) -> int:
        with self._using() as conn:
            if conn is None:
                return 0
            return int(conn.execute("SELECT count(*) FROM blobs").fetchone()[0])
        return 0


def _key(loc: BlobLocation) -> tuple[str, str, Digest, Digest]:
    return loc.registry, loc.repository, loc.digest, loc.diff_id


def _fresh(conn: sqlite3.Connection, loc: BlobLocation, now: int, refresh_after_ns: int) -> bool:
    """Whether the cache holds ``loc`` exactly as it is, confirmed less than ``refresh_after_ns`` ago."""
    row = conn.execute(
        "SELECT media_type, size, seen FROM blobs WHERE registry = ? AND repository = ? AND digest = ? "
        "AND diff_id = ?",
        (loc.registry, loc.repository, str(loc.digest), str(loc.diff_id)),
    ).fetchone()
    if row is None or row[0] != loc.media_type or row[1] != loc.size or not isinstance(row[2], int):
        return False
    return bool(0 <= now - row[2] < refresh_after_ns)


def _location(row: tuple[object, ...]) -> BlobLocation | None:
    """A row as a ``BlobLocation``; None for a row that does not hold together (it is skipped, not trusted)."""
    diff_id, digest, media_type, size, registry, repository = row[:6]
    if not all(isinstance(x, str) for x in (diff_id, digest, media_type, registry, repository)):
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return None
    try:
        # A row is data from a file: a repository name that is not one never shapes a request.
        _check_repo(str(repository))
        return BlobLocation(
            Digest.parse(str(diff_id)), Digest.parse(str(digest)), str(media_type), size, str(registry),
            str(repository),
        )
    except (ManifestError, ImageReferenceError):
        return None
