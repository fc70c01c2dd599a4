"""Maven version order, as ``org.apache.maven.artifact.versioning.ComparableVersion`` (Maven 3) defines it.

A version is split into *items*: numbers, words ("qualifiers") and nested lists.
``.`` separates items of one list; ``-`` and a switch between digits and letters
open a nested list (so ``1-rc-1`` is ``[1, [rc, [1]]]``).  An empty item is ``0``.
Known qualifiers order ``alpha < beta < milestone < rc = cr < snapshot < "" = ga =
final = release < sp``; other words sort after them, alphabetically, and the single
letters ``a``, ``b``, ``m`` directly followed by a digit mean alpha, beta, milestone.
A word that ends the version or is followed by a digit opens a nested list unless
it starts one (``1.0.RC`` is ``1-RC``, ``1.0.x2`` is ``1-x-2``).
Trailing "null" items (0, the empty qualifier, empty lists) are dropped from each
list, so ``1.0.0 == 1``, ``1-ga == 1``.  Comparing lists pads the shorter with
"nothing": a number beats nothing when it is not 0, a qualifier loses to nothing
when it sorts before the release, a nested list compares its items with nothing.
Case is ignored.  Every string is a valid Maven version.
"""

from __future__ import annotations

import functools
from typing import Any

from giropops.vuln.versions.interface import InvalidVersion, VersionScheme

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_RELEASE = _QUALIFIERS.index("")
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}


class _Word:
    """A qualifier, reduced to (rank, text): known ones by their index, unknown ones after all of them."""

    __slots__ = ("rank",)

    def __init__(self, text: str, followed_by_digit: bool) -> None:
        if followed_by_digit and text in _SHORT:
            text = _SHORT[text]
        text = _ALIASES.get(text, text)
        self.rank: tuple[int, str] = (_QUALIFIERS.index(text), "") if text in _QUALIFIERS else (
            len(_QUALIFIERS), text)

    def is_null(self) -> bool:
        return self.rank == (_RELEASE, "")


_Item = int | _Word | list[Any]


def _is_null(item: _Item) -> bool:
    if isinstance(item, int):
        return item == 0
    if isinstance(item, _Word):
        return item.is_null()
    return not item


def _cmp_none(item: _Item) -> int:
    """``item`` compared with a missing item."""
    if isinstance(item, int):
        return 1 if item else 0
    if isinstance(item, _Word):
        r = item.rank
        return -1 if r < (_RELEASE, "") else (1 if r > (_RELEASE, "") else 0)
    for sub in item:
        c = _cmp_none(sub)
        if c:
            return c
    return 0


def _cmp(a: _Item | None, b: _Item | None) -> int:
    if a is None:
        return 0 if b is None else -_cmp_none(b)
    if b is None:
        return _cmp_none(a)
    if isinstance(a, int):
        if isinstance(b, int):
            return (a > b) - (a < b)
        return 1  # a number beats a word and a list
    if isinstance(a, _Word):
        if isinstance(b, _Word):
            return (a.rank > b.rank) - (a.rank < b.rank)
        return -1  # a word loses to a number and a list
    if isinstance(b, int):
        return -1  # a list loses to a number
    if isinstance(b, _Word):
        return 1  # a list beats a word
    for i in range(max(len(a), len(b))):
        c = _cmp(a[i] if i < len(a) else None, b[i] if i < len(b) else None)
        if c:
            return c
    return 0


def _normalize(items: list[Any]) -> None:
    """Drop trailing null items, stopping at the first non-null item that is not a list."""
    i = len(items) - 1
    while i >= 0:
        if _is_null(items[i]):
            del items[i]
        elif not isinstance(items[i], list):
            break
        i -= 1


@functools.lru_cache(maxsize=65536)
def parse(version: str) -> list[Any]:
    """The item tree of ``version``."""
    if not isinstance(version, str):
        raise InvalidVersion(f"Maven version must be a string, not {type(version).__name__}")
    text = version.lower()
    root: list[Any] = []
    current = root
    lists = [root]
    digits = False
    start = 0

    def item(chunk: str, numeric: bool) -> _Item:
        return int(chunk) if numeric else _Word(chunk, False)

    def nested() -> None:
        nonlocal current
        child: list[Any] = []
        current.append(child)
        current = child
        lists.append(child)

    for i, c in enumerate(text):
        if c in ".-":
            current.append(0 if i == start else item(text[start:i], digits))
            start = i + 1
            if c == "-":
                nested()
        elif c.isdigit() and c.isascii():
            if not digits and i > start:
                if current:
                    nested()  # "1.0.x2" is 1-x-2, as above
                current.append(_Word(text[start:i], True))
                start = i
                nested()
            digits = True
        else:
            if digits and i > start:
                current.append(int(text[start:i]))
                start = i
                nested()
            digits = False
    if len(text) > start:
        if not digits and current:
            nested()  # a trailing word after "." counts as after "-": "1.0.RC" is 1-rc
        current.append(item(text[start:], digits))
    for lst in reversed(lists):
        _normalize(lst)
    return root


def compare(a: str, b: str) -> int:
    return _cmp(parse(a), parse(b))


def _canonical(item: _Item) -> Any:
    """A hashable form of a normalised item tree.  Two trees compare equal exactly when they are the same
    tree (every non-empty normalised list holds an item that differs from "nothing"), so equal versions
    have equal canonical forms."""
    if isinstance(item, _Word):
        return ("w", item.rank)
    if isinstance(item, list):
        return tuple(_canonical(i) for i in item)
    return item


@functools.total_ordering
class _Key:
    __slots__ = ("hash", "items")

    def __init__(self, v: str) -> None:
        self.items = parse(v)
        self.hash = hash(_canonical(self.items))

    def __lt__(self, other: _Key) -> bool:
        return _cmp(self.items, other.items) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and self.hash == other.hash and _cmp(self.items, other.items) == 0

    def __hash__(self) -> int:
        return self.hash


class MavenScheme(VersionScheme):
    name = "maven"

    def key(self, version: str) -> Any:
        if not isinstance(version, str) or not version.strip():
            raise InvalidVersion(f"invalid Maven version {version!r}")
        return _Key(version)

    def compare(self, a: str, b: str) -> int:
        return _cmp(self.key(a).items, self.key(b).items)


SCHEME = MavenScheme()
