"""``db update``: fetch ``<base>/<ecosystem>/all.zip`` from the OSV exports and swap in a new database.

Each ecosystem is fetched with a conditional request (``If-None-Match`` with the
stored ETag, ``If-Modified-Since`` with the stored ``Last-Modified``); a 304
keeps what the database has.  Downloads go to temporary files beside the
database and are checked for completeness (Content-Length) and readability
before anything is changed; the database is then rebuilt as a copy and
renamed over the old one, so an interrupted update leaves the old file as it was.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from giropops.errors import VulnError, quote_for_error
from giropops.progress import NO_PROGRESS, Progress
from giropops.vuln.db import store

if TYPE_CHECKING:
    from giropops.vuln.db.importer import ImportReport

# The HTTP client, zip reader and importer are imported by the functions that use them: every scan imports
# this module (through ``ensure``) for its constants, and most scans download nothing.

DEFAULT_BASE_URL = "https://osv-vulnerabilities.storage.googleapis.com"
BASE_URL_ENV = "GIROPOPS_OSV_URL"
DEFAULT_ECOSYSTEMS: tuple[str, ...] = ("Alpine", "Chainguard", "Debian", "PyPI", "Wolfi")
# Every OSV export folder giropops can order and match; fetched on demand (``--ecosystem Go``).
KNOWN_ECOSYSTEMS: tuple[str, ...] = (
    "AlmaLinux", "Alpine", "Chainguard", "crates.io", "Debian", "Go", "Maven", "npm", "NuGet", "PyPI", "RubyGems",
    "Wolfi",
)
# Export folders that exist but whose records giropops cannot use yet, and why.
UNSUPPORTED_ECOSYSTEMS: dict[str, str] = {
    "Packagist": "PHP packages are inventoried only: there is no Composer version order to match them with yet",
}
CHUNK = 256 * 1024
MAX_DOWNLOAD_BYTES = 4 * 1024 * 1024 * 1024


class UpdateError(VulnError):
    """The feed could not be fetched or read; the database was not changed."""


class UnreachableError(UpdateError):
    """The feed's host did not answer at all (no network, DNS, refused): the offline routes are named."""


@dataclass
class UpdateResult:
    fetched: list[str] = field(default_factory=list)
    not_modified: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # downloaded (no 304) but the same file: not re-imported
    report: ImportReport = field(default_factory=lambda: _new_report())
    swapped: bool = False


def _new_report() -> ImportReport:
    from giropops.vuln.db.importer import ImportReport

    return ImportReport()


def base_url(explicit: str | None = None) -> str:
    url = explicit or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise UpdateError(f"OSV base URL must be http(s), not {quote_for_error(url)}")
    return url.rstrip("/")


def canonical_ecosystem(name: str) -> str:
    """The export folder's spelling of a known ecosystem typed in another case (``maven`` -> ``Maven``);
    any other name is returned as given (the server decides whether it exists)."""
    for known in (*KNOWN_ECOSYSTEMS, *UNSUPPORTED_ECOSYSTEMS):
        if known.lower() == name.lower():
            return known
    return name


