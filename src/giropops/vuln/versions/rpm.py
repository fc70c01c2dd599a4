"""RPM version order: ``[epoch:]version[-release]`` compared as rpm's ``rpmvercmp`` does (rpm 4.15+).

The epoch compares as a number (missing = 0), then version, then release, each
with the same segment walk: runs of characters that are neither letters nor
digits (nor ``~``/``^``) only separate; ``~`` sorts before anything, even the
end (``1.0~rc1 < 1.0``); ``^`` sorts after the end but before anything else
(``1.0 < 1.0^git1 < 1.0.1``); then alternating digit runs (compared as numbers,
leading zeros ignored) and letter runs (compared as bytes), a digit run beating a
letter run; when one string runs out first, the longer one wins.
"""

from __future__ import annotations

import functools

from giropops.vuln.versions.interface import CompareKey, CompareKeyScheme, InvalidVersion


def _alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _digit(c: str) -> bool:
    return "0" <= c <= "9"


def _alpha(c: str) -> bool:
    return c.isascii() and c.isalpha()


def vercmp(a: str, b: str) -> int:
    """-1, 0 or 1: rpm's segment comparison of two version (or release) strings."""
    if a == b:
        return 0
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        while i < la and not _alnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < lb and not _alnum(b[j]) and b[j] not in "~^":
            j += 1
        ca = a[i] if i < la else ""
        cb = b[j] if j < lb else ""
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i += 1
            j += 1
            continue
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i += 1
            j += 1
            continue
        if not (ca and cb):
            break
        si, sj = i, j
        numeric = _digit(ca)
        test = _digit if numeric else _alpha
        while i < la and test(a[i]):
            i += 1
        while j < lb and test(b[j]):
            j += 1
        if j == sj:  # b has a run of the other kind here
            return 1 if numeric else -1
        sa, sb = a[si:i], b[sj:j]
        if numeric:
            sa, sb = sa.lstrip("0"), sb.lstrip("0")
            if len(sa) != len(sb):
                return 1 if len(sa) > len(sb) else -1
        if sa != sb:
            return 1 if sa > sb else -1
    if i >= la and j >= lb:
        return 0
    return -1 if i >= la else 1


@functools.lru_cache(maxsize=65536)
def parse(version: str) -> tuple[int, str, str]:
    """(epoch, version, release) of ``[E:]V[-R]``; the release is what follows the last ``-``."""
    if not isinstance(version, str) or not version or any(c.isspace() for c in version):
        raise InvalidVersion(f"invalid RPM version {version!r}")
    epoch = 0
    text = version
    head, sep, rest = text.partition(":")
    if sep:
        if not head.isdigit() or not head.isascii():
            raise InvalidVersion(f"invalid RPM version {version!r}: epoch is not a number")
        epoch, text = int(head), rest
    ver, sep, release = text.rpartition("-")
    if not sep:
        ver, release = text, ""
    if not ver or (sep and not release) or ":" in ver:
        raise InvalidVersion(f"invalid RPM version {version!r}")
    return epoch, ver, release


def compare(a: str, b: str) -> int:
    ea, va, ra = parse(a)
    eb, vb, rb = parse(b)
    if ea != eb:
        return -1 if ea < eb else 1
    by_version = vercmp(va, vb)
    if by_version or ra == rb:
        return by_version
    if ra and rb:
        return vercmp(ra, rb)
    # as rpm's rpmverCmp: a missing release sorts before any release, even one starting with "~"
    return 1 if ra else -1


class _Key(CompareKey):
    __slots__ = ()
    check, order = staticmethod(parse), staticmethod(compare)


class RpmScheme(CompareKeyScheme):
    name = "rpm"
    key_type = _Key


SCHEME = RpmScheme()
