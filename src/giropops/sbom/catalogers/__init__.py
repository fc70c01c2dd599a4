"""One cataloger per ecosystem, each a name, the globs it reads, and ``catalog(resolver, distro)``.

As in syft, catalogers never see tarballs or layers: they ask a ``Resolver`` for
files by glob, so the same code runs on a directory, a squashed image or a single
layer.  A file that cannot be parsed becomes an ``Unknown`` with its location;
nothing a cataloger reads aborts the run.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterable, Iterator

from giropops.record import field, record
from giropops.runtime_typing import Protocol
from giropops.sbom.filesystem import Extractor, Interest, Resolver
from giropops.sbom.model import Distro, Location, Package, Unknown

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    import mmap
    from typing import Any


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
    """A cataloger known by its name and globs: its module is imported (and the cataloger run) only
    when the image has a file it reads.  A cataloger reads nothing but the files its globs match, so
    without one it finds nothing; the import of each cataloger a small image does not need is start-up
    time saved.  A cataloger that reads what an ``Extractor`` kept (no globs) says instead, with
    ``needed``, what it would read: without that, it would find nothing."""

    def __init__(
        self,
        module: str,
        cls: str,
        name: str,
        globs: tuple[str, ...],
        extractors: tuple[Extractor, ...] = (),
        needed: Callable[[Resolver], bool] | None = None,
    ) -> None:
        self._module, self._cls = module, cls
        self.name = name
        self.globs = globs
        self.extractors = extractors
        self._needed = needed

    def load(self) -> Cataloger:
        import importlib

        cataloger: Cataloger = getattr(importlib.import_module(f"{__name__}.{self._module}"), self._cls)()
        return cataloger

    def catalog(self, resolver: Resolver, distro: Distro | None) -> CatalogResult:
        needed = self._needed(resolver) if self._needed is not None else any(resolver.glob(g) for g in self.globs)
        if not needed:
            return CatalogResult()
        return self.load().catalog(resolver, distro)


class _DeferredExtractor:
    """An ``Extractor`` known by its name, version, limit and which files it wants: the module that
    reads them is imported on the first file it is given (a layer without executables, jars or an rpm
    database never imports the ELF, zip or rpm readers)."""

    def __init__(
        self, module: str, cls: str, name: str, version: str, max_bytes: int, wants: Callable[[str, int], bool]
    ) -> None:
        self._module, self._cls = module, cls
        self.name, self.version, self.max_bytes = name, version, max_bytes
        self.wants = wants  # called for every entry of every layer: the function itself, no method around it
        self._loaded: Extractor | None = None

    def load(self) -> Extractor:
        if self._loaded is None:
            import importlib

            self._loaded = getattr(importlib.import_module(f"{__name__}.{self._module}"), self._cls)()
        assert self._loaded is not None
        return self._loaded

    def extract(self, data: bytes | bytearray) -> bytes | None:
        return self.load().extract(data)


if TYPE_CHECKING:
    from giropops.sbom.tarstream import FileRegion


class _DeferredMappedExtractor(_DeferredExtractor):
    """A ``_DeferredExtractor`` whose extractor also reads a mapped file (``extract_mapped``)."""

    def extract_mapped(self, data: mmap.mmap | FileRegion) -> bytes | None:
        extract: Callable[[mmap.mmap | FileRegion], bytes | None] = getattr(self.load(), "extract_mapped")  # noqa: B009
        return extract(data)


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

# What the extractors of elf.py, java.py and rpm.py want, and the files their catalogers read; checked
# against those modules by tests/sbom/test_catalogers.py.
MAX_BINARY_BYTES = 256 * 1024 * 1024
JAR_SUFFIXES = (".jar", ".war", ".ear", ".jpi", ".hpi")
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024
RPM_DATABASES = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite", "var/lib/rpm/Packages.db",
                 "usr/lib/sysimage/rpm/Packages.db", "var/lib/rpm/Packages")
MAX_DB_BYTES = 512 * 1024 * 1024
_ELF_RECORD = DERIVED_MAGIC + b"elf\n"


def _wants_executable(path: str, mode: int) -> bool:
    return bool(mode & 0o111) and not stat.S_ISDIR(mode)


def _wants_jar(path: str, mode: int) -> bool:
    return path.lower().endswith(JAR_SUFFIXES)


def _wants_rpm_database(path: str, mode: int) -> bool:
    return path in RPM_DATABASES


def _has_executables(resolver: Resolver) -> bool:
    """Whether a file kept is an ELF file, what the ELF extractor kept of one, or too large to be kept
    (what the Go and Rust catalogers' ``elf_records`` would report): a superset, never less."""
    for path in resolver.glob("**"):
        data = resolver.read(path)
        if data is None:
            if resolver.oversized(path) is not None:
                return True
        elif data.startswith(b"\x7fELF") or data.startswith(_ELF_RECORD):
            return True
    return False


def _has_jars(resolver: Resolver) -> bool:
    return any(path.lower().endswith(JAR_SUFFIXES) for path in resolver.glob("**"))


def _has_rpm_database(resolver: Resolver) -> bool:
    return any(resolver.read(path) is not None for path in RPM_DATABASES)


def default_catalogers() -> tuple[Cataloger, ...]:
    deferred = {module: _Deferred(module, cls, name, globs) for module, cls, name, globs in DEFERRED}
    elf = _DeferredMappedExtractor("elf", "ElfExtractor", "elf", "1", MAX_BINARY_BYTES, _wants_executable)
    jar = _DeferredExtractor("java", "JarExtractor", "jar", "1", MAX_ARCHIVE_BYTES, _wants_jar)
    rpmdb = _DeferredExtractor("rpm", "RpmDbExtractor", "rpmdb", "1", MAX_DB_BYTES, _wants_rpm_database)
    return (
        deferred["dpkg"],
        deferred["apk"],
        _Deferred("rpm", "RpmDbCataloger", "rpm-db", (), (rpmdb,), _has_rpm_database),
        deferred["python"],
        deferred["npm"],
        _Deferred("golang", "GoBinaryCataloger", "go-binary", (), (elf,), _has_executables),
        _Deferred("rust", "RustBinaryCataloger", "rust-audit-binary", (), (elf,), _has_executables),
        _Deferred("java", "JavaArchiveCataloger", "java-archive", (), (jar,), _has_jars),
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
