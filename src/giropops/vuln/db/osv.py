"""OSV JSON -> ``Advisory``: validation and normalisation of one record.

Anything a hostile or broken feed can put in a record (wrong types, unknown
ecosystems, ranges whose versions do not parse in their ecosystem, events with
two keys) is rejected here with a reason; the importer reports and skips the
record.  A record is taken whole or not at all.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from giropops.errors import VulnError, quote_for_error
from giropops.vuln import severity as severity_mod
from giropops.vuln.model import Advisory, Affected, Interval
from giropops.vuln.versions import PEP440, InvalidVersion, VersionScheme, scheme_for
from giropops.vuln.versions.pep440 import canonical_name

MAX_ID_LEN = 256
MAX_NAME_LEN = 512
MAX_VERSION_LEN = 256
MAX_AFFECTED = 50_000
MAX_EVENTS = 10_000
_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
# language ecosystems: their records are about one upstream project, so a claim can be checked against it
LANGUAGE_ECOSYSTEMS = frozenset({"PyPI", "npm", "Go", "Maven", "RubyGems", "crates.io", "NuGet"})
_CVE_RE = re.compile(r"^CVE-\d{4}-\d{4,}$")


class RecordError(VulnError):
    """One OSV record is unusable; the importer skips it and says why."""


class EntryError(RecordError):
    """One affected entry names a version its ecosystem cannot order: that entry is skipped, with a note."""


def known_ecosystem(ecosystem: str) -> bool:
    return scheme_for(ecosystem) is not None


def package_key(ecosystem: str, name: str) -> str:
    """The name as stored and searched: PEP 503-normalised for PyPI, lower-cased for NuGet (its ids are
    case-insensitive), as-is elsewhere."""
    if ecosystem == "PyPI":
        return canonical_name(name)
    return name.lower() if ecosystem == "NuGet" else name


def _str(value: Any, what: str, max_len: int = 4096, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise RecordError(f"{what} must be a string, not {type(value).__name__}")
    if len(value) > max_len:
        raise RecordError(f"{what} is longer than {max_len} characters")
    return value


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= MAX_ID_LEN for v in value):
        raise RecordError(f"{what} must be a list of short strings")
    return tuple(value)


def vuln_id_for(osv_id: str, aliases: tuple[str, ...], related: tuple[str, ...]) -> str:
    """The CVE a record is about when it names exactly one, else the record's own id."""
    if _CVE_RE.match(osv_id):
        return osv_id
    for pool in (aliases, related):
        cves = sorted({a for a in pool if _CVE_RE.match(a)})
        if len(cves) == 1:
            return cves[0]
        if cves:
            return osv_id
    return osv_id


def _intervals(ranges: Any, ecosystem: str) -> tuple[Interval, ...]:
    if ranges is None:
        return ()
    if not isinstance(ranges, list):
        raise RecordError("affected[].ranges must be a list")
    out: list[Interval] = []
    for rng in ranges:
        if not isinstance(rng, dict):
            raise RecordError("a range must be an object")
        kind = rng.get("type")
        if not isinstance(kind, str):
            raise RecordError("range type must be a string")
        if kind == "GIT":
            continue  # commit ranges name no versions a package manager installs
        scheme = scheme_for(ecosystem, kind)
        if scheme is None:
            raise RecordError(f"unsupported range type {quote_for_error(kind)} for ecosystem "
                              f"{quote_for_error(ecosystem)}")
        out.extend(_fold_events(rng.get("events"), scheme, kind))
    return tuple(out)


@functools.lru_cache(maxsize=131072)
def _key(scheme: VersionScheme, version: str) -> Any:
    """``scheme.key(version)``, computed once per version string: the same versions recur in thousands of
    records (each Alpine release's secdb, the Wolfi files).  A version that does not parse raises each time."""
    return scheme.key(version)


