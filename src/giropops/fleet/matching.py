"""Matching many images at once: each distinct package matched once per database.

Images on a shared base hold the same packages; ``giropops.vuln.match.scan`` would compare
each of them again for every image.  ``FleetMatcher`` runs ``scan`` itself, once per
distribution, on the distinct packages not matched before, and hands every image the
findings of its own packages (rebound to them).  Packages an OS package owns (see
``match.os_owned``) are decided per image, before this, exactly as ``scan`` decides them,
so the findings of an image are the ones ``scan`` gives for its whole SBOM.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import replace

from giropops.sbom.model import SBOM, Distro, Package, Subject
from giropops.vuln.match import os_owned, scan
from giropops.vuln.matchers import AdvisoryProvider
from giropops.vuln.model import Finding

PackageKey = tuple[Hashable, ...]


def package_key(p: Package) -> PackageKey:
    """What matching can depend on: everything but the owned files and the locations."""
    return (p.type, p.name, p.version, p.purl, p.source_name, p.source_version, p.arch,
            tuple(sorted(p.metadata.items())))


def _sort_key(f: Finding) -> tuple[int, str, str, str, str]:
    return (f.severity.rank, f.package.type, f.package.name, f.package.version, f.vuln_id)


class FleetMatcher:
    """Findings of packages, memoised per (distribution, package) for one advisory provider. Thread-safe."""

    def __init__(self, provider: AdvisoryProvider) -> None:
        self.provider = provider
        self._memo: dict[tuple[Distro | None, PackageKey], tuple[Finding, ...]] = {}
        self._lock = threading.Lock()

    def _fill(self, distro: Distro | None, packages: Iterable[Package]) -> None:
        todo: dict[PackageKey, Package] = {}
        for p in packages:
            k = package_key(p)
            if (distro, k) not in self._memo and k not in todo:
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
        with self._lock:
            self._fill(distro, packages)
            out = [replace(f, package=p) for p in packages for f in self._memo[(distro, package_key(p))]]
        return sorted(out, key=_sort_key)

    def sbom_findings(self, sbom: SBOM) -> list[Finding]:
        """What ``scan(sbom)`` finds, through the memo."""
        owned = os_owned(sbom)
        return self.findings(sbom.distro, [p for i, p in enumerate(sbom.packages) if i not in owned])
