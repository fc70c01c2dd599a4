"""A scan gets the data it needs first: missing ecosystems are fetched, stale ones refreshed.

``ensure_ready(db_path, ecosystems, ...)`` runs before every scan (``cves``, ``quickview``,
``compare``, ``recommendations``, ``policy``, the demo), with the ecosystems the scanned SBOMs
need (``giropops.vuln.match.needed_ecosystems``: ``Debian:12``, ``PyPI``...):

* an ecosystem the database has no advisories for, and no feed of, is *missing*: its OSV
  export folder (the ecosystem without its ``:release`` suffix, ``Debian``) is fetched from
  the configured source (``update.base_url``: ``--db-url``, ``$GIROPOPS_OSV_URL`` or the public
  exports).  A failed fetch is a ``FetchFailedError`` (a ``DatabaseNotReadyError``, exit 3)
  naming the offline route: a scan never goes on to say "0 vulnerabilities";
* a fetched ecosystem whose last check is older than the freshness window (a day by default,
  as Trivy's) is *stale*: it is refreshed with conditional requests (ETag, Last-Modified).  A
  failed refresh is not an error: ``EnsureResult.refresh_error`` says why and the scan uses what
  is there.  A database filled only by ``db import`` (no feed) is never refreshed behind the
  user's back;
* nothing is fetched for an ecosystem no SBOM needs, nor at all when ``offline`` (the scan then
  raises the usual ``DatabaseNotReadyError``) or ``skip_update``.

The time of each ecosystem's last check (200 or 304) is kept in ``.<db name>.checked`` beside the
database, so a second scan within the window sends no request at all.  Fetches happen under the
database's lock (``store.lock``) and readiness is checked again once it is held: two first scans
started together fetch once, the second one finds the first one's result.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from giropops.errors import ConfigError, DatabaseNotReadyError, VulnError
from giropops.progress import NO_PROGRESS, Progress
from giropops.vuln.db import store, update
from giropops.vuln.matchers import feed_name

OFFLINE_ENV = "GIROPOPS_OFFLINE"
FRESHNESS_ENV = "GIROPOPS_DB_FRESHNESS"
DEFAULT_FRESHNESS = timedelta(days=1)
_TRUE = ("1", "true", "yes", "on")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
OFFLINE_ROUTE = ("fill the database offline with 'giropops db import FILES', or point --db-url "
                 f"(${update.BASE_URL_ENV}) at a mirror of the OSV exports")


class FetchFailedError(DatabaseNotReadyError):
    """The database lacks what the scan needs and fetching it failed: the scan cannot run (exit 3)."""


def parse_duration(text: str, what: str = "freshness") -> timedelta:
    """``90``, ``90s``, ``30m``, ``12h``, ``1d`` -> a timedelta; anything else is a ConfigError."""
    m = _DURATION.match(text)
    if m is None:
        raise ConfigError(f"{what} must be a duration like 30m, 12h, 1d or a number of seconds, not {text!r}")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


def offline_from_env() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUE


def freshness_from_env() -> timedelta:
    text = os.environ.get(FRESHNESS_ENV)
    return DEFAULT_FRESHNESS if text is None or not text.strip() else parse_duration(text, f"${FRESHNESS_ENV}")


@dataclass(frozen=True)
class EnsureOptions:
    offline: bool = False
    skip_update: bool = False
    freshness: timedelta = DEFAULT_FRESHNESS
    source: str | None = None  # base URL of the OSV exports; None: update.base_url's default
    lock_timeout: float = store.DEFAULT_LOCK_TIMEOUT
    timeout: float = 60.0


@dataclass
class EnsureResult:
    fetched: list[str] = field(default_factory=list)      # missing ecosystems, now downloaded
    refreshed: list[str] = field(default_factory=list)    # stale ecosystems the source had changed
    not_modified: list[str] = field(default_factory=list)  # stale ecosystems answered 304
    sizes: dict[str, int] = field(default_factory=dict)   # ecosystem -> bytes downloaded
    advisories: int = 0                                    # records imported by the fetch / refresh
    source: str | None = None
    refresh_error: str | None = None                       # a failed refresh: the scan goes on

    @property
    def downloaded_bytes(self) -> int:
        return sum(self.sizes.values())


# --------------------------------------------------------------------------- last checks


def checks_path(db_path: Path) -> Path:
    return db_path.parent / f".{db_path.name}.checked"


def read_checks(db_path: Path) -> dict[str, datetime]:
    """Ecosystem -> when its feed was last checked (a 200 or a 304); unreadable means never."""
    try:
        data = json.loads(checks_path(db_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out: dict[str, datetime] = {}
    if isinstance(data, dict):
        for eco, when in data.items():
            if isinstance(eco, str) and isinstance(when, str):
                parsed = _parse(when)
                if parsed is not None:
                    out[eco] = parsed
    return out


def record_checks(db_path: Path, ecosystems: Iterable[str], when: datetime | None = None) -> None:
    """Note that ``ecosystems`` were checked at ``when`` (now); written atomically, best effort."""
    names = list(ecosystems)
    if not names:
        return
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    checks = {eco: t.strftime("%Y-%m-%dT%H:%M:%SZ") for eco, t in read_checks(db_path).items()}
    checks.update({eco: stamp for eco in names})
    target = checks_path(db_path)
    import tempfile  # a write, after a fetch: not imported by every scan

    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(checks, fh, indent=1, sort_keys=True)
        os.replace(tmp, target)
    except OSError:
        return  # only an optimisation: the next scan checks again


def _parse(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- what is needed


@dataclass(frozen=True)
class Plan:
    missing: tuple[str, ...]  # feed names to fetch: the scan cannot run without them
    stale: tuple[str, ...]    # feed names to refresh conditionally


def plan(db_path: Path, ecosystems: Iterable[str], freshness: timedelta, now: datetime | None = None) -> Plan:
    """What ``ensure_ready`` would fetch for ``ecosystems`` (``Debian:12``...), without fetching anything."""
    wanted = sorted(set(ecosystems))
    feeds_needed = sorted({feed_name(e) for e in wanted})
    if not db_path.is_file():
        return Plan(tuple(feeds_needed), ())
    try:
        db = store.VulnDB(db_path)
    except store.OldSchemaError:
        return Plan(tuple(feeds_needed), ())  # an older giropops built it: update rebuilds it from scratch
    with db:
        feeds = db.feed_states()
        uncovered = set()
        for eco in wanted:
            try:
                db.covers([eco])
            except DatabaseNotReadyError:
                uncovered.add(eco)
        if not wanted:
            try:
                db.covers([])
            except DatabaseNotReadyError:
                pass  # an empty database with nothing to scan: nothing to fetch either
    # an ecosystem we have a feed of is not fetched again because one release is not in it (Debian:14
    # before the feed has any record for it): the scan says so, and the freshness window refreshes it
    missing = sorted({feed_name(e) for e in uncovered} - set(feeds))
    checks = read_checks(db_path)
    at = now or datetime.now(UTC)
    stale = []
    for name in feeds_needed:
        if name in missing or name not in feeds:
            continue
        last = checks.get(name) or _parse(feeds[name].fetched_at)
        if last is None or at - last >= freshness:
            stale.append(name)
    return Plan(tuple(missing), tuple(stale))


# --------------------------------------------------------------------------- fetching


class _Counting:
    """Forwards progress, counting the bytes each download brought (``update`` reports downloads as
    ``download:<url>`` tasks)."""

    def __init__(self, inner: Progress) -> None:
        self.inner = inner
        self.bytes: dict[str, int] = {}

    def start(self, key: str, label: str, total: int | None = None, unit: str = "B") -> None:
        self.inner.start(key, label, total, unit)

    def advance(self, key: str, amount: int) -> None:
        if key.startswith("download:"):
            self.bytes[key] = self.bytes.get(key, 0) + amount
        self.inner.advance(key, amount)

    def finish(self, key: str, message: str | None = None) -> None:
        self.inner.finish(key, message)

    def note(self, message: str) -> None:
        self.inner.note(message)

    def size_of(self, base: str, eco: str) -> int:
        return sum(n for key, n in self.bytes.items() if key.endswith(f"/{eco}/all.zip") and base in key)


def ensure_ready(db_path: Path, ecosystems: Iterable[str], options: EnsureOptions = EnsureOptions(), *,
                 progress: Progress = NO_PROGRESS, on_wait: Callable[[str], None] | None = None) -> EnsureResult:
    """Fetch what a scan of ``ecosystems`` lacks and refresh what is stale (see the module's docstring).

    Raises ``FetchFailedError`` when a missing ecosystem cannot be fetched; returns what was done."""
    wanted = sorted(set(ecosystems))
    result = EnsureResult()
    if options.offline or options.skip_update:
        return result
    first = plan(db_path, wanted, options.freshness)
    if not first.missing and not first.stale:
        return result
    base = update.base_url(options.source)
    result.source = base
    with store.lock(db_path, options.lock_timeout, on_wait):
        todo = plan(db_path, wanted, options.freshness)  # again: another process may have done it meanwhile
        if todo.missing:
            counting = _Counting(progress)
            try:
                got = update.update(db_path, list(todo.missing), base, progress=counting, timeout=options.timeout)
            except VulnError as exc:
                why = str(exc)
                if isinstance(exc, update.UnreachableError):  # its own hint names db update's flags
                    cause = exc.__cause__
                    why = f"cannot reach {base} ({getattr(cause, 'reason', cause)})"
                raise FetchFailedError(
                    f"the vulnerability database {db_path} has no advisories for {', '.join(todo.missing)} and "
                    f"fetching them failed: {why}; {OFFLINE_ROUTE}") from exc
            result.fetched = list(got.fetched) + list(got.not_modified) + list(got.unchanged)
            result.advisories += got.report.imported
            result.sizes.update({eco: counting.size_of(base, eco) for eco in got.fetched})
            record_checks(db_path, result.fetched)
        if todo.stale:
            counting = _Counting(progress)
            try:
                got = update.update(db_path, list(todo.stale), base, progress=counting, timeout=options.timeout)
            except VulnError as exc:
                result.refresh_error = f"could not refresh {', '.join(todo.stale)} from {base}: {exc}"
            else:
                result.refreshed = list(got.fetched)
                result.not_modified = list(got.not_modified) + list(got.unchanged)
                result.advisories += got.report.imported
                result.sizes.update({eco: counting.size_of(base, eco) for eco in got.fetched})
                record_checks(db_path, todo.stale)
    return result


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def fetch_note(result: EnsureResult) -> str | None:
    """The one line a scan says when it downloaded something (the CLI and the demo print it); None when
    it did not."""
    got = [*result.fetched, *result.refreshed]
    if not got:
        return None
    what = ", ".join(f"{eco} ({_size(result.sizes.get(eco, 0))})" for eco in got)
    verb = "fetched" if result.fetched else "refreshed"
    source = "the OSV exports" if result.source == update.DEFAULT_BASE_URL else result.source
    return (f"{verb} vulnerability data for {what} from {source}: {result.advisories} advisories "
            f"imported, {_size(result.downloaded_bytes)} in all")
