"""Scan many images into an index: each manifest digest once, each layer once.

Workers (threads) take references from a queue, resolve each to its manifest (an index
resolves to one platform's image, as ``giropops cves`` does), keep it only when the shard
owns its digest, and then:

* an image already in the index is not read again (a restarted scan resumes where it
  stopped): its stored SBOM is matched against the current database;
* any other image is catalogued from its manifest, config and the layers the per-layer SBOM
  cache has not seen (keyed by verified diff_id): images on a shared base read only their own
  layers.  Two workers that need the same unseen layer do not both read it: the second waits
  for the first and then finds it in the cache.

Every image is written in one transaction (see ``index``); its reference (repository, tag)
is added after it, so an interrupted scan leaves whole images and nothing half-written.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from giropops.errors import GiropopsError, SBOMError
from giropops.fleet.index import FleetIndex, ImageRecord, StoredFinding
from giropops.fleet.matching import FleetMatcher, stored_of
from giropops.fleet.sources import Shard, Wanted
from giropops.oci import baseimage
from giropops.oci import mediatypes as mt
from giropops.oci.image import Image
from giropops.oci.memory import select_image
from giropops.oci.model import Platform
from giropops.oci.registry.client import RegistryClient, RegistryOptions
from giropops.oci.registry.remote import RemoteImage, RemoteIndex
from giropops.progress import NO_PROGRESS, Progress
from giropops.sbom.cache import LayerCache
from giropops.sbom.catalogers import default_catalogers, interest_for
from giropops.sbom.generate import generate, subject_for
from giropops.sbom.model import SBOM
from giropops.vuln.match import os_owned
from giropops.vuln.matchers import DEFAULT_MATCHERS, AdvisoryProvider
from giropops.vuln.model import Finding, FindingBrief
from giropops.vuln.report.filters import Filters, VexStatement, apply, apply_vex

if TYPE_CHECKING:
    from giropops.sign.attached import Trust

#: The in-toto predicate types of cosign's ``spdxjson`` and ``cyclonedx`` attestations.
SBOM_PREDICATES = ("https://spdx.dev/Document", "https://cyclonedx.org/bom")

#: Upper bound of ``--workers``: each worker may read a few layers at once, and the registry is shared.
MAX_WORKERS = 32


@dataclass
class ImageOutcome:
    """What happened to one image (one manifest digest), or to one reference that failed."""

    digest: str | None
    refs: list[str] = field(default_factory=list)
    platform: str = ""
    status: str = "scanned"  # scanned | indexed (already in the index) | error
    error: str = ""
    packages: int = 0
    layers_read: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # per severity, after the threshold filters
    kept: int = 0  # findings left after the threshold filters
    total_findings: int = 0
    base: str | None = None
    briefs: tuple[FindingBrief, ...] = ()  # the findings left, only when ScanOptions.keep_findings

    @property
    def failed(self) -> bool:
        return self.kept > 0

    def severity_counts(self) -> dict[str, int]:
        return {s: self.counts.get(s, 0) for s in ("critical", "high", "medium", "low", "unspecified")}


@dataclass(frozen=True)
class ScanOptions:
    workers: int = 4
    platform: Platform | None = None
    shard: Shard | None = None
    rescan: bool = False
    filters: Filters = field(default_factory=Filters)
    vex: tuple[VexStatement, ...] = ()
    keep_findings: bool = False  # keep each image's findings for the caller (memory grows with the images)
    sbom_trust: Trust | None = None  # take each image's SBOM from its attestation verified with this
    registry: RegistryOptions = field(default_factory=RegistryOptions)
    cache: LayerCache | None = None


def lookups_for(sbom: SBOM) -> list[tuple[int, str, str]]:
    """(package index, ecosystem, name) for every search the matchers make for this SBOM's packages."""
    keys: set[tuple[int, str, str]] = set()
    for i, p in enumerate(sbom.packages):
        for m in DEFAULT_MATCHERS:
            if p.type in m.package_types:
                keys.update((i, q.ecosystem, q.name) for q in m.queries(p, sbom.distro))
    return sorted(keys)


def stored(findings: Sequence[Finding]) -> list[StoredFinding]:
    return sorted({(sf := stored_of(f)).key: sf for f in findings}.values())


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Clients:
    """One registry client per host, shared by every worker (its connection pool is bounded)."""

    def __init__(self, options: RegistryOptions) -> None:
        self._options = options
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    def __call__(self, host: str) -> RegistryClient:
        with self._lock:
            client = self._clients.get(host)
            if client is None:
                client = self._clients[host] = RegistryClient(host, self._options)
            return client

    def close(self) -> None:
        with self._lock:
            for c in self._clients.values():
                c.close()
            self._clients.clear()


