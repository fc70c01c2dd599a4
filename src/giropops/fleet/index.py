"""The fleet index: one protocol, two backends (SQLite in the user's cache, PostgreSQL for a team).

An image is stored once per manifest digest, in one transaction with its packages, its
lookup keys (the (ecosystem, name) pairs the matchers search for it) and its findings;
its references (repository, tag) are rows of their own, added by every scanner that
meets them.  Writes are upserts (``INSERT ... ON CONFLICT``) on primary keys, so two
scanners meeting the same digest at once serialise on that row and neither loses nor
duplicates anything: the second one replaces the first one's rows with equal ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from giropops.errors import ConfigError, GiropopsError
from giropops.sbom.cache import default_cache_dir
from giropops.sbom.formats import native
from giropops.sbom.model import SBOM, Distro, Location, Package

SCHEMA_VERSION = "3"
#: How long a SQLite writer waits for another process holding the index.
SQLITE_BUSY_TIMEOUT = 120.0


class IndexError_(GiropopsError):  # trailing underscore: do not shadow the builtin
    """The index cannot be opened, read or written."""


@dataclass(frozen=True)
class ImageRecord:
    digest: str
    platform: str
    base_name: str | None
    base_digest: str | None
    sbom: SBOM
    scanned_at: str
    owned: frozenset[int] = frozenset()  # indexes of packages an OS package owns (``match.os_owned``)


@dataclass(frozen=True)
class StoredPackage:
    """A package as matching needs it, with the image it is in and whether an OS package owns it."""

    digest: str
    idx: int
    package: Package
    owned: bool


def distro_doc(d: Distro | None) -> str | None:
    if d is None:
        return None
    return json.dumps([d.id, d.version_id, d.pretty_name, list(d.id_like), d.version_codename])


def distro_from(doc: str | None) -> Distro | None:
    if not doc:
        return None
    v = json.loads(doc)
    return Distro(str(v[0]), str(v[1]), str(v[2]), tuple(str(x) for x in v[3]), str(v[4]))


def package_doc(p: Package) -> str:
    """Every field matching may read (not the owned files: they only decide ``owned``)."""
    return json.dumps([p.name, p.version, p.type, p.purl, p.source_name, p.source_version, p.arch,
                       list(p.licenses), [[loc.path, loc.layer] for loc in p.locations], dict(p.metadata)],
                      separators=(",", ":"))


def package_from(doc: str) -> Package:
    v = json.loads(doc)
    return Package(name=v[0], version=v[1], type=v[2], purl=v[3], source_name=v[4], source_version=v[5],
                   arch=v[6], licenses=tuple(v[7]), locations=tuple(Location(a, b) for a, b in v[8]),
                   metadata=dict(v[9]))


@dataclass(frozen=True, order=True)
class StoredFinding:
    """One vulnerability of one package of an image, as the index keeps it."""

    vuln_id: str
    package: str  # "type/name@version"
    aliases: tuple[str, ...] = ()
    severity: str = "unspecified"
    fixed: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.vuln_id, self.package)


@dataclass(frozen=True)
class Ref:
    repository: str
    tag: str

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}" if self.tag else self.repository


@dataclass(frozen=True)
class ImageRow:
    digest: str
    platform: str
    base_name: str | None
    scanned_at: str
    refs: tuple[Ref, ...]


@dataclass(frozen=True)
class PackageRow:
    digest: str
    type: str
    name: str
    version: str
    purl: str
    locations: tuple[str, ...]  # "path" or "path (layer sha256:...)"


class FleetIndex(Protocol):
    """What the scanner and the queries need of an index; both backends implement it."""

    location: str

    def has_image(self, digest: str) -> bool: ...

    def put_image(self, record: ImageRecord, lookups: Sequence[tuple[int, str, str]],
                  findings: Sequence[StoredFinding]) -> None: ...

    def add_ref(self, digest: str, repository: str, tag: str) -> None: ...

    def load_sbom(self, digest: str) -> SBOM: ...

    def images(self) -> list[ImageRow]: ...

    def packages_named(self, names: Sequence[str]) -> list[PackageRow]: ...

    def packages_looking_up(self, pairs: Sequence[tuple[str, str]]) -> list[StoredPackage]: ...

    def all_packages(self) -> list[StoredPackage]: ...

    def distros(self) -> dict[str, Distro | None]: ...

    def findings(self, digest: str) -> list[StoredFinding]: ...

    def fingerprints(self) -> dict[str, str]:
        """Per image, ``findings_fingerprint`` of its stored findings."""

    def replace_findings(self, digest: str, findings: Sequence[StoredFinding]) -> None: ...

    def close(self) -> None: ...


_TABLES = (
    "CREATE TABLE IF NOT EXISTS fleet_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fleet_image (digest TEXT PRIMARY KEY, platform TEXT NOT NULL, base_name TEXT,"
    " base_digest TEXT, distro TEXT, sbom TEXT NOT NULL, scanned_at TEXT NOT NULL,"
    " findings_fp TEXT NOT NULL DEFAULT '')",
    "CREATE TABLE IF NOT EXISTS fleet_ref (digest TEXT NOT NULL, repository TEXT NOT NULL, tag TEXT NOT NULL,"
    " PRIMARY KEY (digest, repository, tag))",
    "CREATE TABLE IF NOT EXISTS fleet_package (digest TEXT NOT NULL, idx INTEGER NOT NULL, type TEXT NOT NULL,"
    " name TEXT NOT NULL, version TEXT NOT NULL, purl TEXT NOT NULL, locations TEXT NOT NULL,"
    " owned INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (digest, idx))",
    "CREATE INDEX IF NOT EXISTS fleet_package_by_name ON fleet_package (name)",
    "CREATE TABLE IF NOT EXISTS fleet_lookup (digest TEXT NOT NULL, idx INTEGER NOT NULL, ecosystem TEXT NOT NULL,"
    " name TEXT NOT NULL, PRIMARY KEY (digest, idx, ecosystem, name))",
    "CREATE INDEX IF NOT EXISTS fleet_lookup_by_name ON fleet_lookup (ecosystem, name)",
    "CREATE TABLE IF NOT EXISTS fleet_finding (digest TEXT NOT NULL, vuln_id TEXT NOT NULL, package TEXT NOT NULL,"
    " aliases TEXT NOT NULL, severity TEXT NOT NULL, fixed TEXT, PRIMARY KEY (digest, vuln_id, package))",
)


_LOOKUP_SQL = ("SELECT DISTINCT p.digest, p.idx, p.owned, p.doc FROM fleet_lookup l JOIN fleet_package p"
               " ON p.digest = l.digest AND p.idx = l.idx")


def findings_fingerprint(keys: Iterable[tuple[str, str]]) -> str:
    """One hash of a set of finding keys (vulnerability, package): equal sets, equal fingerprints."""
    return hashlib.sha256("\n".join(sorted(f"{v}\t{p}" for v, p in set(keys))).encode()).hexdigest()


def _location_text(path: str, layer: str | None) -> str:
    return f"{path} (layer {layer})" if layer else path


class _SQLIndex:
    """The queries, written once with ``%s`` placeholders; backends supply transactions and the placeholder."""

    location: str
    _placeholder = "%s"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    # -- backend hooks ---------------------------------------------------------------------
    def _transaction(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------
    def _q(self, sql: str) -> str:
        return sql if self._placeholder == "%s" else sql.replace("%s", self._placeholder)

    def _create(self, cur: Any) -> None:
        for stmt in _TABLES:
            cur.execute(stmt)
        cur.execute(self._q("INSERT INTO fleet_meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING"),
                    ("schema_version", SCHEMA_VERSION))
        cur.execute(self._q("SELECT value FROM fleet_meta WHERE key = %s"), ("schema_version",))
        row = cur.fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            raise IndexError_(f"{self.location}: index schema {row[0] if row else '?'}, expected {SCHEMA_VERSION}")

    # -- FleetIndex ------------------------------------------------------------------------
    def has_image(self, digest: str) -> bool:
        return bool(self._read("SELECT 1 FROM fleet_image WHERE digest = %s", (digest,)))

    def put_image(self, record: ImageRecord, lookups: Sequence[tuple[int, str, str]],
                  findings: Sequence[StoredFinding]) -> None:
        sbom_text = native.encode(record.sbom).decode("utf-8")
        packages = [
            (record.digest, i, p.type, p.name, p.version, p.purl,
             json.dumps([_location_text(loc.path, loc.layer) for loc in p.locations]), int(i in record.owned),
             package_doc(p))
            for i, p in enumerate(record.sbom.packages)
        ]
        with self._transaction() as cur:
            # The upsert takes the image row's lock first: a second scanner of the same digest waits here
            # until the first one commits, then replaces its rows with its own (equal) ones.
            cur.execute(self._q(
                "INSERT INTO fleet_image (digest, platform, base_name, base_digest, distro, sbom, scanned_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (digest) DO UPDATE SET platform = excluded.platform,"
                " base_name = excluded.base_name, base_digest = excluded.base_digest, distro = excluded.distro,"
                " sbom = excluded.sbom, scanned_at = excluded.scanned_at"),
                (record.digest, record.platform, record.base_name, record.base_digest,
                 distro_doc(record.sbom.distro), sbom_text, record.scanned_at))
            for table in ("fleet_package", "fleet_lookup"):
                cur.execute(self._q(f"DELETE FROM {table} WHERE digest = %s"), (record.digest,))  # noqa: S608
            if packages:
                cur.executemany(self._q(
                    "INSERT INTO fleet_package (digest, idx, type, name, version, purl, locations, owned, doc)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"), packages)
            keys = sorted(set(lookups))
            if keys:
                cur.executemany(self._q("INSERT INTO fleet_lookup (digest, idx, ecosystem, name)"
                                        " VALUES (%s, %s, %s, %s)"), [(record.digest, *k) for k in keys])
            self._write_findings(cur, record.digest, findings)

    def _write_findings(self, cur: Any, digest: str, findings: Sequence[StoredFinding]) -> None:
        cur.execute(self._q("DELETE FROM fleet_finding WHERE digest = %s"), (digest,))
        unique = {f.key: f for f in findings}
        cur.execute(self._q("UPDATE fleet_image SET findings_fp = %s WHERE digest = %s"),
                    (findings_fingerprint(unique), digest))
        if unique:
            cur.executemany(self._q(
                "INSERT INTO fleet_finding (digest, vuln_id, package, aliases, severity, fixed)"
                " VALUES (%s, %s, %s, %s, %s, %s)"),
                [(digest, f.vuln_id, f.package, "\n".join(f.aliases), f.severity, f.fixed)
                 for f in unique.values()])

    def add_ref(self, digest: str, repository: str, tag: str) -> None:
        with self._transaction() as cur:
            cur.execute(self._q("INSERT INTO fleet_ref (digest, repository, tag) VALUES (%s, %s, %s)"
                                " ON CONFLICT (digest, repository, tag) DO NOTHING"), (digest, repository, tag))

    def load_sbom(self, digest: str) -> SBOM:
        rows = self._read("SELECT sbom FROM fleet_image WHERE digest = %s", (digest,))
        if not rows:
            raise IndexError_(f"{self.location}: no image {digest} in the index")
        from giropops import jsonio

        obj = jsonio.loads(rows[0][0], f"stored SBOM of {digest}", error=IndexError_)
        if not isinstance(obj, dict):
            raise IndexError_(f"{self.location}: the stored SBOM of {digest} is not a JSON object")
        try:
            return native.decode(obj)
        except GiropopsError as exc:
            raise IndexError_(f"{self.location}: the stored SBOM of {digest} is unreadable: {exc}") from exc

    def images(self) -> list[ImageRow]:
        refs: dict[str, list[Ref]] = {}
        for digest, repo, tag in self._read("SELECT digest, repository, tag FROM fleet_ref"
                                            " ORDER BY repository, tag"):
            refs.setdefault(digest, []).append(Ref(repo, tag))
        return [
            ImageRow(d, platform, base, scanned, tuple(refs.get(d, ())))
            for d, platform, base, scanned in self._read(
                "SELECT digest, platform, base_name, scanned_at FROM fleet_image ORDER BY digest")
        ]

    def packages_named(self, names: Sequence[str]) -> list[PackageRow]:
        if not names:
            return []
        marks = ", ".join(["%s"] * len(names))
        rows = self._read(f"SELECT digest, type, name, version, purl, locations FROM fleet_package"  # noqa: S608
                          f" WHERE name IN ({marks}) ORDER BY digest, idx", tuple(names))
        return [PackageRow(d, t, n, v, p, tuple(json.loads(locs))) for d, t, n, v, p, locs in rows]

    def packages_looking_up(self, pairs: Sequence[tuple[str, str]]) -> list[StoredPackage]:
        found: dict[tuple[str, int], StoredPackage] = {}
        wanted = sorted(set(pairs))
        for start in range(0, len(wanted), 200):
            chunk = wanted[start:start + 200]
            cond = " OR ".join(["(l.ecosystem = %s AND l.name = %s)"] * len(chunk))
            params = tuple(x for pair in chunk for x in pair)
            sql = f"{_LOOKUP_SQL} WHERE {cond}"
            for digest, idx, owned, doc in self._read(sql, params):
                found[(digest, idx)] = StoredPackage(digest, idx, package_from(doc), bool(owned))
        return [found[k] for k in sorted(found)]

    def all_packages(self) -> list[StoredPackage]:
        decoded: dict[str, Package] = {}  # images on one base repeat the same packages: decode each once
        out = []
        for d, i, owned, doc in self._read("SELECT digest, idx, owned, doc FROM fleet_package ORDER BY digest, idx"):
            p = decoded.get(doc)
            if p is None:
                p = decoded[doc] = package_from(doc)
            out.append(StoredPackage(d, i, p, bool(owned)))
        return out

    def distros(self) -> dict[str, Distro | None]:
        return {d: distro_from(doc) for d, doc in self._read("SELECT digest, distro FROM fleet_image")}

    def fingerprints(self) -> dict[str, str]:
        return dict(self._read("SELECT digest, findings_fp FROM fleet_image"))

    def findings(self, digest: str) -> list[StoredFinding]:
        return sorted(
            StoredFinding(v, p, tuple(a.split("\n")) if a else (), s, f)
            for v, p, a, s, f in self._read(
                "SELECT vuln_id, package, aliases, severity, fixed FROM fleet_finding WHERE digest = %s", (digest,))
        )

    def replace_findings(self, digest: str, findings: Sequence[StoredFinding]) -> None:
        with self._transaction() as cur:
            self._write_findings(cur, digest, findings)


class SQLiteIndex(_SQLIndex):
    """The default: one file in the user's cache; writers serialise on SQLite's own lock (WAL mode)."""

    _placeholder = "?"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.location = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode = WAL")
            # WAL with NORMAL sync stays consistent on a crash (the last commits may be lost, and a scan
            # that is run again redoes them); FULL would fsync every image.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            with self._transaction() as cur:
                self._create(cur)
        except (OSError, sqlite3.Error) as exc:
            raise IndexError_(f"cannot open the index {path}: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            except sqlite3.Error as exc:
                raise IndexError_(f"{self.location}: {exc}") from exc
            finally:
                cur.close()

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(self._q(sql), tuple(params)).fetchall()
            except sqlite3.Error as exc:
                raise IndexError_(f"{self.location}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _one_line(exc: BaseException) -> str:
    """A driver's message (libpq's span lines, with hints) as one bounded line."""
    return " ".join(str(exc).split())[:300]


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{netloc}", parts.path, parts.query, parts.fragment))


class PostgresIndex(_SQLIndex):
    """A team's index: many scanners on many machines; every write is one transaction."""

    #: A fixed key for ``pg_advisory_xact_lock``: schema creation by several scanners at once.
    _SCHEMA_LOCK = 0x6769726F706F7073

    def __init__(self, url: str) -> None:
        super().__init__()
        self.location = _redacted(url)
        try:
            import psycopg
        except ImportError as exc:
            raise ConfigError("a PostgreSQL index needs psycopg: pip install 'giropops[postgresql]'") from exc
        self._errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=30)
        except psycopg.Error as exc:
            raise IndexError_(f"cannot connect to the index {self.location}: {_one_line(exc)}") from exc
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (self._SCHEMA_LOCK,))
            self._create(cur)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            try:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    yield cur
            except self._errors as exc:
                raise IndexError_(f"{self.location}: {_one_line(exc)}") from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                with self._conn.cursor() as cur:
                    cur.execute(sql, tuple(params))
                    return list(cur.fetchall())
            except self._errors as exc:
                raise IndexError_(f"{self.location}: {_one_line(exc)}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def default_path() -> Path:
    return default_cache_dir() / "fleet-index.sqlite3"


def open_index(location: str | None) -> FleetIndex:
    """``postgresql://...`` (or ``postgres://``), a SQLite file path, or None for the default SQLite file."""
    if location is None:
        return SQLiteIndex(default_path())
    if location.startswith(("postgresql://", "postgres://")):
        return PostgresIndex(location)
    if "://" in location:
        raise ConfigError(f"unsupported index {location.split('://', 1)[0]}://...: expected postgresql://"
                          " or a SQLite file path")
    return SQLiteIndex(Path(location))
