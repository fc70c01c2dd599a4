"""``--format json``: the documented schema of ``docs/cves-json.md`` (``giropops/cves/v1``)."""

from __future__ import annotations

import json
from typing import Any

from giropops.vuln.model import Finding, Severity
from giropops.vuln.report.view import ReportView, purl_of

SCHEMA_ID = "giropops/cves/v1"


def finding_json(f: Finding) -> dict[str, Any]:
    p = f.package
    return {
        "package": {
            "name": p.name, "version": p.version, "type": p.type, "purl": purl_of(p),
            "source_name": p.source_name, "source_version": p.source_version,
        },
        "vulnerability": {
            "id": f.vuln_id, "aliases": list(f.aliases), "severity": f.severity.level,
            "cvss_score": f.cvss_severity.score, "cvss_vector": f.cvss_severity.vector,
            "severity_source": f.severity.source, "summary": f.summary,
            "vendor_severity": _sev(f.vendor_severity), "cvss_severity": _sev(f.cvss_severity),
        },
        "affected_range": f.affected_range,
        "fixed_version": f.fixed_version,
        "status": f.status,
        "disputed": f.disputed,
        "kev": None if f.kev is None else {"date_added": f.kev.date_added, "due_date": f.kev.due_date,
                                           "known_ransomware_use": f.kev.ransomware, "name": f.kev.name},
        "epss": None if f.epss is None else {"score": f.epss.score, "percentile": f.epss.percentile},
        "vex": None if f.vex is None else {"status": f.vex.status, "justification": f.vex.justification,
                                           "impact_statement": f.vex.impact_statement, "document": f.vex.document},
        "layer": f.layer,
        "base": f.base,
        "locations": [{"path": loc.path, "layer": loc.layer} for loc in p.locations],
        "matches": [
            {"advisory": m.advisory_id, "matcher": m.matcher, "ecosystem": m.ecosystem,
             "searched_name": m.searched_name, "installed_version": m.installed_version,
             "affected_range": m.affected_range, "fixed_version": m.fixed_version, "status": m.status,
             "disputed": m.disputed}
            for m in f.matches
        ],
    }


def _sev(s: Severity | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"level": s.level, "source": s.source, "score": s.score, "vector": s.vector}


def document(view: ReportView) -> dict[str, Any]:
    s = view.sbom.subject
    d = view.sbom.distro
    return {
        "schema": SCHEMA_ID,
        "target": {"name": s.name, "digest": s.digest, "platform": s.platform, "size": s.size,
                   "distro": None if d is None else {"id": d.id, "version_id": d.version_id}},
        "packages": len(view.sbom.packages),
        "severity_source": view.severity_source,
        "summary": {**view.counts(), "total": len(view.findings), "suppressed": len(view.suppressed),
                    "vulnerable_packages": len(view.by_package()),
                    "disputed": len([f for f in view.disputed if f not in view.findings]),
                    "not_affected": len(view.not_affected)},
        "findings": [finding_json(f) for f in view.findings],
        "suppressed": [
            {**finding_json(sup.finding),
             "vex": {"status": sup.statement.status, "justification": sup.statement.justification,
                     "impact_statement": sup.statement.impact_statement, "document": sup.statement.document}}
            for sup in view.suppressed
        ],
        "disputed": [finding_json(f) for f in view.disputed],
        "not_affected": [finding_json(f) for f in view.not_affected],
        "notes": list(view.notes),
    }


def render(view: ReportView) -> str:
    return json.dumps(document(view), indent=2, sort_keys=False) + "\n"
