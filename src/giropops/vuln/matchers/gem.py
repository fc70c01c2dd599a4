"""Ruby gems: ``RubyGems`` advisories by gem name, ``Gem::Version`` order."""

from __future__ import annotations

from giropops.sbom.model import Distro, Package
from giropops.vuln.matchers.interface import Matcher, Query
from giropops.vuln.versions import RUBYGEMS


class GemMatcher(Matcher):
    name = "gem"
    package_types = ("gem",)

    def queries(self, package: Package, distro: Distro | None) -> list[Query]:
        return [Query("RubyGems", package.name, package.version, RUBYGEMS)]
