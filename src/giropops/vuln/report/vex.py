"""VEX documents in the three formats in use, read into one statement type (``filters.VexStatement``).

* **OpenVEX** (https://openvex.dev, v0.2.0): every status — ``not_affected``, ``fixed``, ``affected``,
  ``under_investigation`` — with its justification and impact statement (``filters.load_openvex``).
* **CSAF 2.0 VEX** (https://docs.oasis-open.org/csaf/csaf/v2.0/, profile ``csaf_vex``): each
  vulnerability's ``cve`` (or ``ids``) and its ``product_status`` lists; product ids resolve through the
  ``product_tree`` (``full_product_names``, ``branches``, ``relationships``) to the purls of their
  ``product_identification_helper``; justifications from ``flags[].label``, impact statements from
  ``threats[category=impact]``.  known_not_affected → not_affected; fixed / first_fixed → fixed;
  known_affected / first_affected / last_affected → affected; under_investigation.
* **CycloneDX VEX** (https://cyclonedx.org/capabilities/vex/): ``vulnerabilities[]`` with ``analysis``;
  ``affects[].ref`` resolves to a component's purl (or is a purl).  not_affected / false_positive →
  not_affected; resolved / resolved_with_pedigree → fixed; exploitable → affected; in_triage →
  under_investigation.

What the statuses do is ``filters.apply_vex``'s business: not_affected and fixed suppress a finding,
affected and under_investigation annotate it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from giropops import jsonio
from giropops.errors import GiropopsWarning, VulnError
from giropops.vuln.report.filters import VexStatement, parse_openvex

_CSAF_STATUS = {"known_not_affected": "not_affected", "fixed": "fixed", "first_fixed": "fixed",
                "known_affected": "affected", "first_affected": "affected", "last_affected": "affected",
                "under_investigation": "under_investigation"}
_CDX_STATE = {"not_affected": "not_affected", "false_positive": "not_affected", "resolved": "fixed",
              "resolved_with_pedigree": "fixed", "exploitable": "affected", "in_triage": "under_investigation"}
MAX_VEX_BYTES = 64 * 1024 * 1024


def _read(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_VEX_BYTES:
            raise VulnError(f"VEX document {path} is larger than {MAX_VEX_BYTES} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise VulnError(f"cannot read VEX document {path}: {exc.strerror}") from exc
    return jsonio.loads(data, f"VEX document {path}", error=VulnError)


def kind_of(doc: Any) -> str | None:
    """"openvex", "csaf" or "cyclonedx"; None for anything else."""
    if not isinstance(doc, Mapping):
        return None
    if str(doc.get("@context", "")).startswith("https://openvex.dev/ns"):
        return "openvex"
    document = doc.get("document")
    if isinstance(document, Mapping) and document.get("category") == "csaf_vex":
        return "csaf"
    if doc.get("bomFormat") == "CycloneDX" and isinstance(doc.get("vulnerabilities"), list):
        return "cyclonedx"
    return None


def load_vex(path: Path) -> list[VexStatement]:
    """The statements of one VEX document in any of the three formats; a VulnError when it is none."""
    doc = _read(path)
    kind = kind_of(doc)
    if kind == "openvex":
        return parse_openvex(doc, path)
    if kind == "csaf":
        return _csaf(doc, path)
    if kind == "cyclonedx":
        return _cyclonedx(doc, path)
    raise VulnError(f"{path} is not a VEX document: not an OpenVEX document, nor CSAF 2.0 csaf_vex, "
                    "nor CycloneDX with vulnerabilities")


def load_vex_dir(directory: Path) -> list[VexStatement]:
    """Every VEX document under ``directory`` (``*.json``, recursively, in name order); other JSON files are
    passed over with a warning."""
    if not directory.is_dir():
        raise VulnError(f"--vex-location {directory}: not a directory")
    out: list[VexStatement] = []
    for path in sorted(directory.rglob("*.json")):
        if not path.is_file():
            continue
        doc = _read(path)
        kind = kind_of(doc)
        if kind is None:
            warnings.warn(f"{path}: not a VEX document, passed over", GiropopsWarning, stacklevel=2)
            continue
        out += parse_openvex(doc, path) if kind == "openvex" else _csaf(doc, path) if kind == "csaf" \
            else _cyclonedx(doc, path)
    return out


# -- CSAF ------------------------------------------------------------------------------------------


def _csaf_products(tree: Any) -> dict[str, list[str]]:
    """product_id -> the purls (or names, when no purl) that identify it."""
    out: dict[str, list[str]] = {}

    def add(fpn: Any) -> None:
        if not isinstance(fpn, Mapping) or not isinstance(fpn.get("product_id"), str):
            return
        helper = fpn.get("product_identification_helper")
        ids: list[str] = []
        if isinstance(helper, Mapping):
            if isinstance(helper.get("purl"), str):
                ids.append(helper["purl"])
            ids += [p for p in helper.get("purls", []) or [] if isinstance(p, str)]
        if not ids and isinstance(fpn.get("name"), str):
            ids.append(fpn["name"])
        out.setdefault(fpn["product_id"], []).extend(ids)

    def walk(branches: Any, depth: int = 0) -> Iterator[Any]:
        if depth > 32 or not isinstance(branches, list):
            return
        for b in branches:
            if isinstance(b, Mapping):
                if "product" in b:
                    yield b["product"]
                yield from walk(b.get("branches"), depth + 1)

    if not isinstance(tree, Mapping):
        return out
    for fpn in tree.get("full_product_names", []) or []:
        add(fpn)
    for fpn in walk(tree.get("branches")):
        add(fpn)
    for rel in tree.get("relationships", []) or []:
        if isinstance(rel, Mapping):
            fpn = rel.get("full_product_name")
            ref = rel.get("product_reference")
            if isinstance(fpn, Mapping) and isinstance(fpn.get("product_id"), str) and isinstance(ref, str):
                out.setdefault(fpn["product_id"], []).extend(out.get(ref, []))
    return out


def _csaf(doc: Mapping[str, Any], path: Path) -> list[VexStatement]:
    products = _csaf_products(doc.get("product_tree"))
    vulns = doc.get("vulnerabilities")
    if not isinstance(vulns, list):
        raise VulnError(f"{path}: a CSAF VEX document needs a 'vulnerabilities' list")
    out: list[VexStatement] = []
    for i, v in enumerate(vulns):
        if not isinstance(v, Mapping):
            raise VulnError(f"{path}: vulnerabilities[{i}] is not an object")
        names = [v["cve"]] if isinstance(v.get("cve"), str) else []
        names += [x["text"] for x in v.get("ids", []) or []
                  if isinstance(x, Mapping) and isinstance(x.get("text"), str)]
        if not names:
            raise VulnError(f"{path}: vulnerabilities[{i}] names no vulnerability (no 'cve' or 'ids')")
        justification: dict[str, str] = {}
        for flag in v.get("flags", []) or []:
            if isinstance(flag, Mapping) and isinstance(flag.get("label"), str):
                for pid in flag.get("product_ids", []) or []:
                    justification[str(pid)] = flag["label"]
        impact: dict[str, str] = {}
        for threat in v.get("threats", []) or []:
            if (isinstance(threat, Mapping) and threat.get("category") == "impact"
                    and isinstance(threat.get("details"), str)):
                for pid in threat.get("product_ids", []) or []:
                    impact[str(pid)] = threat["details"]
        status_lists = v.get("product_status")
        if not isinstance(status_lists, Mapping):
            continue
        for key, status in _CSAF_STATUS.items():
            for pid in status_lists.get(key, []) or []:
                pid = str(pid)
                identified = tuple(products.get(pid, []))
                if not identified:
                    raise VulnError(f"{path}: vulnerabilities[{i}]: product {pid!r} is not in the product_tree")
                out.append(VexStatement(names[0], tuple(names[1:]), identified, status, justification.get(pid),
                                        impact.get(pid), str(path)))
    return out


# -- CycloneDX -------------------------------------------------------------------------------------


def _cdx_refs(doc: Mapping[str, Any]) -> dict[str, str]:
    refs: dict[str, str] = {}

    def walk(components: Any, depth: int = 0) -> None:
        if depth > 32 or not isinstance(components, list):
            return
        for c in components:
            if isinstance(c, Mapping):
                if isinstance(c.get("bom-ref"), str) and isinstance(c.get("purl"), str):
                    refs[c["bom-ref"]] = c["purl"]
                walk(c.get("components"), depth + 1)

    walk(doc.get("components"))
    meta = doc.get("metadata")
    if isinstance(meta, Mapping):
        walk([meta.get("component")])
    return refs


def _cyclonedx(doc: Mapping[str, Any], path: Path) -> list[VexStatement]:
    refs = _cdx_refs(doc)
    out: list[VexStatement] = []
    for i, v in enumerate(doc.get("vulnerabilities", [])):
        if not isinstance(v, Mapping) or not isinstance(v.get("id"), str):
            raise VulnError(f"{path}: vulnerabilities[{i}] has no id")
        analysis = v.get("analysis")
        if not isinstance(analysis, Mapping) or analysis.get("state") not in _CDX_STATE:
            continue  # no analysis: a plain finding, not a VEX statement
        products = []
        for a in v.get("affects", []) or []:
            ref = a.get("ref") if isinstance(a, Mapping) else None
            if isinstance(ref, str):
                products.append(refs.get(ref, ref))
        if not products:
            raise VulnError(f"{path}: vulnerabilities[{i}] ({v['id']}) affects no component")
        aliases = tuple(r["id"] for r in v.get("references", []) or []
                        if isinstance(r, Mapping) and isinstance(r.get("id"), str))
        just = analysis.get("justification")
        detail = analysis.get("detail")
        out.append(VexStatement(v["id"], aliases, tuple(products), _CDX_STATE[analysis["state"]],
                                just if isinstance(just, str) else None, detail if isinstance(detail, str) else None,
                                str(path)))
    return out
