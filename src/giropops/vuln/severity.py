"""Severity the way Docker Scout shows it: critical / high / medium / low / unspecified.

Order of evidence: a CVSS vector on the record (v4, then v3.x, then v2; the base
score is computed by the ``cvss`` library, never trusted from text), else a CVSS
score another record gives the same vulnerability (Alpine's secdb has no scores,
the GHSA or Debian record of the same CVE often has; see ``match._severity``),
else the GitHub advisory's ``database_specific.severity``, else Debian's urgency
for the affected entry.  Score bands are CVSS v3's: >=9 critical, >=7 high, >=4 medium,
>0 low.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from giropops.vuln.model import Severity

_GHSA = {"CRITICAL": "critical", "HIGH": "high", "MODERATE": "medium", "MEDIUM": "medium", "LOW": "low"}
# Debian security tracker urgencies; "unimportant" is Debian's "negligible", which Scout has not.
_DEBIAN_URGENCY = {"high": "high", "medium": "medium", "low": "low", "unimportant": "low"}


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


def _score(kind: str, vector: str) -> float | None:
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