def _fold_events(events: Any, scheme: VersionScheme, kind: str) -> list[Interval]:
    """OSV's evaluation algorithm, run once: sort the events, then walk them into intervals."""
    if not isinstance(events, list) or not events or len(events) > MAX_EVENTS:
        raise RecordError("range events must be a non-empty list")
    parsed: list[tuple[str, str]] = []
    limit: str | None = None
    for event in events:
        if not isinstance(event, dict) or len(event) != 1:
            raise RecordError("each range event must be an object with exactly one key")
        ((what, version),) = event.items()
        if what not in _EVENT_KINDS:
            raise RecordError(f"unknown range event {quote_for_error(what)}")
        if not isinstance(version, str) or not version or len(version) > MAX_VERSION_LEN:
            raise RecordError(f"range event {quote_for_error(what)} needs a version string")
        if what == "introduced" and version == "0":
            parsed.append((what, version))
            continue
        try:
            _key(scheme, version)
        except InvalidVersion as exc:
            raise EntryError(f"range event {what}={quote_for_error(version)}: {exc}") from exc
        if what == "limit":
            if version != "*":
                limit = version if limit is None or _key(scheme, version) < _key(scheme, limit) else limit
            continue
        parsed.append((what, version))
    if not any(what == "introduced" for what, _ in parsed):
        raise RecordError("a range needs an 'introduced' event")

    def order(item: tuple[int, tuple[str, str]]) -> tuple[int, Any, int]:
        index, (what, version) = item
        if what == "introduced" and version == "0":
            return (0, 0, index)
        return (1, _key(scheme, version), index)

    ordered = [ev for _, ev in sorted(enumerate(parsed), key=order)]
    out: list[Interval] = []
    start: str | None = None
    is_open = False
    for what, version in ordered:
        if what == "introduced":
            if not is_open:
                start, is_open = (None if version == "0" else version), True
        elif is_open:
            if what == "fixed":
                if not (start is None and version == "0"):  # "fixed 0" = never affected
                    out.append(Interval(kind, start, fixed=version, limit=limit))
            else:
                out.append(Interval(kind, start, last_affected=version, limit=limit))
            is_open = False
    if is_open:
        out.append(Interval(kind, start, limit=limit))
    return out


def _fix_commit_repos(ranges: Any) -> list[str]:
    """Repositories of the GIT ranges that name a fixing (or last affected) commit."""
    out: list[str] = []
    for rng in ranges if isinstance(ranges, list) else []:
        if not isinstance(rng, dict) or rng.get("type") != "GIT" or not isinstance(rng.get("repo"), str):
            continue
        events = rng.get("events")
        if isinstance(events, list) and any(isinstance(e, dict) and ("fixed" in e or "last_affected" in e)
                                            for e in events):
            out.append(str(rng["repo"])[:300])
    return out


def disputed_reason(ecosystem: str, name: str, intervals: tuple[Interval, ...], raw_ranges: Any,
                    reviewed: bool) -> str | None:
    """Why a language package's affected entry is doubtful, or None.

    The rule (docs/severity.md, numbers from the PyPI snapshot): every version range is open-ended
    from the first release (``introduced: 0`` with no ``fixed``, ``last_affected`` or ``limit``), so the
    record says every release ever published is affected and none fixes it, and the record is not an
    advisory GitHub reviewed.  That is what an automated conversion produces when the fixing commit
    belongs to another project's repository (PYSEC-2022-43162: a Redis *server* commit, pinned on the
    ``redis`` client library) or when it had no version evidence at all.  A reviewed advisory about
    the same vulnerability that matches the installed version still reports it (``match.merge``).
    """
    if ecosystem.split(":", 1)[0] not in LANGUAGE_ECOSYSTEMS or reviewed or not intervals:
        return None
    if not all(iv.introduced is None and iv.fixed is None and iv.last_affected is None and iv.limit is None
               for iv in intervals):
        return None
    repos = _fix_commit_repos(raw_ranges)
    if repos:
        return (f"every release of {name} is listed as affected and none as fixed: the fix is a commit in "
                f"{', '.join(repos)} that no release of {name} contains; no reviewed GitHub advisory confirms it")
    return (f"every release of {name} is listed as affected and none as fixed, with no version or commit "
            "evidence; no reviewed GitHub advisory confirms it")


