"""Our own JSON: every field of the model, nothing lost in a round trip."""

from __future__ import annotations

from typing import Any

from giropops.sbom.formats import dumps
from giropops.sbom.model import SBOM, Distro, Location, Package, Subject, Unknown

SCHEMA = "giropops-sbom/1"


def _loc(loc: Location) -> dict[str, Any]:
    return {"path": loc.path, "layer": loc.layer}


def encode(sbom: SBOM) -> bytes:
    s = sbom.sorted()
    subj = s.subject
    obj: dict[str, Any] = {
        "schema": SCHEMA,
        "tool": s.tool,
        "subject": {
            "name": subj.name,
            "digest": subj.digest,
            "platform": subj.platform,
            "size": subj.size,
            "diff_ids": list(subj.diff_ids),
            "annotations": dict(sorted(subj.annotations.items())),
        },
        "distro": None
        if s.distro is None
        else {
            "id": s.distro.id,
            "version_id": s.distro.version_id,
            "pretty_name": s.distro.pretty_name,
            "id_like": list(s.distro.id_like),
            "version_codename": s.distro.version_codename,
        },
        "packages": [
            {
                "name": p.name,
                "version": p.version,
                "type": p.type,
                "purl": p.purl,
                "source_name": p.source_name,
                "source_version": p.source_version,
                "arch": p.arch,
                "licenses": list(p.licenses),
                "locations": [_loc(loc) for loc in p.locations],
                "files": list(p.files),
                "metadata": dict(sorted(p.metadata.items())),
            }
            for p in s.packages
        ],
        "unknowns": [
            {"location": _loc(u.location), "cataloger": u.cataloger, "error": u.error} for u in s.unknowns
        ],
    }
    return dumps(obj)


def _str(v: Any, what: str, optional: bool = False) -> Any:
    if v is None and optional:
        return None
    if not isinstance(v, str):
        raise ValueError(f"{what} must be a string")
    return v


def _strs(v: Any, what: str) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"{what} must be a list of strings")
    return tuple(v)


def _strmap(v: Any, what: str) -> dict[str, str]:
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
        raise ValueError(f"{what} must map strings to strings")
    return dict(v)


def _location(v: Any) -> Location:
    return Location(_str(v["path"], "location.path"), _str(v.get("layer"), "location.layer", True))


def decode(obj: dict[str, Any]) -> SBOM:
    s = obj["subject"]
    size = s.get("size")
    if size is not None and not isinstance(size, int):
        raise ValueError("subject.size must be an integer")
    subject = Subject(
        name=_str(s["name"], "subject.name"),
        digest=_str(s.get("digest"), "subject.digest", True),
        platform=_str(s.get("platform"), "subject.platform", True),
        size=size,
        diff_ids=_strs(s.get("diff_ids", []), "subject.diff_ids"),
        annotations=_strmap(s.get("annotations", {}), "subject.annotations"),
    )
    d = obj.get("distro")
    distro = None
    if d is not None:
        distro = Distro(
            id=_str(d["id"], "distro.id"),
            version_id=_str(d.get("version_id", ""), "distro.version_id"),
            pretty_name=_str(d.get("pretty_name", ""), "distro.pretty_name"),
            id_like=_strs(d.get("id_like", []), "distro.id_like"),
            version_codename=_str(d.get("version_codename", ""), "distro.version_codename"),
        )
    packages = []
    for p in obj["packages"]:
        packages.append(
            Package(
                name=_str(p["name"], "package.name"),
                version=_str(p["version"], "package.version"),
                type=_str(p["type"], "package.type"),
                purl=_str(p.get("purl", ""), "package.purl"),
                source_name=_str(p.get("source_name"), "package.source_name", True),
                source_version=_str(p.get("source_version"), "package.source_version", True),
                arch=_str(p.get("arch"), "package.arch", True),
                licenses=_strs(p.get("licenses", []), "package.licenses"),
                locations=tuple(_location(loc) for loc in p.get("locations", [])),
                files=_strs(p.get("files", []), "package.files"),
                metadata=_strmap(p.get("metadata", {}), "package.metadata"),
            )
        )
    unknowns = [
        Unknown(_location(u["location"]), _str(u["cataloger"], "unknown.cataloger"), _str(u["error"], "unknown.error"))
        for u in obj.get("unknowns", [])
    ]
    tool = _str(obj.get("tool", "giropops"), "tool")
    return SBOM(subject, distro, tuple(packages), tuple(unknowns), tool=tool).sorted()
