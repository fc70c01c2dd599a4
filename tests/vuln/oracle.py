"""An independent implementation of the matching rules, for the proof tests.

It reads the raw OSV JSON lines (not our database), orders versions with other
libraries (python-debian's ``debian_support.Version`` for dpkg, ``packaging``
for PEP 440, a regex-based key for apk written here) and evaluates ranges with
OSV's own pseudo-code (sorted events, an ``affected`` flag), not with intervals.

The language ecosystems and AlmaLinux are ordered by the reference tools
themselves (``refversions``): every version of an ecosystem that the records and
the SBOM name is ranked in one batch by Maven's ComparableVersion, Ruby's
Gem::Version, rpm's vercmp or node-semver (npm, crates.io, Go); NuGet, which has
no reference here, by a key written from NuGet's documentation.

The rules it encodes are the documented ones of ``giropops.vuln.match``:
withdrawn and not_affected advisories never match; Debian uses the per-CVE
records and the source package; an affected entry whose range versions do not
parse in the ecosystem is ignored; records with the same id: the newest
``modified`` wins (ties: the later file); advisories naming one vulnerability
merge, keeping the highest fixed version; a GO-* and a GHSA-* record listing each
other in ``aliases`` are one vulnerability, named by the GO record's id (or CVE); the same for
RUSTSEC-* and GHSA-*.


``Oracle.rated`` adds what issue 20 asks for, from the raw fields again: the vendor's
rating (Debian's ``ecosystem_specific.urgency``, GitHub's ``database_specific.severity``),
the CVSS view (the record's vector scored by the ``cvss`` library, else the highest score
another stored record of the same vulnerability gives, else GitHub's level, else the
urgency with "unimportant" as low), and the disputed rule of docs/severity.md (a PyPI
entry whose ranges all read ``introduced: 0`` and nothing else, in a record GitHub did
not review; a finding is disputed when all its records are).
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from debian.debian_support import Version as DebVersion
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from giropops.sbom.model import SBOM, Package
from tests.vuln import refversions

CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")

# --- version keys -----------------------------------------------------------------------

_APK = re.compile(r"^(\d+(?:\.\d+)*)([a-z]?)((?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)\d*)*)(?:-r(\d+))?$")
_SUFFIX_RANK = {"alpha": -4, "beta": -3, "pre": -2, "rc": -1, "cvs": 1, "svn": 2, "git": 3, "hg": 4, "p": 5}


class Unorderable(Exception):
    pass


@functools.cache
def apk_key(v: str) -> tuple[Any, ...]:
    m = _APK.match(v)
    if not m:
        raise Unorderable(v)
    nums = [int(x) for x in m.group(1).split(".")]
    letter = m.group(2)
    suffixes = [(_SUFFIX_RANK[name], int(num) if num else -1)
                for name, num in re.findall(r"_(alpha|beta|pre|rc|cvs|svn|git|hg|p)(\d*)", m.group(3))]
    suffixes.append((0, 0))  # the end: after any pre-release suffix, before any post-release one
    return (nums, letter, suffixes, int(m.group(4) or 0))


@functools.cache
def deb_key(v: str) -> DebVersion:
    try:
        return DebVersion(v)
    except ValueError as exc:
        raise Unorderable(v) from exc


@functools.cache
def pep_key(v: str) -> Version:
    try:
        return Version(v)
    except InvalidVersion as exc:
        raise Unorderable(v) from exc


_NUGET_LABEL = re.compile(r"[0-9A-Za-z-]+")


@functools.cache
def nuget_key(v: str) -> tuple[Any, ...]:
    """NuGet's documented order: up to 4 numbers, a release after its pre-releases, labels numeric-first and
    case-insensitive, metadata ignored."""
    release, _, _metadata = v.partition("+")
    numbers, dash, prerelease = release.partition("-")
    parts = numbers.split(".")
    if not 1 <= len(parts) <= 4 or not all(x.isascii() and x.isdigit() for x in parts) or (dash and not prerelease):
        raise Unorderable(v)
    labels = prerelease.split(".") if dash else []
    if not all(_NUGET_LABEL.fullmatch(x) for x in labels):
        raise Unorderable(v)
    padded = [int(x) for x in parts] + [0] * (4 - len(parts))
    return (padded, 0 if labels else 1, [(0, int(x), "") if x.isdigit() else (1, 0, x.upper()) for x in labels])


# OSV ecosystem -> reference ranking of a list of versions
LANG_RANKERS: dict[str, Callable[[list[str]], dict[str, int]]] = {
    "npm": refversions.semver_ranks, "crates.io": refversions.semver_ranks, "Go": refversions.semver_ranks,
    "Maven": refversions.maven_ranks, "RubyGems": refversions.rubygems_ranks, "AlmaLinux": refversions.rpm_ranks,
}
# package type -> OSV ecosystem (AlmaLinux: the release comes from the distro)
LANG_ECOSYSTEMS = {"npm": "npm", "cargo": "crates.io", "golang": "Go", "maven": "Maven", "gem": "RubyGems",
                   "nuget": "NuGet", "rpm": "AlmaLinux"}


# --- OSV evaluation (the spec's pseudo-code) ------------------------------------------------

def evaluate(version: str, events: list[dict[str, str]], key: Callable[[str], Any]) -> tuple[bool, str | None]:
    """(affected, fixed version) for one range, by sorting the events and walking an affected flag."""
    v = key(version)

    def ev_key(ev: dict[str, str]) -> tuple[int, Any]:
        ((_, ver),) = ev.items()
        return (0, None) if ver == "0" else (1, key(ver))

    intro_zero = [ev for ev in events if ev.get("introduced") == "0"]
    others = sorted((ev for ev in events if ev.get("introduced") != "0"), key=lambda e: ev_key(e)[1])
    affected = False
    for ev in intro_zero + others:
        ((kind, ver),) = ev.items()
        if kind == "introduced" and (ver == "0" or v >= key(ver)):
            affected = True
        elif kind == "fixed" and v >= key(ver):
            affected = False
        elif kind == "last_affected" and v > key(ver):
            affected = False
    if not affected:
        return False, None
    for ev in others:  # the first upper bound at or above the version closes its interval
        ((kind, ver),) = ev.items()
        if kind == "fixed" and key(ver) > v:
            return True, ver
        if kind == "last_affected" and key(ver) >= v:
            return True, None
    return True, None


def vuln_id(rec: dict[str, Any]) -> str:
    if CVE.match(rec["id"]):
        return str(rec["id"])
    for pool in (rec.get("aliases", []) + rec.get("upstream", []), rec.get("related", [])):
        cves = sorted({a for a in pool if CVE.match(a)})
        if len(cves) == 1:
            return cves[0]
        if cves:
            return str(rec["id"])
    return str(rec["id"])


def _ranked(table: dict[str, int], v: str) -> int:
    if v not in table:
        raise Unorderable(v)
    return table[v]


def _same(key: Callable[[str], Any], a: str, b: str) -> bool:
    try:
        return bool(key(a) == key(b))
    except Unorderable:
        return False


def _twins(groups: dict[str, list[tuple[dict[str, Any], str | None]]]) -> dict[str, list[tuple[dict[str, Any],
                                                                                                  str | None]]]:
    """Fold the group of a GHSA-* record into the group of a GO-* or RUSTSEC-* record when the two alias
    each other."""
    changed = True
    while changed:
        changed = False
        for go_vid, go_items in list(groups.items()):
            go_ids = {rec["id"] for rec, _ in go_items if rec["id"].startswith(("GO-", "RUSTSEC-"))}
            if not go_ids:
                continue
            for other_vid, other_items in list(groups.items()):
                if other_vid == go_vid:
                    continue
                if any(rec["id"].startswith("GHSA-") and (set(rec.get("aliases", [])) & go_ids or any(
                        rec["id"] in g.get("aliases", []) for g, _ in go_items if g["id"] in go_ids))
                       for rec, _ in other_items):
                    groups[go_vid] = go_items + other_items
                    del groups[other_vid]
                    changed = True
                    break
            if changed:
                break
    return groups


@dataclass(frozen=True)
class Expected:
    package: str
    version: str
    vuln_id: str
    advisories: frozenset[str]
    fixed: str | None


class Oracle:
    def __init__(self, files: Iterable[Path]) -> None:
        newest: dict[str, dict[str, Any]] = {}
        for f in sorted(files):
            with gzip.open(f, "rt", encoding="utf-8") as fh:
                for line in fh:
                    rec = json.loads(line)
                    old = newest.get(rec["id"])
                    if old is None or old.get("modified", "") <= rec.get("modified", ""):
                        newest[rec["id"]] = rec
        self.newest = newest
        self.entry: dict[tuple[str, str], dict[str, Any]] = {}  # (record id, searched name) -> affected entry
        self.index: dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        for rec in newest.values():
            for aff in rec.get("affected", []):
                eco, name = aff["package"]["ecosystem"], aff["package"]["name"]
                if eco == "PyPI":
                    name = canonicalize_name(name)
                if eco == "NuGet":
                    name = name.lower()
                self.index.setdefault((eco, name), []).append((rec, aff))
        self._lang_keys: dict[str, Callable[[str], Any]] = {}

    def _hits(self, eco: str, names: list[str], version: str, key: Callable[[str], Any],
              accept: Callable[[dict[str, Any]], bool]) -> dict[str, tuple[dict[str, Any], str | None]]:
        hits: dict[str, tuple[dict[str, Any], str | None]] = {}
        for name in names:
            for rec, aff in self.index.get((eco, name), []):
                if rec["id"] in hits or not accept(rec) or rec.get("withdrawn"):
                    continue
                if (rec.get("database_specific") or {}).get("status") == "not_affected":
                    continue
                ranges = [r for r in aff.get("ranges", []) if r["type"] in ("ECOSYSTEM", "SEMVER")]
                try:
                    for r in ranges:
                        for ev in r["events"]:
                            ((_, ver),) = ev.items()
                            if ver != "0":
                                key(ver)
                except Unorderable:
                    continue  # the importer skips entries it cannot order
                result: tuple[bool, str | None] = (False, None)
                for r in ranges:
                    ok, fixed = evaluate(version, r["events"], key)
                    if ok:
                        result = (True, fixed)
                        break
                if not result[0] and aff.get("versions"):
                    if key is pep_key:
                        mine = Version(version)
                        hit = False
                        for x in aff["versions"]:
                            try:
                                hit = hit or Version(x) == mine
                            except InvalidVersion:
                                hit = hit or x == version
                        result = (hit, None)
                    else:
                        result = (version in aff["versions"] or any(_same(key, x, version) for x in aff["versions"]),
                                  None)
                if result[0]:
                    hits[rec["id"]] = (rec, result[1])
                    self.entry[(rec["id"], name)] = aff
        return hits

    def expect(self, sbom: SBOM) -> set[Expected]:
        self.prepare(sbom)
        out: set[Expected] = set()
        distro = sbom.distro
        os_files = {"/" + f.strip("/") for p in sbom.packages if p.type in ("deb", "apk", "rpm") for f in p.files}
        for p in sbom.packages:
            meta_paths = {"/" + loc.path.strip("/") for loc in p.locations}
            meta_dirs = {m.rsplit("/", 1)[0] for m in meta_paths}
            if p.type not in ("deb", "apk", "rpm") and (meta_paths | meta_dirs) & os_files:
                continue  # shipped by an OS package: not matched against its language's advisories
            hits, key = self._for_package(p, distro.osv_ecosystem if distro else None,
                                          distro.id if distro else None, distro.version_id if distro else None)
            groups: dict[str, list[tuple[dict[str, Any], str | None]]] = {}
            for _rid, (rec, fixed) in hits.items():
                groups.setdefault(vuln_id(rec), []).append((rec, fixed))
            for vid, items in _twins(groups).items():
                fixes = [f for _, f in items if f is not None]
                out.add(Expected(p.name, p.version, vid, frozenset(r["id"] for r, _ in items),
                                 max(fixes, key=key) if fixes else None))
        return out

    def _for_package(self, p: Package, eco: str | None, sbom_distro_id: str | None = None,
                     sbom_version_id: str | None = None) -> tuple[dict[str, tuple[dict[str, Any], str | None]],
                                                                  Callable[[str], Any]]:
        if p.type == "python":
            return self._hits("PyPI", [canonicalize_name(p.name)], p.version, pep_key, lambda r: True), pep_key
        if p.type == "deb" and eco and eco.startswith("Debian:"):
            return self._hits(eco, [p.source_name or p.name], p.source_version or p.version, deb_key,
                              lambda r: CVE.match(r["id"]) is not None), deb_key
        if p.type == "apk" and eco and eco.startswith("Alpine:"):
            return self._hits(eco, [p.source_name or p.name], p.version, apk_key, lambda r: True), apk_key
        if p.type == "apk" and eco in ("Wolfi", "Chainguard"):
            names = list(dict.fromkeys([p.name] + ([p.source_name] if p.source_name else [])))
            return self._hits(eco, names, p.version, apk_key, lambda r: True), apk_key
        if p.type in LANG_ECOSYSTEMS:
            return self._lang_hits(p, sbom_distro_id, sbom_version_id)
        return {}, pep_key

    def prepare(self, sbom: SBOM) -> None:
        """Rank, with the reference tools, every version of each language ecosystem in the records plus the
        SBOM's package versions (one batch per ecosystem)."""
        extra: dict[str, set[str]] = {}
        for p in sbom.packages:
            if p.type in LANG_ECOSYSTEMS:
                extra.setdefault(LANG_ECOSYSTEMS[p.type], set()).add(p.version)
        for base in extra:
            versions = set(extra[base])
            for (eco, _name), entries in self.index.items():
                if eco.split(":")[0] != base:
                    continue
                for _rec, aff in entries:
                    versions.update(aff.get("versions", []))
                    for r in aff.get("ranges", []):
                        versions.update(v for ev in r["events"] for v in ev.values() if v != "0")
            if base == "NuGet":
                self._lang_keys[base] = nuget_key
                continue
            if base == "Go":  # the Go database writes versions without the leading "v" of module versions
                canon = {v: v[1:] if v.startswith("v") else v for v in versions}
                ranks = LANG_RANKERS[base](sorted(set(canon.values())))
                table = {v: ranks[c] for v, c in canon.items() if c in ranks}
            else:
                table = LANG_RANKERS[base](sorted(versions))
            self._lang_keys[base] = functools.partial(_ranked, table)

    def _lang_hits(self, p: Package, distro_id: str | None, version_id: str | None,
                   ) -> tuple[dict[str, tuple[dict[str, Any], str | None]], Callable[[str], Any]]:
        base = LANG_ECOSYSTEMS[p.type]
        key = self._lang_keys[base]
        name = p.name.lower() if base == "NuGet" else p.name
        if base == "AlmaLinux":
            if distro_id != "almalinux" or not version_id:
                return {}, key
            eco = f"AlmaLinux:{version_id.split('.')[0]}"
        else:
            eco = base
        try:
            key(p.version)
        except Unorderable:
            return {}, key
        return self._hits(eco, [name], p.version, key, lambda r: True), key

