"""The SQLite advisory store: schema, atomic rebuilds, and the queries matchers use.

Writes never touch the database in use: ``rebuild`` takes the database's lock
(``lock``: one writer at a time, so two imports cannot each start from the same
old file and lose the other's records when the last rename wins), copies it beside itself,
lets the caller change the copy, and renames the copy over the original only
when everything succeeded (a crash or an exception leaves the old file as it
was).  Readers open the file read-only; matchers get ``Advisory`` values and
never see SQL (grype's provider/matcher split).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from giropops import locking
from giropops.cachedir import xdg_cache_home
from giropops.errors import DatabaseNotReadyError, EcosystemNotCoveredError, VulnError
from giropops.vuln.model import Advisory, Affected, Epss, Interval, KevEntry, Severity

if TYPE_CHECKING:  # the readers (exploits, and its JSON/YAML parsing) are the importer's, not a scan's
    from giropops.vuln.db.exploits import EpssFeed, KevCatalog

# 2: vendor severity, Wolfi fix state and disputed entries (docs/severity.md)
SCHEMA_VERSION = "2"
ENV_VAR = "GIROPOPS_DB"
#: How long a writer waits for another one to finish with the same database.
DEFAULT_LOCK_TIMEOUT = 600.0
STALE_AFTER = timedelta(days=7)
FILL_HINT = "fill it with 'giropops db update', or offline with 'giropops db import FILES'"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE advisory (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    vuln_id TEXT NOT NULL,
    aliases TEXT NOT NULL,          -- newline-separated
    related TEXT NOT NULL,          -- newline-separated
    summary TEXT NOT NULL,
    published TEXT,
    modified TEXT NOT NULL,
    withdrawn TEXT,
    severity TEXT NOT NULL,
    score REAL,
    severity_source TEXT,
    vector TEXT,
    status TEXT,
    vendor_severity TEXT,           -- the publisher's rating (GHSA, AlmaLinux), NULL when none
    vendor_source TEXT,
    fix_state TEXT,                 -- Wolfi/Chainguard wolfi_event
    source TEXT NOT NULL            -- where the record was imported from
);
CREATE TABLE affected (
    pk INTEGER PRIMARY KEY,
    advisory INTEGER NOT NULL REFERENCES advisory(pk) ON DELETE CASCADE,
    ecosystem TEXT NOT NULL,
    name TEXT NOT NULL,             -- PEP 503-normalised for PyPI
    versions TEXT NOT NULL,         -- newline-separated explicit versions
    urgency TEXT,
    disputed TEXT                   -- why the entry is doubtful, NULL when it is not
);
CREATE INDEX advisory_by_vuln ON advisory (vuln_id);
CREATE INDEX affected_by_package ON affected (ecosystem, name);
CREATE INDEX affected_by_advisory ON affected (advisory);
CREATE TABLE interval (
    affected INTEGER NOT NULL REFERENCES affected(pk) ON DELETE CASCADE,
    scheme TEXT NOT NULL,
    introduced TEXT,
    fixed TEXT,
    last_affected TEXT,
    limit_ TEXT
);
CREATE INDEX interval_by_affected ON interval (affected);
CREATE TABLE feed (                 -- conditional-request state per downloaded ecosystem
    ecosystem TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    fetched_at TEXT NOT NULL
);
"""
#: The indexes scans read through (``advisories_for``, ``cvss_severity``).
_LOOKUP_INDEXES = {
    "affected_by_package": "CREATE INDEX IF NOT EXISTS affected_by_package ON affected (ecosystem, name)",
    "advisory_by_vuln": "CREATE INDEX IF NOT EXISTS advisory_by_vuln ON advisory (vuln_id)",
}
#: Exploitation data (``exploits``): added to older schema-2 files when they are next rebuilt; readers
#: treat a missing table as "no data imported".
_EXPLOIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS kev (
    cve TEXT PRIMARY KEY,
    date_added TEXT NOT NULL,
    due_date TEXT,
    ransomware TEXT,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS epss (
    cve TEXT PRIMARY KEY,
    score REAL NOT NULL,
    percentile REAL NOT NULL
);
"""


#: The one query a scan runs per package: an index search on (ecosystem, name), then primary keys.
ADVISORIES_FOR = (
    "SELECT f.pk, f.versions, f.urgency, a.id, a.vuln_id, a.aliases, a.related, a.summary, a.published,"
    " a.modified, a.withdrawn, a.severity, a.score, a.severity_source, a.vector, a.status,"
    " i.scheme, i.introduced, i.fixed, i.last_affected, i.limit_,"
    " f.disputed, a.vendor_severity, a.vendor_source, a.fix_state"
    " FROM affected f JOIN advisory a ON a.pk = f.advisory LEFT JOIN interval i ON i.affected = f.pk"
    " WHERE f.ecosystem = ? AND f.name = ? ORDER BY f.pk"
)
#: The CVSS another record gives a vulnerability (``cvss_severity``): an index search on vuln_id.
CVSS_OF = (
    "SELECT severity, score, severity_source, vector, id FROM advisory WHERE vuln_id = ?"
    " AND severity_source LIKE 'CVSS%' AND withdrawn IS NULL ORDER BY score DESC, id LIMIT 1"
)
#: Names (CVEs) looked up per query by ``VulnDB.prefetch``.
PREFETCH_CHUNK = 500


def advisories_for_names(count: int) -> str:
    """ADVISORIES_FOR for ``count`` names of one ecosystem, with the name last in each row."""
    marks = ",".join("?" * count)  # placeholders only: the names are bound
    return ADVISORIES_FOR.replace(" FROM affected f", ", f.name FROM affected f", 1).replace(
        "f.name = ?", f"f.name IN ({marks})", 1)


def cvss_of_many(count: int) -> str:
    """CVSS_OF for ``count`` vulnerability ids, every candidate row (the caller picks the best), id last."""
    marks = ",".join("?" * count)
    return ("SELECT severity, score, severity_source, vector, id, vuln_id FROM advisory"  # noqa: S608
            f" WHERE vuln_id IN ({marks}) AND severity_source LIKE 'CVSS%' AND withdrawn IS NULL")


def default_path() -> Path:
    """``$GIROPOPS_DB``, else ``$XDG_CACHE_HOME/giropops/vulndb.sqlite3`` (``~/.cache`` by default)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return xdg_cache_home() / "giropops" / "vulndb.sqlite3"


def age_of(timestamp: str | None, now: datetime | None = None) -> timedelta | None:
    """How long ago an RFC 3339 ``timestamp`` was; None when there is none or it does not parse."""
    if not timestamp:
        return None
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (now or datetime.now(UTC)) - when


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class FeedState:
    ecosystem: str
    url: str
    etag: str | None
    last_modified: str | None
    fetched_at: str


@dataclass(frozen=True)
class EcosystemCount:
    ecosystem: str
    advisories: int
    packages: int


@dataclass(frozen=True)
class Status:
    path: Path
    schema_version: str
    built_at: str | None
    advisories: int
    withdrawn: int
    ecosystems: tuple[EcosystemCount, ...]
    newest_modified: str | None
    feeds: tuple[FeedState, ...]
    size: int


class Writer:
    """Inserts into an open (copied) database; used only inside ``rebuild``.

    Rows are buffered and written with one ``executemany`` per table every ``BATCH`` advisories, with
    primary keys assigned here (what SQLite would pick: one past the largest), and whether an id is
    already stored is answered from a map of every stored id's ``modified`` read once: an import of
    150,000 records runs a few hundred statements instead of a million.  Anything that deletes or reads
    back flushes the buffers first, so the database always looks as if each ``put`` ran on its own.
    """

    BATCH = 2000

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._stored: dict[str, str] | None = None  # id -> modified of every advisory in the database
        self._next_advisory = 0
        self._next_affected = 0
        self._advisories: list[tuple[Any, ...]] = []
        self._affected: list[tuple[Any, ...]] = []
        self._intervals: list[tuple[Any, ...]] = []
        self._buffered: set[str] = set()  # ids of the advisories in the buffers
        self._deletes: list[tuple[str]] = []  # stored advisories a buffered one replaces

    def _load(self) -> dict[str, str]:
        if self._stored is None:
            self._stored = {str(i): str(m) for i, m in self.conn.execute("SELECT id, modified FROM advisory")}
            self._next_advisory = int(self.conn.execute("SELECT COALESCE(MAX(pk), 0) FROM advisory").fetchone()[0]) + 1
            self._next_affected = int(self.conn.execute("SELECT COALESCE(MAX(pk), 0) FROM affected").fetchone()[0]) + 1
        return self._stored

    def flush(self) -> None:
        """Write the buffered rows (the replaced advisories are deleted first)."""
        if self._deletes:
            self.conn.executemany("DELETE FROM advisory WHERE id = ?", self._deletes)
            self._deletes = []
        self._buffered.clear()
        if self._advisories:
            self.conn.executemany(
                "INSERT INTO advisory (pk, id, vuln_id, aliases, related, summary, published, modified, withdrawn,"
                " severity, score, severity_source, vector, status, vendor_severity, vendor_source, fix_state,"
                " source) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", self._advisories)
            self._advisories = []
        if self._affected:
            self.conn.executemany(
                "INSERT INTO affected (pk, advisory, ecosystem, name, versions, urgency, disputed)"
                " VALUES (?,?,?,?,?,?,?)", self._affected)
            self._affected = []
        if self._intervals:
            self.conn.executemany(
                "INSERT INTO interval (affected, scheme, introduced, fixed, last_affected, limit_)"
                " VALUES (?,?,?,?,?,?)", self._intervals)
            self._intervals = []

    def _forget(self) -> None:
        """After a delete: the id map and the next keys are read again when next needed."""
        self._stored = None

    def existing_modified(self, osv_id: str) -> str | None:
        return self._load().get(osv_id)

    def put(self, adv: Advisory, source: str) -> bool:
        """Insert ``adv``; a record with the same id is replaced unless it is newer. True if written."""
        stored = self._load()
        old = stored.get(adv.id)
        if old is not None:
            if old > adv.modified:
                return False
            if adv.id in self._buffered:  # the same id twice in one batch: the first one is written first
                self.flush()
            self._deletes.append((adv.id,))
        sev = adv.severity
        vendor = adv.vendor_severity
        pk = self._next_advisory
        self._next_advisory += 1
        stored[adv.id] = adv.modified
        self._buffered.add(adv.id)
        self._advisories.append((
            pk, adv.id, adv.vuln_id, "\n".join(adv.aliases), "\n".join(adv.related), adv.summary, adv.published,
            adv.modified, adv.withdrawn, sev.level, sev.score, sev.source, sev.vector, adv.status,
            vendor.level if vendor else None, vendor.source if vendor else None, adv.fix_state, source,
        ))
        for aff in adv.affected:
            apk = self._next_affected
            self._next_affected += 1
            self._affected.append((apk, pk, aff.ecosystem, aff.name, "\n".join(aff.versions), aff.urgency,
                                   aff.disputed))
            self._intervals.extend((apk, i.scheme, i.introduced, i.fixed, i.last_affected, i.limit)
                                   for i in aff.intervals)
        if len(self._advisories) >= self.BATCH:
            self.flush()
        return True

    def drop_ecosystem(self, base: str) -> None:
        """Forget every affected entry of ``base`` (``Debian`` covers ``Debian:12``...) before a fresh feed."""
        self.flush()
        self._forget()
        self.conn.execute("DELETE FROM affected WHERE ecosystem = ? OR ecosystem LIKE ?", (base, f"{base}:%"))
        self.conn.execute("DELETE FROM advisory WHERE pk NOT IN (SELECT advisory FROM affected)")

    def put_kev(self, catalog: KevCatalog, source: str) -> None:
        """Replace the KEV table with ``catalog`` (a catalog is a whole snapshot)."""
        self.flush()
        self.conn.execute("DELETE FROM kev")
        self.conn.executemany("INSERT INTO kev (cve, date_added, due_date, ransomware, name) VALUES (?,?,?,?,?)",
                              [(e.cve, e.date_added, e.due_date, e.ransomware, e.name) for e in catalog.entries])
        self._meta({"kev_version": catalog.version, "kev_released": catalog.released or "",
                    "kev_source": source, "kev_count": str(len(catalog.entries))})

    def put_epss(self, feed: EpssFeed, source: str) -> None:
        """Replace the EPSS table with ``feed`` (one day's scores)."""
        self.flush()
        self.conn.execute("DELETE FROM epss")
        self.conn.executemany("INSERT INTO epss (cve, score, percentile) VALUES (?,?,?)",
                              [(cve, e.score, e.percentile) for cve, e in feed.scores.items()])
        self._meta({"epss_model": feed.model_version, "epss_date": feed.score_date, "epss_source": source,
                    "epss_count": str(len(feed.scores))})

    def _meta(self, values: dict[str, str]) -> None:
        self.conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items()))

    def set_feed(self, state: FeedState, digest: str | None = None) -> None:
        """Note an ecosystem's conditional-request state and the SHA-256 of the file imported from it
        (``update`` skips a download whose bytes are the same)."""
        self.conn.execute(
            "INSERT OR REPLACE INTO feed (ecosystem, url, etag, last_modified, fetched_at) VALUES (?,?,?,?,?)",
            (state.ecosystem, state.url, state.etag, state.last_modified, state.fetched_at),
        )
        if digest is None:
            self.conn.execute("DELETE FROM meta WHERE key = ?", (f"feed_sha256:{state.ecosystem}",))
        else:
            self._meta({f"feed_sha256:{state.ecosystem}": digest})


