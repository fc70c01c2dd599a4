"""Alpine / Wolfi package version order, ported from apk-tools 2.x ``src/version.c``.

Grammar (Gentoo-like): ``digit{.digit}...{letter}{_suffix{number}}...{-r#}``.
Pre-release suffixes ``_alpha _beta _pre _rc`` sort before the bare release,
post-release suffixes ``_cvs _svn _git _hg _p`` after it; ``-rN`` is the
package revision.  A numeric component after ``.`` that starts with ``0`` is
weighed by its count of zeros first (apk's ``TOKEN_DIGIT_OR_ZERO`` rule), so
``1.01 < 1.1`` and ``1.001 < 1.01``.  When the common prefix is equal, the
longer version wins unless what follows is a pre-release suffix.
"""

from __future__ import annotations

import functools

from giropops.errors import quote_for_error
from giropops.vuln.versions.interface import CompareKey, CompareKeyScheme, InvalidVersion

# Token types, in apk-tools' order (the order matters for the final comparison).
_INVALID, _DIGIT_OR_ZERO, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _REVISION_NO, _END = -1, 0, 1, 2, 3, 4, 5, 6
_PRE = ("alpha", "beta", "pre", "rc")
_POST = ("cvs", "svn", "git", "hg", "p")


def _next_type(t: int, s: str, pos: int) -> tuple[int, int]:
    """The type of the token at ``s[pos:]`` after a token of type ``t``; returns (type, new pos)."""
    if pos >= len(s):
        return _END, pos
    c = s[pos]
    n = _INVALID
    if t in (_DIGIT, _DIGIT_OR_ZERO) and c.islower() and c.isascii():
        n = _LETTER
    elif t == _LETTER and c.isdigit():
        n = _DIGIT
    elif t == _SUFFIX and c.isdigit():
        n = _SUFFIX_NO
    else:
        if c == ".":
            n = _DIGIT_OR_ZERO
        elif c == "_":
            n = _SUFFIX
        elif c == "-":
            if pos + 1 < len(s) and s[pos + 1] == "r":
                n = _REVISION_NO
                pos += 1
            else:
                n = _INVALID
        pos += 1
    if n < t and not (
        (n == _DIGIT_OR_ZERO and t == _DIGIT) or (n == _SUFFIX and t == _SUFFIX_NO) or (n == _DIGIT and t == _LETTER)
    ):
        n = _INVALID
    return n, pos


@functools.lru_cache(maxsize=65536)
def tokens(version: str) -> tuple[tuple[int, int], ...]:
    """(type, value) pairs as apk's ``get_token`` yields them; the last type is END or INVALID."""
    out: list[tuple[int, int]] = []
    t, pos, s = _DIGIT, 0, version
    while t not in (_END, _INVALID):
        if pos >= len(s):
            # apk reads a zero-length token worth 0 here (a trailing separator), then END.
            out.append((t, 0))
            out.append((_END, 0))
            break
        v, i, nt = 0, pos, _INVALID
        if t == _DIGIT_OR_ZERO and s[i] == "0":
            while i < len(s) and s[i] == "0":
                i += 1
            nt = _DIGIT
            v = -(i - pos)
        elif t in (_DIGIT, _DIGIT_OR_ZERO, _SUFFIX_NO, _REVISION_NO):
            while i < len(s) and s[i].isdigit() and s[i].isascii():
                v = v * 10 + ord(s[i]) - 48
                i += 1
        elif t == _LETTER:
            v = ord(s[i])
            i += 1
        elif t == _SUFFIX:
            for idx, suffix in enumerate(_PRE):
                if s.startswith(suffix, i):
                    v, i = idx - len(_PRE), i + len(suffix)
                    break
            else:
                for idx, suffix in enumerate(_POST):
                    if s.startswith(suffix, i):
                        v, i = idx, i + len(suffix)
                        break
                else:
                    out.append((_INVALID, -1))
                    return tuple(out)
        out.append((t, v))
        pos = i
        if pos >= len(s):
            t = _END
        elif nt != _INVALID:
            t = nt
        else:
            t, pos = _next_type(t, s, pos)
        if t in (_END, _INVALID):
            out.append((t, 0))
    return tuple(out)


def validate(version: str) -> None:
    # apk-tools 2.x would accept a leading letter (an empty number token); abuild and
    # apk-tools 3 do not, and no real package has one, so it is refused here.
    if not isinstance(version, str) or not version or not ("0" <= version[0] <= "9"):
        raise InvalidVersion(f"invalid apk version {quote_for_error(version)}")
    if tokens(version)[-1][0] != _END:
        raise InvalidVersion(f"invalid apk version {quote_for_error(version)}")


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``apk version -t`` orders ``a`` and ``b`` (both must be valid)."""
    validate(a)
    validate(b)
    ta, tb = tokens(a), tokens(b)
    # Walk both token lists in step, as apk_version_compare_blob does: a token's value
    # is compared while the types of the *next* tokens agree.
    i = 0
    at = bt = _DIGIT
    av = bv = 0
    while at == bt and at not in (_END, _INVALID) and av == bv:
        av, bv = ta[i][1], tb[i][1]
        at, bt = ta[i + 1][0], tb[i + 1][0]
        i += 1
    if av != bv:
        return -1 if av < bv else 1
    if at == bt:
        return 0
    if at == _SUFFIX and ta[i][1] < 0:
        return -1
    if bt == _SUFFIX and tb[i][1] < 0:
        return 1
    return -1 if at > bt else (1 if at < bt else 0)


class _Key(CompareKey):
    __slots__ = ()
    check, order = staticmethod(validate), staticmethod(compare)

    def __repr__(self) -> str:
        return f"ApkVersion({self.v!r})"


class ApkScheme(CompareKeyScheme):
    name = "apk"
    key_type = _Key


SCHEME = ApkScheme()
