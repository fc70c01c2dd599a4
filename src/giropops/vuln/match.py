"""Package -> advisories, with the reason for each match; then one finding per vulnerability.

The rules, the same for every ecosystem (OSV's evaluation, run on intervals the
importer already folded):

* a withdrawn advisory never matches; one whose database says ``not_affected`` (Alpine's secfixes
  "0", Wolfi's false-positive determinations) gives a finding with status ``not_affected``, kept
  apart in ``ScanResult.not_affected`` and never counted;
* an affected entry with no ranges and no versions list (a "not affected"
  statement) never matches as affected;
* a version matches an interval when ``introduced <= v`` and ``v < fixed`` /
  ``v <= last_affected`` / ``v < limit`` where given;
* otherwise it matches when it is in the entry's explicit ``versions`` list;
* the fixed version is the interval's ``fixed``; none means "not fixed";
* a language package installed by an OS package (its metadata file or binary is in a deb/apk/rpm
  file list) is not matched against its language's advisories: the OS package is, against the
  distribution's.
* a GO-* or RUSTSEC-* record and its GHSA-* twin are one vulnerability; a malicious-package
  record (MAL-*) is critical.

Advisories naming the same vulnerability (a GHSA and a PYSEC for one CVE) are
merged into one ``Finding`` per package: the worst severity, the highest fixed
version any of them names, every advisory id kept.  A finding is *disputed* only
when every match is (a reviewed advisory that matches confirms it).

Every match carries both severities (``severity`` module): the vendor's rating,
when the record gives one, and the CVSS view; ``scan(severity_source=...)`` picks
the one ``Finding.severity`` shows.  Its status uses Trivy's words (``STATUSES``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from giropops.sbom.model import SBOM, Package
from giropops.vuln import severity as severity_mod
from giropops.vuln.matchers import DEFAULT_MATCHERS, AdvisoryProvider, Matcher, Query
from giropops.vuln.model import (
    SEVERITY_SOURCES,
    Advisory,
    Affected,
    Epss,
    Finding,
    Interval,
    KevEntry,
    Match,
    Severity,
)
from giropops.vuln.versions import (
    APK,
    DEB,
    GO,
    MAVEN,
    NUGET,
    PEP440,
    RPM,
    RUBYGEMS,
    SEMVER,
    InvalidVersion,
    VersionScheme,
)

MALICIOUS = "malicious package"  # Severity.source of a MAL-* match


def is_malicious(advisory_id: str) -> bool:
    """OSV's malicious-packages records (``MAL-2024-1234``): the package itself is malware."""
    return advisory_id.startswith("MAL-")

# the scheme of each matcher's ``Query``s, by matcher name (for the highest fixed version of a finding)
_SCHEME_OF: dict[str, VersionScheme] = {
    "deb": DEB, "apk": APK, "python": PEP440, "npm": SEMVER, "golang": GO, "maven": MAVEN, "gem": RUBYGEMS,
    "cargo": SEMVER, "nuget": NUGET, "rpm": RPM,
}


@dataclass(frozen=True)
class ScanResult:
    sbom: SBOM
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()  # packages that could not be compared, and why
    not_affected: tuple[Finding, ...] = ()  # the distribution says so (Alpine, Wolfi, Chainguard statements)


def _in_interval(v: Any, iv: Interval, scheme: VersionScheme) -> bool:
    if iv.introduced is not None and v < scheme.key(iv.introduced):
        return False
    if iv.fixed is not None and not v < scheme.key(iv.fixed):
        return False
    if iv.last_affected is not None and v > scheme.key(iv.last_affected):
        return False
    return not (iv.limit is not None and not v < scheme.key(iv.limit))


@functools.lru_cache(maxsize=8192)
def _listed_keys(scheme: VersionScheme, versions: tuple[str, ...]) -> frozenset[Any]:
    keys = set()
    for v in versions:
        try:
            keys.add(scheme.key(v))
        except InvalidVersion:
            continue
    return frozenset(keys)


def _listed(key: Any, versions: tuple[str, ...], scheme: VersionScheme) -> bool:
    """An explicit versions list names a version equal to ``key`` in another spelling (Go's ``v1.2.3``
    and OSV's ``1.2.3``, Maven's ``1.0.Final`` and ``1.0``)."""
    return key in _listed_keys(scheme, versions)


