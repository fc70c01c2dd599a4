"""The matcher plug-in point: one small class per ecosystem, fed by a provider that hides SQL.

A matcher decides *what to search* (which ecosystem, which name, which version
to compare) for one package; ``giropops.vuln.match`` decides *whether a
version is affected*, the same way for everyone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from giropops.sbom.model import Distro, Package
from giropops.vuln.model import Advisory, Severity
from giropops.vuln.versions import VersionScheme


class AdvisoryProvider(Protocol):
    def advisories_for(self, ecosystem: str, name: str) -> tuple[Advisory, ...]: ...

    def cvss_severity(self, vuln_id: str) -> Severity | None:
        """A CVSS-based severity for ``vuln_id`` from any advisory, for records that carry none."""

    def covers(self, ecosystems: Iterable[str]) -> None:
        """Raise ``DatabaseNotReadyError`` unless advisories of every one of ``ecosystems`` are there."""


@dataclass(frozen=True)
class Query:
    """One search a matcher wants: advisories of ``name`` in ``ecosystem``, compared at ``version``."""

    ecosystem: str
    name: str
    version: str
    scheme: VersionScheme


class Matcher(ABC):
    name: str
    package_types: tuple[str, ...]

    @abstractmethod
    def queries(self, package: Package, distro: Distro | None) -> list[Query]:
        """What to look up for ``package``; empty when this matcher has nothing to say about it."""

    def accepts(self, advisory: Advisory) -> bool:
        """Advisories this matcher ignores even when the name matches (e.g. Debian's DSA summaries)."""
        return True
