"""Java: ``.jar``, ``.war``, ``.ear`` (and Jenkins' ``.jpi``/``.hpi``) archives, nested ones included.

While the layer streams, the ``JarExtractor`` opens each archive and keeps, for it
and for every archive inside it (Spring Boot's ``BOOT-INF/lib``, ``WEB-INF/lib``,
an ear's modules...), the ``META-INF/maven/*/*/pom.properties`` files and the main
section of ``META-INF/MANIFEST.MF``.  Each archive's packages come from its
``pom.properties`` (``groupId:artifactId`` at ``version``); an archive with none
falls back to its manifest when that names a group, an artifact and a version.

Archives are hostile until read: nesting stops at ``MAX_DEPTH``, a nested
archive is inflated to at most ``MAX_NESTED_BYTES`` and one top-level archive to
``MAX_TOTAL_BYTES`` all together (zip bombs), a metadata entry to
``MAX_META_BYTES``; entry sizes in the zip headers are never trusted.  A broken
archive is an Unknown at its path (``outer.jar!/BOOT-INF/lib/inner.jar``).
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

from giropops.sbom.catalogers import CatalogResult, LockfileCataloger, derived, read_derived
from giropops.sbom.filesystem import Resolver
from giropops.sbom.model import Distro, Location, Package
from giropops.sbom.purl import purl as make_purl

if TYPE_CHECKING:  # zipfile (and threading with it) is imported when a jar is read, not on every run
    import zipfile

NAME = "java-archive"
KIND = "jar"
SUFFIXES = (".jar", ".war", ".ear", ".jpi", ".hpi")
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024
MAX_DEPTH = 4
MAX_NESTED_BYTES = 128 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_META_BYTES = 256 * 1024
MAX_ENTRIES = 200_000
_POM = re.compile(r"^META-INF/maven/[^/]+/[^/]+/pom\.properties$")


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_TOTAL_BYTES


class _TooBig(Exception):
    pass


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, budget: _Budget) -> bytes:
    """An entry's bytes, never more than ``limit`` nor what is left of the budget, whatever its header says."""
    cap = min(limit, budget.left)
    with zf.open(info) as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise _TooBig(f"{info.filename}: inflates to more than {cap} bytes")
    budget.left -= len(data)
    return data


