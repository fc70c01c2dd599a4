"""Scout's ``--only-*`` filters and OpenVEX suppression, applied to findings before any report.

OpenVEX (https://openvex.dev, spec v0.2.0): a statement with status
``not_affected`` whose vulnerability names a finding's id or one of its aliases,
and whose products (when given) include the package's purl (qualifiers
ignored) or the image, suppresses the finding; it is reported as suppressed,
with the statement's justification.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from giropops import jsonio
from giropops.errors import VulnError
from giropops.vuln.model import SEVERITIES, STATUSES, Finding, VexNote


@dataclass(frozen=True)
class Filters:
    severities: frozenset[str] = frozenset()
    fixed: bool | None = None  # True: only fixable; False: only not fixed
    package_types: frozenset[str] = frozenset()
    packages: frozenset[str] = frozenset()
    cve_ids: frozenset[str] = frozenset()
    ignore_status: frozenset[str] = frozenset()  # Trivy's --ignore-status: findings with these statuses go
    kev: bool = False  # --only-cisa-kev: only vulnerabilities in CISA's known exploited catalog
    epss_score: float | None = None  # --epss-score: only findings whose EPSS score is at least this
    epss_percentile: float | None = None  # --epss-percentile
    base: bool | None = None  # True: only the base image's layers (--only-base); False: --ignore-base
    metrics: frozenset[str] = frozenset()  # --only-metric AV:N,PR:N: every one in the CVSS vector

    def __post_init__(self) -> None:
        unknown = self.severities - set(SEVERITIES)
        if unknown:
            raise VulnError(f"unknown severity {sorted(unknown)[0]!r}; expected one of {', '.join(SEVERITIES)}")
        unknown = self.ignore_status - set(STATUSES)
        if unknown:
            raise VulnError(f"unknown status {sorted(unknown)[0]!r}; expected one of {', '.join(STATUSES)}")
        for what, value in (("--epss-score", self.epss_score), ("--epss-percentile", self.epss_percentile)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise VulnError(f"{what} must be between 0 and 1, not {value:g}")
        for metric in self.metrics:
            if not re.fullmatch(r"[A-Za-z]+:[A-Za-z]+", metric):
                raise VulnError(f"--only-metric {metric!r}: expected a CVSS vector part such as AV:N")
        for pattern in self.packages:
            _package_pattern(pattern)

    def keep(self, f: Finding) -> bool:
        if self.severities and f.severity.level not in self.severities:
            return False
        if f.status in self.ignore_status:
            return False
        if self.fixed is not None and f.fixed != self.fixed:
            return False
        if self.package_types and f.package.type not in self.package_types and _purl_type(f) not in self.package_types:
            return False
        if self.packages and not any(f.package.name == p or _package_pattern(p).fullmatch(f.package.name)
                                     for p in self.packages):
            return False
        if self.kev and f.kev is None:
            return False
        if self.epss_score is not None and (f.epss is None or f.epss.score < self.epss_score):
            return False
        if self.epss_percentile is not None and (f.epss is None or f.epss.percentile < self.epss_percentile):
            return False
        if self.base is not None and f.base is not self.base:
            return False
        if self.metrics and not self.metrics <= _vector_parts(f):
            return False
        ids = {f.vuln_id, *f.aliases}
        return not (self.cve_ids and not (ids & self.cve_ids))


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_:~-]*")


@functools.lru_cache(maxsize=256)
def _package_pattern(pattern: str) -> re.Pattern[str]:
    """``--only-package`` value: a regular expression matched against the whole name (an exact name always
    matches, even one that is a different expression: ``libstdc++6``); a plain package name that is no
    valid expression is taken literally."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        if _NAME.fullmatch(pattern):
            return re.compile(re.escape(pattern))
        raise VulnError(f"--only-package {pattern!r} is not a regular expression: {exc}") from None


def _vector_parts(f: Finding) -> frozenset[str]:
    """``AV:N``, ``PR:N``... of the finding's CVSS vector (its CVSS view's); none without a vector."""
    vector = f.cvss_severity.vector
    if not vector:
        return frozenset()
    return frozenset(part.upper() for part in vector.split("/") if ":" in part and not part.startswith("CVSS:"))


def _purl_type(f: Finding) -> str:
    purl = f.package.purl
    return purl[4:].split("/", 1)[0] if purl.startswith("pkg:") else ""


def apply(findings: Iterable[Finding], filters: Filters) -> tuple[Finding, ...]:
    return tuple(f for f in findings if filters.keep(f))


@dataclass(frozen=True)
class VexStatement:
    vulnerability: str
    aliases: tuple[str, ...]
    products: tuple[str, ...]  # purls or image references; empty: every product
    status: str
    justification: str | None
    impact_statement: str | None
    document: str