def affected_by(advisory: Advisory, version: str, scheme: VersionScheme) -> tuple[str, str | None] | None:
    """(affected range, fixed version) when ``version`` is affected by ``advisory``'s entry, else None."""
    if advisory.withdrawn or advisory.status == "not_affected":
        return None
    key = scheme.key(version)
    for aff in advisory.affected:
        for iv in aff.intervals:
            if iv.scheme == "SEMVER" and not scheme.orders_semver:
                # a SEMVER range is ordered by semver whatever the ecosystem; a version that is not
                # semver cannot fall in it
                if SEMVER.valid(version) and _in_interval(SEMVER.key(version), iv, SEMVER):
                    return iv.describe(), iv.fixed
                continue
            if _in_interval(key, iv, scheme):
                return iv.describe(), iv.fixed
        if aff.versions:
            wanted = version
            if scheme is PEP440:
                wanted = PEP440.normalize(version)
            if wanted in aff.versions or (scheme is not PEP440 and _listed(key, aff.versions, scheme)):
                return f"={version}", None
    return None


# Wolfi/Chainguard advisory events (``database_specific.wolfi_event``) in Trivy's status words
_FIX_STATE = {"fix-not-planned": "will_not_fix", "pending-upstream-fix": "fix_deferred",
              "detection": "under_investigation", "true-positive-determination": "affected"}


def _vendor_severity(advisory: Advisory, aff: Affected) -> Severity | None:
    return severity_mod.debian_vendor(aff.urgency) or advisory.vendor_severity


def _status(advisory: Advisory, fixed_version: str | None) -> str:
    if advisory.status == "not_affected":
        return "not_affected"
    if fixed_version is not None:
        return "fixed"
    return _FIX_STATE.get(advisory.fix_state or "", "affected")


def _not_affected_statement(advisory: Advisory) -> bool:
    """A record saying the package is not affected: status ``not_affected`` and an entry without ranges."""
    return (not advisory.withdrawn and advisory.status == "not_affected"
            and any(not a.intervals and not a.versions for a in advisory.affected))


def _severity(advisory: Advisory, provider: AdvisoryProvider) -> Severity:
    """The record's CVSS; else the CVSS another record gives the same vulnerability; else the record's
    GHSA level; else Debian's urgency.  A malicious package (an OSV ``MAL-*`` record) is critical."""
    if is_malicious(advisory.id):
        return Severity("critical", source=MALICIOUS)
    own = advisory.severity
    if own.source and own.source.startswith("CVSS"):
        return own
    borrowed = provider.cvss_severity(advisory.vuln_id)
    if borrowed is not None:
        return borrowed
    if own.level != "unspecified":
        return own
    urgencies = [a.urgency for a in advisory.affected if a.urgency]
    from_urgency = severity_mod.from_debian_urgency(urgencies[0]) if urgencies else None
    return from_urgency or advisory.severity


def match_package(package: Package, sbom: SBOM, provider: AdvisoryProvider,
                  matchers: Sequence[Matcher] = DEFAULT_MATCHERS,
                  severity_source: str = "vendor") -> tuple[list[Match], list[str]]:
    matches: list[Match] = []
    notes: list[str] = []
    seen: set[str] = set()
    for matcher in matchers:
        if package.type not in matcher.package_types:
            continue
        queries: list[Query] = matcher.queries(package, sbom.distro)
        for q in queries:
            try:
                q.scheme.key(q.version)
            except InvalidVersion as exc:
                notes.append(f"{package.type}/{package.name} {package.version}: not compared: {exc}")
                continue
            for adv in provider.advisories_for(q.ecosystem, q.name):
                if adv.id in seen or not matcher.accepts(adv):
                    continue
                hit = affected_by(adv, q.version, q.scheme)
                if hit is None:
                    if not _not_affected_statement(adv):
                        continue
                    hit = ("not affected", None)
                seen.add(adv.id)
                cvss = _severity(adv, provider)
                vendor = None if is_malicious(adv.id) else (
                    _vendor_severity(adv, adv.affected[0]) if adv.affected else adv.vendor_severity)
                matches.append(Match(
                    package=package, advisory_id=adv.id, vuln_id=adv.vuln_id, aliases=adv.aliases,
                    severity=(vendor or cvss) if severity_source == "vendor" else cvss, summary=adv.summary,
                    matcher=matcher.name, ecosystem=q.ecosystem, searched_name=q.name, installed_version=q.version,
                    affected_range=hit[0], fixed_version=hit[1], cvss_severity=cvss, vendor_severity=vendor,
                    status=_status(adv, hit[1]),
                    disputed=next((a.disputed for a in adv.affected if a.disputed), None),
                ))
    return matches, notes


def _worst(severities: Sequence[Severity]) -> Severity:
    return min(severities, key=lambda s: (s.rank, -(s.score or 0.0)))