def parse_properties(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        m = re.match(r"^([^=:\s]+)\s*[=:]\s*(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of a manifest (up to the first blank line), continuation lines joined."""
    out: dict[str, str] = {}
    key: str | None = None
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            break
        if line.startswith(" ") and key is not None:
            out[key] += line[1:]
            continue
        k, sep, v = line.partition(":")
        if sep:
            key = k.strip()
            out[key] = v.strip()
    return out


def _archive(data: bytes | bytearray, path: str, depth: int, budget: _Budget, out: list[dict[str, Any]]) -> None:
    import zipfile

    record: dict[str, Any] = {"path": path, "poms": [], "manifest": {}}
    out.append(record)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        record["error"] = f"not a readable zip archive: {exc}"
        return
    try:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            record["error"] = f"more than {MAX_ENTRIES} entries"
            return
        nested: list[zipfile.ZipInfo] = []
        for info in infos:
            name = info.filename
            if info.is_dir():
                continue
            if _POM.match(name):
                props = parse_properties(_read(zf, info, MAX_META_BYTES, budget).decode("utf-8", "replace"))
                record["poms"].append({k: props.get(k, "") for k in ("groupId", "artifactId", "version")})
            elif name.upper() == "META-INF/MANIFEST.MF":
                text = _read(zf, info, MAX_META_BYTES, budget).decode("utf-8", "replace")
                record["manifest"] = {k: v[:300] for k, v in parse_manifest(text).items()}
            elif name.lower().endswith(SUFFIXES):
                nested.append(info)
        for info in nested:
            inner = f"{path}!/{info.filename}"
            if depth + 1 >= MAX_DEPTH:
                out.append({"path": inner, "poms": [], "manifest": {}, "error": f"nested deeper than {MAX_DEPTH}"})
                continue
            try:
                blob = _read(zf, info, MAX_NESTED_BYTES, budget)
            except _TooBig as exc:
                out.append({"path": inner, "poms": [], "manifest": {}, "error": str(exc)})
                continue
            _archive(blob, inner, depth + 1, budget, out)
    except _TooBig as exc:
        record["error"] = str(exc)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        record["error"] = f"broken zip entry: {str(exc)[:200]}"
    except Exception as exc:  # noqa: BLE001 - zlib/lzma/bz2 raise their own on hostile data
        record["error"] = f"broken zip entry: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        zf.close()


def extract(data: bytes | bytearray) -> bytes:
    archives: list[dict[str, Any]] = []
    _archive(data, "", 0, _Budget(), archives)
    return derived(KIND, {"archives": archives})


class JarExtractor:
    name = "jar"
    version = "1"
    max_bytes = MAX_ARCHIVE_BYTES

    def wants(self, path: str, mode: int) -> bool:
        return path.lower().endswith(SUFFIXES)

    def extract(self, data: bytes | bytearray) -> bytes | None:
        return extract(data)


def maven_purl(group: str, artifact: str, version: str) -> str:
    return make_purl(ptype="maven", namespace=group, name=artifact, version=version)


def from_manifest(manifest: dict[str, str]) -> tuple[str, str, str] | None:
    """(groupId, artifactId, version) when the manifest says all three."""
    symbolic = manifest.get("Bundle-SymbolicName", "").split(";")[0].strip()
    group = manifest.get("Implementation-Vendor-Id", "").strip()
    artifact = (manifest.get("Implementation-Title") or manifest.get("Specification-Title") or "").strip()
    version = (
        manifest.get("Implementation-Version")
        or manifest.get("Specification-Version")
        or manifest.get("Bundle-Version")
    )
    if not group and symbolic and "." in symbolic:
        group, _, tail = symbolic.rpartition(".")
        artifact = artifact or tail
    if not (group and artifact and version) or " " in artifact:
        return None
    return group, artifact, version.strip()


def package(group: str, artifact: str, version: str, location: Location, inner: str, lic: str) -> Package:
    metadata = {"archive": inner} if inner else {}
    return Package(
        name=f"{group}:{artifact}",
        version=version,
        type="maven",
        purl=maven_purl(group, artifact, version),
        licenses=(lic[:200],) if lic else (),
        locations=(location,),
        metadata=metadata,
    )


class JavaArchiveCataloger:
    name = NAME
    globs: tuple[str, ...] = ()
    extractors = (JarExtractor(),)

    def catalog(self, resolver: Resolver, distro: Distro | None) -> CatalogResult:
        result = CatalogResult()
        for path in resolver.glob("**"):
            if not path.lower().endswith(SUFFIXES):
                continue
            data = resolver.read(path)
            if data is None:
                size = resolver.oversized(path)
                if size is not None:
                    result.unknown(resolver.location(path), NAME, f"archive of {size} bytes not inspected (too large)")
                continue
            record = read_derived(data, KIND)
            if record is None:
                record = read_derived(extract(data), KIND)
            archives = record.get("archives") if record else None
            if not isinstance(archives, list):
                continue
            location = resolver.location(path)
            seen: set[tuple[str, str, str]] = set()
            for arc in archives:
                inner = str(arc.get("path", ""))
                if arc.get("error"):
                    where = Location(location.path + inner, location.layer)
                    result.unknown(where, NAME, str(arc["error"])[:300])
                manifest = arc.get("manifest") or {}
                lic = str(manifest.get("Bundle-License", "")).split(",")[0].strip()
                found: list[tuple[str, str, str]] = []
                for pom in arc.get("poms") or []:
                    g, a, v = (str(pom.get(k, "")).strip() for k in ("groupId", "artifactId", "version"))
                    if g and a and v:
                        found.append((g, a, v))
                if not found and isinstance(manifest, dict):
                    guess = from_manifest({str(k): str(v) for k, v in manifest.items()})
                    if guess is not None:
                        found.append(guess)
                for key in found:
                    if key in seen:
                        continue
                    seen.add(key)
                    result.packages.append(package(*key, location, inner, lic))
        return result


# -- source trees: pom.xml (declared versions), gradle.lockfile -----------------------------------------

_PROP = re.compile(r"\$\{([^}]+)\}")
MAX_POM_DEPENDENCIES = 10_000


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_pom(text: str) -> list[tuple[str, str]]:
    """The project itself and its ``dependencies`` whose versions the pom declares (literally or through
    its own ``properties``/``project.version``); a version it does not say (a parent's BOM, a range left
    to Maven) is not guessed.  ``test``-scoped dependencies are left out."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ValueError("pom.xml declares a DOCTYPE or entities")
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(text)  # noqa: S314 - DOCTYPE and entities refused above
    except ET.ParseError as exc:
        raise ValueError(f"not XML: {exc}") from exc

    def child(node: ET.Element, name: str) -> ET.Element | None:
        for c in node:
            if _local(c.tag) == name:
                return c
        return None

    def text_of_child(node: ET.Element | None, name: str) -> str:
        c = child(node, name) if node is not None else None
        return (c.text or "").strip() if c is not None else ""

    parent = child(root, "parent")
    group = text_of_child(root, "groupId") or text_of_child(parent, "groupId")
    version = text_of_child(root, "version") or text_of_child(parent, "version")
    props: dict[str, str] = {"project.version": version, "project.groupId": group, "version": version}
    node = child(root, "properties")
    for p in node if node is not None else []:
        props[_local(p.tag)] = (p.text or "").strip()

    def resolve(value: str) -> str:
        for _ in range(10):
            new = _PROP.sub(lambda m: props.get(m.group(1), m.group(0)), value)
            if new == value:
                break
            value = new
        return "" if "${" in value else value

    out: list[tuple[str, str]] = []
    artifact = text_of_child(root, "artifactId")
    if group and artifact and resolve(version):
        out.append((f"{resolve(group)}:{artifact}", resolve(version)))
    deps = child(root, "dependencies")
    for dep in list(deps if deps is not None else [])[:MAX_POM_DEPENDENCIES]:
        if _local(dep.tag) != "dependency" or text_of_child(dep, "scope") == "test":
            continue
        g, a = resolve(text_of_child(dep, "groupId")), resolve(text_of_child(dep, "artifactId"))
        v = resolve(text_of_child(dep, "version"))
        if g and a and v and not v.startswith(("[", "(")):
            out.append((f"{g}:{a}", v))
    return out


def parse_gradle_lockfile(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("empty="):
            continue
        coords = line.split("=", 1)[0].split(":")
        if len(coords) != 3:
            raise ValueError(f"not group:artifact:version: {line[:100]!r}")
        out.append((f"{coords[0]}:{coords[1]}", coords[2]))
    return out


def _maven_purl_of(name: str, version: str) -> str:
    group, _, artifact = name.partition(":")
    return maven_purl(group, artifact, version)


LOCKFILE_CATALOGERS = (
    LockfileCataloger("pom-xml", ("**/pom.xml",), "maven", parse_pom, _maven_purl_of),
    LockfileCataloger("gradle-lockfile", ("**/gradle.lockfile",), "maven", parse_gradle_lockfile, _maven_purl_of),
)