@dataclass(frozen=True)
class Suppressed:
    finding: Finding
    statement: VexStatement


def _strip_purl(purl: str) -> str:
    """A purl without qualifiers and subpath, parsed so that ``%2B`` and ``+`` spell the same version."""
    from packageurl import PackageURL  # only VEX statements name purls: a scan without VEX never needs it

    try:
        p = PackageURL.from_string(purl)
    except ValueError:
        return purl.split("?", 1)[0].split("#", 1)[0]
    return str(PackageURL(type=p.type, namespace=p.namespace, name=p.name, version=p.version).to_string())


def load_openvex(path: Path) -> list[VexStatement]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VulnError(f"cannot read VEX document {path}: {exc.strerror}") from exc
    doc = jsonio.loads(data, f"VEX document {path}", error=VulnError)
    if not isinstance(doc, Mapping) or not str(doc.get("@context", "")).startswith("https://openvex.dev/ns"):
        raise VulnError(f"{path} is not an OpenVEX document (no openvex @context)")
    return parse_openvex(doc, path)


OPENVEX_STATUSES = ("not_affected", "fixed", "affected", "under_investigation")
#: Statuses that take a finding out of the report (listed as suppressed); the others annotate it.
SUPPRESSING = frozenset({"not_affected", "fixed"})


def parse_openvex(doc: Mapping[str, Any], path: Path) -> list[VexStatement]:
    statements = doc.get("statements")
    if not isinstance(statements, list):
        raise VulnError(f"{path}: 'statements' must be a list")
    out: list[VexStatement] = []
    for i, st in enumerate(statements):
        if not isinstance(st, Mapping):
            raise VulnError(f"{path}: statement {i} is not an object")
        vuln: Any = st.get("vulnerability")
        aliases: list[str] = []
        if isinstance(vuln, Mapping):
            aliases = [a for a in vuln.get("aliases", []) if isinstance(a, str)]
            vuln = vuln.get("name") or vuln.get("@id")
        if not isinstance(vuln, str) or not vuln:
            raise VulnError(f"{path}: statement {i} names no vulnerability")
        products: list[str] = []
        for p in st.get("products", []) or []:
            if isinstance(p, str):
                products.append(p)
            elif isinstance(p, Mapping):
                ident = p.get("@id")
                if isinstance(ident, str):
                    products.append(ident)
                ids = p.get("identifiers")
                if isinstance(ids, Mapping) and isinstance(ids.get("purl"), str):
                    products.append(ids["purl"])
                for sub in p.get("subcomponents", []) or []:
                    if isinstance(sub, Mapping) and isinstance(sub.get("@id"), str):
                        products.append(sub["@id"])
        status = st.get("status")
        if status not in OPENVEX_STATUSES:
            raise VulnError(f"{path}: statement {i} has no valid status (expected one of "
                            f"{', '.join(OPENVEX_STATUSES)})")
        out.append(VexStatement(vuln, tuple(aliases), tuple(products), status,
                                st.get("justification") if isinstance(st.get("justification"), str) else None,
                                st.get("impact_statement") if isinstance(st.get("impact_statement"), str) else None,
                                str(path)))
    return out


def apply_vex(findings: Sequence[Finding], statements: Sequence[VexStatement],
              image_names: Iterable[str] = ()) -> tuple[tuple[Finding, ...], tuple[Suppressed, ...]]:
    """Findings a ``not_affected`` or ``fixed`` statement names are suppressed; those an ``affected`` or
    ``under_investigation`` one names stay, with the statement (``Finding.vex``).  When several statements
    name a finding, a suppressing one wins, then the first."""
    images = {n for n in image_names if n}
    kept: list[Finding] = []
    suppressed: list[Suppressed] = []
    for f in findings:
        ids = {f.vuln_id, *f.aliases}
        purl = _strip_purl(f.package.purl) if f.package.purl else None
        hits = []
        for st in statements:
            if not ({st.vulnerability, *st.aliases} & ids):
                continue
            if st.products:
                prods = {_strip_purl(p) for p in st.products}
                if not ((purl and purl in prods) or (prods & images)):
                    continue
            hits.append(st)
        hit = next((st for st in hits if st.status in SUPPRESSING), hits[0] if hits else None)
        if hit is None:
            kept.append(f)
        elif hit.status in SUPPRESSING:
            suppressed.append(Suppressed(f, hit))
        else:
            kept.append(replace(f, vex=VexNote(hit.status, hit.justification, hit.impact_statement, hit.document)))
    return tuple(kept), tuple(suppressed)
