"""The one interface every version scheme implements.

A scheme turns a version string into a comparison key (as ``packaging`` does),
so callers sort with ``key=`` and compare keys with ``<``; ``compare`` is the
three-way form for callers that only need one comparison.  Unparseable versions
raise ``InvalidVersion``: a matcher must never guess an order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from giropops.errors import VulnError


class InvalidVersion(VulnError):
    """A version string that its scheme cannot order."""


class VersionScheme(ABC):
    name: str
    # True when the scheme orders every semantic version as SemVer 2.0 does (so a SEMVER range is
    # compared in this scheme, which may accept more spellings, e.g. Go's ``go1.21rc2``)
    orders_semver: bool = False

    @abstractmethod
    def key(self, version: str) -> Any:
        """A totally ordered key; raises ``InvalidVersion``."""

    def compare(self, a: str, b: str) -> int:
        ka, kb = self.key(a), self.key(b)
        return -1 if ka < kb else (1 if ka > kb else 0)

    def valid(self, version: str) -> bool:
        try:
            self.key(version)
        except InvalidVersion:
            return False
        return True


class CompareKey:
    """A key that orders version strings with a scheme's three-way ``order`` (for schemes with no
    cheaper structured key); ``check`` raises ``InvalidVersion`` for a version the scheme cannot order.
    Keys hash alike unless a scheme overrides ``__hash__`` with a canonical form."""

    __slots__ = ("v",)

    @staticmethod
    def check(v: str, /) -> object:
        raise NotImplementedError

    @staticmethod
    def order(a: str, b: str, /) -> int:
        raise NotImplementedError

    def __init__(self, v: str) -> None:
        type(self).check(v)
        self.v = v

    def __lt__(self, other: CompareKey) -> bool:
        return type(self).order(self.v, other.v) < 0

    def __gt__(self, other: CompareKey) -> bool:
        return type(self).order(self.v, other.v) > 0

    def __le__(self, other: CompareKey) -> bool:
        return type(self).order(self.v, other.v) <= 0

    def __ge__(self, other: CompareKey) -> bool:
        return type(self).order(self.v, other.v) >= 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and type(self).order(self.v, other.v) == 0

    def __hash__(self) -> int:
        return 0


class CompareKeyScheme(VersionScheme):
    """A scheme whose keys are ``key_type`` (a ``CompareKey``) and whose ``compare`` is its ``order``."""

    key_type: type[CompareKey]

    def key(self, version: str) -> Any:
        return self.key_type(version)

    def compare(self, a: str, b: str) -> int:
        return self.key_type.order(a, b)
