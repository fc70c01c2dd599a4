"""npm packages: ``npm`` advisories by package name (scoped names keep their ``@scope/``), semver order."""

from __future__ import annotations

from giropops.sbom.model import Distro, Package
from giropops.vuln.matchers.interface import Matcher, Query
from giropops.vuln.versions import SEMVER


class NpmMatcher(Matcher):
    name = "npm"
    package_types = ("npm",)

    def queries(self, package: Package, distro: Distro | None) -> list[Query]:
        return [Query("npm", package.name, package.version, SEMVER)]
