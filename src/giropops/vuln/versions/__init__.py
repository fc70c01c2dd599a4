"""Version order per scheme; ``scheme_for`` picks the one an OSV ecosystem uses."""

from __future__ import annotations

from giropops.vuln.versions.apk import SCHEME as APK
from giropops.vuln.versions.deb import SCHEME as DEB
from giropops.vuln.versions.interface import InvalidVersion, VersionScheme
from giropops.vuln.versions.pep440 import SCHEME as PEP440
from giropops.vuln.versions.semver import SCHEME as SEMVER

__all__ = ["APK", "DEB", "PEP440", "SEMVER", "InvalidVersion", "VersionScheme", "scheme_for"]


def scheme_for(ecosystem: str, range_type: str = "ECOSYSTEM") -> VersionScheme | None:
    """The scheme for an OSV ecosystem (``Debian:12``, ``Alpine:v3.19``, ``Wolfi``, ``PyPI``...), None if unknown."""
    if range_type == "SEMVER":
        return SEMVER
    if range_type != "ECOSYSTEM":
        return None
    base = ecosystem.split(":", 1)[0]
    if base == "Debian":
        return DEB
    if base in ("Alpine", "Wolfi", "Chainguard"):
        return APK
    if base == "PyPI":
        return PEP440
    return None
