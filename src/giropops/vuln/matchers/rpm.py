"""RPM distributions: ``AlmaLinux:8`` / ``AlmaLinux:9`` advisories (ALSA, ALBA, ALEA), rpm version order.

AlmaLinux's errata name *binary* packages (``python3-requests``,
``openssl-libs``), each with the full ``[epoch:]version-release`` that fixed it, so
the installed binary package's name and EVR are compared.  The release comes
from ``VERSION_ID``'s major number.  Other rpm distributions have no data here
and are not matched.
"""

from __future__ import annotations

from giropops.sbom.model import Distro, Package
from giropops.vuln.matchers.interface import Matcher, Query
from giropops.vuln.versions import RPM

_ECOSYSTEMS = {"almalinux": "AlmaLinux"}


def ecosystem_of(distro: Distro | None) -> str | None:
    if distro is None or distro.id not in _ECOSYSTEMS or not distro.version_id:
        return None
    major = distro.version_id.split(".")[0]
    return f"{_ECOSYSTEMS[distro.id]}:{major}" if major.isdigit() else None


class RpmMatcher(Matcher):
    name = "rpm"
    package_types = ("rpm",)

    def queries(self, package: Package, distro: Distro | None) -> list[Query]:
        ecosystem = ecosystem_of(distro)
        if ecosystem is None:
            return []
        return [Query(ecosystem, package.name, package.version, RPM)]
