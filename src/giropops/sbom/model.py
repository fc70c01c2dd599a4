"""The inventory every SBOM format encodes and every matcher reads.

Package types use the same keys as ``catalogers/``, ``vuln/versions/`` and the
matchers: ``deb``, ``apk``, ``python``.
"""

from __future__ import annotations

from collections.abc import Mapping

from giropops.record import field, record, replace

# re-exported: they live in ``names`` so that a command's --help need not import this module
from giropops.sbom.names import PACKAGE_TYPES as PACKAGE_TYPES
from giropops.sbom.names import TYPE_ALIASES as TYPE_ALIASES
from giropops.sbom.names import package_types as package_types

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it
if TYPE_CHECKING:
    from typing import Any


@record
class Distro:
    """The image's distribution as ``/etc/os-release`` (or ``/etc/alpine-release``) says."""

    id: str  # "debian", "alpine", "wolfi", "chainguard", ...
    version_id: str = ""  # "12", "3.19.1", "20230201"
    pretty_name: str = ""
    id_like: tuple[str, ...] = ()
    version_codename: str = ""

    @property
    def osv_ecosystem(self) -> str | None:
        """The OSV ecosystem whose advisories apply to this distribution's packages."""
        if self.id == "debian" and self.version_id:
            return f"Debian:{self.version_id.split('.')[0]}"
        if self.id == "alpine" and self.version_id:
            major_minor = ".".join(self.version_id.split(".")[:2])
            return f"Alpine:v{major_minor}"
        if self.id == "wolfi":
            return "Wolfi"
        if self.id == "chainguard":
            return "Chainguard"
        if self.id == "almalinux" and self.version_id:
            return f"AlmaLinux:{self.version_id.split('.')[0]}"
        if self.id == "rocky" and self.version_id:
            return f"Rocky Linux:{self.version_id.split('.')[0]}"
        return None


@record
class Location:
    """Where a package record was found: a path, and the layer (diff_id) the file came from."""

    path: str
    layer: str | None = None  # diff_id ("sha256:...") of the layer the file came from


@record
class Package:
    """One package of the inventory, with its purl, licenses, locations and owned files."""

    name: str
    version: str
    type: str  # "deb" | "apk" | "python" | "rpm" | a purl type: npm, golang, maven, gem, cargo, nuget, composer
    purl: str = ""
    source_name: str | None = None  # dpkg Source / apk origin
    source_version: str | None = None
    arch: str | None = None
    licenses: tuple[str, ...] = ()
    locations: tuple[Location, ...] = ()  # where the record was found (status file, METADATA ...)
    files: tuple[str, ...] = ()  # files the package owns, when the image records them
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def layer(self) -> str | None:
        return self.locations[0].layer if self.locations else None

    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.type, self.name, self.version, self.arch or "")


@record
class Unknown:
    """A file that looked like package metadata but could not be parsed."""

    location: Location
    cataloger: str
    error: str


@record
class Subject:
    """What the SBOM describes: an image (by digest) or a directory."""

    name: str  # the user's reference, e.g. "registry://localhost:5000/app:1"
    digest: str | None = None  # manifest digest
    platform: str | None = None
    size: int | None = None  # compressed size in bytes
    diff_ids: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)


@record
class SBOM:
    """The inventory of a subject: distro, packages, files that could not be parsed."""

    subject: Subject
    distro: Distro | None
    packages: tuple[Package, ...]
    unknowns: tuple[Unknown, ...] = ()
    tool: str = "giropops"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def only_types(self, types: frozenset[str]) -> SBOM:
        """The same SBOM with only the packages of these types (all when ``types`` is empty)."""
        if not types:
            return self
        return replace(self, packages=tuple(p for p in self.packages if p.type in types))

    def sorted(self) -> SBOM:
        return SBOM(
            self.subject,
            self.distro,
            tuple(sorted(self.packages, key=Package.sort_key)),
            tuple(sorted(self.unknowns, key=lambda u: (u.location.path, u.cataloger))),
            self.tool,
            self.extra,
        )
