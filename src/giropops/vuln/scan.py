"""From what the user typed (``IMAGE``) to an ``SBOM``, and from an SBOM to a report view.

``sbom_for`` is the single place where the vulnerability commands meet the SBOM
side (issue 4).  Until its generator is on main, only ``sbom://FILE`` works:
a CycloneDX JSON document is read with a small interim reader below
(properties ``giropops:digest``, ``giropops:platform``, ``giropops:size``,
``giropops:diff_id``, ``giropops:env``, ``giropops:label:K`` and
``giropops:annotation:K`` on the metadata component carry image facts); image
sources raise a clear error.  When the generator lands, wiring it is one line
in ``sbom_for``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from giropops.errors import SBOMError, VulnError
from giropops.sbom.model import SBOM, Distro, Package, Subject
from giropops.vuln.db.store import VulnDB
from giropops.vuln.match import ScanResult, scan
from giropops.vuln.report.filters import Filters, Suppressed, VexStatement, apply, apply_vex
from giropops.vuln.report.view import ReportView

SBOM_SCHEME = "sbom://"
_PURL_TYPES = {"deb": "deb", "apk": "apk", "pypi": "python"}
MAX_SBOM_BYTES = 256 * 1024 * 1024


def sbom_for(spec: str) -> SBOM:
    """The SBOM of ``spec``: ``sbom://FILE`` now; images once the SBOM generator (issue 4) is merged."""
    if spec.startswith(SBOM_SCHEME):
        return read_sbom_file(Path(spec[len(SBOM_SCHEME):]))
    raise VulnError(
        f"cannot scan {spec!r}: reading images needs the SBOM generator, which is not available in this build; "
        "pass an SBOM as sbom://FILE (CycloneDX JSON)"
    )


def _prop_list(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    props = obj.get("properties", []) or []
    for p in props if isinstance(props, list) else []:
        if isinstance(p, Mapping) and isinstance(p.get("name"), str) and isinstance(p.get("value"), str):
            out.append((p["name"], p["value"]))
    return out


def _props(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(_prop_list(obj))


def read_sbom_file(path: Path) -> SBOM:
    """Interim CycloneDX JSON reader: components with purls, the OS component, and the subject."""
    try:
        if path.stat().st_size > MAX_SBOM_BYTES:
            raise SBOMError(f"{path}: SBOM larger than {MAX_SBOM_BYTES} bytes")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SBOMError(f"cannot read SBOM {path}: {exc}") from exc
    if not isinstance(doc, Mapping) or doc.get("bomFormat") != "CycloneDX":
        raise SBOMError(f"{path} is not a CycloneDX JSON document")
    meta = doc.get("metadata")
    comp_raw = meta.get("component") if isinstance(meta, Mapping) else None
    comp: Mapping[str, Any] = comp_raw if isinstance(comp_raw, Mapping) else {}
    props = _props(comp)
    size = props.get("giropops:size")
    subject = Subject(
        name=str(comp.get("name") or path.name),
        digest=props.get("giropops:digest") or (comp.get("version") if str(comp.get("version", "")).startswith(
            "sha256:") else None),
        platform=props.get("giropops:platform"),
        size=int(size) if size and size.isdigit() else None,
        diff_ids=tuple(v for k, v in _prop_list(comp) if k == "giropops:diff_id"),
        annotations={k.removeprefix("giropops:annotation:"): v for k, v in props.items()
                     if k.startswith("giropops:annotation:")},
    )
    image_config = {
        "Env": [v for k, v in _prop_list(comp) if k == "giropops:env"],
        "Labels": {k.removeprefix("giropops:label:"): v for k, v in props.items() if k.startswith("giropops:label:")},
    }
    distro: Distro | None = None
    packages: list[Package] = []
    components = doc.get("components", [])
    if not isinstance(components, list):
        raise SBOMError(f"{path}: components must be a list")
    for c in components:
        if not isinstance(c, Mapping):
            continue
        if c.get("type") == "operating-system":
            distro = Distro(id=str(c.get("name", "")).lower(), version_id=str(c.get("version", "")))
            continue
        purl_text = c.get("purl")
        if not isinstance(purl_text, str):
            continue
        try:
            purl = PackageURL.from_string(purl_text)
        except ValueError as exc:
            raise SBOMError(f"{path}: bad purl {purl_text!r}: {exc}") from exc
        kind = _PURL_TYPES.get(purl.type)
        if kind is None:
            continue
        quals = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
        upstream = quals.get("upstream")
        source_name = source_version = None
        if upstream:
            source_name, _, sv = upstream.partition("@")
            source_version = sv or None
        cprops = _props(c)
        packages.append(Package(
            name=str(c.get("name") or purl.name), version=str(c.get("version") or purl.version or ""),
            type=kind, purl=purl_text,
            source_name=cprops.get("giropops:source_name", source_name),
            source_version=cprops.get("giropops:source_version", source_version),
        ))
    return SBOM(subject, distro, tuple(packages), extra={"config": {"config": image_config}})


NO_FILTERS = Filters()


def view_for(result: ScanResult, filters: Filters = NO_FILTERS, vex: tuple[VexStatement, ...] = ()) -> ReportView:
    kept, suppressed = apply_vex(result.findings, vex, [result.sbom.subject.name])
    return ReportView(result.sbom, apply(kept, filters), tuple(s for s in suppressed if filters.keep(s.finding)),
                      result.notes)


def scan_spec(spec: str, db: VulnDB) -> ScanResult:
    return scan(sbom_for(spec), db)


__all__ = ["SBOM_SCHEME", "Suppressed", "read_sbom_file", "sbom_for", "scan_spec", "view_for"]