def _download(url: str, dest: Path, prior: store.FeedState | None, progress: Progress,
              timeout: float) -> tuple[bool, str | None, str | None]:
    """Fetch ``url`` into ``dest``; (changed, etag, last_modified).  Raises UpdateError on any failure."""
    import http.client
    import urllib.error
    import urllib.request

    headers = {"User-Agent": "giropops"}
    if prior is not None and prior.url == url:
        if prior.etag:
            headers["If-None-Match"] = prior.etag
        if prior.last_modified:
            headers["If-Modified-Since"] = prior.last_modified
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return False, prior.etag if prior else None, prior.last_modified if prior else None
        raise UpdateError(f"GET {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise UnreachableError(
            f"cannot reach {url} ({reason}): offline, import OSV files with 'giropops db import FILES', "
            "or point '--url' at a mirror of the OSV exports") from exc
    with response:
        length_header = response.headers.get("Content-Length")
        total = int(length_header) if length_header and length_header.isdigit() else None
        key = f"download:{url}"
        progress.start(key, f"downloading {urllib.parse.urlsplit(url).path.lstrip('/')}", total)
        done = 0
        try:
            with open(dest, "wb") as out:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    done += len(chunk)
                    if done > MAX_DOWNLOAD_BYTES:
                        raise UpdateError(f"GET {url}: larger than {MAX_DOWNLOAD_BYTES} bytes")
                    out.write(chunk)
                    progress.advance(key, len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            raise UpdateError(f"GET {url}: download interrupted: {exc}") from exc
        if total is not None and done != total:
            raise UpdateError(f"GET {url}: download interrupted after {done} of {total} bytes")
        progress.finish(key, f"{done} bytes")
        return True, response.headers.get("ETag"), response.headers.get("Last-Modified")


def update(db_path: Path, ecosystems: Sequence[str] | None = None, url: str | None = None,
           progress: Progress = NO_PROGRESS, timeout: float = 60.0,
           lock_timeout: float = store.DEFAULT_LOCK_TIMEOUT,
           on_wait: Callable[[str], None] | None = None) -> UpdateResult:
    """Fetch the feeds and swap in the new database, holding the database's lock throughout.

    The lock covers reading the stored feed states too, so two updates (or an update and an
    import) never start from the same old file: the second waits and builds on the first.
    """
    base = base_url(url)
    with store.lock(db_path, lock_timeout, on_wait):
        return _update_locked(db_path, base, ecosystems, progress, timeout)


def _update_locked(db_path: Path, base: str, ecosystems: Sequence[str] | None, progress: Progress,
                   timeout: float) -> UpdateResult:
    import zipfile

    from giropops.vuln.db.importer import import_into

    prior: dict[str, store.FeedState] = {}
    digests: dict[str, str] = {}
    if db_path.exists():
        try:
            with store.VulnDB(db_path) as db:
                prior = db.feed_states()
                digests = db.feed_digests()
        except store.OldSchemaError:
            prior = {}  # built by an older giropops: download everything again, rebuild() starts afresh
    wanted = [canonical_ecosystem(e) for e in (ecosystems or (sorted(prior) or DEFAULT_ECOSYSTEMS))]
    for eco in wanted:
        if eco in UNSUPPORTED_ECOSYSTEMS:
            raise UpdateError(f"ecosystem {eco!r} cannot be used: {UNSUPPORTED_ECOSYSTEMS[eco]}")
    result = UpdateResult()
    import tempfile  # (shutil, random...) an update only: a scan imports this module for its names

    with tempfile.TemporaryDirectory(prefix=".giropops-update-", dir=db_path.parent) as tmp:
        downloads: list[tuple[str, Path, store.FeedState, str]] = []
        new_states: list[store.FeedState] = []  # same content under a new ETag / Last-Modified
        for index, eco in enumerate(wanted):
            if not eco or "/" in eco or eco.startswith("."):
                raise UpdateError(f"invalid ecosystem name {quote_for_error(eco)}")
            eco_url = f"{base}/{urllib.parse.quote(eco)}/all.zip"
            dest = Path(tmp) / f"{index}.zip"
            old = prior.get(eco)
            changed, etag, last_modified = _download(eco_url, dest, old, progress, timeout)
            if not changed:
                result.not_modified.append(eco)
                continue
            try:
                with zipfile.ZipFile(dest) as zf:
                    bad = zf.testzip()
            except (zipfile.BadZipFile, OSError) as exc:
                raise UpdateError(f"{eco_url} is not a readable zip: {exc}") from exc
            if bad is not None:
                raise UpdateError(f"{eco_url}: corrupt member {bad}")
            state = store.FeedState(eco, eco_url, etag, last_modified, store.now_utc())
            digest = _sha256(dest)
            if old is not None and old.url == eco_url and digests.get(eco) == digest:
                # a server that ignores conditional requests, or a new ETag on the same bytes: what the
                # database holds is this file already
                result.unchanged.append(eco)
                if (old.etag, old.last_modified) != (etag, last_modified):
                    new_states.append(state)
                continue
            downloads.append((eco, dest, state, digest))
            result.fetched.append(eco)
        if not downloads and not new_states:
            return result
        with store.rebuild(db_path) as writer:
            for eco, dest, state, digest in downloads:
                writer.drop_ecosystem(eco)
                import_into(writer, [dest], result.report, source_tag=f"feed:{eco}", progress=progress)
                writer.set_feed(state, digest)
            for state in new_states:
                writer.set_feed(state, digests[state.ecosystem])
        result.swapped = True
    return result


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