class _LayerGate:
    """One reader per unseen diff_id: a worker needing a layer another one is reading waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def locks(self, diff_ids: Sequence[str]) -> list[threading.Lock]:
        with self._guard:
            return [self._locks.setdefault(d, threading.Lock()) for d in sorted(set(diff_ids))]


class FleetScanner:
    def __init__(self, index: FleetIndex, db: AdvisoryProvider, options: ScanOptions,
                 progress: Progress = NO_PROGRESS) -> None:
        self.index = index
        self.db = db
        self.options = options
        self.progress = progress
        self.clients = Clients(options.registry)
        self.cache = options.cache if options.cache is not None else LayerCache()
        self._fingerprint = interest_for(default_catalogers()).fingerprint
        self._gate = _LayerGate()
        self.matcher = FleetMatcher(db)
        self._lock = threading.Lock()
        self._by_digest: dict[str, ImageOutcome] = {}
        self._errors: list[ImageOutcome] = []
        self._done = 0
        self._total = 0

    # -- one image ---------------------------------------------------------------------------------

    def _match(self, sbom: SBOM) -> list[Finding]:
        return self.matcher.sbom_findings(sbom)

    def _attested_sbom(self, image: Image, name: str) -> SBOM:
        """The SBOM of the image's verified ``spdxjson``/``cyclonedx`` attestation; no layer is read."""
        from giropops.oci.reference import Reference
        from giropops.sbom.formats import decode
        from giropops.sign.image import verify_attestations
        from giropops.sign.storage import RegistryStore

        if not isinstance(image, RemoteImage) or self.options.sbom_trust is None:
            raise SBOMError(f"{name}: SBOM attestations are read from registry images only")
        store = RegistryStore(image.client, Reference(image.client.host, image.repo, None, image.digest))
        _subject, verified = verify_attestations(store, self.options.sbom_trust, None)
        for att in verified:
            if att.statement.predicate_type in SBOM_PREDICATES:
                raw = json.dumps(att.statement.predicate).encode()
                found = decode(raw, f"{name}: SBOM attestation")
                return replace(found, subject=subject_for(image, name))
        kinds = ", ".join(sorted({a.statement.predicate_type for a in verified}))
        raise SBOMError(f"{name}: no verified SPDX or CycloneDX attestation (verified: {kinds})")

    def _cached(self, diff_id: str) -> bool:
        """Whether the layer cache has a record for ``diff_id`` (not decoded: ``generate`` does that)."""
        path = self.cache._path(diff_id, self._fingerprint)
        return path is not None and os.path.isfile(path)

    def _catalog(self, image: Image, name: str) -> tuple[SBOM, int]:
        diff_ids = [str(d) for d in image.config.diff_ids]
        missing = [d for d in diff_ids if not self._cached(d)]
        locks = self._gate.locks(missing)
        for lk in locks:
            lk.acquire()
        try:
            read = sum(1 for d in set(missing) if not self._cached(d))
            sbom = generate(image, subject_for(image, name), cache=self.cache)
        finally:
            for lk in reversed(locks):
                lk.release()
        return sbom, read

    def _scan_image(self, image: Image, name: str) -> ImageOutcome:
        digest = str(image.digest)
        out = ImageOutcome(digest)
        if not self.options.rescan and self.index.has_image(digest):
            sbom = self.index.load_sbom(digest)
            out.status = "indexed"
            findings = self._match(sbom)
        else:
            if self.options.sbom_trust is not None:
                sbom = self._attested_sbom(image, name)
            else:
                sbom, out.layers_read = self._catalog(image, name)
            base, _notes = baseimage.from_keys(dict(image.manifest.annotations), "annotations", "manifest")
            if base is None:
                base, _notes = baseimage.from_keys(dict(image.config.labels), "labels", "config")
            findings = self._match(sbom)
            record = ImageRecord(
                digest=digest, platform=str(image.config.platform),
                base_name=base.name if base is not None else None,
                base_digest=str(base.digest) if base is not None and base.digest is not None else None,
                sbom=sbom, scanned_at=now_utc(), owned=frozenset(os_owned(sbom)),
            )
            self.index.put_image(record, lookups_for(sbom), stored(findings))
            out.base = record.base_name
        out.platform = sbom.subject.platform or ""
        out.packages = len(sbom.packages)
        out.total_findings = len(findings)
        if self.options.vex:  # not free even with no statements: every finding's purl is parsed
            findings = list(apply_vex(findings, self.options.vex, [name])[0])
        kept = apply(findings, self.options.filters)
        out.kept = len(kept)
        for f in kept:
            out.counts[f.severity.level] = out.counts.get(f.severity.level, 0) + 1
        if self.options.keep_findings:
            out.briefs = tuple(f.brief() for f in kept)
        return out

    # -- one reference -----------------------------------------------------------------------------

    def _resolve(self, w: Wanted) -> Image:
        client = self.clients(w.host)
        raw, mtype, digest = client.get_manifest(w.repository, w.reference)
        if mtype in mt.INDEX_TYPES:
            return select_image(RemoteIndex(client, w.repository, raw, mtype, digest), self.options.platform)
        return RemoteImage(client, w.repository, raw, mtype, digest)

    @staticmethod
    def _label(w: Wanted) -> tuple[str, str, str]:
        name = f"{w.host}/{w.repository}"
        tag = "" if ":" in w.reference else w.reference
        return name, tag, (f"{name}:{tag}" if tag else f"{name}@{w.reference}")

    def _failed(self, label: str, exc: GiropopsError) -> None:
        failed = ImageOutcome(None, [label], status="error", error=str(exc))
        with self._lock:
            self._errors.append(failed)
        self._report(label, failed)

    def _resolve_one(self, w: Wanted) -> Image | None:
        """Phase one: the image a reference names (None: another shard's, or an error, reported)."""
        try:
            image = self._resolve(w)
        except GiropopsError as exc:
            self._failed(self._label(w)[2], exc)
            return None
        if self.options.shard is not None and not self.options.shard.owns(str(image.digest)):
            return None
        return image

    def _scan_digest(self, image: Image, refs: list[Wanted]) -> None:
        """Phase two: one image scanned once, named in its SBOM by the first of its references in the
        order they were asked for (so the stored document does not depend on which thread came first),
        then every reference to it recorded and reported."""
        digest = str(image.digest)
        try:
            outcome = self._scan_image(image, self._label(refs[0])[2])
        except GiropopsError as exc:
            outcome = ImageOutcome(digest, status="error", error=str(exc))
        with self._lock:
            self._by_digest[digest] = outcome
        for w in refs:
            name, tag, label = self._label(w)
            try:
                if outcome.status != "error":
                    self.index.add_ref(digest, name, tag)
            except GiropopsError as exc:
                self._failed(label, exc)
                continue
            with self._lock:
                outcome.refs.append(label)
            self._report(label, outcome)

    def _report(self, label: str, o: ImageOutcome) -> None:
        with self._lock:
            self._done += 1
            n = self._done
        if o.status == "error":
            self.progress.note(f"[{n}/{self._total}] {label}: error: {o.error}")
        else:
            self.progress.note(f"[{n}/{self._total}] {label}: {o.packages} packages, {o.total_findings}"
                               f" vulnerabilities ({o.status})")

    # -- all of them -------------------------------------------------------------------------------

    def _scan_job(self, image: Image, refs: list[Wanted]) -> Callable[[], None]:
        return lambda: self._scan_digest(image, refs)

    def _pool(self, jobs: Sequence[Callable[[], None]]) -> None:
        """Run ``jobs`` on at most ``options.workers`` threads; the first crash stops the rest and is raised."""
        work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        for job in jobs:
            work.put(job)
        stop = threading.Event()
        crashed: list[BaseException] = []

        def worker() -> None:
            while not stop.is_set():
                try:
                    job = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    job()
                except BaseException as exc:  # noqa: BLE001 - handed to the calling thread below
                    crashed.append(exc)
                    stop.set()
                    return

        count = max(1, min(self.options.workers, MAX_WORKERS, len(jobs) or 1))
        threads = [threading.Thread(target=worker, name=f"giropops-scan-{i}", daemon=True) for i in range(count)]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except BaseException:
            stop.set()
            raise
        if crashed:
            raise crashed[0]

    def run(self, wanted: Sequence[Wanted]) -> list[ImageOutcome]:
        """Resolve every reference first (manifests only), then scan each image once: which reference
        names an image in the index is then the first one asked for, not the first thread to finish."""
        self._total = len(wanted)
        images: list[Image | None] = [None] * len(wanted)

        def resolve(i: int) -> Callable[[], None]:
            def job() -> None:
                images[i] = self._resolve_one(wanted[i])
            return job

        groups: dict[str, tuple[Image, list[Wanted]]] = {}
        try:
            self._pool([resolve(i) for i in range(len(wanted))])
            for w, image in zip(wanted, images, strict=True):
                if image is not None:
                    groups.setdefault(str(image.digest), (image, []))[1].append(w)
            self._pool([self._scan_job(image, refs) for image, refs in groups.values()])
        finally:
            self.clients.close()
        outcomes = list(self._by_digest.values()) + self._errors
        for o in outcomes:
            o.refs.sort()
        return sorted(outcomes, key=lambda o: (o.refs[0] if o.refs else "", o.digest or ""))

