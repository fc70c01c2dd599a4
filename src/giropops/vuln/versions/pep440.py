"""PEP 440 order, delegated to ``packaging`` (the reference implementation pip uses)."""

from __future__ import annotations

from typing import Any

from packaging.utils import canonicalize_version
from packaging.version import InvalidVersion as _PackagingInvalid
from packaging.version import Version

from giropops.errors import quote_for_error
from giropops.vuln.versions.interface import InvalidVersion, VersionScheme


class Pep440Scheme(VersionScheme):
    name = "pep440"

    def key(self, version: str) -> Any:
        if not isinstance(version, str):
            raise InvalidVersion(f"PEP 440 version must be a string, not {type(version).__name__}")
        try:
            return Version(version)
        except _PackagingInvalid as exc:
            raise InvalidVersion(f"invalid PEP 440 version {quote_for_error(version)}") from exc

    def normalize(self, version: str) -> str:
        """A spelling equal for equal versions (``1.0.0`` and ``1.0`` both give ``1``; ``1.0-RC1`` gives ``1rc1``)."""
        self.key(version)
        return canonicalize_version(version)


SCHEME = Pep440Scheme()
