"""apk: ``/lib/apk/db/installed`` (Alpine, Wolfi, Chainguard).

One block per package, one ``K:value`` line per field: ``P`` name, ``V`` version,
``A`` architecture, ``o`` origin (the source package advisories are keyed by),
``L`` license, ``F`` a directory and the ``R`` files in it that the package owns.
"""

from __future__ import annotations

from giropops.sbom.catalogers import CatalogResult, attribute_layers
from giropops.sbom.distro import purl_distro
from giropops.sbom.filesystem import Resolver
from giropops.sbom.model import Distro, Location, Package
from giropops.sbom.purl import purl as make_purl

NAME = "apk"
INSTALLED = "lib/apk/db/installed"


class ApkRecord:
    __slots__ = ("error", "fields", "files", "line")

    def __init__(self, line: int) -> None:
        self.line = line
        self.fields: dict[str, str] = {}
        self.files: list[str] = []
        self.error: str | None = None


def parse_installed(text: str) -> list[ApkRecord]:
    out: list[ApkRecord] = []
    rec: ApkRecord | None = None
    directory = ""
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line:
            if rec is not None:
                out.append(rec)
            rec, directory = None, ""
            continue
        if rec is None:
            rec = ApkRecord(n)
        if len(line) < 2 or line[1] != ":":
            rec.error = rec.error or f"line {n}: not a 'K:value' line"
            continue
        key, value = line[0], line[2:]
        if key == "F":
            directory = value.strip("/")
        elif key == "R":
            rec.files.append(f"/{directory}/{value}" if directory else f"/{value}")
        elif key not in rec.fields:
            rec.fields[key] = value
    if rec is not None:
        out.append(rec)
    return out


class ApkCataloger:
    name = NAME
    globs = (INSTALLED,)

    def catalog(self, resolver: Resolver, distro: Distro | None) -> CatalogResult:
        result = CatalogResult()
        location = resolver.location(INSTALLED)
        data = result.read_metadata(resolver, INSTALLED, NAME)
        if data is None:
            return result
        records = parse_installed(data.decode("utf-8", "replace"))
        good: list[ApkRecord] = []
        for r in records:
            if r.error is not None:
                result.unknown(location, NAME, f"record at line {r.line}: {r.error}")
            elif not r.fields.get("P") or not r.fields.get("V"):
                result.unknown(location, NAME, f"record at line {r.line}: no P (name) or V (version)")
            else:
                good.append(r)
        if not records and data.strip():
            result.unknown(location, NAME, "no package records found")
        history = [
            (
                layer,
                {
                    (r.fields.get("P", ""), r.fields.get("V", ""))
                    for r in parse_installed(old.decode("utf-8", "replace"))
                },
            )
            for layer, old in resolver.history(INSTALLED)
        ]
        layers = attribute_layers(history, [(r.fields["P"], r.fields["V"]) for r in good])
        namespace = distro.id if distro is not None and distro.id else "alpine"
        for r in good:
            f = r.fields
            name, version = f["P"], f["V"]
            arch = f.get("A") or None
            qualifiers: dict[str, str] = {}
            if arch:
                qualifiers["arch"] = arch
            d = purl_distro(distro)
            if d:
                qualifiers["distro"] = d
            if f.get("o") and f["o"] != name:
                qualifiers["upstream"] = f["o"]
            metadata = {k: f[c] for c, k in (("T", "description"), ("U", "url"), ("c", "commit")) if f.get(c)}
            result.packages.append(
                Package(
                    name=name,
                    version=version,
                    type="apk",
                    purl=make_purl("apk", name, version, namespace, qualifiers),
                    source_name=f.get("o") or name,
                    source_version=version,
                    arch=arch,
                    licenses=(f["L"],) if f.get("L") else (),
                    locations=(Location(location.path, layers.get((name, version), location.layer)),),
                    files=tuple(r.files),
                    metadata=metadata,
                )
            )
        return result