# --- issue 20: vendor rating, CVSS view, disputed records ----------------------------------------

LEVELS = ("critical", "high", "medium", "low", "negligible", "unspecified")
_GHSA_LEVEL = {"CRITICAL": "critical", "HIGH": "high", "MODERATE": "medium", "MEDIUM": "medium", "LOW": "low"}
_URGENCY_VENDOR = {"unimportant": "negligible", "low": "low", "medium": "medium", "high": "high"}
_URGENCY_CVSS_VIEW = {"unimportant": "low", "low": "low", "medium": "medium", "high": "high"}
_STORED_ECOSYSTEMS = ("Debian", "Alpine", "Wolfi", "Chainguard", "PyPI", "npm", "Go", "Maven", "RubyGems",
                      "crates.io", "NuGet", "AlmaLinux")  # what the importer keeps


@dataclass(frozen=True)
class Rated:
    vendor: str  # the level the default (vendor) view shows
    cvss: str  # the level --severity-source cvss shows
    disputed: bool


def band(score: float) -> str:
    return ("critical" if score >= 9.0 else "high" if score >= 7.0 else "medium" if score >= 4.0
            else "low" if score > 0.0 else "unspecified")


@functools.cache
def _score(kind: str, vector: str) -> float | None:
    from cvss import CVSS2, CVSS3, CVSS4

    try:
        if kind == "CVSS_V4":
            return float(CVSS4(vector).base_score)
        return float((CVSS3 if kind == "CVSS_V3" else CVSS2)(vector).scores()[0])
    except Exception:  # noqa: BLE001 - a vector the library rejects gives no score
        return None


