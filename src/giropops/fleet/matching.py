"""Matching many images at once: each distinct package matched once per database.

Images on a shared base hold the same packages; ``giropops.vuln.match.scan`` would compare
each of them again for every image.  ``FleetMatcher`` runs ``scan`` itself, once per
distribution, on the distinct packages not matched before, and hands every image the
findings of its own packages (rebound to them).  Packages an OS package owns (see
``match.os_owned``) are decided per image, before this, exactly as ``scan`` decides them,
so the findings of an image are the ones ``scan`` gives for its whole SBOM.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Hashable, Sequence
from dataclasses import replace

from giropops.fleet.index import StoredFinding
from giropops.sbom.model import SBOM, Distro, Package, Subject
from giropops.vuln.match import os_owned, scan
from giropops.vuln.matchers import AdvisoryProvider
from giropops.vuln.model import Finding

PackageKey = tuple[Hashable, ...]


def package_key(p: Package) -> PackageKey:
    """What matching can depend on: everything but the owned files and the locations."""
    return (p.type, p.name, p.version, p.purl, p.source_name, p.source_version, p.arch,
            tuple(sorted(p.metadata.items())))


def stored_of(f: Finding) -> StoredFinding:
    """The index's form of a finding: its keys are the vulnerability and ``type/name@version``."""
    p = f.package
    return StoredFinding(f.vuln_id, f"{p.type}/{p.name}@{p.version}", tuple(f.aliases), f.severity.level,
                         f.fixed_version)


def _sort_key(f: Finding) -> tuple[int, str, str, str, str]:
    return (f.severity.rank, f.package.type, f.package.name, f.package.version, f.vuln_id)


class FleetMatcher:
    """Findings of packages, memoised per (distribution, package) for one advisory provider. Thread-safe."""

    def __init__(self, provider: AdvisoryProvider) -> None:
        self.provider = provider
        self._memo: dict[tuple[Distro | None, PackageKey], tuple[Finding, ...]] = {}
        self._stored: dict[tuple[Distro | None, PackageKey], tuple[StoredFinding, ...]] = {}
        self._key_texts: dict[tuple[Distro | None, PackageKey], tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def _fill(self, distro: Distro | None, packages: Sequence[Package], keys: Sequence[PackageKey]) -> None:
        todo: dict[PackageKey, Package] = {}
        for p, k in zip(packages, keys, strict=True):
            if k not in todo and (distro, k) not in self._memo:
                todo[k] = replace(p, files=())  # no files: nothing in the stub owns anything
        if not todo:
            return
        stub = SBOM(Subject("fleet"), distro, tuple(todo.values()))
        found: dict[PackageKey, list[Finding]] = {k: [] for k in todo}
        for f in scan(stub, self.provider).findings:
            found[package_key(f.package)].append(f)
        for k, fs in found.items():
            self._memo[(distro, k)] = tuple(fs)

    def findings(self, distro: Distro | None, packages: Sequence[Package]) -> list[Finding]:
        """The findings of ``packages`` (already without the OS-owned ones), each bound to its package."""
        keys = [package_key(p) for p in packages]
        with self._lock:
            self._fill(distro, packages, keys)
            out = [replace(f, package=p) for p, k in zip(packages, keys, strict=True)
                   for f in self._memo[(distro, k)]]
        return sorted(out, key=_sort_key)

    def stored_findings(self, distro: Distro | None, packages: Sequence[Package]) -> dict[tuple[str, str],
                                                                                           StoredFinding]:
        """``stored_of`` each of ``findings(distro, packages)`` by key, without a finding object per image."""
        keys = [package_key(p) for p in packages]
        out: dict[tuple[str, str], StoredFinding] = {}
        with self._lock:
            self._fill(distro, packages, keys)
            for k in keys:
                got = self._stored.get((distro, k))
                if got is None:
                    got = self._stored[(distro, k)] = tuple(stored_of(f) for f in self._memo[(distro, k)])
                for sf in got:
                    out[sf.key] = sf
        return out

    def fingerprint(self, distro: Distro | None, packages: Sequence[Package]) -> str:
        """``index.findings_fingerprint`` of what ``stored_findings`` would return, computed cheaply."""
        keys = [package_key(p) for p in packages]
        texts: set[str] = set()
        with self._lock:
            self._fill(distro, packages, keys)
            for k in keys:
                got = self._key_texts.get((distro, k))
                if got is None:
                    got = self._key_texts[(distro, k)] = tuple(
                        f"{sf.vuln_id}\t{sf.package}" for sf in (stored_of(f) for f in self._memo[(distro, k)]))
                texts.update(got)
        return hashlib.sha256("\n".join(sorted(texts)).encode()).hexdigest()

    def sbom_findings(self, sbom: SBOM) -> list[Finding]:
        """What ``scan(sbom)`` finds, through the memo."""
        owned = os_owned(sbom)
        return self.findings(sbom.distro, [p for i, p in enumerate(sbom.packages) if i not in owned])
