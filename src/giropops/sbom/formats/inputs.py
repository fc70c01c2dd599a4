"""More SBOM inputs for ``sbom://FILE`` (issue 16): Syft's JSON, SPDX tag-value, and in-toto attestations.

* **in-toto**: a DSSE envelope (``payloadType`` ``application/vnd.in-toto+json``, base64 ``payload``) or
  a bare statement (``_type`` ``https://in-toto.io/Statement/v0.1|v1``) whose ``predicateType`` is SPDX
  (``https://spdx.dev/Document``) or CycloneDX (``https://cyclonedx.org/bom``): the predicate is the SBOM.
  What ``cosign download attestation`` prints is one envelope per line; the first SBOM one is read.
* **Syft JSON** (``descriptor.name`` ``syft``): ``artifacts`` (name, version, type, purl, locations with
  ``layerID`` = diff_id, dpkg ``source``/``sourceVersion``, apk ``originPackage``), ``distro``
  (``id``/``versionID``), ``source.metadata`` (``userInput``, ``manifestDigest``, ``layers[].digest``).
* **SPDX tag-value** (``SPDXVersion: SPDX-2.x``): read into the SPDX JSON shape and decoded as SPDX JSON is.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from giropops import jsonio
from giropops.errors import SBOMError
from giropops.sbom.formats import default_source, package_type, parse_purl
from giropops.sbom.model import SBOM, Distro, Location, Package, Subject

INTOTO_PAYLOAD = "application/vnd.in-toto+json"
SBOM_PREDICATES = {"https://spdx.dev/Document": "spdx", "https://cyclonedx.org/bom": "cyclonedx",
                   "https://cyclonedx.org/schema": "cyclonedx"}


# -- in-toto ---------------------------------------------------------------------------------------


def is_intoto(obj: Mapping[str, Any]) -> bool:
    return ("payloadType" in obj and "payload" in obj) or str(obj.get("_type", "")).startswith(
        "https://in-toto.io/Statement")


def predicate_of(obj: Mapping[str, Any], what: str) -> dict[str, Any]:
    """The SBOM an in-toto envelope or statement carries."""
    statement: Any = obj
    if "payloadType" in obj:
        if obj.get("payloadType") != INTOTO_PAYLOAD:
            raise SBOMError(f"{what}: DSSE payload type {str(obj.get('payloadType'))[:80]!r} is not in-toto")
        try:
            payload = base64.b64decode(str(obj.get("payload", "")), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SBOMError(f"{what}: DSSE payload is not base64: {exc}") from exc
        statement = jsonio.loads(payload, f"{what} (in-toto statement)", error=SBOMError)
    if not isinstance(statement, Mapping):
        raise SBOMError(f"{what}: the in-toto statement is not a JSON object")
    ptype = statement.get("predicateType")
    if ptype not in SBOM_PREDICATES:
        raise SBOMError(f"{what}: an in-toto statement of {str(ptype)[:100]!r}, not an SPDX or CycloneDX SBOM")
    predicate = statement.get("predicate")
    if isinstance(predicate, Mapping) and isinstance(predicate.get("Data"), (Mapping, str)):
        predicate = predicate["Data"]  # cosign's older wrapping of custom predicates
    if isinstance(predicate, str):
        predicate = jsonio.loads(predicate, f"{what} (predicate)", error=SBOMError)
    if not isinstance(predicate, dict):
        raise SBOMError(f"{what}: the statement's predicate is not a JSON object")
    return predicate


def first_json_line(data: bytes) -> bytes:
    """``cosign download attestation`` prints one envelope per line: the first non-empty one."""
    for line in data.splitlines():
        if line.strip():
            return line
    return data


# -- Syft ------------------------------------------------------------------------------------------


def is_syft(obj: Mapping[str, Any]) -> bool:
    descriptor = obj.get("descriptor")
    return isinstance(obj.get("artifacts"), list) and isinstance(descriptor, Mapping) and \
        descriptor.get("name") == "syft"


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def decode_syft(obj: Mapping[str, Any]) -> SBOM:
    source: Mapping[str, Any] = obj["source"] if isinstance(obj.get("source"), Mapping) else {}
    meta: Mapping[str, Any] = source["metadata"] if isinstance(source.get("metadata"), Mapping) else {}
    layers: list[Any] = meta["layers"] if isinstance(meta.get("layers"), list) else []
    subject = Subject(
        name=_s(meta.get("userInput")) or _s(source.get("name")) or "unknown",
        digest=_s(meta.get("manifestDigest")) or None,
        size=meta.get("imageSize") if isinstance(meta.get("imageSize"), int) else None,
        diff_ids=tuple(_s(layer.get("digest")) for layer in layers
                       if isinstance(layer, Mapping) and layer.get("digest")),
    )
    d = obj.get("distro")
    distro = None
    if isinstance(d, Mapping) and _s(d.get("id")):
        distro = Distro(id=_s(d.get("id")), version_id=_s(d.get("versionID")), pretty_name=_s(d.get("prettyName")),
                        id_like=tuple(x for x in d.get("idLike") or [] if isinstance(x, str)),
                        version_codename=_s(d.get("versionCodename")))
    packages = []
    for a in obj.get("artifacts", []):
        if not isinstance(a, Mapping):
            raise SBOMError("Syft JSON: an artifact is not an object")
        purl_text = _s(a.get("purl"))
        purl = parse_purl(purl_text) if purl_text else None
        if purl is None:
            continue  # no purl: nothing a matcher can use (as for SPDX and CycloneDX inputs)
        ptype = package_type(purl)
        name, version = _s(a.get("name")) or purl.name, _s(a.get("version")) or (purl.version or "")
        md: Mapping[str, Any] = a["metadata"] if isinstance(a.get("metadata"), Mapping) else {}
        src_name = _s(md.get("source")) or _s(md.get("originPackage")) or None
        src_version = _s(md.get("sourceVersion")) or None
        src_name, src_version = default_source(ptype, name, version, src_name, src_version)
        locations = tuple(Location(_s(loc.get("path")), _s(loc.get("layerID")) or None)
                          for loc in a.get("locations") or [] if isinstance(loc, Mapping) and loc.get("path"))
        licenses = tuple(_s(x.get("spdxExpression")) or _s(x.get("value")) for x in a.get("licenses") or []
                         if isinstance(x, Mapping) and (x.get("spdxExpression") or x.get("value")))
        if ptype == "python":
            from giropops.sbom.catalogers.python import normalize

            name = normalize(name)
        packages.append(Package(name=name, version=version, type=ptype, purl=purl_text, source_name=src_name,
                                source_version=src_version, arch=_s(md.get("architecture")) or None,
                                licenses=licenses, locations=locations))
    return SBOM(subject, distro, tuple(packages), tool="syft")


# -- SPDX tag-value --------------------------------------------------------------------------------


def is_spdx_tag_value(data: bytes) -> bool:
    for line in data[:4096].splitlines():
        text = line.strip()
        if not text or text.startswith(b"#"):
            continue
        return text.startswith(b"SPDXVersion:")
    return False


def _tag_values(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        tag, sep, value = line.partition(":")
        if not sep:
            raise SBOMError(f"SPDX tag-value line {i}: expected 'Tag: value', found {line[:80]!r}")
        value = value.strip()
        if value.startswith("<text>"):
            parts = [value[len("<text>"):]]
            while "</text>" not in parts[-1] and i < len(lines):
                parts.append(lines[i])
                i += 1
            value = "\n".join(parts).split("</text>", 1)[0]
        out.append((tag.strip(), value))
    return out


def spdx_tag_value_to_json(data: bytes) -> dict[str, Any]:
    """The tags ``spdx.decode`` reads, in SPDX JSON's shape."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SBOMError(f"SPDX tag-value: not UTF-8 ({exc})") from None
    doc: dict[str, Any] = {"packages": [], "relationships": []}
    pkg: dict[str, Any] | None = None
    annotation: dict[str, Any] | None = None
    for tag, value in _tag_values(text):
        if tag == "SPDXVersion":
            doc["spdxVersion"] = value
        elif tag == "DocumentName":
            doc["name"] = value
        elif tag == "Creator":
            doc.setdefault("creationInfo", {}).setdefault("creators", []).append(value)
        elif tag == "PackageName":
            pkg = {"name": value}
            doc["packages"].append(pkg)
            annotation = None
        elif tag == "Relationship":
            parts = value.split()
            if len(parts) == 3:
                doc["relationships"].append({"spdxElementId": parts[0], "relationshipType": parts[1],
                                             "relatedSpdxElement": parts[2]})
        elif tag == "SPDXID" and pkg is not None:
            pkg["SPDXID"] = value
        elif pkg is None:
            continue
        elif tag == "PackageVersion":
            pkg["versionInfo"] = value
        elif tag == "PrimaryPackagePurpose":
            pkg["primaryPackagePurpose"] = value
        elif tag == "PackageLicenseDeclared":
            pkg["licenseDeclared"] = value
        elif tag == "PackageSourceInfo":
            pkg["sourceInfo"] = value
        elif tag == "PackageComment":
            pkg["comment"] = value
        elif tag == "PackageChecksum":
            alg, _, checksum = value.partition(":")
            pkg.setdefault("checksums", []).append({"algorithm": alg.strip(), "checksumValue": checksum.strip()})
        elif tag == "ExternalRef":
            parts = value.split(None, 2)
            if len(parts) == 3:
                pkg.setdefault("externalRefs", []).append({"referenceCategory": parts[0], "referenceType": parts[1],
                                                           "referenceLocator": parts[2]})
        elif tag == "Annotator":
            annotation = {"annotator": value}
            pkg.setdefault("annotations", []).append(annotation)
        elif tag == "AnnotationComment" and annotation is not None:
            annotation["comment"] = value
    if "spdxVersion" not in doc:
        raise SBOMError("SPDX tag-value: no SPDXVersion")
    return doc
