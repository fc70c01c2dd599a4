"""Python packages: PyPI advisories by PEP 503-normalised name, PEP 440 order; any distribution."""

from __future__ import annotations

from giropops.sbom.model import Distro, Package
from giropops.vuln.matchers.interface import Matcher, Query
from giropops.vuln.versions import PEP440
from giropops.vuln.versions.pep440 import canonical_name


class PythonMatcher(Matcher):
    name = "python"
    package_types = ("python",)

    def queries(self, package: Package, distro: Distro | None) -> list[Query]:
        return [Query("PyPI", canonical_name(package.name), package.version, PEP440)]
