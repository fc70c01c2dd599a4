"""One cataloger per ecosystem, each a name, the globs it reads, and ``catalog(resolver, distro)``.

As in syft, catalogers never see tarballs or layers: they ask a ``Resolver`` for
files by glob, so the same code runs on a directory, a squashed image or a single
layer.  A file that cannot be parsed becomes an ``Unknown`` with its location;
nothing a cataloger reads aborts the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from giropops.sbom.filesystem import Interest, Resolver
from giropops.sbom.model import Distro, Location, Package, Unknown


@dataclass
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


def default_catalogers() -> tuple[Cataloger, ...]:
    from giropops.sbom.catalogers.apk import ApkCataloger
    from giropops.sbom.catalogers.dpkg import DpkgCataloger
    from giropops.sbom.catalogers.python import PythonCataloger

    return (DpkgCataloger(), ApkCataloger(), PythonCataloger())


def interest_for(catalogers: Iterable[Cataloger]) -> Interest:
    from giropops.sbom import distro

    globs: list[str] = list(distro.GLOBS)
    for c in catalogers:
        globs.extend(c.globs)
    return Interest(globs)

__all__ = ["CatalogResult", "Cataloger", "attribute_layers", "default_catalogers", "interest_for"]
