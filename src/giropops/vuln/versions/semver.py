"""Semantic Versioning 2.0.0 precedence (section 11), as OSV ``SEMVER`` ranges use it.

A leading ``v`` is tolerated and missing minor / patch parts are read as 0,
because real advisories contain ``v1.2`` and ``1.2``, and so are leading zeros in
those three numbers (GitHub's Go advisories on Docker say ``19.03.9``; osv.dev
reads them as numbers too); build metadata is ignored
for precedence, as the spec says.  This is also the order of npm (node-semver's
``compare``) and of crates.io (cargo's ``semver`` crate, build metadata aside).
"""

from __future__ import annotations

import re
from typing import Any

from giropops.errors import quote_for_error
from giropops.vuln.versions.interface import InvalidVersion, VersionScheme

_RE = re.compile(
    r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?\Z",
    re.ASCII,
)


def _pre_key(pre: str | None) -> tuple[Any, ...]:
    # A version without pre-release sorts after every pre-release of the same triple.
    if pre is None:
        return (1,)
    parts: list[tuple[int, int, str]] = []
    for ident in pre.split("."):
        # Numeric identifiers sort before alphanumeric ones and compare as numbers.
        parts.append((0, int(ident), "") if ident.isdigit() else (1, 0, ident))
    return (0, tuple(parts))


class SemverScheme(VersionScheme):
    name = "semver"
    orders_semver = True

    def key(self, version: str) -> Any:
        m = _RE.match(version) if isinstance(version, str) else None
        if m is None:
            raise InvalidVersion(f"invalid semantic version {quote_for_error(version)}")
        major, minor, patch, pre, _build = m.groups()
        return (int(major), int(minor or 0), int(patch or 0), _pre_key(pre))


SCHEME = SemverScheme()
