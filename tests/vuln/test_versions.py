"""Version order per scheme, checked against the reference implementations.

dpkg itself is the oracle for Debian (batched: one shell per list of pairs);
``packaging`` for PEP 440; apk-tools' documented rules (``src/version.c`` and its
``test/version.data``) for apk, since no apk binary exists on Debian.
"""

from __future__ import annotations

import itertools
import shlex
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.version import Version

from giropops.vuln.versions import APK, DEB, PEP440, SEMVER, InvalidVersion, scheme_for
from giropops.vuln.versions import apk as apk_mod
from giropops.vuln.versions import deb as deb_mod
from tests.support.services import require_binary

# --- Debian -----------------------------------------------------------------

_upstream_chars = st.sampled_from(list("0123456789") * 3 + list("abz.+~AZ"))
_upstream = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(list("0123456789")),
    st.text(_upstream_chars, max_size=8),
)
_revision = st.text(st.sampled_from(list("0123456789") * 2 + list("ab.+~")), min_size=1, max_size=5)
_deb_version = st.builds(
    lambda epoch, up, rev: (f"{epoch}:" if epoch is not None else "") + up + (f"-{rev}" if rev else ""),
    st.one_of(st.none(), st.integers(0, 3)),
    _upstream,
    st.one_of(st.none(), _revision),
)


def _dpkg_order(pairs: list[tuple[str, str]]) -> list[int]:
    dpkg = require_binary("dpkg")
    script = []
    for a, b in pairs:
        qa, qb = shlex.quote(a), shlex.quote(b)
        script.append(
            f"if {dpkg} --compare-versions {qa} lt {qb}; then echo -1; "
            f"elif {dpkg} --compare-versions {qa} eq {qb}; then echo 0; else echo 1; fi"
        )
    out = subprocess.run(["sh", "-c", "\n".join(script)], capture_output=True, text=True, check=True)
    return [int(x) for x in out.stdout.split()]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_deb_version, _deb_version), min_size=40, max_size=40))
def test_deb_agrees_with_dpkg_compare_versions(pairs: list[tuple[str, str]]) -> None:
    # Also pair each version with a near neighbour so equal prefixes are common.
    pairs = pairs + [(a, a + "~") for a, _ in pairs[:10]] + [(a, a.replace("-", "+0-", 1)) for a, _ in pairs[:10]]
    valid = [(a, b) for a, b in pairs if DEB.valid(a) and DEB.valid(b)]
    expected = _dpkg_order(valid)
    assert [DEB.compare(a, b) for a, b in valid] == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # deb-version(7): "~" sorts before anything, even the end of a part.
        ("1.0~rc1-1", "1.0-1", -1),
        ("1.0~~", "1.0~", -1),
        # the epoch wins over everything else.
        ("1:0.1", "9.9", 1),
        # letters sort before non-letters.
        ("1.0a", "1.0+", -1),
        # binNMU suffix sorts after the source revision.
        ("2.36-9+deb12u4", "2.36-9+deb12u4+b1", -1),
        ("3.0.11-1~deb12u2", "3.0.11-1", -1),
        # an absent revision equals revision 0.
        ("1.2", "1.2-0", 0),
        ("007", "7", 0),
    ],
)
def test_deb_documented_cases(a: str, b: str, expected: int) -> None:
    assert DEB.compare(a, b) == expected
    assert _dpkg_order([(a, b)]) == [expected]


@pytest.mark.parametrize("bad", ["", "a1.0", "1.0 1", "x:1.0", "1.0-", "1.0-a:b"])
def test_deb_rejects_invalid(bad: str) -> None:
    with pytest.raises(InvalidVersion):
        deb_mod.parse(bad)


# --- apk --------------------------------------------------------------------

# Pairs from apk-tools' rules: each (lower, higher).
APK_ORDERED = [
    ("1.0", "1.1"),
    ("1.9", "1.10"),
    ("1.2", "1.2.1"),  # the longer version wins on an equal prefix
    ("1.2_alpha", "1.2_beta"),
    ("1.2_beta", "1.2_pre"),
    ("1.2_pre", "1.2_rc"),
    ("1.2_rc", "1.2_rc1"),
    ("1.2_rc1", "1.2_rc2"),
    ("1.2_rc9", "1.2"),  # pre-release suffixes precede the release
    ("1.2", "1.2_cvs"),  # post-release suffixes follow it
    ("1.2_cvs", "1.2_svn"),
    ("1.2_svn", "1.2_git"),
    ("1.2_git", "1.2_hg"),
    ("1.2_hg", "1.2_p"),
    ("1.2_p1", "1.2_p2"),
    ("1.2", "1.2a"),  # a letter follows the bare number
    ("1.2a", "1.2b"),
    ("1.2z", "1.2.1"),  # another numeric component beats a letter
    ("1.2_p9", "1.2.1"),
    ("1.2-r0", "1.2-r1"),
    ("1.2-r9", "1.2-r10"),
    ("1.2-r99", "1.2_p1"),  # the revision is the least significant part
    ("1.2-r99", "1.2.0"),
    ("1.01", "1.1"),  # leading zero after "." compares below the digits (TOKEN_DIGIT_OR_ZERO)
    ("1.001", "1.01"),
    ("2.39.5-r0", "2.40.0-r0"),
    ("3.0.15-r0", "3.0.15-r1"),
    ("1.36.1-r15", "1.36.1-r29"),
    ("0.8.4_rc2-r0", "0.8.4-r0"),
    ("20230201", "20240101"),
]