def _ro_uri(path: Path) -> str:
    """A read-only SQLite URI; the path is quoted so ``?`` or ``#`` in it cannot become URI syntax."""
    return f"file:{urllib.parse.quote(str(path.absolute()))}?mode=ro"


def _create(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)
    conn.executescript(_EXPLOIT_SCHEMA)
    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))


class OldSchemaError(VulnError):
    """The database was built by an older giropops: its records lack what this one needs."""


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise VulnError(f"{path} is not a giropops vulnerability database: {exc}") from exc
    if row is None or row[0] != SCHEMA_VERSION:
        found = row[0] if row else "?"
        if found.isdigit() and int(found) < int(SCHEMA_VERSION):
            raise OldSchemaError(
                f"{path} has schema {found}, this giropops needs {SCHEMA_VERSION} (vendor severities, fix status,"
                " disputed records): run 'giropops db update', or re-import your files with 'giropops db import'")
        raise VulnError(f"{path} has schema {found}, expected {SCHEMA_VERSION}: rebuild it with 'giropops db update'")


def ensure_parent(path: Path) -> None:
    """Create the directory the database lives in; a clear VulnError when that cannot be done."""
    blocker = _file_in_the_way(path)
    if blocker is not None:
        raise VulnError(f"cannot create a database at {path}: {blocker} is not a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VulnError(f"cannot create a database at {path}: {path.parent}: "
                        f"{exc.strerror or exc}") from exc
    if not path.parent.is_dir():
        raise VulnError(f"cannot create a database at {path}: {path.parent} is not a directory")


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is not a directory (``--db some-file/db``)."""
    for ancestor in (path.parent, *path.parent.parents):
        if ancestor.exists() or ancestor.is_symlink():
            return None if ancestor.is_dir() else ancestor
    return None


def lock(path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT,
         on_wait: Callable[[str], None] | None = None) -> contextlib.AbstractContextManager[None]:
    """The exclusive writer lock of the database at ``path`` (``.NAME.lock`` beside it).

    Everything that replaces the database holds it from reading the old file to the rename.
    Taking it again in the same thread while held is allowed (``update`` holds it around
    ``rebuild``).  Raises ``locking.LockTimeout`` (a GiropopsError) after ``timeout`` seconds.
    """
    ensure_parent(path)
    return locking.exclusive(path, timeout=timeout, what="vulnerability database", on_wait=on_wait)


def _damaged(path: Path, exc: sqlite3.DatabaseError) -> VulnError:
    return VulnError(f"{path} is damaged ({exc}); delete it and run 'giropops db update' "
                     "(or 'giropops db import') to rebuild it")


@contextlib.contextmanager
def rebuild(path: Path, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
            on_wait: Callable[[str], None] | None = None) -> Iterator[Writer]:
    """Change a copy of the database at ``path`` (or a new one) and swap it in atomically on success.

    The database's lock is held throughout, so a concurrent writer starts from our result.
    """
    with lock(path, lock_timeout, on_wait):
        yield from _rebuild_locked(path)


def _rebuild_locked(path: Path) -> Iterator[Writer]:
    import tempfile

    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    except OSError as exc:
        raise VulnError(f"cannot write beside {path}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            if path.exists():
                src = sqlite3.connect(_ro_uri(path), uri=True)
                try:
                    _check_schema(src, path)
                    src.backup(conn)
                except OldSchemaError:
                    _create(conn)  # an older database is rebuilt from scratch: its rows lack the new columns
                finally:
                    src.close()
            else:
                _create(conn)
            # The copy is private until the rename: durability costs nothing here.
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA cache_size = -16384")  # 16 MiB of pages: the indexes stay in memory
            conn.executescript(_EXPLOIT_SCHEMA)
            if conn.execute("SELECT 1 FROM advisory LIMIT 1").fetchone() is None:
                # Filling an empty database: the lookup indexes are built once, sorted, after the inserts
                # (deletes need only the primary keys and affected_by_advisory, which stay).
                for name in _LOOKUP_INDEXES:
                    conn.execute(f"DROP INDEX IF EXISTS {name}")
            conn.execute("BEGIN")
            writer = Writer(conn)
            yield writer
            writer.flush()
            for sql in _LOOKUP_INDEXES.values():
                conn.execute(sql)
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('built_at', ?)", (now_utc(),))
            conn.execute("INSERT OR REPLACE INTO meta (key, value)"
                         " SELECT 'newest_modified', COALESCE(MAX(modified), '') FROM advisory")
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
        except sqlite3.DatabaseError as exc:  # pages of the old file we copied, or our copy, are bad
            raise _damaged(path, exc) from exc
        finally:
            conn.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class VulnDB:
    """Read-only access for matching and status."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            blocker = _file_in_the_way(path)
            if blocker is not None:
                raise VulnError(f"no vulnerability database at {path}: {blocker} is not a directory")
            raise DatabaseNotReadyError(f"no vulnerability database at {path}: {FILL_HINT}")
        try:
            self.conn = sqlite3.connect(_ro_uri(path), uri=True, check_same_thread=False)
            _check_schema(self.conn, path)
        except sqlite3.DatabaseError as exc:
            raise VulnError(f"cannot open {path}: {exc}") from exc
        self._cache: dict[tuple[str, str], tuple[Advisory, ...]] = {}
        self._severities: dict[tuple[Any, ...], Severity] = {}
        self._cvss: dict[str, Severity | None] = {}
        self._covered: dict[str, bool] = {}
        self._kev: dict[str, KevEntry] | None = None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> VulnDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """``fetchall`` of a query; a damaged file (pages past the meta table) is a VulnError saying what to do."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) from exc

    def advisories_for(self, ecosystem: str, name: str) -> tuple[Advisory, ...]:
        """Every advisory with an affected entry for (ecosystem, name), that entry only."""
        key = (ecosystem, name)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        result = self._cache[key] = self._build(ecosystem, name, self._rows(ADVISORIES_FOR, (ecosystem, name)))
        return result

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Look up many (ecosystem, name) pairs at once, before a scan asks for them one by one: one query
        per ecosystem and ``PREFETCH_CHUNK`` names (each name still an index search), then the CVSS scores
        their records borrow (``cvss_severity``) in the same way.  What ``advisories_for`` and
        ``cvss_severity`` answer afterwards is exactly what they would have found alone."""
        by_ecosystem: dict[str, set[str]] = {}
        for ecosystem, name in keys:
            if (ecosystem, name) not in self._cache:
                by_ecosystem.setdefault(ecosystem, set()).add(name)
        borrowing: set[str] = set()
        for ecosystem, names in sorted(by_ecosystem.items()):
            ordered = sorted(names)
            for i in range(0, len(ordered), PREFETCH_CHUNK):
                chunk = ordered[i:i + PREFETCH_CHUNK]
                per_name: dict[str, list[Any]] = {n: [] for n in chunk}
                for row in self._rows(advisories_for_names(len(chunk)), (ecosystem, *chunk)):
                    per_name[row[25]].append(row)  # in f.pk order, as the one-name query gives them
                for name, rows in per_name.items():
                    found = self._cache[(ecosystem, name)] = self._build(ecosystem, name, rows)
                    borrowing.update(a.vuln_id for a in found if a.vuln_id not in self._cvss
                                     and not (a.severity.source or "").startswith("CVSS"))
        self._prefetch_cvss(sorted(borrowing))

    def _prefetch_cvss(self, vuln_ids: Sequence[str]) -> None:
        for i in range(0, len(vuln_ids), PREFETCH_CHUNK):
            chunk = vuln_ids[i:i + PREFETCH_CHUNK]
            best: dict[str, Any] = {}
            for row in self._rows(cvss_of_many(len(chunk)), tuple(chunk)):
                # CVSS_OF's ORDER BY score DESC, id: a NULL score sorts last, then the smallest id wins
                rank = (row[1] is None, -(row[1] or 0.0), row[4])
                if row[5] not in best or rank < best[row[5]][0]:
                    best[row[5]] = (rank, row)
            for vuln_id in chunk:
                hit = best.get(vuln_id)
                self._cvss[vuln_id] = None if hit is None else Severity(
                    hit[1][0], hit[1][1], f"{hit[1][2]} via {hit[1][4]}", hit[1][3])

    def _build(self, ecosystem: str, name: str, rows: list[Any]) -> tuple[Advisory, ...]:
        """``Advisory`` values from ADVISORIES_FOR rows (one per interval, in affected-entry order)."""
        grouped: dict[int, tuple[Any, list[Interval]]] = {}
        for row in rows:
            entry = grouped.get(row[0])
            if entry is None:
                entry = grouped[row[0]] = (row, [])
            if row[16] is not None:
                entry[1].append(Interval(row[16], row[17], row[18], row[19], row[20]))
        out = []
        for row, intervals in grouped.values():
            (_pk, versions, urgency, osv_id, vuln_id, aliases, related, summary, published, modified, withdrawn,
             level, score, sev_source, vector, status) = row[:16]
            disputed, vendor_level, vendor_source, fix_state = row[21:25]
            sev_key = (level, score, sev_source, vector)
            severity = self._severities.get(sev_key)
            if severity is None:
                severity = self._severities[sev_key] = Severity(level, score, sev_source, vector)
            out.append(
                Advisory(
                    id=osv_id, modified=modified, vuln_id=vuln_id,
                    aliases=tuple(aliases.split("\n")) if aliases else (),
                    related=tuple(related.split("\n")) if related else (),
                    summary=summary, published=published, withdrawn=withdrawn,
                    severity=severity, status=status,
                    affected=(Affected(ecosystem, name, tuple(intervals),
                                       tuple(versions.split("\n")) if versions else (), urgency, disputed),),
                    vendor_severity=Severity(vendor_level, None, vendor_source) if vendor_level else None,
                    fix_state=fix_state,
                )
            )
        return tuple(sorted(out, key=lambda a: a.id))

    def covers(self, ecosystems: Iterable[str]) -> None:
        """Raise ``DatabaseNotReadyError`` unless the database holds advisories for every one of ``ecosystems``
        (``Debian:12``, ``PyPI``...) and is not empty: what a scan must check before "nothing found" means
        anything."""
        if "" not in self._covered:
            self._covered[""] = bool(self._rows("SELECT 1 FROM advisory LIMIT 1"))
        if not self._covered[""]:
            raise DatabaseNotReadyError(f"the vulnerability database {self.path} is empty: {FILL_HINT}")
        missing = []
        for eco in sorted(set(ecosystems)):
            if eco not in self._covered:
                self._covered[eco] = bool(self._rows("SELECT 1 FROM affected WHERE ecosystem = ? LIMIT 1", (eco,)))
            if not self._covered[eco]:
                missing.append(eco)
        if missing:
            bases = sorted({m.split(":", 1)[0] for m in missing})
            flags = " ".join(f"--ecosystem {b}" for b in bases)
            raise EcosystemNotCoveredError(
                f"the vulnerability database {self.path} has no advisories for {', '.join(missing)} "
                f"(the scanned packages' ecosystem{'s' if len(missing) > 1 else ''}): add them with "
                f"'giropops db update {flags}', or offline with 'giropops db import FILES'")

    def stale_warning(self, now: datetime | None = None) -> str | None:
        """One line when the newest advisory is older than ``STALE_AFTER`` (or has no date); else None."""
        newest = self.newest_modified()
        age = age_of(newest, now)
        if age is not None and age <= STALE_AFTER:
            return None
        days = "of unknown age" if age is None else f"{age.days} days old"
        return (f"the vulnerability database {self.path} is {days} (newest advisory: {newest or 'none'}); "
                "refresh it with 'giropops db update'")

    def feed_digests(self) -> dict[str, str]:
        """Ecosystem -> SHA-256 of the export file its records were imported from (``set_feed``)."""
        rows = self._rows("SELECT key, value FROM meta WHERE key LIKE 'feed_sha256:%'")
        return {str(k).split(":", 1)[1]: str(v) for k, v in rows}

    def newest_modified(self) -> str | None:
        """The newest advisory's ``modified``: noted in the meta table when the database is built (so a scan
        does not read every advisory for it), computed for a file built before that note existed."""
        rows = self._rows("SELECT value FROM meta WHERE key = 'newest_modified'")
        if rows:
            return str(rows[0][0]) or None
        row = self._rows("SELECT MAX(modified) FROM advisory")
        return row[0][0] if row else None

    def cvss_severity(self, vuln_id: str) -> Severity | None:
        """The highest CVSS-based severity any advisory about ``vuln_id`` carries (e.g. the GHSA or the
        Debian record of a CVE that Alpine's secdb lists without a score)."""
        if vuln_id in self._cvss:
            return self._cvss[vuln_id]
        rows = self._rows(CVSS_OF, (vuln_id,))
        row = rows[0] if rows else None
        found = None if row is None else Severity(row[0], row[1], f"{row[2]} via {row[4]}", row[3])
        self._cvss[vuln_id] = found
        return found

    def _has_table(self, name: str) -> bool:
        return bool(self._rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))

    def kev(self) -> dict[str, KevEntry]:
        """The KEV catalog imported (``db import``/``db update``), by CVE; empty when none was."""
        if self._kev is None:
            rows = self._rows("SELECT cve, date_added, due_date, ransomware, name FROM kev") \
                if self._has_table("kev") else []
            self._kev = {r[0]: KevEntry(*r) for r in rows}
        return self._kev

    def epss(self, cves: Sequence[str]) -> dict[str, Epss]:
        """EPSS score and percentile of each of ``cves`` that has one."""
        wanted = sorted({c for c in cves if c.startswith("CVE-")})
        if not wanted or not self._has_table("epss"):
            return {}
        out: dict[str, Epss] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            marks = ",".join("?" * len(chunk))  # placeholders only: the values are bound
            rows = self._rows(f"SELECT cve, score, percentile FROM epss WHERE cve IN ({marks})",  # noqa: S608
                              tuple(chunk))
            out.update({r[0]: Epss(float(r[1]), float(r[2])) for r in rows})
        return out

    def exploit_meta(self) -> dict[str, str]:
        """``kev_version``, ``epss_date``... of the exploitation data imported (empty when none)."""
        rows = self._rows("SELECT key, value FROM meta WHERE key LIKE 'kev_%' OR key LIKE 'epss_%'")
        return {str(k): str(v) for k, v in rows}

    def status(self) -> Status:
        try:
            return self._status()
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) from exc

    def _status(self) -> Status:
        c = self.conn
        meta = dict(c.execute("SELECT key, value FROM meta").fetchall())
        eco_rows = c.execute(
            "SELECT ecosystem, COUNT(DISTINCT advisory), COUNT(DISTINCT name) FROM affected GROUP BY ecosystem"
            " ORDER BY ecosystem"
        ).fetchall()
        feeds = tuple(FeedState(*r) for r in c.execute(
            "SELECT ecosystem, url, etag, last_modified, fetched_at FROM feed ORDER BY ecosystem"))
        return Status(
            path=self.path,
            schema_version=meta.get("schema_version", "?"),
            built_at=meta.get("built_at"),
            advisories=int(c.execute("SELECT COUNT(*) FROM advisory").fetchone()[0]),
            withdrawn=int(c.execute("SELECT COUNT(*) FROM advisory WHERE withdrawn IS NOT NULL").fetchone()[0]),
            ecosystems=tuple(EcosystemCount(e, int(n), int(p)) for e, n, p in eco_rows),
            newest_modified=c.execute("SELECT MAX(modified) FROM advisory").fetchone()[0],
            feeds=feeds,
            size=self.path.stat().st_size,
        )

    def feed_states(self) -> dict[str, FeedState]:
        """The conditional-request state of every downloaded ecosystem (the feed table alone: a scan asks
        this before every run, and ``status``'s counts scan the whole affected table)."""
        rows = self._rows("SELECT ecosystem, url, etag, last_modified, fetched_at FROM feed ORDER BY ecosystem")
        return {r[0]: FeedState(*r) for r in rows}
