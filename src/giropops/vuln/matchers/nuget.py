""".NET packages: ``NuGet`` advisories; NuGet ids are case-insensitive, so both sides are lower-cased."""

from __future__ import annotations

from giropops.sbom.model import Distro, Package
from giropops.vuln.matchers.interface import Matcher, Query
from giropops.vuln.versions import NUGET


class NuGetMatcher(Matcher):
    name = "nuget"
    package_types = ("nuget",)

    def queries(self, package: Package, distro: Distro | None) -> list[Query]:
        return [Query("NuGet", package.name.lower(), package.version, NUGET)]