def merge(matches: Sequence[Match], scheme_of: dict[str, VersionScheme], severity_source: str = "vendor") -> Finding:
    """One finding from the matches of one package naming the same vulnerability.

    Its severity, in the vendor view, is the worst vendor rating any (undisputed) match carries, the
    worst CVSS view only when none does: a GitHub-reviewed rating outranks the NVD score a PYSEC twin
    borrows, as in Trivy."""
    affected = [m for m in matches if m.status != "not_affected"]
    if affected:  # one record's "not affected" does not hide another's "affected"
        matches = affected
    confirmed = [m for m in matches if m.disputed is None]
    if confirmed:  # the disputed claims stay listed among the matches, but the finding is judged without them
        judged = confirmed
    else:
        judged = list(matches)
    first = matches[0]
    vendors = [m.vendor_severity for m in judged if m.vendor_severity is not None]
    cvss = _worst([m.cvss_severity for m in judged])
    worst = _worst(vendors) if vendors and severity_source == "vendor" else cvss
    fixed_versions = [m.fixed_version for m in judged if m.fixed_version is not None]
    fixed: str | None = None
    if fixed_versions:
        scheme = scheme_of.get(first.matcher)
        fixed = max(fixed_versions, key=scheme.key) if scheme else max(fixed_versions)
    aliases = tuple(sorted({a for m in matches for a in (m.advisory_id, *m.aliases)} - {first.vuln_id}))
    ranges = list(dict.fromkeys(m.affected_range for m in judged))
    if fixed is not None:
        status = "fixed"
    else:
        status = next((m.status for m in judged if m.status not in ("affected", "fixed")), "affected")
    return Finding(
        package=first.package, vuln_id=first.vuln_id, aliases=aliases, severity=worst,
        summary=next((m.summary for m in matches if m.summary), ""), affected_range=" | ".join(ranges),
        fixed_version=fixed, matches=tuple(sorted(matches, key=lambda m: m.advisory_id)),
        cvss_severity=cvss,
        vendor_severity=_worst(vendors) if vendors else None,
        status=status,
        disputed=None if confirmed else "; ".join(dict.fromkeys(m.disputed or "" for m in matches)),
    )


# Databases of origin whose records GitHub republishes as GHSA-* twins (the two list each other in aliases).
TWIN_ORIGINS = ("GO-", "RUSTSEC-")


def group_twins(matches: Sequence[Match]) -> list[list[Match]]:
    """Matches of one package grouped by vulnerability: the same ``vuln_id``, or a record of a database
    of origin (GO-*, RUSTSEC-*) and a GHSA-* record when either lists the other in ``aliases`` (the Go
    vulnerability database, RustSec and GitHub describe most problems twice, and a twin without exactly
    one CVE keeps its own id).  A merged group is led by the origin's record, whose id (or CVE) names
    the finding."""
    groups: dict[str, list[Match]] = {}
    for m in matches:
        groups.setdefault(m.vuln_id, []).append(m)
    parent = {k: k for k in groups}

    def root(k: str) -> str:
        while parent[k] != k:
            k = parent[k]
        return k

    by_id = {m.advisory_id: m.vuln_id for m in matches}
    for m in matches:
        for alias in m.aliases:
            twin = by_id.get(alias)
            if twin is None:
                continue
            if m.advisory_id.startswith(TWIN_ORIGINS) and alias.startswith("GHSA-"):
                origin, other = m.vuln_id, twin
            elif m.advisory_id.startswith("GHSA-") and alias.startswith(TWIN_ORIGINS):
                origin, other = twin, m.vuln_id
            else:
                continue
            a, b = root(origin), root(other)
            if a != b:
                parent[b] = a
    out: dict[str, list[Match]] = {}
    for key, ms in groups.items():
        out.setdefault(root(key), []).extend(ms)
    for lead, ms in out.items():
        ms.sort(key=lambda m, lead=lead: m.vuln_id != lead)  # type: ignore[misc]
    return list(out.values())


def _norm(path: str) -> str:
    return "/" + path.strip("/")


OS_TYPES = ("deb", "apk", "rpm")


def os_owned(sbom: SBOM) -> set[int]:
    """Indexes of language packages whose metadata files an OS package owns (``python3-yaml`` ships
    ``PyYAML-*.egg-info``, ``libjackson2-databind-java`` a jar, ``ruby-rack`` a gemspec, ``docker.io`` a
    Go binary): the distribution's advisories cover them and it backports fixes without changing the
    upstream version, so the language's advisories would be false positives (grype and syft do the
    same)."""
    owned_files = {_norm(f) for p in sbom.packages if p.type in OS_TYPES for f in p.files}
    if not owned_files:
        return set()
    out = set()
    for i, p in enumerate(sbom.packages):
        if p.type in OS_TYPES:
            continue
        for loc in p.locations:
            path = _norm(loc.path)
            if path in owned_files or path.rsplit("/", 1)[0] in owned_files:
                out.add(i)
                break
    return out


