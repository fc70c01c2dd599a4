"""Separate scans of candidate images, done by the tests themselves.

They call ``giropops.sbom`` and ``giropops.vuln`` directly (not through ``giropops.reco``),
and check what those find against ``world.oracle_vulns`` — an implementation of OSV
matching over the same advisories with python-debian and packaging — so the numbers the
recommendations are compared with rest on something independent of the code under test.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from giropops.oci.image import Image
from tests.reco.world import DAY, T0, BaseSpec, Deb, oracle_vulns

SEVERITIES = ("critical", "high", "medium", "low", "negligible", "unspecified")


@dataclass(frozen=True)
class Scan:
    digest: str
    counts: dict[str, int]
    keys: frozenset[tuple[str, str]]  # (vulnerability id, package name)
    fixable: dict[str, int]  # per severity, with a fixed version
    packages: int
    size: int
    created: str

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def created_text(spec: BaseSpec) -> str:
    when = _dt.datetime.fromtimestamp(T0 + spec.created_days * DAY, _dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def separate_scan(image: Image, spec: BaseSpec, db: Path, advisory_files: list[Path],
                  extra_debs: tuple[Deb, ...] = ()) -> Scan:
    from giropops.sbom.generate import generate, subject_for
    from giropops.vuln.db.store import VulnDB
    from giropops.vuln.match import scan

    sbom = generate(image, subject_for(image, "separate scan"), use_cache=False)
    with VulnDB(db) as vdb:
        findings = scan(sbom, vdb).findings
    assert len(sbom.packages) == len(spec.debs) + len(spec.pips) + len(extra_debs)
    keys = frozenset((f.vuln_id, f.package.name) for f in findings)
    assert len(keys) == len(findings)
    expected = oracle_vulns(spec, advisory_files, extra_debs)
    assert keys == expected, f"giropops.vuln disagrees with the oracle: {sorted(keys ^ expected)}"
    counts = Counter(f.severity.level for f in findings)
    fixable = Counter(f.severity.level for f in findings if f.fixed_version is not None)
    # the size a pull downloads: config and layer blobs as listed in the manifest, summed here
    size = image.manifest.config.size + sum(d.size for d in image.manifest.layers)
    return Scan(
        str(image.digest), {s: counts.get(s, 0) for s in SEVERITIES}, keys,
        {s: fixable.get(s, 0) for s in SEVERITIES}, len(sbom.packages), size, created_text(spec),
    )
