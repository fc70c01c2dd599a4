"""Go module version order (``golang.org/x/mod/semver``, as the Go vulnerability database uses it).

Semantic versions with a leading ``v`` (``v1.2.3``); OSV's Go records drop the
``v`` and the toolchain (the ``stdlib`` package) is spelled ``1.21.3``, so the
``v`` is optional here.  ``v1`` and ``v1.2`` mean ``v1.0.0`` and ``v1.2.0``.
Pseudo-versions (``v0.0.0-20210101000000-abcdef123456``,
``v1.2.4-0.20210101000000-abcdef123456``) are pre-releases and order as such,
which is their purpose: after the tagged base, before the next release.
``+incompatible`` (a v2+ module without a go.mod) is build metadata and does not
change the order.  The toolchain's own spellings ``go1.21.3``, ``1.21`` and
``1.21rc2`` / ``1.22beta1`` are accepted too and read as ``1.21.3``,
``1.21.0`` and the pre-releases ``1.21.0-rc.2`` / ``1.22.0-beta.1``.
"""

from __future__ import annotations

import re
from typing import Any

from giropops.vuln.versions.interface import InvalidVersion, VersionScheme
from giropops.vuln.versions.semver import SCHEME as SEMVER

_TOOLCHAIN_PRE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(alpha|beta|rc)(\d+)$")


def canonical(version: str) -> str:
    """The semantic-version spelling of a Go module or toolchain version."""
    if not isinstance(version, str):
        raise InvalidVersion(f"Go version must be a string, not {type(version).__name__}")
    text = version[2:] if version.startswith("go") else version
    m = _TOOLCHAIN_PRE.match(text)
    if m:
        major, minor, patch, kind, num = m.groups()
        return f"{major}.{minor}.{patch or 0}-{kind}.{num}"
    return text


class GoScheme(VersionScheme):
    name = "go"
    orders_semver = True

    def key(self, version: str) -> Any:
        try:
            return SEMVER.key(canonical(version))
        except InvalidVersion as exc:
            raise InvalidVersion(f"invalid Go version {version!r}") from exc


SCHEME = GoScheme()
