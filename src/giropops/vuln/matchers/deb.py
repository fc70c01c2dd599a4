"""Debian: advisories name the *source* package in a release (``Debian:12``); compare the source version.

Only the per-CVE records are used: Debian's DSA/DLA/DTSA records summarise the
same CVEs (their ids are in each CVE record's ``related``), and matching both
would report every problem twice.
"""

from __future__ import annotations

from giropops.sbom.model import Distro, Package
from giropops.vuln.matchers.interface import Matcher, Query
from giropops.vuln.model import Advisory
from giropops.vuln.versions import DEB


class DebMatcher(Matcher):
    name = "deb"
    package_types = ("deb",)

    def queries(self, package: Package, distro: Distro | None) -> list[Query]:
        ecosystem = distro.osv_ecosystem if distro else None
        if not ecosystem or not ecosystem.startswith("Debian:"):
            return []
        return [Query(ecosystem, package.source_name or package.name, package.source_version or package.version, DEB)]

    def accepts(self, advisory: Advisory) -> bool:
        return not advisory.id.startswith(("DSA-", "DLA-", "DTSA-"))
