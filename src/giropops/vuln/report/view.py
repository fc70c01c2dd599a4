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
    show_epss: bool = False  # --epss: EPSS score and percentile in the table and markdown
    show_locations: bool = False  # --locations: the files and layers in the table and markdown
    sort_by: str = "severity"  # or "epss": the highest exploit prediction first
    only_vuln_packages: bool = False  # --format packages: only packages with findings
    show_suppressed: bool = False  # --show-suppressed: list what VEX suppressed, with the statements

    def counts(self) -> dict[str, int]:
        c = Counter(f.severity.level for f in self.findings)
        return {s: c.get(s, 0) for s in SEVERITIES}

    def by_package(self) -> list[tuple[Package, list[Finding]]]:
        groups: dict[int, tuple[Package, list[Finding]]] = {}
        for f in self.findings:
            groups.setdefault(id(f.package), (f.package, []))[1].append(f)
        if self.sort_by == "epss":
            for _, group in groups.values():
                group.sort(key=lambda f: -epss_score(f))
            return sorted(groups.values(), key=lambda g: (-max(epss_score(f) for f in g[1]), _worst(g[1]),
                                                          g[0].name, g[0].version))
        return sorted(groups.values(), key=lambda g: (_worst(g[1]), g[0].name, g[0].version))


def epss_score(f: Finding) -> float:
    return f.epss.score if f.epss is not None else -1.0


def kev_text(f: Finding) -> str:
    """``KEV (added 2023-10-03, due 2023-10-24, ransomware: Known)``; empty when not in the catalog."""
    if f.kev is None:
        return ""
    due = f", due {f.kev.due_date}" if f.kev.due_date else ""
    ransom = f", ransomware: {f.kev.ransomware}" if f.kev.ransomware else ""
    return f"KEV (added {f.kev.date_added}{due}{ransom})"


def epss_text(f: Finding) -> str:
    if f.epss is None:
        return "no score"
    return f"{f.epss.score * 100:.2f}% (percentile {f.epss.percentile * 100:.1f})"


def vex_text(status: str, justification: str | None, impact: str | None, document: str) -> str:
    """``not_affected: vulnerable_code_not_in_execute_path — "impact statement" (vex.json)``."""
    text = status
    if justification:
        text += f": {justification}"
    if impact:
        text += f" — {impact}"
    return f"{text} ({document.rsplit('/', 1)[-1]})" if document else text


def layer_text(f: Finding) -> str:
    where = "base image" if f.base else "own layer" if f.base is False else "layer"
    return f"{where} {f.layer}" if f.layer else "layer unknown"


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
