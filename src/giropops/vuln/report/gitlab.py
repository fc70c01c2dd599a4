"""``--format gitlab``: GitLab's container scanning report (``gl-container-scanning-report.json``).

As GitLab's "Security scanner integration" documentation describes it: ``version`` (the security
report schema version, 15.x), ``scan`` (analyzer and scanner with id, name, version, vendor;
``type: container_scanning``; start and end time as ``YYYY-MM-DDTHH:MM:SS``; status), and one
``vulnerabilities`` entry per (vulnerability, package): a stable ``id``, ``identifiers`` (the primary
one first: the vulnerability's id, then its aliases; at most 20), ``severity`` (``Critical`` ...
``Info``, ``Unknown``), ``solution`` when a fix exists, and ``location`` with ``dependency``
(package name and version), ``operating_system`` (``debian:12``) and ``image``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from giropops import __version__
from giropops.sbom.formats import uuid5
from giropops.vuln.model import Finding
from giropops.vuln.report.view import ReportView, purl_of

SCHEMA_VERSION = "15.0.7"
_SEVERITY = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low", "negligible": "Info",
             "unspecified": "Unknown"}
MAX_IDENTIFIERS = 20
_TOOL = {"id": "giropops", "name": "giropops", "version": __version__, "vendor": {"name": "giropops"}}


def _identifier(vuln_id: str) -> dict[str, str]:
    kind = "cve" if vuln_id.startswith("CVE-") else vuln_id.split("-", 1)[0].lower() or "osv"
    return {"type": kind, "name": vuln_id, "value": vuln_id, "url": f"https://osv.dev/vulnerability/{vuln_id}"}


def _vulnerability(f: Finding, image: str, os_name: str) -> dict[str, Any]:
    p = f.package
    ids = [f.vuln_id, *(a for a in f.aliases if a != f.vuln_id)][:MAX_IDENTIFIERS]
    entry: dict[str, Any] = {
        "id": uuid5(f"giropops:{image}:{f.vuln_id}:{purl_of(p)}"),
        "name": f"{f.vuln_id} in {p.name}"[:255],
        "description": (f.summary or f.vuln_id)[:1048576],
        "severity": _SEVERITY[f.severity.level],
        "identifiers": [_identifier(i) for i in ids],
        "links": [{"url": f"https://osv.dev/vulnerability/{i}"} for i in f.advisory_ids],
        "location": {"dependency": {"package": {"name": p.name}, "version": p.version},
                     "operating_system": os_name, "image": image},
    }
    if f.fixed_version:
        entry["solution"] = f"Upgrade {p.name} from {p.version} to {f.fixed_version}"
    return entry


def document(view: ReportView, now: float | None = None) -> dict[str, Any]:
    s = view.sbom.subject
    image = s.name.split("://", 1)[-1]
    d = view.sbom.distro
    os_name = f"{d.id}:{d.version_id}" if d is not None and d.version_id else (d.id if d is not None else "unknown")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now if now is not None else time.time()))
    return {
        "version": SCHEMA_VERSION,
        "scan": {"analyzer": _TOOL, "scanner": _TOOL, "type": "container_scanning", "start_time": stamp,
                 "end_time": stamp, "status": "success"},
        "vulnerabilities": [_vulnerability(f, image, os_name) for f in view.findings],
        "remediations": [],
    }


def render(view: ReportView) -> str:
    return json.dumps(document(view), indent=2, ensure_ascii=False) + "\n"
