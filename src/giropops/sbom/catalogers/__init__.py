"""One cataloger per ecosystem, each a name, the globs it reads, and ``catalog(resolver, distro)``.

As in syft, catalogers never see tarballs or layers: they ask a ``Resolver`` for
files by glob, so the same code runs on a directory, a squashed image or a single
layer.  A file that cannot be parsed becomes an ``Unknown`` with its location;
nothing a cataloger reads aborts the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from giropops.sbom.filesystem import Extractor, Interest, Resolver
from giropops.sbom.model import Distro, Location, Package, Unknown


@dataclass
class CatalogResult:
    packages: list[Package] = field(default_factory=list)
    unknowns: list[Unknown] = field(default_factory=list)

    def unknown(self, location: Location, cataloger: str, error: str) -> None:
        self.unknowns.append(Unknown(location, cataloger, error))


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


def default_catalogers() -> tuple[Cataloger, ...]:
    from giropops.sbom.catalogers.apk import ApkCataloger
    from giropops.sbom.catalogers.dotnet import DotnetDepsCataloger
    from giropops.sbom.catalogers.dpkg import DpkgCataloger
    from giropops.sbom.catalogers.golang import GoBinaryCataloger
    from giropops.sbom.catalogers.java import JavaArchiveCataloger
    from giropops.sbom.catalogers.npm import NpmCataloger
    from giropops.sbom.catalogers.php import ComposerInstalledCataloger
    from giropops.sbom.catalogers.python import PythonCataloger
    from giropops.sbom.catalogers.rpm import RpmDbCataloger
    from giropops.sbom.catalogers.ruby import GemspecCataloger
    from giropops.sbom.catalogers.rust import RustBinaryCataloger

    return (
        DpkgCataloger(),
        ApkCataloger(),
        RpmDbCataloger(),
        PythonCataloger(),
        NpmCataloger(),
        GoBinaryCataloger(),
        RustBinaryCataloger(),
        JavaArchiveCataloger(),
        GemspecCataloger(),
        DotnetDepsCataloger(),
        ComposerInstalledCataloger(),
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
