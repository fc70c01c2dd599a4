"""``--format cyclonedx`` and ``--format spdx``: the SBOM of the target with its vulnerabilities.

* CycloneDX 1.6 (https://cyclonedx.org/docs/1.6/json/): the SBOM side's encoding of the packages plus a
  ``vulnerabilities`` array, one entry per (vulnerability, package): ``id``, ``source``, ``ratings``
  (the severity shown and the CVSS view), ``description``, ``recommendation`` (the fixed version),
  ``affects`` (the component's ``bom-ref``), ``analysis`` for findings suppressed by VEX (state
  ``not_affected`` with the justification), and ``giropops:*`` properties for KEV and EPSS.
* SPDX 2.3 (https://spdx.github.io/spdx-spec/v2.3/external-repository-identifiers/): the SBOM side's
  encoding with, on each affected package, ``externalRefs`` of category ``SECURITY``: type ``advisory``
  (the vulnerability's OSV page) and, when a fix exists, the fixed version in the comment.
"""

from __future__ import annotations

import json
from typing import Any

from giropops.sbom.formats import EncodeOptions, spdx
from giropops.sbom.formats import cyclonedx as cdx
from giropops.sbom.model import Package
from giropops.vuln.model import Finding, Severity
from giropops.vuln.report.view import ReportView

_CDX_SEVERITY = {"critical": "critical", "high": "high", "medium": "medium", "low": "low", "negligible": "info",
                 "unspecified": "unknown"}
_CDX_JUSTIFICATION = {  # OpenVEX justification -> CycloneDX impactAnalysisJustification
    "component_not_present": "code_not_present",
    "vulnerable_code_not_present": "code_not_present",
    "vulnerable_code_not_in_execute_path": "code_not_reachable",
    "vulnerable_code_cannot_be_controlled_by_adversary": "protected_by_mitigating_control",
    "inline_mitigations_already_exist": "protected_by_mitigating_control",
}


def advisory_url(vuln_id: str) -> str:
    return f"https://osv.dev/vulnerability/{vuln_id}"


def _method(sev: Severity) -> str:
    source = sev.source or ""
    vector = sev.vector or ""
    if source.startswith("CVSS_V4") or vector.startswith("CVSS:4"):
        return "CVSSv4"
    if source.startswith("CVSS_V3") or vector.startswith("CVSS:3.1"):
        return "CVSSv31"
    if vector.startswith("CVSS:3.0"):
        return "CVSSv3"
    if source.startswith("CVSS_V2"):
        return "CVSSv2"
    return "other"


def _rating(sev: Severity) -> dict[str, Any]:
    rating: dict[str, Any] = {"severity": _CDX_SEVERITY[sev.level], "method": _method(sev)}
    if sev.source:
        rating["source"] = {"name": sev.source}
    if sev.score is not None:
        rating["score"] = sev.score
    if sev.vector:
        rating["vector"] = sev.vector
    return rating


def _key(p: Package) -> tuple[str, str, str]:
    return (p.name, p.version, p.purl)


def _cdx_vulnerability(f: Finding, ref: str) -> dict[str, Any]:
    ratings = [_rating(f.severity)]
    if f.cvss_severity != f.severity and f.cvss_severity.level != "unspecified":
        ratings.append(_rating(f.cvss_severity))
    entry: dict[str, Any] = {
        "bom-ref": f"{f.vuln_id}#{ref}",
        "id": f.vuln_id,
        "source": {"name": "OSV", "url": advisory_url(f.vuln_id)},
        "references": [{"id": a, "source": {"url": advisory_url(a)}} for a in f.aliases],
        "ratings": ratings,
        "description": f.summary or f.vuln_id,
        "affects": [{"ref": ref, "versions": [{"version": f.package.version, "status": "affected"}]}],
    }
    if f.fixed_version:
        entry["recommendation"] = f"Upgrade {f.package.name} to {f.fixed_version} or later"
    props: list[tuple[str, str | None]] = [("giropops:status", f.status), ("giropops:affected_range", f.affected_range)]
    if f.kev is not None:
        props += [("giropops:cisa-kev:date_added", f.kev.date_added), ("giropops:cisa-kev:due_date", f.kev.due_date)]
    if f.epss is not None:
        props += [("giropops:epss:score", f"{f.epss.score:.5f}"),
                  ("giropops:epss:percentile", f"{f.epss.percentile:.5f}")]
    if f.layer:
        props.append(("giropops:layer", f.layer))
    entry["properties"] = [{"name": k, "value": v} for k, v in props if v]
    if not entry["references"]:
        del entry["references"]
    return entry


def render_cyclonedx(view: ReportView) -> str:
    doc = json.loads(cdx.encode(view.sbom, EncodeOptions()))
    refs: dict[tuple[str, str, str], str] = {}
    for comp in doc.get("components", []):
        refs.setdefault((comp["name"], comp.get("version", ""), comp.get("purl", "")), comp["bom-ref"])
    vulns = []
    for f in view.findings:
        ref = refs.get(_key(f.package))
        if ref is not None:
            vulns.append(_cdx_vulnerability(f, ref))
    for sup in view.suppressed:
        ref = refs.get(_key(sup.finding.package))
        if ref is None:
            continue
        entry = _cdx_vulnerability(sup.finding, ref)
        analysis: dict[str, Any] = {"state": "not_affected" if sup.statement.status == "not_affected"
                                    else "resolved" if sup.statement.status == "fixed" else "in_triage"}
        justification = _CDX_JUSTIFICATION.get(sup.statement.justification or "")
        if justification:
            analysis["justification"] = justification
        detail = sup.statement.impact_statement or sup.statement.justification
        if detail:
            analysis["detail"] = detail
        entry["analysis"] = analysis
        vulns.append(entry)
    doc["vulnerabilities"] = vulns
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render_spdx(view: ReportView) -> str:
    doc = json.loads(spdx.encode(view.sbom, EncodeOptions()))
    by_package: dict[tuple[str, str, str], list[Finding]] = {}
    for f in view.findings:
        by_package.setdefault(_key(f.package), []).append(f)
    for pkg in doc.get("packages", []):
        purl = next((r["referenceLocator"] for r in pkg.get("externalRefs", []) if r["referenceType"] == "purl"), "")
        findings = by_package.get((pkg["name"], pkg.get("versionInfo", ""), purl), [])
        refs = pkg.setdefault("externalRefs", [])
        for f in findings:
            fixed = f"fixed in {f.fixed_version}" if f.fixed_version else "not fixed"
            kev = "; known exploited (CISA KEV)" if f.kev else ""
            refs.append({"referenceCategory": "SECURITY", "referenceType": "advisory",
                         "referenceLocator": advisory_url(f.vuln_id),
                         "comment": f"{f.vuln_id} ({f.severity.level}); {fixed}{kev}"})
        if not refs:
            del pkg["externalRefs"]
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
