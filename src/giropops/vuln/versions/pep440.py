"""PEP 440 order, delegated to ``packaging`` (the reference implementation pip uses)."""

from __future__ import annotations

import functools
from typing import Any

from packaging.utils import canonicalize_version
from packaging.version import InvalidVersion as _PackagingInvalid
from packaging.version import Version

from giropops.errors import quote_for_error
from giropops.vuln.versions.interface import InvalidVersion, VersionScheme


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
    _version(version)
    return canonicalize_version(version)


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
