"""``--format sarif``: SARIF 2.1.0, one rule per vulnerability, one result per (package, vulnerability)."""

from __future__ import annotations

import json
from typing import Any

from giropops import __version__
from giropops.vuln.report.view import ReportView, purl_of

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "negligible": "note",
          "unspecified": "note"}
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0", "negligible": "0.5",
                      "unspecified": "0.0"}


def document(view: ReportView) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    target = view.sbom.subject.name
    for f in view.findings:
        if f.vuln_id not in rules:
            score = f"{f.severity.score:.1f}" if f.severity.score is not None else _SECURITY_SEVERITY[f.severity.level]
            rules[f.vuln_id] = {
                "id": f.vuln_id,
                "name": f.vuln_id.replace("-", ""),
                "shortDescription": {"text": f"{f.vuln_id} ({f.severity.level})"},
                "fullDescription": {"text": f.summary or f.vuln_id},
                "help": {"text": f"Aliases: {', '.join(f.aliases) or 'none'}"},
                "defaultConfiguration": {"level": _LEVEL[f.severity.level]},
                "properties": {"security-severity": score, "tags": ["security", "vulnerability"]},
            }
        p = f.package
        logical = [{"name": p.name, "fullyQualifiedName": purl_of(p), "kind": "package"}]
        locations = [{
            "physicalLocation": {"artifactLocation": {"uri": loc.path.lstrip("/") or target}},
            "logicalLocations": logical,
            "properties": {"layer": loc.layer, "baseImage": f.base},
        } for loc in p.locations] or [{
            "physicalLocation": {"artifactLocation": {"uri": target}}, "logicalLocations": logical,
        }]
        tags = ["security", "vulnerability"] + (["known-exploited"] if f.kev is not None else [])
        rules[f.vuln_id]["properties"]["tags"] = tags
        results.append({
            "ruleId": f.vuln_id,
            "ruleIndex": list(rules).index(f.vuln_id),
            "level": _LEVEL[f.severity.level],
            "message": {"text": f"{p.name} {p.version} is affected by {f.vuln_id} ({f.severity.level})"
                                f"{', known exploited (CISA KEV)' if f.kev else ''}; "
                                f"affected range {f.affected_range}; fixed version {f.fixed_version or 'not fixed'}"},
            "locations": locations,
            "partialFingerprints": {"vulnerability/package": f"{f.vuln_id}/{purl_of(p)}"},
            "properties": {"purl": purl_of(p), "fixedVersion": f.fixed_version,
                           "advisories": list(f.advisory_ids), "severity": f.severity.level,
                           "severitySource": f.severity.source, "status": f.status,
                           "disputed": f.disputed, "knownExploited": f.kev is not None,
                           "kevDateAdded": f.kev.date_added if f.kev else None,
                           "epss": f.epss.score if f.epss else None,
                           "epssPercentile": f.epss.percentile if f.epss else None,
                           "layer": f.layer, "baseImage": f.base},
        })
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "giropops", "version": __version__, "rules": list(rules.values())}},
            "results": results,
            "properties": {"target": target, "digest": view.sbom.subject.digest,
                           "suppressed": len(view.suppressed)},
        }],
    }


def render(view: ReportView) -> str:
    return json.dumps(document(view), indent=2) + "\n"
