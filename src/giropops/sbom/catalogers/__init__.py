"""One cataloger per ecosystem, each a name, the globs it reads, and ``catalog(resolver, distro)``.

As in syft, catalogers never see tarballs or layers: they ask a ``Resolver`` for
files by glob, so the same code runs on a directory, a squashed image or a single
layer.  A file that cannot be parsed becomes an ``Unknown`` with its location;
nothing a cataloger reads aborts the run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from giropops.record import field, record
from giropops.sbom.filesystem import Extractor, Interest, Resolver
from giropops.sbom.model import Distro, Location, Package, Unknown


@record(frozen=False)
class CatalogResult:
    packages: list[Package] = field(default_factory=list)
    unknowns: list[Unknown] = field(default_factory=list)

    def unknown(self, location: Location, cataloger: str, error: str) -> None:
        self.unknowns.append(Unknown(location, cataloger, error))

    def read_metadata(self, resolver: Resolver, path: str, cataloger: str) -> bytes | None:
        """``path``'s bytes; None when it is missing or, recorded as an unknown, over the metadata limit."""
        size = resolver.oversized(path)
        if size is not None:
            self.unknown(resolver.location(path), cataloger,
                         f"file is {size} bytes, more than the limit for package metadata")
            return None
        return resolver.read(path)


