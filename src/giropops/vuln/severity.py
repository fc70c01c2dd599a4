"""Severities: the vendor's rating (default) and the CVSS view Docker Scout shows.

Two views of every finding (``--severity-source vendor|cvss``, docs/severity.md):

* **vendor**: the rating of whoever published the record, where it gives one: Debian's
  urgency for the affected source package (``unimportant`` -> *negligible*, ``low``,
  ``medium``, ``high``; ``not yet assigned`` and anything else fall back), the GitHub
  advisory's ``database_specific.severity``, AlmaLinux's advisory severity (the
  ``Critical:``/``Important:``/``Moderate:``/``Low:`` prefix of its summary, the only
  place the feed carries it).  Without one, the CVSS view below.
* **cvss**: the view giropops always had, unchanged: a CVSS vector on the record (v4, then v3.x, then v2; the base
score is computed by the ``cvss`` library, never trusted from text), else a CVSS
score another record gives the same vulnerability (Alpine's secdb has no scores,
the GHSA or Debian record of the same CVE often has; see ``match._severity``),
else the GitHub advisory's ``database_specific.severity``, else Debian's urgency
for the affected entry.  Score bands are CVSS v3's: >=9 critical, >=7 high, >=4 medium,
>0 low.

Wolfi, Chainguard and Alpine records carry no rating of their own (checked on the
snapshots in the test data: no ``severity`` and no ``database_specific.severity``), so
their vendor view is the CVSS view.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from giropops.vuln.model import Severity

_GHSA = {"CRITICAL": "critical", "HIGH": "high", "MODERATE": "medium", "MEDIUM": "medium", "LOW": "low"}
# Debian security tracker urgencies.  In the CVSS view (Scout has no "negligible") "unimportant" is low;
# in the vendor view it is negligible, as Trivy and Grype show it.
_DEBIAN_URGENCY = {"high": "high", "medium": "medium", "low": "low", "unimportant": "low"}
_DEBIAN_VENDOR = {"high": "high", "medium": "medium", "low": "low", "unimportant": "negligible"}
_ALMA = {"critical": "critical", "important": "high", "moderate": "medium", "low": "low"}


def level_for_score(score: float) -> str:
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0.0:
        return "low"
    return "unspecified"


@functools.lru_cache(maxsize=65536)
def _score(kind: str, vector: str) -> float | None:
    """The base score of a CVSS ``vector``; None when it does not parse.  Cached: thousands of records
    share a vector, and computing a score is the slowest step of reading a record."""
    # imported here: only the importer computes scores, and the scan commands should start fast
    from cvss import CVSS2, CVSS3, CVSS4
    from cvss.exceptions import CVSSError

    try:
        if kind == "CVSS_V4":
            return float(CVSS4(vector).base_score)
        if kind == "CVSS_V3":
            return float(CVSS3(vector).scores()[0])
        if kind == "CVSS_V2":
            return float(CVSS2(vector).scores()[0])
    except (CVSSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    return None


def from_record(record: Mapping[str, Any]) -> Severity:
    """The record-level severity (CVSS or GHSA), ``unspecified`` when it has neither."""
    entries = record.get("severity")
    if isinstance(entries, Sequence) and not isinstance(entries, str):
        by_kind: dict[str, str] = {}
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            kind, vector = entry.get("type"), entry.get("score")
            if isinstance(kind, str) and isinstance(vector, str):
                by_kind.setdefault(kind, vector)
        for kind in ("CVSS_V4", "CVSS_V3", "CVSS_V2"):
            vector = by_kind.get(kind)
            if vector is None:
                continue
            score = _score(kind, vector)
            if score is not None:
                return Severity(level_for_score(score), score, kind, vector)
    db = record.get("database_specific")
    if isinstance(db, Mapping):
        ghsa = db.get("severity")
        if isinstance(ghsa, str) and ghsa.upper() in _GHSA:
            return Severity(_GHSA[ghsa.upper()], None, "GHSA")
    return Severity()


def from_debian_urgency(urgency: str | None) -> Severity | None:
    if urgency is None:
        return None
    level = _DEBIAN_URGENCY.get(urgency.rstrip("*").strip())
    return Severity(level, None, "Debian urgency") if level else None


def debian_vendor(urgency: str | None) -> Severity | None:
    """Debian's urgency as the vendor rating; None for ``not yet assigned``, ``end-of-life`` and the like."""
    if urgency is None:
        return None
    raw = urgency.rstrip("*").strip()
    level = _DEBIAN_VENDOR.get(raw)
    return Severity(level, None, f"Debian urgency: {raw}") if level else None


def vendor_from_record(record: Mapping[str, Any]) -> Severity | None:
    """The publisher's own rating on the record: GitHub's ``database_specific.severity`` or AlmaLinux's
    summary prefix; None when the record has none (Debian's is per affected entry, ``debian_vendor``)."""
    db = record.get("database_specific")
    if isinstance(db, Mapping):
        ghsa = db.get("severity")
        if isinstance(ghsa, str) and ghsa.upper() in _GHSA:
            return Severity(_GHSA[ghsa.upper()], None, f"GHSA: {ghsa.upper()}")
    osv_id = record.get("id")
    summary = record.get("summary")
    if isinstance(osv_id, str) and osv_id.startswith(("ALSA-", "ALBA-", "ALEA-")) and isinstance(summary, str):
        word = summary.split(":", 1)[0].strip().lower() if ":" in summary else ""
        if word in _ALMA:
            return Severity(_ALMA[word], None, f"AlmaLinux: {word.capitalize()}")
    return None
