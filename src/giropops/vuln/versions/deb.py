"""Debian version order, as ``dpkg --compare-versions`` implements it (deb-version(7)).

``[epoch:]upstream[-revision]``: the epoch compares as a number; upstream and
revision compare by alternating non-digit and digit runs.  In non-digit runs
every letter sorts before every non-letter, ``~`` sorts before anything, even
the end of the run; digit runs compare as numbers.  A missing revision is
the same as ``0`` for ordering purposes (dpkg treats "" and "0" alike).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from giropops.errors import quote_for_error
from giropops.vuln.versions.interface import InvalidVersion, VersionScheme

_UPSTREAM_RE = re.compile(r"^[0-9][A-Za-z0-9.+~:-]*$")
_REVISION_RE = re.compile(r"^[A-Za-z0-9.+~]*$")


def _order(c: str) -> int:
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isascii() and c.isalpha():
        return ord(c)
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        first_diff = 0
        while (i < la and not a[i].isdigit()) or (j < lb and not b[j].isdigit()):
            ac = _order(a[i]) if i < la else 0
            bc = _order(b[j]) if j < lb else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < la and a[i] == "0":
            i += 1
        while j < lb and b[j] == "0":
            j += 1
        while i < la and a[i].isdigit() and j < lb and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < la and a[i].isdigit():
            return 1
        if j < lb and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


@functools.lru_cache(maxsize=65536)
def parse(version: str) -> tuple[int, str, str]:
    """Split into (epoch, upstream, revision); raises ``InvalidVersion`` like dpkg's parseversion."""
    if not isinstance(version, str):
        raise InvalidVersion(f"Debian version must be a string, not {type(version).__name__}")
    text = version.strip()
    if not text or any(c.isspace() for c in text):
        raise InvalidVersion(f"invalid Debian version {quote_for_error(version)}: empty or embedded space")
    epoch = 0
    if ":" in text:
        head, _, text = text.partition(":")
        if not head.isdigit() or not head.isascii():
            raise InvalidVersion(f"invalid Debian version {quote_for_error(version)}: epoch is not a number")
        epoch = int(head)
    upstream, sep, revision = text.rpartition("-")
    if not sep:
        upstream, revision = text, ""
    if not upstream or not _UPSTREAM_RE.match(upstream):
        raise InvalidVersion(f"invalid Debian version {quote_for_error(version)}: bad upstream part")
    if sep and (not revision or not _REVISION_RE.match(revision)):
        raise InvalidVersion(f"invalid Debian version {quote_for_error(version)}: bad revision")
    return epoch, upstream, revision


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as dpkg orders ``a`` and ``b``."""
    ea, ua, ra = parse(a)
    eb, ub, rb = parse(b)
    if ea != eb:
        return -1 if ea < eb else 1
    r = _verrevcmp(ua, ub) or _verrevcmp(ra, rb)
    return (r > 0) - (r < 0)


_TERMINAL: tuple[int, ...] = (0,)


def _part_key(text: str) -> tuple[Any, ...]:
    """A tuple that orders like ``_verrevcmp``: alternating non-digit runs (as tuples of ``_order``
    values closed by 0, so "~" < end < letters < others) and digit runs (as ints), closed by an
    end marker that compares as an empty non-digit run."""
    out: list[Any] = []
    i, n = 0, len(text)
    while i < n:
        j = i
        while j < n and not text[j].isdigit():
            j += 1
        out.append((*(_order(c) for c in text[i:j]), 0))
        k = j
        while k < n and text[k].isdigit():
            k += 1
        out.append(int(text[j:k]) if k > j else 0)
        i = k
    if not out:  # an empty part orders like "0" (dpkg: a missing revision is revision 0)
        out = [_TERMINAL, 0]
    out.append(_TERMINAL)
    return tuple(out)


@functools.lru_cache(maxsize=131072)
def sort_key(version: str) -> tuple[Any, ...]:
    epoch, upstream, revision = parse(version)
    return (epoch, _part_key(upstream), _part_key(revision))


class DebScheme(VersionScheme):
    name = "deb"

    def key(self, version: str) -> Any:
        return sort_key(version)

    def compare(self, a: str, b: str) -> int:
        ka, kb = sort_key(a), sort_key(b)
        return (ka > kb) - (ka < kb)


SCHEME = DebScheme()