def record_score(rec: dict[str, Any]) -> float | None:
    vectors: dict[str, str] = {}
    for entry in rec.get("severity") or []:
        vectors.setdefault(entry.get("type"), entry.get("score"))
    for kind in ("CVSS_V4", "CVSS_V3", "CVSS_V2"):
        if kind in vectors:
            got = _score(kind, vectors[kind])
            if got is not None:
                return got
    return None


def vendor_level(rec: dict[str, Any], aff: dict[str, Any]) -> str | None:
    urgency = (aff.get("ecosystem_specific") or {}).get("urgency")
    if urgency in _URGENCY_VENDOR:
        return _URGENCY_VENDOR[urgency]
    ghsa = (rec.get("database_specific") or {}).get("severity")
    return _GHSA_LEVEL.get(ghsa.upper()) if isinstance(ghsa, str) else None


def is_disputed(rec: dict[str, Any], aff: dict[str, Any]) -> bool:
    if aff["package"]["ecosystem"] != "PyPI" or (rec.get("database_specific") or {}).get("github_reviewed") is True:
        return False
    ranges = [r for r in aff.get("ranges", []) if r["type"] in ("ECOSYSTEM", "SEMVER")]
    return bool(ranges) and all(ev == {"introduced": "0"} for r in ranges for ev in r["events"])