def _versions(value: Any, ecosystem: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= MAX_VERSION_LEN for v in value):
        raise RecordError("affected[].versions must be a list of version strings")
    if ecosystem == "PyPI":
        out = []
        for v in value:
            try:
                out.append(PEP440.normalize(v))
            except InvalidVersion:
                out.append(v)  # legacy PyPI versions still match by exact string
        return tuple(dict.fromkeys(out))
    return tuple(dict.fromkeys(value))


def parse_record(record: Any) -> tuple[Advisory, list[str]]:
    """A validated ``Advisory`` plus notes about parts skipped (unknown ecosystems)."""
    if not isinstance(record, dict):
        raise RecordError(f"an OSV record must be an object, not {type(record).__name__}")
    osv_id = _str(record.get("id"), "id", MAX_ID_LEN)
    if not osv_id:
        raise RecordError("id must not be empty")
    modified = _str(record.get("modified"), "modified", 64, optional=True) or ""
    aliases = _str_list(record.get("aliases"), "aliases") + _str_list(record.get("upstream"), "upstream")
    related = _str_list(record.get("related"), "related")
    summary = _str(record.get("summary"), "summary", 100_000, optional=True) or ""
    if not summary:
        details = _str(record.get("details"), "details", 1_000_000, optional=True) or ""
        summary = details.strip().split("\n", 1)[0][:200]
    published = _str(record.get("published"), "published", 64, optional=True)
    withdrawn = _str(record.get("withdrawn"), "withdrawn", 64, optional=True)
    db_specific = record.get("database_specific")
    status = db_specific.get("status") if isinstance(db_specific, dict) else None
    fix_state = db_specific.get("wolfi_event") if isinstance(db_specific, dict) else None
    reviewed = isinstance(db_specific, dict) and db_specific.get("github_reviewed") is True
    affected_raw = record.get("affected")
    if affected_raw is None:
        affected_raw = []
    if not isinstance(affected_raw, list) or len(affected_raw) > MAX_AFFECTED:
        raise RecordError("affected must be a list")
    notes: list[str] = []
    affected: list[Affected] = []
    for entry in affected_raw:
        if not isinstance(entry, dict):
            raise RecordError("affected[] entries must be objects")
        pkg = entry.get("package")
        if not isinstance(pkg, dict):
            raise RecordError("affected[].package must be an object")
        ecosystem = _str(pkg.get("ecosystem"), "package.ecosystem", 128) or ""
        name = _str(pkg.get("name"), "package.name", MAX_NAME_LEN) or ""
        if not name:
            raise RecordError("package.name must not be empty")
        if not known_ecosystem(ecosystem):
            notes.append(f"unknown ecosystem {quote_for_error(ecosystem)} skipped")
            continue
        urgency = None
        eco_specific = entry.get("ecosystem_specific")
        if isinstance(eco_specific, dict) and isinstance(eco_specific.get("urgency"), str):
            urgency = eco_specific["urgency"][:64]
        try:
            intervals = _intervals(entry.get("ranges"), ecosystem)
        except EntryError as exc:
            notes.append(f"{ecosystem}/{name} skipped: {exc}")
            continue
        affected.append(
            Affected(
                ecosystem=ecosystem,
                name=package_key(ecosystem, name),
                intervals=intervals,
                versions=_versions(entry.get("versions"), ecosystem),
                urgency=urgency,
                disputed=disputed_reason(ecosystem, name, intervals, entry.get("ranges"), reviewed),
            )
        )
    if affected_raw and not affected:
        raise RecordError("no usable affected package: " + "; ".join(notes[:3]))
    advisory = Advisory(
        id=osv_id,
        modified=modified,
        vuln_id=vuln_id_for(osv_id, aliases, related),
        aliases=tuple(dict.fromkeys(a for a in aliases if a != osv_id)),
        related=tuple(dict.fromkeys(r for r in related if r != osv_id)),
        summary=summary,
        published=published,
        withdrawn=withdrawn,
        severity=severity_mod.from_record(record),
        status=status if isinstance(status, str) else None,
        affected=tuple(affected),
        vendor_severity=severity_mod.vendor_from_record(record),
        fix_state=fix_state[:64] if isinstance(fix_state, str) else None,
    )
    return advisory, notes