def needed_ecosystems(sboms: Iterable[SBOM | None], matchers: Sequence[Matcher] = DEFAULT_MATCHERS) -> set[str]:
    """The OSV ecosystems a scan of ``sboms`` searches (``Debian:12``, ``PyPI``...): what the matchers ask
    for, package by package, leaving out language packages an OS package installed (``os_owned``).
    A new matcher adds its ecosystems here by itself; ``matchers.feed_name`` maps each to the OSV
    export folder a first scan fetches (``Debian:12`` -> ``Debian``)."""
    out: set[str] = set()
    for sbom in sboms:
        if sbom is None:
            continue
        owned = os_owned(sbom)
        out.update(q.ecosystem for i, p in enumerate(sbom.packages) if i not in owned
                   for m in matchers if p.type in m.package_types for q in m.queries(p, sbom.distro))
    return out


@runtime_checkable
class ExploitData(Protocol):
    """What ``VulnDB`` offers besides advisories: the KEV catalog and EPSS scores (``db.exploits``)."""

    def kev(self) -> Mapping[str, KevEntry]: ...

    def epss(self, cves: Sequence[str]) -> Mapping[str, Epss]: ...


def with_exploit_data(findings: Sequence[Finding], data: ExploitData) -> list[Finding]:
    """Each finding with its KEV entry (its id or any alias in the catalog) and its EPSS values (the
    highest score of its CVE ids)."""
    kev = data.kev()
    epss = data.epss([i for f in findings for i in (f.vuln_id, *f.aliases)])
    if not kev and not epss:
        return list(findings)
    out = []
    for f in findings:
        ids = (f.vuln_id, *f.aliases)
        entry = next((kev[i] for i in ids if i in kev), None)
        scores = [epss[i] for i in ids if i in epss]
        best = max(scores, key=lambda e: (e.score, e.percentile)) if scores else None
        out.append(replace(f, kev=entry, epss=best) if entry is not None or best is not None else f)
    return out


@runtime_checkable
class Prefetching(Protocol):
    """A provider that can look many packages up at once (``VulnDB.prefetch``)."""

    def prefetch(self, keys: Iterable[tuple[str, str]]) -> None: ...


def scan(sbom: SBOM, provider: AdvisoryProvider, matchers: Sequence[Matcher] = DEFAULT_MATCHERS,
         severity_source: str = "vendor") -> ScanResult:
    """Every finding of ``sbom``; ``severity_source`` ("vendor" or "cvss") picks ``Finding.severity``."""
    if severity_source not in SEVERITY_SOURCES:
        raise ValueError(f"unknown severity source {severity_source!r}")
    # A scan makes many small objects (advisories, findings) and no reference cycles: the cyclic collector
    # would only walk them again and again, each pass longer as they pile up (the cost per package of a
    # 10,000-package scan rose by a third), so it is paused while they are made.
    import gc

    collecting = gc.isenabled()
    gc.disable()
    try:
        return _scan(sbom, provider, matchers, severity_source)
    finally:
        if collecting:
            gc.enable()


def _scan(sbom: SBOM, provider: AdvisoryProvider, matchers: Sequence[Matcher], severity_source: str) -> ScanResult:
    scheme_of = _SCHEME_OF
    findings: list[Finding] = []
    notes: list[str] = []
    owned = os_owned(sbom)
    # "No findings" only means something when the database knows every ecosystem searched (and is not empty).
    provider.covers(needed_ecosystems([sbom], matchers))
    if isinstance(provider, Prefetching):  # every package's lookup in a few batched queries
        provider.prefetch({(q.ecosystem, q.name) for i, p in enumerate(sbom.packages) if i not in owned
                           for m in matchers if p.type in m.package_types for q in m.queries(p, sbom.distro)})
    for index, package in enumerate(sbom.packages):
        if index in owned:
            notes.append(f"{package.type}/{package.name} {package.version}: installed by an OS package; "
                         "matched through the distribution's advisories only")
            continue
        matches, pkg_notes = match_package(package, sbom, provider, matchers, severity_source)
        notes.extend(pkg_notes)
        findings.extend(merge(group, scheme_of, severity_source) for group in group_twins(matches))
    if isinstance(provider, ExploitData):
        findings = with_exploit_data(findings, provider)
    findings.sort(key=lambda f: (f.severity.rank, f.package.type, f.package.name, f.package.version, f.vuln_id))
    return ScanResult(sbom, tuple(f for f in findings if f.status != "not_affected"), tuple(notes),
                      tuple(f for f in findings if f.status == "not_affected"))