def _worst(levels: Iterable[str]) -> str:
    return min(levels, key=LEVELS.index)


class RatedOracle(Oracle):
    def __init__(self, files: Iterable[Path]) -> None:
        super().__init__(files)
        self._best: dict[str, float] | None = None

    def best_score(self, vid: str) -> float | None:
        if self._best is None:
            best: dict[str, float] = {}
            for rec in self.newest.values():
                if rec.get("withdrawn") or not any(a["package"]["ecosystem"].split(":")[0] in _STORED_ECOSYSTEMS
                                                   for a in rec.get("affected", [])):
                    continue
                score = record_score(rec)
                if score is not None:
                    v = vuln_id(rec)
                    best[v] = max(best.get(v, score), score)
            self._best = best
        return self._best.get(vid)

    def cvss_level(self, rec: dict[str, Any], aff: dict[str, Any]) -> str:
        own = record_score(rec)
        if own is not None:
            return band(own)
        borrowed = self.best_score(vuln_id(rec))
        if borrowed is not None:
            return band(borrowed)
        ghsa = (rec.get("database_specific") or {}).get("severity")
        if isinstance(ghsa, str) and ghsa.upper() in _GHSA_LEVEL:
            return _GHSA_LEVEL[ghsa.upper()]
        return _URGENCY_CVSS_VIEW.get((aff.get("ecosystem_specific") or {}).get("urgency"), "unspecified")

    def rated(self, sbom: SBOM) -> dict[Expected, Rated]:
        """Every finding ``expect`` gives, with its vendor level (the worst rating a record gives, the CVSS
        view when none does), CVSS-view level and whether it is disputed."""
        expected = {(e.package, e.version, e.vuln_id): e for e in self.expect(sbom)}
        distro = sbom.distro
        eco = distro.osv_ecosystem if distro else None
        out: dict[Expected, Rated] = {}
        for p in sbom.packages:
            if p.type == "python":
                names = [canonicalize_name(p.name)]
            elif p.type == "deb" or (p.type == "apk" and eco and eco.startswith("Alpine:")):
                names = [p.source_name or p.name]
            else:
                names = list(dict.fromkeys([p.name] + ([p.source_name] if p.source_name else [])))
            for e in [x for k, x in expected.items() if k[:2] == (p.name, p.version)]:
                items = []
                for rid in e.advisories:
                    aff = next(self.entry[(rid, n)] for n in names if (rid, n) in self.entry)
                    items.append((self.newest[rid], aff, is_disputed(self.newest[rid], aff)))
                judged = [i for i in items if not i[2]] or items
                cvss = _worst(self.cvss_level(rec, aff) for rec, aff, _ in judged)
                vendors = [v for v in (vendor_level(rec, aff) for rec, aff, _ in judged) if v]
                vendor = _worst(vendors) if vendors else cvss
                out[e] = Rated(vendor, cvss, all(i[2] for i in items))
        return out
