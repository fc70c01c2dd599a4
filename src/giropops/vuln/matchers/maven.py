"""Java archives: ``Maven`` advisories by ``groupId:artifactId``, Maven's ComparableVersion order.

A jar known only by its manifest (no group id) has no ``:`` in its name and
cannot be looked up: OSV names every Maven package with its group."""

from __future__ import annotations

from giropops.sbom.model import Distro, Package
from giropops.vuln.matchers.interface import Matcher, Query
from giropops.vuln.versions import MAVEN


class MavenMatcher(Matcher):
    name = "maven"
    package_types = ("maven",)

    def queries(self, package: Package, distro: Distro | None) -> list[Query]:
        if ":" not in package.name:
            return []
        return [Query("Maven", package.name, package.version, MAVEN)]
