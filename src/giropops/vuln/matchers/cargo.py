"""Rust crates: ``crates.io`` advisories (RUSTSEC and GHSA) by crate name, semver order."""

from __future__ import annotations

from giropops.sbom.model import Distro, Package
from giropops.vuln.matchers.interface import Matcher, Query
from giropops.vuln.versions import SEMVER


class CargoMatcher(Matcher):
    name = "cargo"
    package_types = ("cargo",)

    def queries(self, package: Package, distro: Distro | None) -> list[Query]:
        return [Query("crates.io", package.name, package.version, SEMVER)]
