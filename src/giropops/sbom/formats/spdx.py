"""SPDX 2.3 JSON: encode ours; decode ours, Trivy's and Syft's.

The image is a package (``primaryPackagePurpose: CONTAINER``) with the manifest
digest as its SHA256 checksum, which the document DESCRIBES and which CONTAINS
every other package.  ``created`` is mandatory in SPDX: without an explicit
timestamp we use the image's creation time from its config (or the epoch), so
the document stays byte-identical across runs.  Non-SPDX license names become
``LicenseRef-`` ids with their text in ``hasExtractedLicensingInfos``; the layer,
location and source package travel as package annotations (``giropops:KEY: value``,
the shape Trivy uses for its own).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from giropops.sbom import licenses as lic
from giropops.sbom.formats import (
    CREATED_ANNOTATION,
    EPOCH,
    EncodeOptions,
    content_uuid,
    decoded_package,
    default_source,
    dumps,
    ecosystem_name,
    own_licenses,
    own_locations,
    package_type,
    parse_purl,
    qualifiers,
    tool_string,
)
from giropops.sbom.model import SBOM, Distro, Location, Package, Subject

P = "giropops:"


def _spdx_id(prefix: str, *parts: str) -> str:
    h = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", parts[0] if parts else "x").strip("-")[:60] or "x"
    return f"SPDXRef-{prefix}-{slug}-{h}"


def _created(sbom: SBOM, options: EncodeOptions) -> str:
    if options.timestamp:
        return options.timestamp
    created = sbom.subject.annotations.get(CREATED_ANNOTATION, "")
    # SPDX wants YYYY-MM-DDThh:mm:ssZ; image configs often carry fractions of a second.
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?Z$", created)
    return f"{m.group(1)}Z" if m else EPOCH


def encode(sbom: SBOM, options: EncodeOptions) -> bytes:
    s = sbom.sorted()
    subj = s.subject
    created = _created(s, options)
    tool = f"Tool: {tool_string()}"

    def annotation(key: str, value: str) -> dict[str, str]:
        return {"annotationDate": created, "annotationType": "OTHER", "annotator": tool, "comment": f"{key}: {value}"}

    root_id = "SPDXRef-Image"
    root: dict[str, Any] = {
        "SPDXID": root_id,
        "name": subj.name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    }
    if subj.digest:
        root["versionInfo"] = subj.digest
        algo, _, hexpart = subj.digest.partition(":")
        if algo == "sha256":
            root["checksums"] = [{"algorithm": "SHA256", "checksumValue": hexpart}]
    root_ann = [(f"{P}image:digest", subj.digest), (f"{P}image:platform", subj.platform)]
    root_ann += [(f"{P}image:diff_id", d) for d in subj.diff_ids]
    if subj.size is not None:
        root_ann.append((f"{P}image:size", str(subj.size)))
    root_ann += [(f"{P}annotation:{k}", v) for k, v in sorted(subj.annotations.items())]
    if any(v for _, v in root_ann):
        root["annotations"] = [annotation(k, v) for k, v in root_ann if v]
    packages: list[dict[str, Any]] = [root]
    relationships: list[dict[str, str]] = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": root_id}
    ]
    extracted: dict[str, str] = {}
    if s.distro is not None:
        d = s.distro
        os_id = _spdx_id("OperatingSystem", d.id, d.version_id)
        os_pkg: dict[str, Any] = {
            "SPDXID": os_id,
            "name": d.id,
            "versionInfo": d.version_id or "NOASSERTION",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "primaryPackagePurpose": "OPERATING-SYSTEM",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
        }
        if d.pretty_name:
            os_pkg["description"] = d.pretty_name
        ann = [(f"{P}distro:codename", d.version_codename), (f"{P}distro:id_like", " ".join(d.id_like))]
        if any(v for _, v in ann):
            os_pkg["annotations"] = [annotation(k, v) for k, v in ann if v]
        packages.append(os_pkg)
        relationships.append({"spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": os_id})
    used_ids: set[str] = set()
    for p in s.packages:
        loc_key = "|".join(f"{loc.path}@{loc.layer}" for loc in p.locations)
        pid = _spdx_id("Package", f"{p.type}-{p.name}", p.version, p.arch or "", loc_key)
        n = 1
        while pid in used_ids:
            n += 1
            pid = _spdx_id("Package", f"{p.type}-{p.name}", p.version, p.arch or "", loc_key, str(n))
        used_ids.add(pid)
        declared = "NOASSERTION"
        if p.licenses:
            parts = []
            for name in p.licenses:
                expr = lic.spdx_expression(name)
                if expr is None:
                    ref = lic.license_ref(name)
                    extracted.setdefault(ref, name)
                    parts.append(ref)
                else:
                    parts.append(f"({expr})" if " " in expr else expr)
            declared = " AND ".join(parts)
        pkg: dict[str, Any] = {
            "SPDXID": pid,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "primaryPackagePurpose": "LIBRARY",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": declared,
            "copyrightText": "NOASSERTION",
        }
        if p.source_name and (p.source_name != p.name or p.source_version != p.version):
            pkg["sourceInfo"] = f"built package from: {p.source_name} {p.source_version or ''}".rstrip()
        if p.purl:
            pkg["externalRefs"] = [
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p.purl}
            ]
        ann2: list[tuple[str, str | None]] = [(f"{P}package:type", p.type)]
        for i, loc in enumerate(p.locations):
            ann2 += [(f"{P}location:{i}:path", loc.path), (f"{P}location:{i}:layer", loc.layer)]
        ann2 += [(f"{P}source:name", p.source_name), (f"{P}source:version", p.source_version), (f"{P}arch", p.arch)]
        ann2 += [(f"{P}metadata:{k}", v) for k, v in sorted(p.metadata.items())]
        # licenseDeclared holds the SPDX-normalized form; the names as the package declared them travel too
        ann2 += [(f"{P}license:{i}", name) for i, name in enumerate(p.licenses)]
        pkg["annotations"] = [annotation(k, v) for k, v in ann2 if v]
        packages.append(pkg)
        relationships.append({"spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": pid})
    doc: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": subj.name,
        "documentNamespace": f"urn:uuid:{content_uuid(s, 'spdx')}",
        "creationInfo": {"creators": [tool], "created": created},
        "packages": packages,
        "relationships": relationships,
    }
    if extracted:
        doc["hasExtractedLicensingInfos"] = [
            {"licenseId": ref, "name": name, "extractedText": name} for ref, name in sorted(extracted.items())
        ]
    return dumps(doc)


# -- decoding ------------------------------------------------------------------------------------


def _ann_map(pkg: dict[str, Any]) -> dict[str, str]:
    """``KEY: value`` annotation comments (ours and Trivy's); the first of each key wins."""
    out: dict[str, str] = {}
    for a in pkg.get("annotations") or []:
        if isinstance(a, dict) and isinstance(a.get("comment"), str):
            key, sep, value = a["comment"].partition(": ")
            if sep:
                out.setdefault(key.strip(), value.strip())
    return out


def _ann_all(pkg: dict[str, Any], key: str) -> list[str]:
    out = []
    for a in pkg.get("annotations") or []:
        if isinstance(a, dict) and isinstance(a.get("comment"), str):
            k, sep, value = a["comment"].partition(": ")
            if sep and k.strip() == key:
                out.append(value.strip())
    return out


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _purl_of(pkg: dict[str, Any]) -> str:
    for ref in pkg.get("externalRefs") or []:
        if not isinstance(ref, dict) or ref.get("referenceType") != "purl":
            continue
        if isinstance(ref.get("referenceLocator"), str):
            return str(ref["referenceLocator"])
    return ""


def _source_info(text: str) -> tuple[str | None, str | None]:
    """``built package from: NAME [VERSION]`` (what Trivy, Syft and we write in sourceInfo)."""
    prefix = "built package from:"
    if not text.startswith(prefix):
        return None, None
    parts = text[len(prefix) :].split()
    if not parts:
        return None, None
    return parts[0], parts[1] if len(parts) > 1 else None


def decode(obj: dict[str, Any]) -> SBOM:

    extracted: dict[str, str] = {}
    for e in obj.get("hasExtractedLicensingInfos") or []:
        if isinstance(e, dict) and isinstance(e.get("licenseId"), str):
            extracted[e["licenseId"]] = _str(e.get("name")) or _str(e.get("extractedText")) or e["licenseId"]
    for key in ("packages", "relationships", "hasExtractedLicensingInfos"):
        if key in obj and not isinstance(obj[key], list):
            raise ValueError(f"'{key}' must be a list")
    pkgs = [p for p in obj.get("packages") or [] if isinstance(p, dict)]
    for p in pkgs:
        for key in ("externalRefs", "annotations", "checksums"):
            if key in p and not isinstance(p[key], list):
                raise ValueError(f"package '{key}' must be a list")
    described: set[str] = set()
    for r in obj.get("relationships") or []:
        if not isinstance(r, dict) or r.get("relationshipType") != "DESCRIBES":
            continue
        if r.get("spdxElementId") == "SPDXRef-DOCUMENT":
            described.add(_str(r.get("relatedSpdxElement")))
    described.update(x for x in obj.get("documentDescribes") or [] if isinstance(x, str))
    root: dict[str, Any] = {}
    for p in pkgs:
        if p.get("SPDXID") in described or p.get("primaryPackagePurpose") == "CONTAINER":
            root = p
            break
    rann = _ann_map(root)
    digest = rann.get(f"{P}image:digest")
    if digest is None:
        for c in root.get("checksums") or []:
            if isinstance(c, dict) and c.get("algorithm") == "SHA256" and isinstance(c.get("checksumValue"), str):
                digest = f"sha256:{c['checksumValue']}"
        if digest is None and _str(root.get("versionInfo")).startswith("sha256:"):
            digest = _str(root.get("versionInfo"))
        repo_digest = rann.get("RepoDigest", "")
        if digest is None and "@" in repo_digest:
            digest = repo_digest.rsplit("@", 1)[1]
    size_text = rann.get(f"{P}image:size")
    subject = Subject(
        name=_str(root.get("name")) or _str(obj.get("name")) or "unknown",
        digest=digest,
        platform=rann.get(f"{P}image:platform"),
        size=int(size_text) if size_text and size_text.isdigit() else None,
        diff_ids=tuple(_ann_all(root, f"{P}image:diff_id") or _ann_all(root, "DiffID")),
        annotations={k[len(f"{P}annotation:") :]: v for k, v in rann.items() if k.startswith(f"{P}annotation:")},
    )
    distro: Distro | None = None
    packages: list[Package] = []
    for p in pkgs:
        if p is root:
            continue
        ann = _ann_map(p)
        if p.get("primaryPackagePurpose") == "OPERATING-SYSTEM":
            if distro is None and _str(p.get("name")):
                version = _str(p.get("versionInfo"))
                distro = Distro(
                    id=_str(p.get("name")).lower(),
                    version_id="" if version == "NOASSERTION" else version,
                    pretty_name=_str(p.get("description")),
                    id_like=tuple(ann.get(f"{P}distro:id_like", "").split()),
                    version_codename=ann.get(f"{P}distro:codename", ""),
                )
            continue
        purl_text = _purl_of(p)
        purl = parse_purl(purl_text) if purl_text else None
        if purl is None:
            continue
        ptype = ann.get(f"{P}package:type") or package_type(purl)
        name = ecosystem_name(purl, _str(p.get("name")) or purl.name)
        version = _str(p.get("versionInfo")) or (purl.version or "")
        q = qualifiers(purl)
        up_name, _, up_version = q.get("upstream", "").partition("@")
        info_name, info_version = _source_info(_str(p.get("sourceInfo")))
        source_name = ann.get(f"{P}source:name") or info_name or up_name or None
        source_version = ann.get(f"{P}source:version") or info_version or up_version or None
        source_name, source_version = default_source(ptype, name, version, source_name, source_version)
        locations = own_locations(ann)
        if not locations and (ann.get("LayerDiffID") or ann.get("FilePath")):
            path = ann.get("FilePath", "")
            locations.append(Location(path if not path or path.startswith("/") else "/" + path, ann.get("LayerDiffID")))
        declared = _str(p.get("licenseDeclared"))
        licenses = own_licenses(ann)
        if not licenses and declared and declared not in ("NOASSERTION", "NONE"):
            licenses = tuple(extracted.get(x, x) for x in lic.split_and(declared))
        packages.append(decoded_package(
            name, version, ptype, purl_text, source_name, source_version,
            ann.get(f"{P}arch") or q.get("arch") or None, licenses, tuple(locations), ann,
        ))
    creators = (obj.get("creationInfo") or {}).get("creators") or []
    tool = "unknown"
    for c in creators:
        if isinstance(c, str) and c.startswith("Tool: "):
            tool = c[len("Tool: ") :].rsplit("-", 1)[0]
            break
    return SBOM(subject, distro, tuple(packages), (), tool=tool).sorted()
