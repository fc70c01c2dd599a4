"""NuGet version order (``NuGet.Versioning``: ``NuGetVersion`` with the default comparer).

``major[.minor[.patch[.revision]]][-label[.label]...][+metadata]``: SemVer 2.0
plus the legacy fourth number (``1.2.3.4``); missing numbers are 0 and leading
zeros are allowed (``1.01 == 1.1.0.0``).  A release sorts after its
pre-releases; labels compare pairwise, a numeric label (one that fits a 32-bit
int) numerically and before any other, other labels case-insensitively
(``1.0.0-RC1 == 1.0.0-rc1``); fewer labels sort first.  Metadata is ignored.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from giropops.vuln.versions.interface import InvalidVersion, VersionScheme

_RE = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
                 r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\Z")
_INT32 = 2**31 - 1


def _label(ident: str) -> tuple[int, int, str]:
    if ident.isdigit() and int(ident) <= _INT32:
        return (0, int(ident), "")
    return (1, 0, ident.upper())


@functools.lru_cache(maxsize=65536)
def sort_key(version: str) -> tuple[Any, ...]:
    m = _RE.match(version.strip()) if isinstance(version, str) and version.isascii() else None
    if m is None:
        raise InvalidVersion(f"invalid NuGet version {version!r}")
    numbers = tuple(int(x or 0) for x in m.groups()[:4])
    if any(n > _INT32 for n in numbers):
        raise InvalidVersion(f"invalid NuGet version {version!r}: number too large")
    pre = m.group(5)
    if pre is None:
        return (numbers, 1, ())
    return (numbers, 0, tuple(_label(i) for i in pre.split(".")))


class NuGetScheme(VersionScheme):
    name = "nuget"

    def key(self, version: str) -> Any:
        return sort_key(version)


SCHEME = NuGetScheme()
