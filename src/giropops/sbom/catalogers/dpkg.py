"""dpkg: ``/var/lib/dpkg/status`` and distroless's ``/var/lib/dpkg/status.d/*``.

Debian advisories are keyed by *source* package, so each package keeps the
``Source:`` field's name and its optional ``(version)`` (binNMUs and packages
like ``libgcc-s1`` built from ``gcc-12`` differ from their binary version).  The
files a package owns come from ``/var/lib/dpkg/info/<name>[:arch].list`` when the
image kept them (distroless does not); declared licenses from the DEP-5
``License:`` fields of ``/usr/share/doc/<name>/copyright``, or the
``/usr/share/common-licenses/X`` it points to, when the file is there.
"""

from __future__ import annotations

import re

from giropops.record import record
from giropops.sbom.catalogers import CatalogResult, attribute_layers
from giropops.sbom.distro import purl_distro
from giropops.sbom.filesystem import Resolver
from giropops.sbom.model import Distro, Location, Package
from giropops.sbom.purl import purl as make_purl

NAME = "dpkg"
STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d/*"
INFO_LIST = "var/lib/dpkg/info/*.list"
COPYRIGHT = "usr/share/doc/*/copyright"

_SOURCE = re.compile(r"^(\S+)(?:\s*\((\S+)\))?\s*$")
_COMMON_LICENSE = re.compile(r"/usr/share/common-licenses/([A-Za-z0-9][A-Za-z0-9.+_-]*)")


@record(frozen=False)
class Paragraph:
    fields: dict[str, str]
    line: int  # 1-based line where the paragraph starts
    error: str | None = None


def parse_deb822(text: str) -> list[Paragraph]:
    """Control-file paragraphs; a malformed line marks its paragraph as bad instead of raising."""
    out: list[Paragraph] = []
    current: Paragraph | None = None
    key: str | None = None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if current is not None:
                out.append(current)
            current, key = None, None
            continue
        if current is None:
            current = Paragraph({}, n)
        if line[0] in " \t":
            if key is None:
                current.error = current.error or f"line {n}: continuation line outside a field"
                continue
            current.fields[key] += "\n" + line[1:]
            continue
        k, sep, v = line.partition(":")
        if not sep or not k.strip() or " " in k.strip():
            current.error = current.error or f"line {n}: not a 'Field: value' line"
            key = None
            continue
        key = k.strip()
        current.fields[key] = v.strip()
    if current is not None:
        out.append(current)
    return out


def _installed(fields: dict[str, str]) -> bool:
    status = fields.get("Status")
    if status is None:
        return True  # status.d paragraphs (distroless) carry no Status: they are installed
    words = status.split()
    return len(words) == 3 and words[2] == "installed"


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# "License:" and the rest of its line, a line as ``str.splitlines`` cuts them (the regular expression
# finds the literal in C; the match counts when it starts a line: the first character or one after
# any of those line boundaries)
_BOUNDARIES = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_LICENSE_LINE = re.compile(f"License:([^{_BOUNDARIES}]*)")


def copyright_licenses(text: str) -> tuple[str, ...]:
    found: list[str] = []
    if text.lstrip().startswith("Format:") or "\nLicense:" in text:
        for m in _LICENSE_LINE.finditer(text):
            at = m.start()
            if at and text[at - 1] not in _BOUNDARIES:
                continue  # inside a line
            value = m.group(1).strip()
            if value and value not in found:
                found.append(value)
    if not found:
        for m in _COMMON_LICENSE.finditer(text):
            name = m.group(1).rstrip(".")
            if name and name not in found:
                found.append(name)
    return tuple(found)


