"""Value types of the vulnerability side: advisories as stored, and matches with their reasons.

An OSV record is normalised once, at import: each range's events are sorted in
the ecosystem's order and folded into ``Interval``s, so matching compares a
version with at most two bounds and never re-reads OSV JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from giropops.errors import quote_for_error
from giropops.sbom.model import Package

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "negligible", "unspecified")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Severity:
    level: str = "unspecified"  # one of SEVERITIES
    score: float | None = None
    source: str | None = None  # "CVSS_V3", "CVSS_V4", "CVSS_V2", "GHSA", "Debian urgency", "AlmaLinux"
    vector: str | None = None

    def __post_init__(self) -> None:
        if self.level not in SEVERITY_RANK:
            raise ValueError(f"unknown severity {quote_for_error(self.level)}")

    @property
    def rank(self) -> int:
        """0 for critical ... 5 for unspecified: sorts the worst first."""
        return SEVERITY_RANK[self.level]


@dataclass(frozen=True)
class Interval:
    """One affected span of versions: ``introduced <= v < fixed`` or ``introduced <= v <= last_affected``.

    ``introduced`` None means "from the first version" (OSV's ``"0"``); no upper bound
    means no fix is known.  ``limit`` (rare) caps the whole range exclusively.
    """

    scheme: str  # "ECOSYSTEM" | "SEMVER"
    introduced: str | None = None
    fixed: str | None = None
    last_affected: str | None = None
    limit: str | None = None

    def describe(self) -> str:
        """Scout-style text: ``>=1.0, <1.2.3``; ``*`` when every version is affected."""
        parts = []
        if self.introduced is not None:
            parts.append(f">={self.introduced}")
        if self.fixed is not None:
            parts.append(f"<{self.fixed}")
        elif self.last_affected is not None:
            parts.append(f"<={self.last_affected}")
        if self.limit is not None:
            parts.append(f"<{self.limit}")
        return ", ".join(parts) or ">=0"


@dataclass(frozen=True)
class Affected:
    ecosystem: str
    name: str
    intervals: tuple[Interval, ...] = ()
    versions: tuple[str, ...] = ()  # explicit list (exact, or PEP 440-normalised for PyPI)
    urgency: str | None = None  # Debian's ecosystem_specific.urgency
    disputed: str | None = None  # why this entry's claim is doubtful (see ``osv.disputed_reason``), None if not


@dataclass(frozen=True)
class Advisory:
    id: str
    modified: str
    vuln_id: str  # the id a user knows the problem by (the CVE when there is exactly one)
    aliases: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    summary: str = ""
    published: str | None = None
    withdrawn: str | None = None
    severity: Severity = field(default_factory=Severity)
    status: str | None = None  # database_specific.status ("not_affected", "affected_no_fix"...)
    affected: tuple[Affected, ...] = ()
    vendor_severity: Severity | None = None  # the publisher's own rating (GHSA, AlmaLinux); Debian's is per entry
    fix_state: str | None = None  # Wolfi/Chainguard database_specific.wolfi_event ("fix-not-planned"...)


@dataclass(frozen=True)
class KevEntry:
    """A CVE of CISA's Known Exploited Vulnerabilities catalog (``db.exploits``)."""

    cve: str
    date_added: str
    due_date: str | None = None
    ransomware: str | None = None  # "Known" | "Unknown"
    name: str = ""


@dataclass(frozen=True)
class Epss:
    """FIRST's Exploit Prediction Scoring System values of a CVE on the imported day."""

    score: float  # probability of exploitation in the next 30 days, 0..1
    percentile: float  # 0..1


@dataclass(frozen=True)
class VexNote:
    """A VEX statement that keeps a finding (``affected``, ``under_investigation``), shown with it."""

    status: str
    justification: str | None = None
    impact_statement: str | None = None
    document: str = ""


# Trivy's status vocabulary (``--ignore-status``); every finding carries one
STATUSES: tuple[str, ...] = ("fixed", "affected", "will_not_fix", "fix_deferred", "end_of_life", "not_affected",
                             "under_investigation", "unknown")
SEVERITY_SOURCES: tuple[str, ...] = ("vendor", "cvss")


@dataclass(frozen=True)
class Match:
    """One advisory applying to one package, with everything needed to say why."""

    package: Package
    advisory_id: str
    vuln_id: str
    aliases: tuple[str, ...]
    severity: Severity
    summary: str
    matcher: str  # "deb", "apk", "python"
    ecosystem: str  # the OSV ecosystem searched, e.g. "Debian:12"
    searched_name: str  # the name searched: the source package for Debian, the origin for Alpine
    installed_version: str  # the version compared (the source version for Debian)
    affected_range: str  # the interval it fell in, or "=V" for an explicit versions list
    fixed_version: str | None  # None: not fixed
    cvss_severity: Severity = field(default_factory=Severity)  # the CVSS view (``--severity-source cvss``)
    vendor_severity: Severity | None = None  # the distribution's / publisher's rating, when it gives one
    status: str = "affected"  # one of STATUSES
    disputed: str | None = None  # why the match is doubtful; None when it is not


@dataclass(frozen=True)
class Finding:
    """A vulnerability of a package: the matches of every advisory naming the same ``vuln_id``, merged."""

    package: Package
    vuln_id: str
    aliases: tuple[str, ...]
    severity: Severity
    summary: str
    affected_range: str
    fixed_version: str | None
    matches: tuple[Match, ...]
    cvss_severity: Severity = field(default_factory=Severity)
    vendor_severity: Severity | None = None
    status: str = "affected"
    disputed: str | None = None  # set only when every match is disputed
    kev: KevEntry | None = None  # in CISA's catalog of known exploited vulnerabilities (by id or alias)
    epss: Epss | None = None  # FIRST's exploit prediction, when the database has one for the CVE
    base: bool | None = None  # its package's layer belongs to the base image; None: base not known
    vex: VexNote | None = None  # a VEX statement saying affected / under_investigation

    @property
    def layer(self) -> str | None:
        """diff_id of the layer that brought the package (its first location's)."""
        return self.package.layer

    @property
    def advisory_ids(self) -> tuple[str, ...]:
        return tuple(sorted({m.advisory_id for m in self.matches}))

    @property
    def fixed(self) -> bool:
        return self.fixed_version is not None

    def brief(self) -> FindingBrief:
        """The flat, serialisable form kept where the evidence is not needed (image profiles, policies)."""
        return FindingBrief(id=self.vuln_id, package=self.package.name, package_type=self.package.type,
                            version=self.package.version, severity=self.severity.level,
                            fixed_version=self.fixed_version, kev=self.kev is not None)


@dataclass(frozen=True)
class FindingBrief:
    """A ``Finding`` without its evidence: one vulnerability of one package, as JSON-friendly fields."""

    id: str
    package: str
    package_type: str
    version: str
    severity: str  # critical | high | medium | low | unspecified
    fixed_version: str | None
    kev: bool = False  # in CISA's known exploited catalog

    @property
    def key(self) -> tuple[str, str, str]:
        """What "the same vulnerability" means across two images: id, package type and name."""
        return (self.id, self.package_type, self.package)
