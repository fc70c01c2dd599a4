"""CycloneDX 1.6 JSON: encode ours; decode ours, Trivy's and Syft's.

The image is ``metadata.component`` (type ``container``, version = manifest
digest); the distribution an ``operating-system`` component; each package a
``library`` with its purl, declared licenses (one SPDX expression when they all
are SPDX, names otherwise) and ``giropops:*`` properties for what CycloneDX has
no field for: the layer diff_id, the location, the source package.
"""

from __future__ import annotations

from giropops.sbom import licenses as lic
from giropops.sbom.formats import (
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
)
from giropops.sbom.model import SBOM, Distro, Location, Package, Subject

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from typing import Any

SCHEMA_URL = "http://cyclonedx.org/schema/bom-1.6.schema.json"
P = "giropops:"


def _props(pairs: list[tuple[str, str | None]]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in pairs if v]


def _licenses(values: tuple[str, ...]) -> list[dict[str, Any]]:
    expr = lic.combined(values)
    if expr is not None:
        return [{"expression": expr}]
    return [{"license": {"name": v}} for v in values]


def encode(sbom: SBOM, options: EncodeOptions) -> bytes:
    from giropops import __version__

    s = sbom.sorted()
    subj = s.subject
    root_ref = "image"
    root: dict[str, Any] = {"bom-ref": root_ref, "type": "container", "name": subj.name}
    if subj.digest:
        root["version"] = subj.digest
    root_props = [(f"{P}image:digest", subj.digest), (f"{P}image:platform", subj.platform)]
    root_props += [(f"{P}image:diff_id", d) for d in subj.diff_ids]
    if subj.size is not None:
        root_props.append((f"{P}image:size", str(subj.size)))
    root_props += [(f"{P}annotation:{k}", v) for k, v in sorted(subj.annotations.items())]
    root["properties"] = _props(root_props)
    metadata: dict[str, Any] = {}
    if options.timestamp:
        metadata["timestamp"] = options.timestamp
    metadata["tools"] = {"components": [{"type": "application", "name": "giropops", "version": __version__}]}
    metadata["component"] = root
    components: list[dict[str, Any]] = []
    refs: list[str] = []
    if s.distro is not None:
        d = s.distro
        os_ref = f"os:{d.id}@{d.version_id}" if d.version_id else f"os:{d.id}"
        comp: dict[str, Any] = {"bom-ref": os_ref, "type": "operating-system", "name": d.id}
        if d.version_id:
            comp["version"] = d.version_id
        if d.pretty_name:
            comp["description"] = d.pretty_name
        comp["properties"] = _props(
            [(f"{P}distro:codename", d.version_codename), (f"{P}distro:id_like", " ".join(d.id_like))]
        )
        if not comp["properties"]:
            del comp["properties"]
        components.append(comp)
        refs.append(os_ref)
    seen: dict[str, int] = {}
    for p in s.packages:
        base = p.purl or f"{p.type}:{p.name}@{p.version}"
        n = seen.get(base, 0)
        seen[base] = n + 1
        ref = base if n == 0 else f"{base}#{n}"
        comp = {"bom-ref": ref, "type": "library", "name": p.name, "version": p.version}
        if p.licenses:
            comp["licenses"] = _licenses(p.licenses)
        if p.purl:
            comp["purl"] = p.purl
        props: list[tuple[str, str | None]] = [(f"{P}package:type", p.type)]
        for i, loc in enumerate(p.locations):
            props += [(f"{P}location:{i}:path", loc.path), (f"{P}location:{i}:layer", loc.layer)]
        props += [(f"{P}source:name", p.source_name), (f"{P}source:version", p.source_version), (f"{P}arch", p.arch)]
        props += [(f"{P}metadata:{k}", v) for k, v in sorted(p.metadata.items())]
        # "licenses" holds the SPDX-normalized expression; the names as the package declared them travel too
        props += [(f"{P}license:{i}", name) for i, name in enumerate(p.licenses)]
        comp["properties"] = _props(props)
        components.append(comp)
        refs.append(ref)
    doc: dict[str, Any] = {
        "$schema": SCHEMA_URL,
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{content_uuid(s, 'cyclonedx')}",
        "version": 1,
        "metadata": metadata,
        "components": components,
        "dependencies": [{"ref": root_ref, "dependsOn": refs}] + [{"ref": r} for r in refs],
    }
    return dumps(doc)


# -- decoding ------------------------------------------------------------------------------------


def _prop_map(obj: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in obj.get("properties") or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("value"), str):
            out.setdefault(item["name"], item["value"])
    return out


def _walk(components: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stack = list(reversed(components)) if isinstance(components, list) else []
    while stack:
        c = stack.pop()
        if not isinstance(c, dict):
            continue
        out.append(c)
        nested = c.get("components")
        if isinstance(nested, list):
            stack.extend(reversed(nested))
    return out


def _decode_licenses(value: Any) -> tuple[str, ...]:
    out: list[str] = []
    for item in value or []:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("expression"), str):
            out.extend(lic.split_and(item["expression"]))
            continue
        license_obj = item.get("license")
        if isinstance(license_obj, dict):
            v = license_obj.get("id") or license_obj.get("name")
            if isinstance(v, str) and v:
                out.append(v)
    return tuple(out)


