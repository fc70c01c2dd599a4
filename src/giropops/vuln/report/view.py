"""What every report renders: the scanned target, the findings left, and the suppressed ones."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
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


def counts_text(counts: dict[str, int]) -> str:
    """Scout's ``0C 2H 1M 0L`` (plus ``3?`` when some severities are unknown)."""
    text = f"{counts['critical']}C {counts['high']}H {counts['medium']}M {counts['low']}L"
    return text + (f" {counts['unspecified']}?" if counts.get("unspecified") else "")


def human_size(n: int | None) -> str:
    return "unknown" if n is None else units.human_size(n)


def purl_of(p: Package) -> str:
    if p.purl:
        return p.purl
    kind = {"python": "pypi"}.get(p.type, p.type)
    return f"pkg:{kind}/{p.name}@{p.version}"