class DpkgCataloger:
    name = NAME
    globs = (STATUS, STATUS_D, INFO_LIST, COPYRIGHT)

    def catalog(self, resolver: Resolver, distro: Distro | None) -> CatalogResult:
        result = CatalogResult()
        sources: list[str] = []
        if resolver.read(STATUS) is not None or resolver.oversized(STATUS) is not None:
            sources.append(STATUS)
        sources.extend(p for p in resolver.glob(STATUS_D) if not p.endswith(".md5sums"))
        for path in sources:
            self._catalog_file(resolver, distro, path, result)
        return result

    def _records(self, data: bytes, parsed_data: bytes, parsed: list[Paragraph]) -> list[Paragraph]:
        """The installed paragraphs of ``data``; ``parsed``: those of ``parsed_data`` (the current file,
        most often the only one in its history: not parsed twice)."""
        paragraphs = parsed if data == parsed_data else parse_deb822(_decode(data))
        return [p for p in paragraphs if p.error is None and _installed(p.fields)]

    def _catalog_file(self, resolver: Resolver, distro: Distro | None, path: str, result: CatalogResult) -> None:
        location = resolver.location(path)
        data = result.read_metadata(resolver, path, NAME)
        if data is None:
            return
        paragraphs = parse_deb822(_decode(data))
        good: list[Paragraph] = []
        for p in paragraphs:
            if p.error is not None:
                result.unknown(location, NAME, f"paragraph at line {p.line}: {p.error}")
            elif not p.fields.get("Package") or not p.fields.get("Version"):
                result.unknown(location, NAME, f"paragraph at line {p.line}: no Package or Version field")
            elif _installed(p.fields):
                good.append(p)
        if not good and not paragraphs and data.strip():
            result.unknown(location, NAME, "no control paragraphs found")
        history = [
            (layer, {(q.fields.get("Package", ""), q.fields.get("Version", ""))
                     for q in self._records(old, data, paragraphs)})
            for layer, old in resolver.history(path)
        ]
        layers = attribute_layers(history, [(p.fields["Package"], p.fields["Version"]) for p in good])
        for p in good:
            pkg = self._package(resolver, distro, p.fields, location, layers)
            result.packages.append(pkg)

    def _package(
        self,
        resolver: Resolver,
        distro: Distro | None,
        f: dict[str, str],
        location: Location,
        layers: dict[tuple[str, str], str | None],
    ) -> Package:
        name, version = f["Package"], f["Version"]
        arch = f.get("Architecture") or None
        source_name, source_version = name, version
        m = _SOURCE.match(f.get("Source", "").strip())
        if m:
            source_name = m.group(1)
            if m.group(2):
                source_version = m.group(2)
        files: tuple[str, ...] = ()
        candidates = [f"var/lib/dpkg/info/{name}:{arch}.list", f"var/lib/dpkg/info/{name}.list"] if arch else []
        candidates.append(f"var/lib/dpkg/info/{name}.list")
        for lst in candidates:
            listed = resolver.read(lst)
            if listed is not None:
                files = tuple([line for line in _decode(listed).splitlines() if line.startswith("/") and line != "/."])
                break
        licenses: tuple[str, ...] = ()
        copyright_text = resolver.read(f"usr/share/doc/{name}/copyright")
        if copyright_text is not None:
            licenses = copyright_licenses(_decode(copyright_text))
        namespace = distro.id if distro is not None and distro.id else "debian"
        qualifiers: dict[str, str] = {}
        if arch:
            qualifiers["arch"] = arch
        d = purl_distro(distro)
        if d:
            qualifiers["distro"] = d
        if source_name != name or source_version != version:
            qualifiers["upstream"] = source_name if source_version == version else f"{source_name}@{source_version}"
        purl = make_purl("deb", name, version, namespace, qualifiers)
        metadata: dict[str, str] = {}
        for key, meta in (("Maintainer", "maintainer"), ("Installed-Size", "installed_size")):
            if f.get(key):
                metadata[meta] = f[key]
        return Package(
            name=name,
            version=version,
            type="deb",
            purl=purl,
            source_name=source_name,
            source_version=source_version,
            arch=arch,
            licenses=licenses,
            locations=(Location(location.path, layers.get((name, version), location.layer)),),
            files=files,
            metadata=metadata,
        )
