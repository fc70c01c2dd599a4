"""PEP 440 order, delegated to ``packaging`` (the reference implementation pip uses)."""

from __future__ import annotations

import functools
import re
from typing import Any

from packaging.version import InvalidVersion as _PackagingInvalid
from packaging.version import Version

from giropops.errors import quote_for_error
from giropops.vuln.versions.interface import InvalidVersion, VersionScheme

_SEPARATORS = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """A PyPI project name as PEP 503 normalises it (runs of ``-``, ``_``, ``.`` become one ``-``, lower
    case): what the importer stores and the matcher searches.  Written here, not taken from
    ``packaging.utils``, whose import costs a scan ~15 ms (it loads ``packaging.tags``)."""
    return _SEPARATORS.sub("-", name).lower()


@functools.lru_cache(maxsize=65536)
def _version(version: str) -> Version:
    """Parsed once per spelling: an import and a scan see the same few thousand versions over and over
    (a ``Version`` is immutable, so sharing it is safe; a failure is not cached and raises again)."""
    try:
        return Version(version)
    except _PackagingInvalid as exc:
        raise InvalidVersion(f"invalid PEP 440 version {quote_for_error(version)}") from exc


@functools.lru_cache(maxsize=65536)
def _normalized(version: str) -> str:
    """``packaging.utils.canonicalize_version`` of a valid version, written from ``Version``'s public parts
    (that module imports ``packaging.tags``, ~15 ms of a scan's start): the normal form with the release's
    trailing zeros dropped, one kept."""
    v = _version(version)
    release = v.release
    end = len(release)
    while end > 1 and release[end - 1] == 0:
        end -= 1
    out = ".".join(map(str, release[:end]))
    if v.epoch:
        out = f"{v.epoch}!{out}"
    if v.pre is not None:
        out += "".join(map(str, v.pre))
    if v.post is not None:
        out += f".post{v.post}"
    if v.dev is not None:
        out += f".dev{v.dev}"
    if v.local is not None:
        out += f"+{v.local}"
    return out


class Pep440Scheme(VersionScheme):
    name = "pep440"

    def key(self, version: str) -> Any:
        if not isinstance(version, str):
            raise InvalidVersion(f"PEP 440 version must be a string, not {type(version).__name__}")
        return _version(version)

    def normalize(self, version: str) -> str:
        """A spelling equal for equal versions (``1.0.0`` and ``1.0`` both give ``1``; ``1.0-RC1`` gives ``1rc1``)."""
        if not isinstance(version, str):
            raise InvalidVersion(f"PEP 440 version must be a string, not {type(version).__name__}")
        return _normalized(version)


SCHEME = Pep440Scheme()
