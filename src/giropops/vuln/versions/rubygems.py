"""RubyGems version order, as ``Gem::Version#<=>`` defines it.

A version is digits, then ``.``-separated segments of letters and digits, with an
optional ``-`` suffix that stands for ``.pre.``.  It is split into runs of digits
(numbers) and runs of letters (strings); a version with any letter is a
pre-release.  The numeric head and the rest each lose their trailing zeros
(``1.0 == 1``, ``1.a.0 == 1.a``); segments compare pairwise, missing ones as 0,
a string sorting before a number, strings by bytes, numbers by value.
"""

from __future__ import annotations

import functools
import re

from giropops.vuln.versions.interface import CompareKey, CompareKeyScheme, InvalidVersion

_VALID = re.compile(r"^\s*([0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?\s*\Z")
_SEGMENT = re.compile(r"[0-9]+|[a-zA-Z]+")


def _drop_zeros(parts: list[int | str]) -> list[int | str]:
    while parts and parts[-1] == 0:
        parts.pop()
    return parts


@functools.lru_cache(maxsize=65536)
def segments(version: str) -> tuple[int | str, ...]:
    """The canonical segments ``<=>`` compares."""
    if not isinstance(version, str) or not version.isascii() or not _VALID.match(version):
        raise InvalidVersion(f"invalid RubyGems version {version!r}")
    text = version.strip() or "0"
    text = text.replace("-", ".pre.")
    parts: list[int | str] = [int(s) if s.isdigit() else s for s in _SEGMENT.findall(text)]
    first_word = next((i for i, p in enumerate(parts) if isinstance(p, str)), len(parts))
    return tuple(_drop_zeros(parts[:first_word]) + _drop_zeros(parts[first_word:]))


def compare(a: str, b: str) -> int:
    sa, sb = segments(a), segments(b)
    for i in range(max(len(sa), len(sb))):
        x = sa[i] if i < len(sa) else 0
        y = sb[i] if i < len(sb) else 0
        if x == y:
            continue
        if isinstance(x, str) and isinstance(y, int):
            return -1
        if isinstance(x, int) and isinstance(y, str):
            return 1
        return -1 if x < y else 1  # type: ignore[operator]
    return 0


class _Key(CompareKey):
    __slots__ = ()
    check, order = staticmethod(segments), staticmethod(compare)

    def __hash__(self) -> int:
        return hash(segments(self.v))  # equal versions have the same canonical segments


class RubyGemsScheme(CompareKeyScheme):
    name = "rubygems"
    key_type = _Key


SCHEME = RubyGemsScheme()
