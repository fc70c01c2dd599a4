"""What every report renders: the scanned target, the findings left, and the ones set aside.

Set aside, never counted: findings suppressed by VEX, findings the distribution marks
``not_affected`` (listed with that status), and *disputed* findings (``match.merge``),
which are only counted when the user asks for them (``--show-disputed``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from giropops import units
from giropops.sbom.model import SBOM, Package
from giropops.vuln.model import SEVERITIES, Finding
from giropops.vuln.report.filters import Suppressed


@dataclass(frozen=True)
class ReportView:
    sbom: SBOM
    findings: tuple[Finding, ...]
    suppressed: tuple[Suppressed, ...] = ()
    notes: tuple[str, ...] = ()
    disputed: tuple[Finding, ...] = ()  # left out of ``findings`` (shown with --show-disputed)
    not_affected: tuple[Finding, ...] = ()  # the distribution says the package is not affected
    severity_source: str = "vendor"

    def counts(self) -> dict[str, int]:
        c = Counter(f.severity.level for f in self.findings)
        return {s: c.get(s, 0) for s in SEVERITIES}

    def by_package(self) -> list[tuple[Package, list[Finding]]]:
        groups: dict[int, tuple[Package, list[Finding]]] = {}
        for f in self.findings:
            groups.setdefault(id(f.package), (f.package, []))[1].append(f)
        return sorted(groups.values(), key=lambda g: (_worst(g[1]), g[0].name, g[0].version))


def _worst(findings: Sequence[Finding]) -> tuple[int, ...]:
    c = Counter(f.severity.level for f in findings)
    return tuple(-c.get(s, 0) for s in SEVERITIES)


def counts_text(counts: Mapping[str, int]) -> str:
    """Scout's ``0C 2H 1M 0L``, plus ``31N`` for negligible ones and ``3?`` for unknown severities when
    there are some."""
    text = f"{counts['critical']}C {counts['high']}H {counts['medium']}M {counts['low']}L"
    if counts.get("negligible"):
        text += f" {counts['negligible']}N"
    return text + (f" {counts['unspecified']}?" if counts.get("unspecified") else "")


LETTER = {"critical": "C", "high": "H", "medium": "M", "low": "L", "negligible": "N", "unspecified": "?"}


def severity_text(f: Finding) -> str:
    """``NEGLIGIBLE from Debian urgency: unimportant; CVSS view: critical 9.8``: the rating shown, its
    source, and the other view when it differs."""
    sev = f.severity
    text = f"{sev.level.upper()} from {sev.source or 'no rating in the records'}"
    vendor = f.vendor_severity
    if vendor is not None and vendor != sev:
        text += f"; vendor: {vendor.level} ({vendor.source})"
    cvss = f.cvss_severity
    if cvss != sev:
        score = f" {cvss.score:.1f}" if cvss.score is not None else ""
        text += f"; CVSS view: {cvss.level}{score}"
    return text


def human_size(n: int | None) -> str:
    return "unknown" if n is None else units.human_size(n)


def purl_of(p: Package) -> str:
    if p.purl:
        return p.purl
    kind = {"python": "pypi"}.get(p.type, p.type)
    return f"pkg:{kind}/{p.name}@{p.version}"
