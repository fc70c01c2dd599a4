"""Questions to the fleet index, answered without any registry traffic.

* ``where``: the images holding a package, optionally at a version or in a range
  (``1.2.3``, ``<2.0``, ``>=1.0,<2.0``), compared in the package type's own order;
* ``affected``: the images an advisory hits (its id, its vuln id or any alias), with the fixed
  version per image: the advisory's records come from the vulnerability database, the images
  whose packages the matchers would look up under the advisory's names come from the index,
  and those images' stored SBOMs are matched by ``giropops.vuln.match`` exactly as ``cves``
  would match them, so the answer is the same as one ``cves --only-cve-id`` per image;
* ``rematch``: every stored SBOM matched again against the current database, the stored
  findings replaced, and what appeared or went away reported per image.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from giropops.errors import UsageError
from giropops.fleet.index import FleetIndex, ImageRow, PackageRow, StoredFinding
from giropops.fleet.matching import FleetMatcher
from giropops.fleet.scanner import lookups_for
from giropops.sbom.model import Package
from giropops.vuln.db.store import VulnDB
from giropops.vuln.model import Advisory, Finding, Severity
from giropops.vuln.report.filters import Filters
from giropops.vuln.versions import APK, DEB, PEP440, SEMVER, InvalidVersion, VersionScheme

_SCHEMES: dict[str, VersionScheme] = {"deb": DEB, "apk": APK, "python": PEP440}
_OP_RE = re.compile(r"^\s*(<=|>=|==|!=|<|>|=)?\s*([^\s<>=!,]+)\s*$")


@dataclass(frozen=True)
class VersionSpec:
    """``1.2.3`` (exact) or comparisons joined by commas: ``>=1.0,<2.0``."""

    clauses: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> VersionSpec:
        clauses = []
        for part in text.split(","):
            m = _OP_RE.match(part)
            if not m or not part.strip():
                raise UsageError(f"invalid version or range {text[:80]!r}: expected e.g. 1.2.3, <2.0 or >=1.0,<2.0")
            clauses.append((m.group(1) or "==", m.group(2)))
        return cls(tuple(clauses))

    def matches(self, version: str, scheme: VersionScheme | None) -> bool:
        for op, want in self.clauses:
            if scheme is None:
                if op not in ("==", "=", "!=") or (version == want) != (op != "!="):
                    return False
                continue
            try:
                c = scheme.compare(version, want)
            except InvalidVersion:
                return False
            ok = {"==": c == 0, "=": c == 0, "!=": c != 0, "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op]
            if not ok:
                return False
        return True


@dataclass(frozen=True)
class WhereHit:
    image: ImageRow
    package: PackageRow


def parse_package_query(text: str) -> tuple[str, VersionSpec | None]:
    """``NAME``, ``NAME@VERSION`` or ``NAME@RANGE``."""
    name, sep, version = text.partition("@")
    if not name.strip() or (sep and not version.strip()):
        raise UsageError(f"invalid package {text[:80]!r}: expected NAME, NAME@VERSION or NAME@RANGE")
    return name.strip(), VersionSpec.parse(version) if sep else None


def where(index: FleetIndex, name: str, spec: VersionSpec | None = None,
          package_type: str | None = None) -> list[WhereHit]:
    names = sorted({name, name.lower(), str(canonicalize_name(name))})
    images = {i.digest: i for i in index.images()}
    hits = []
    for row in index.packages_named(names):
        if package_type and row.type != package_type:
            continue
        if row.type == "python":
            if canonicalize_name(row.name) != canonicalize_name(name):
                continue
        elif row.name != name:
            continue
        if spec is not None and not spec.matches(row.version, _SCHEMES.get(row.type, SEMVER)):
            continue
        image = images.get(row.digest)
        if image is not None:
            hits.append(WhereHit(image, row))
    return sorted(hits, key=lambda h: (h.image.refs[0].repository if h.image.refs else "", h.image.digest,
                                       h.package.name, h.package.version))


class _Only:
    """An advisory provider that passes on only the advisories about one vulnerability."""

    def __init__(self, inner: VulnDB, ids: frozenset[str]) -> None:
        self._inner = inner
        self._ids = ids

    def advisories_for(self, ecosystem: str, name: str) -> tuple[Advisory, ...]:
        found = self._inner.advisories_for(ecosystem, name)
        return tuple(a for a in found if self._ids & {a.id, a.vuln_id, *a.aliases})

    def cvss_severity(self, vuln_id: str) -> Severity | None:
        return self._inner.cvss_severity(vuln_id)

    def covers(self, ecosystems: Iterable[str]) -> None:
        self._inner.covers(ecosystems)


@dataclass(frozen=True)
class AffectedHit:
    image: ImageRow
    finding: Finding


def advisory_targets(db: VulnDB, vuln_id: str) -> tuple[frozenset[str], list[tuple[str, str]]]:
    """Every id the vulnerability goes by, and the (ecosystem, name) pairs its records affect."""
    conn = db.conn
    ids = {vuln_id}
    rows = conn.execute(
        "SELECT pk, id, vuln_id, aliases FROM advisory WHERE id = ? OR vuln_id = ? OR ('\n' || aliases || '\n')"
        " LIKE ?", (vuln_id, vuln_id, f"%\n{vuln_id}\n%")).fetchall()
    pks = []
    for pk, osv_id, vid, aliases in rows:
        pks.append(pk)
        ids.update({osv_id, vid, *(aliases.split("\n") if aliases else ())})
    # The same vulnerability under another record's id (a GHSA of a CVE): one more round over the aliases.
    more = conn.execute(
        f"SELECT pk FROM advisory WHERE vuln_id IN ({','.join('?' * len(ids))})", tuple(sorted(ids))  # noqa: S608
    ).fetchall()
    pks = sorted(set(pks) | {r[0] for r in more})
    pairs: set[tuple[str, str]] = set()
    for start in range(0, len(pks), 500):
        chunk = pks[start:start + 500]
        pairs.update(conn.execute(
            f"SELECT ecosystem, name FROM affected WHERE advisory IN ({','.join('?' * len(chunk))})",  # noqa: S608
            tuple(chunk)).fetchall())
    return frozenset(i for i in ids if i), sorted(pairs)


def affected(index: FleetIndex, db: VulnDB, vuln_id: str) -> list[AffectedHit]:
    ids, pairs = advisory_targets(db, vuln_id)
    if not pairs:
        return []
    matcher = FleetMatcher(_Only(db, ids))
    keep = Filters(cve_ids=frozenset({vuln_id}))
    images = {i.digest: i for i in index.images()}
    by_image: dict[str, list[Package]] = {}
    for sp in index.packages_looking_up(pairs):
        if not sp.owned:
            by_image.setdefault(sp.digest, []).append(sp.package)
    distros = index.distros() if by_image else {}
    hits = []
    for digest, packages in by_image.items():
        image = images.get(digest)
        if image is None:
            continue
        for f in matcher.findings(distros.get(digest), packages):
            if keep.keep(f):
                hits.append(AffectedHit(image, f))
    return sorted(hits, key=lambda h: (h.image.refs[0].repository if h.image.refs else "", h.image.digest,
                                       h.finding.package.name))


@dataclass(frozen=True)
class Change:
    image: ImageRow
    new: tuple[StoredFinding, ...]
    gone: tuple[StoredFinding, ...]


def rematch(index: FleetIndex, db: VulnDB) -> list[Change]:
    """Match every stored package again; store the findings; return the images whose findings changed."""
    matcher = FleetMatcher(db)
    by_image: dict[str, list[Package]] = {}
    for sp in index.all_packages():
        if not sp.owned:
            by_image.setdefault(sp.digest, []).append(sp.package)
    distros = index.distros()
    before = index.fingerprints()
    changes = []
    for image in index.images():
        distro, packages = distros.get(image.digest), by_image.get(image.digest, [])
        if matcher.fingerprint(distro, packages) == before.get(image.digest):
            continue  # the same findings as stored: nothing to read or write
        now = matcher.stored_findings(distro, packages)
        old = {f.key: f for f in index.findings(image.digest)}
        gone = tuple(f for k, f in old.items() if k not in now)
        new = tuple(sorted(f for k, f in now.items() if k not in old))
        if not new and not gone:
            continue
        index.replace_findings(image.digest, sorted(now.values()))
        changes.append(Change(image, new, gone))
    return changes


__all__ = ["AffectedHit", "Change", "VersionSpec", "WhereHit", "affected", "lookups_for", "parse_package_query",
           "rematch", "where"]
