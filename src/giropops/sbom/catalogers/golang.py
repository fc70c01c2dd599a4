"""Go: the module build information of every Go executable (see ``elf.py`` for how it is read).

Each executable gives its dependencies (``dep`` lines, with a following ``=>``
replacement taking their place), its main module when it has a real version
(not ``(devel)``), and the toolchain it was built with as the package
``stdlib`` at version ``1.21.3`` (no leading ``go``: the version OSV's Go
advisories on the standard library use).  Module versions keep their ``v``.
"""

from __future__ import annotations

from typing import Any

from giropops.sbom.catalogers import CatalogResult, LockfileCataloger, read_derived
from giropops.sbom.catalogers.elf import KIND, MAX_BINARY_BYTES, ElfExtractor, extract
from giropops.sbom.filesystem import Resolver
from giropops.sbom.model import Distro, Location, Package
from giropops.sbom.purl import purl as make_purl

NAME = "go-binary"


def golang_purl(module: str, version: str) -> str:
    namespace, _, name = module.rpartition("/")
    return make_purl(ptype="golang", namespace=namespace or None, name=name, version=version or None)


def toolchain_version(raw: str) -> str | None:
    """``go1.21.3`` (or ``go1.21.3 X:boringcrypto``) -> ``1.21.3``; devel toolchains have none."""
    first = raw.strip().split(" ")[0] if raw.strip() else ""
    if not first.startswith("go") or not first[2:3].isdigit():
        return None
    return first[2:]


def modules(mod: str) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
    """(main module, dependencies) from the module info text, replacements applied."""
    main: tuple[str, str] | None = None
    deps: list[tuple[str, str]] = []
    for line in mod.splitlines():
        fields = line.split("\t")
        if fields[0] == "mod" and len(fields) >= 3:
            main = (fields[1], fields[2])
        elif fields[0] == "dep" and len(fields) >= 3:
            deps.append((fields[1], fields[2]))
        elif fields[0] == "=>" and len(fields) >= 3 and deps:
            deps[-1] = (fields[1], fields[2])
        elif fields[0] == "=>" and len(fields) >= 2 and deps:
            deps.pop()  # replaced by a local directory: no module version to report
    return main, deps


def package(module: str, version: str, location: Location) -> Package:
    return Package(
        name=module, version=version, type="golang", purl=golang_purl(module, version), locations=(location,)
    )


def elf_records(resolver: Resolver) -> list[tuple[str, dict[str, Any]]]:
    """The ELF records of every executable kept (raw ELF kept for another glob is read here too)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for path in resolver.glob("**"):
        data = resolver.read(path)
        if data is None:
            size = resolver.oversized(path)
            if size is not None and size > MAX_BINARY_BYTES:
                error = f"executable of {size} bytes not inspected (limit {MAX_BINARY_BYTES})"
                out.append((path, {"error": error}))
            continue
        if data.startswith(b"\x7fELF"):
            data = extract(data) or b""
        record = read_derived(data, KIND)
        if record is not None:
            out.append((path, record))
    return out


class GoBinaryCataloger:
    name = NAME
    globs: tuple[str, ...] = ()
    extractors = (ElfExtractor(),)

    def catalog(self, resolver: Resolver, distro: Distro | None) -> CatalogResult:
        result = CatalogResult()
        for path, record in elf_records(resolver):
            location = resolver.location(path)
            go = record.get("go")
            if record.get("error") and go is None and "rust" not in record:
                result.unknown(location, NAME, str(record["error"])[:300])
                continue
            if not isinstance(go, dict):
                continue
            stdlib = toolchain_version(str(go.get("version", "")))
            if stdlib:
                result.packages.append(package("stdlib", stdlib, location))
            main, deps = modules(str(go.get("mod", "")))
            if main is not None and main[1] and main[1] != "(devel)":
                result.packages.append(package(main[0], main[1], location))
            for module, version in deps:
                result.packages.append(package(module, version, location))
        return result


# -- source trees: go.mod -------------------------------------------------------------------------------


def parse_go_mod(text: str) -> list[tuple[str, str]]:
    """``require`` lines (single and blocks), with ``replace`` directives applied (a replacement by a
    local directory drops the module: it has no version)."""
    requires: list[tuple[str, str]] = []
    replaces: dict[str, tuple[str, str] | None] = {}
    block: str | None = None
    for raw in text.splitlines():
        line = raw.split("//")[0].strip()
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
                continue
            words = line.split()
        else:
            words = line.split()
            if words[0] in ("require", "replace") and words[1:2] == ["("]:
                block = words[0]
                continue
            if words[0] not in ("require", "replace"):
                continue
            block_kind, words = words[0], words[1:]
            _go_directive(block_kind, words, requires, replaces)
            continue
        _go_directive(block, words, requires, replaces)
    out: list[tuple[str, str]] = []
    for module, version in requires:
        if module in replaces:
            target = replaces[module]
            if target is None:
                continue
            module, version = target
        out.append((module, version))
    return out


def _go_directive(
    kind: str, words: list[str], requires: list[tuple[str, str]], replaces: dict[str, tuple[str, str] | None]
) -> None:
    if kind == "require" and len(words) >= 2:
        requires.append((words[0], words[1]))
    elif kind == "replace" and "=>" in words:
        i = words.index("=>")
        new = words[i + 1 :]
        replaces[words[0]] = (new[0], new[1]) if len(new) >= 2 else None


LOCKFILE_CATALOGERS = (LockfileCataloger("go-mod", ("**/go.mod",), "golang", parse_go_mod, golang_purl),)