def _trivy_source_version(props: dict[str, str]) -> str | None:
    version = props.get("aquasecurity:trivy:SrcVersion")
    if not version:
        return None
    release = props.get("aquasecurity:trivy:SrcRelease")
    epoch = props.get("aquasecurity:trivy:SrcEpoch")
    full = f"{version}-{release}" if release else version
    return f"{epoch}:{full}" if epoch and epoch != "0" else full


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def decode(obj: dict[str, Any]) -> SBOM:

    for key, kind in (("components", list), ("metadata", dict), ("dependencies", list)):
        if key in obj and not isinstance(obj[key], kind):
            raise ValueError(f"'{key}' must be a{'n object' if kind is dict else ' list'}")
    for c in _walk(obj.get("components")):
        for key in ("properties", "licenses", "components"):
            if key in c and not isinstance(c[key], list):
                raise ValueError(f"component '{key}' must be a list")
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    root = metadata.get("component") if isinstance(metadata.get("component"), dict) else {}
    assert isinstance(root, dict)
    rprops = _prop_map(root)
    digest = rprops.get(f"{P}image:digest")
    if digest is None:
        repo_digest = rprops.get("aquasecurity:trivy:RepoDigest", "")
        if "@" in repo_digest:
            digest = repo_digest.rsplit("@", 1)[1]
        elif _str(root.get("version")).startswith("sha256:"):
            digest = _str(root.get("version"))
    size_text = rprops.get(f"{P}image:size") or rprops.get("aquasecurity:trivy:Size")
    diff_ids = [i["value"] for i in root.get("properties") or [] if isinstance(i, dict) and i.get("name") in (
        f"{P}image:diff_id", "aquasecurity:trivy:DiffID") and isinstance(i.get("value"), str)]
    annotations = {k[len(f"{P}annotation:") :]: v for k, v in rprops.items() if k.startswith(f"{P}annotation:")}
    subject = Subject(
        name=_str(root.get("name")) or "unknown",
        digest=digest,
        platform=rprops.get(f"{P}image:platform"),
        size=int(size_text) if size_text and size_text.isdigit() else None,
        diff_ids=tuple(diff_ids),
        annotations=annotations,
    )
    distro: Distro | None = None
    packages: list[Package] = []
    for c in _walk(obj.get("components")):
        ctype = c.get("type")
        props = _prop_map(c)
        if ctype == "operating-system":
            if distro is None and _str(c.get("name")):
                distro = Distro(
                    id=_str(c.get("name")).lower(),
                    version_id=_str(c.get("version")),
                    pretty_name=_str(c.get("description")),
                    id_like=tuple(props.get(f"{P}distro:id_like", "").split()),
                    version_codename=props.get(f"{P}distro:codename", ""),
                )
            continue
        purl_text = _str(c.get("purl"))
        purl = parse_purl(purl_text) if purl_text else None
        if purl is None:
            continue  # files, applications without a package URL: not packages we can match
        ptype = props.get(f"{P}package:type") or package_type(purl)
        name = ecosystem_name(purl, _str(c.get("name")) or purl.name)
        version = _str(c.get("version")) or (purl.version or "")
        q = qualifiers(purl)
        upstream = q.get("upstream", "")
        up_name, _, up_version = upstream.partition("@")
        source_name = props.get(f"{P}source:name") or props.get("aquasecurity:trivy:SrcName") or up_name or None
        source_version = (
            props.get(f"{P}source:version") or _trivy_source_version(props) or up_version or None
        )
        source_name, source_version = default_source(ptype, name, version, source_name, source_version)
        locations = own_locations(props)
        if not locations:
            layer = props.get("aquasecurity:trivy:LayerDiffID") or props.get("syft:location:0:layerID")
            path = props.get("aquasecurity:trivy:FilePath") or props.get("syft:location:0:path") or ""
            if layer or path:
                locations.append(Location(path if not path or path.startswith("/") else "/" + path, layer))
        packages.append(decoded_package(
            name, version, ptype, purl_text, source_name, source_version,
            props.get(f"{P}arch") or q.get("arch") or None,
            own_licenses(props) or _decode_licenses(c.get("licenses")), tuple(locations), props,
        ))
    tools = metadata.get("tools")
    tool = "unknown"
    if isinstance(tools, dict) and isinstance(tools.get("components"), list) and tools["components"]:
        first = tools["components"][0]
        if isinstance(first, dict):
            tool = _str(first.get("name")) or tool
    elif isinstance(tools, list) and tools and isinstance(tools[0], dict):
        tool = _str(tools[0].get("name")) or tool
    return SBOM(subject, distro, tuple(packages), (), tool=tool).sorted()