@pytest.mark.parametrize(("lower", "higher"), APK_ORDERED)
def test_apk_documented_order(lower: str, higher: str) -> None:
    assert APK.compare(lower, higher) == -1
    assert APK.compare(higher, lower) == 1
    assert APK.key(lower) < APK.key(higher)


@pytest.mark.parametrize(("a", "b"), [("1.2", "1.2"), ("1.2-r0", "1.2-r0"), ("1.0_p1", "1.0_p1")])
def test_apk_equal(a: str, b: str) -> None:
    assert APK.compare(a, b) == 0


@pytest.mark.parametrize("bad", ["", "a1", "1.2_foo", "1.2-x1", "1.2-r1a", "1.2_rc1a"])
def test_apk_rejects_invalid(bad: str) -> None:
    with pytest.raises(InvalidVersion):
        apk_mod.validate(bad)


_apk_version = st.builds(
    lambda nums, letter, sufs, rev: ".".join(str(n) for n in nums)
    + (letter or "")
    + "".join(f"_{s}{n if n is not None else ''}" for s, n in sufs)
    + (f"-r{rev}" if rev is not None else ""),
    st.lists(st.integers(0, 12), min_size=1, max_size=4),
    st.one_of(st.none(), st.sampled_from("abz")),
    st.lists(
        st.tuples(st.sampled_from(["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"]),
                  st.one_of(st.none(), st.integers(0, 3))),
        max_size=2,
    ),
    st.one_of(st.none(), st.integers(0, 12)),
)


@given(st.lists(_apk_version, min_size=3, max_size=3))
def test_apk_total_order(vs: list[str]) -> None:
    a, b, c = vs
    # antisymmetry and transitivity: sorting must be consistent with pairwise compare.
    assert APK.compare(a, b) == -APK.compare(b, a)
    ordered = sorted(vs, key=APK.key)
    for x, y in itertools.pairwise(ordered):
        assert APK.compare(x, y) <= 0
    if APK.compare(a, b) <= 0 and APK.compare(b, c) <= 0:
        assert APK.compare(a, c) <= 0


# --- PEP 440 ------------------------------------------------------------------

_pep_version = st.builds(
    lambda epoch, rel, pre, post, dev: (f"{epoch}!" if epoch else "")
    + ".".join(map(str, rel))
    + (f"{pre[0]}{pre[1]}" if pre else "")
    + (f".post{post}" if post is not None else "")
    + (f".dev{dev}" if dev is not None else ""),
    st.integers(0, 2),
    st.lists(st.integers(0, 20), min_size=1, max_size=4),
    st.one_of(st.none(), st.tuples(st.sampled_from(["a", "b", "rc"]), st.integers(0, 3))),
    st.one_of(st.none(), st.integers(0, 3)),
    st.one_of(st.none(), st.integers(0, 3)),
)


@given(_pep_version, _pep_version)
def test_pep440_agrees_with_packaging(a: str, b: str) -> None:
    va, vb = Version(a), Version(b)
    assert PEP440.compare(a, b) == (va > vb) - (va < vb)


def test_pep440_invalid() -> None:
    with pytest.raises(InvalidVersion):
        PEP440.key("not a version")


# --- semver -------------------------------------------------------------------


def test_semver_spec_example_order() -> None:
    # semver.org section 11: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta
    # < 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0.
    chain = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
             "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"]
    for lower, higher in itertools.pairwise(chain):
        assert SEMVER.compare(lower, higher) == -1
    assert SEMVER.compare("1.0.0+build.1", "1.0.0") == 0
    assert SEMVER.compare("v1.2", "1.2.0") == 0
    with pytest.raises(InvalidVersion):
        SEMVER.key("1.0.0-01")


def test_scheme_for_ecosystems() -> None:
    assert scheme_for("Debian:12") is DEB
    assert scheme_for("Alpine:v3.19") is APK
    assert scheme_for("Wolfi") is APK
    assert scheme_for("Chainguard") is APK
    assert scheme_for("PyPI") is PEP440
    assert scheme_for("npm", "SEMVER") is SEMVER
    assert scheme_for("Ubuntu:22.04") is None
    assert scheme_for("PyPI", "GIT") is None


@settings(max_examples=300, deadline=None)
@given(_deb_version, _deb_version)
def test_deb_sort_key_agrees_with_the_dpkg_algorithm_port(a: str, b: str) -> None:
    # the tuple key (used for speed) and the direct port of dpkg's verrevcmp must agree everywhere
    if DEB.valid(a) and DEB.valid(b):
        ka, kb = deb_mod.sort_key(a), deb_mod.sort_key(b)
        assert (ka > kb) - (ka < kb) == deb_mod.compare(a, b)
