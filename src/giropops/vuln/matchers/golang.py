"""Go modules and toolchains: ``Go`` advisories by module path, Go's semver order.

A Go executable lists its dependencies by module path and its toolchain as the
package ``stdlib`` (version ``1.21.3``); the Go vulnerability database files
standard-library problems under ``stdlib`` too, so the toolchain of the binary
is what those advisories are compared with.  The ``toolchain`` package of the
database (the ``go`` command itself) is not something a binary contains.
"""

from __future__ import annotations

from giropops.sbom.model import Distro, Package
from giropops.vuln.matchers.interface import Matcher, Query
from giropops.vuln.versions import GO


class GoMatcher(Matcher):
    name = "golang"
    package_types = ("golang",)

    def queries(self, package: Package, distro: Distro | None) -> list[Query]:
        if package.version in ("", "(devel)"):
            return []  # a main module built from a checkout has no version to compare
        return [Query("Go", package.name, package.version, GO)]