class Cataloger(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def globs(self) -> tuple[str, ...]: ...

    def catalog(self, resolver: Resolver, distro: Distro | None) -> CatalogResult: ...


def attribute_layers(
    history: list[tuple[str | None, set[tuple[str, str]]]], current: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str | None]:
    """``history`` is (layer, keys in that version of the file), bottom first, ending with the current file."""
    out: dict[tuple[str, str], str | None] = {}
    for key in current:
        layer: str | None = history[-1][0] if history else None
        for older_layer, keys in reversed(history[:-1]):
            if key not in keys:
                break
            layer = older_layer
        out[key] = layer
    return out


DERIVED_MAGIC = b"\x00giropops-derived\x00"


def derived(kind: str, record: dict[str, Any]) -> bytes:
    """What an ``Extractor`` keeps of a file: a marker, its kind, then JSON."""
    return DERIVED_MAGIC + kind.encode() + b"\n" + json.dumps(record, separators=(",", ":")).encode()


def read_derived(data: bytes, kind: str) -> dict[str, Any] | None:
    """The record ``derived`` wrote for ``kind``, else None (raw contents, or another kind)."""
    head = DERIVED_MAGIC + kind.encode() + b"\n"
    if not data.startswith(head):
        return None
    try:
        record = json.loads(data[len(head) :])
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def text_of(data: bytes) -> str:
    return data.decode("utf-8-sig", "replace")


def toml_packages(text: str) -> list[dict[str, Any]]:
    """The ``[[package]]`` tables of a TOML lock file (Cargo.lock, poetry.lock, uv.lock); ValueError if not TOML."""
    import tomllib

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not TOML: {exc}") from exc
    return [p for p in doc.get("package") or [] if isinstance(p, dict)]


def metadata_files(
    resolver: Resolver, paths: Iterable[str], cataloger: str, result: CatalogResult, *, say_size: bool = False
) -> Iterator[tuple[Location, bytes]]:
    """Each of ``paths`` that can be read, with its location; one over the metadata limit is an Unknown
    in ``result`` (its size in the message with ``say_size``), a missing one is passed over."""
    for path in paths:
        location = resolver.location(path)
        size = resolver.oversized(path)
        if size is not None:
            too_big = f"file is {size} bytes, more than" if say_size else "file is larger than"
            result.unknown(location, cataloger, f"{too_big} the limit for package metadata")
            continue
        data = resolver.read(path)
        if data is not None:
            yield location, data


def json_documents(
    resolver: Resolver, paths: Iterable[str], cataloger: str, result: CatalogResult, *, say_size: bool = False
) -> Iterator[tuple[Location, Any]]:
    """``metadata_files``, parsed as JSON; a file that is not JSON is an Unknown in ``result``."""
    for location, data in metadata_files(resolver, paths, cataloger, result, say_size=say_size):
        try:
            doc = json.loads(text_of(data))
        except (ValueError, RecursionError) as exc:
            result.unknown(location, cataloger, f"not JSON: {str(exc)[:120]}")
            continue
        yield location, doc


class _Deferred:
    """An installed-package cataloger known by its name and globs: its module is imported (and the
    cataloger run) only when the image has a file it reads.  A cataloger reads nothing but the files
    its globs match, so without one it finds nothing; the import of each cataloger a small image does
    not need is start-up time saved.  Catalogers with an ``Extractor`` are not deferred: extractors
    run while the layer streams, before anyone knows which files are there."""

    extractors: tuple[Extractor, ...] = ()

    def __init__(self, module: str, cls: str, name: str, globs: tuple[str, ...]) -> None:
        self._module, self._cls = module, cls
        self.name = name
        self.globs = globs

    def load(self) -> Cataloger:
        import importlib

        cataloger: Cataloger = getattr(importlib.import_module(f"{__name__}.{self._module}"), self._cls)()
        return cataloger

    def catalog(self, resolver: Resolver, distro: Distro | None) -> CatalogResult:
        if not any(resolver.glob(g) for g in self.globs):
            return CatalogResult()
        return self.load().catalog(resolver, distro)


# (module, class, name, globs) of the deferred catalogers; tests/sbom/test_catalogers.py checks them
# against the classes
DEFERRED = (
    ("dpkg", "DpkgCataloger", "dpkg",
     ("var/lib/dpkg/status", "var/lib/dpkg/status.d/*", "var/lib/dpkg/info/*.list", "usr/share/doc/*/copyright")),
    ("apk", "ApkCataloger", "apk", ("lib/apk/db/installed",)),
    ("python", "PythonCataloger", "python",
     ("**/*.dist-info/METADATA", "**/*.dist-info/RECORD", "**/*.egg-info/PKG-INFO", "**/*.egg-info",
      "**/EGG-INFO/PKG-INFO")),
    ("npm", "NpmCataloger", "npm", ("**/node_modules/*/package.json", "**/node_modules/@*/*/package.json")),
    ("ruby", "GemspecCataloger", "ruby-gemspec", ("**/specifications/*.gemspec",)),
    ("dotnet", "DotnetDepsCataloger", "dotnet-deps", ("**/*.deps.json",)),
    ("php", "ComposerInstalledCataloger", "php-composer-installed", ("**/vendor/composer/installed.json",)),
)


def default_catalogers() -> tuple[Cataloger, ...]:
    from giropops.sbom.catalogers.golang import GoBinaryCataloger
    from giropops.sbom.catalogers.java import JavaArchiveCataloger
    from giropops.sbom.catalogers.rpm import RpmDbCataloger
    from giropops.sbom.catalogers.rust import RustBinaryCataloger

    deferred = {module: _Deferred(module, cls, name, globs) for module, cls, name, globs in DEFERRED}
    return (
        deferred["dpkg"],
        deferred["apk"],
        RpmDbCataloger(),
        deferred["python"],
        deferred["npm"],
        GoBinaryCataloger(),
        RustBinaryCataloger(),
        JavaArchiveCataloger(),
        deferred["ruby"],
        deferred["dotnet"],
        deferred["php"],
    )


def interest_for(catalogers: Iterable[Cataloger]) -> Interest:
    from giropops.sbom import distro

    globs: list[str] = list(distro.GLOBS)
    extractors: dict[str, Extractor] = {}
    for c in catalogers:
        globs.extend(c.globs)
        for e in getattr(c, "extractors", ()):
            extractors[e.name] = e
    return Interest(globs, extractors=extractors.values())


class LockfileCataloger:
    """A source tree's lock (or manifest) file of one ecosystem, through a parser of its own.

    Lock files describe what *would* be installed: they are read in directories
    (``fs://DIR``, ``directory_catalogers``) and not in images, where what is
    installed is read instead.  A file the parser rejects (``ValueError``) is an
    Unknown; each ``(name, version)`` is listed once per file.
    """

    def __init__(
        self,
        name: str,
        globs: tuple[str, ...],
        ptype: str,
        parse: Callable[[str], list[tuple[str, str]]],
        purl: Callable[[str, str], str],
    ) -> None:
        self.name = name
        self.globs = globs
        self.ptype = ptype
        self._parse = parse
        self._purl = purl

    def catalog(self, resolver: Resolver, distro: Distro | None) -> CatalogResult:
        result = CatalogResult()
        paths = sorted({p for g in self.globs for p in resolver.glob(g)})
        for location, data in metadata_files(resolver, paths, self.name, result):
            try:
                found = self._parse(text_of(data))
            except (ValueError, RecursionError, KeyError, TypeError, AttributeError) as exc:
                result.unknown(location, self.name, f"cannot parse: {str(exc)[:200]}")
                continue
            seen: set[tuple[str, str]] = set()
            for name, version in found:
                if not name or not version or (name, version) in seen:
                    continue
                seen.add((name, version))
                result.packages.append(
                    Package(
                        name=name,
                        version=version,
                        type=self.ptype,
                        purl=self._purl(name, version),
                        locations=(location,),
                    )
                )
        return result


def directory_catalogers() -> tuple[Cataloger, ...]:
    """What ``fs://DIR`` runs: the installed-package catalogers and the lock files of source trees."""
    from giropops.sbom.catalogers import dotnet, golang, java, npm, php, python, ruby, rust

    lockfiles: list[Cataloger] = []
    for module in (npm, golang, java, ruby, rust, dotnet, php, python):
        lockfiles.extend(module.LOCKFILE_CATALOGERS)
    return (*default_catalogers(), *lockfiles)


__all__ = ["CatalogResult", "Cataloger", "LockfileCataloger", "attribute_layers", "default_catalogers",
           "directory_catalogers", "interest_for", "json_documents", "metadata_files", "toml_packages"]
