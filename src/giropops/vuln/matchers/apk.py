"""apk distributions.

Alpine's secdb is keyed by *origin* (the source package) and branch
(``Alpine:v3.19``, from ``/etc/alpine-release``).  Wolfi and Chainguard list the
origin and each subpackage by name, so both names are searched.
"""

from __future__ import annotations

from giropops.sbom.model import Distro, Package
from giropops.vuln.matchers.interface import Matcher, Query
from giropops.vuln.versions import APK


class ApkMatcher(Matcher):
    name = "apk"
    package_types = ("apk",)

    def queries(self, package: Package, distro: Distro | None) -> list[Query]:
        ecosystem = distro.osv_ecosystem if distro else None
        if not ecosystem:
            return []
        version = package.version
        if ecosystem.startswith("Alpine:"):
            return [Query(ecosystem, package.source_name or package.name, version, APK)]
        if ecosystem in ("Wolfi", "Chainguard"):
            names = dict.fromkeys([package.name] + ([package.source_name] if package.source_name else []))
            return [Query(ecosystem, n, version, APK) for n in names]
        return []
