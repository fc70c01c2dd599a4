"""Version order per scheme; ``scheme_for`` picks the one an OSV ecosystem uses."""

from __future__ import annotations

from giropops.vuln.versions.apk import SCHEME as APK
from giropops.vuln.versions.deb import SCHEME as DEB
from giropops.vuln.versions.golang import SCHEME as GO
from giropops.vuln.versions.interface import InvalidVersion, VersionScheme
from giropops.vuln.versions.maven import SCHEME as MAVEN
from giropops.vuln.versions.nuget import SCHEME as NUGET
from giropops.vuln.versions.pep440 import SCHEME as PEP440
from giropops.vuln.versions.rpm import SCHEME as RPM
from giropops.vuln.versions.rubygems import SCHEME as RUBYGEMS
from giropops.vuln.versions.semver import SCHEME as SEMVER

__all__ = ["APK", "DEB", "GO", "MAVEN", "NUGET", "PEP440", "RPM", "RUBYGEMS", "SEMVER", "InvalidVersion",
           "VersionScheme", "scheme_for"]

# npm and crates.io order versions by Semantic Versioning 2.0 precedence (node-semver, cargo's semver).
_BY_ECOSYSTEM: dict[str, VersionScheme] = {
    "Debian": DEB, "Alpine": APK, "Wolfi": APK, "Chainguard": APK, "PyPI": PEP440, "npm": SEMVER,
    "crates.io": SEMVER, "Go": GO, "Maven": MAVEN, "RubyGems": RUBYGEMS, "NuGet": NUGET, "AlmaLinux": RPM,
}


def scheme_for(ecosystem: str, range_type: str = "ECOSYSTEM") -> VersionScheme | None:
    """The scheme for an OSV ecosystem (``Debian:12``, ``Alpine:v3.19``, ``Wolfi``, ``PyPI``...), None if unknown."""
    if range_type == "SEMVER":
        return SEMVER
    if range_type != "ECOSYSTEM":
        return None
    return _BY_ECOSYSTEM.get(ecosystem.split(":", 1)[0])
