"""Version order of the language ecosystems and RPM, checked against reference implementations.

Each property test draws a few hundred pairs per example and runs the reference
once for all of them (see ``refversions``): Maven's own ``ComparableVersion``,
Ruby's ``Gem::Version``, rpm's ``rpm.vercmp`` and node-semver.  Go's and NuGet's
rules have no reference binary here: Go's semver core is checked against
node-semver (Go orders modules by SemVer 2.0 precedence) plus a table of the
cases the Go modules reference documents; NuGet against the tables of NuGet's
versioning documentation.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from giropops.vuln.versions import GO, MAVEN, NUGET, RPM, RUBYGEMS, SEMVER, InvalidVersion, scheme_for
from tests.vuln import refversions

# No shrinking: an example is a list of ~400 pairs and a failure already names the pairs that differ.
_SETTINGS = settings(max_examples=12, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _pairs(version: st.SearchStrategy[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    return st.lists(st.tuples(version, version), min_size=150, max_size=150)


def _with_neighbours(pairs: list[tuple[str, str]], suffixes: tuple[str, ...]) -> list[tuple[str, str]]:
    """Random pairs rarely share a prefix: add each first version against itself plus a suffix."""
    return pairs + [(a, a + s) for a, _ in pairs[:40] for s in suffixes] + [(a, a) for a, _ in pairs[:5]]


# --- Maven ------------------------------------------------------------------------------

_MAVEN_WORDS = ["alpha", "beta", "milestone", "rc", "cr", "snapshot", "SNAPSHOT", "ga", "final", "Final", "release",
                "sp", "a", "b", "m", "foo", "RC", "x"]
_maven_token = st.one_of(st.sampled_from(["0", "1", "2", "10", "00", "007", "3"]), st.sampled_from(_MAVEN_WORDS))
_maven_version = st.builds(
    lambda first, rest: first + "".join(sep + tok for sep, tok in rest),
    st.sampled_from(["1", "2", "0", "1.0", "10", "a", "-", "."]),
    st.lists(st.tuples(st.sampled_from([".", "-", "", "..", "-."]), _maven_token), max_size=6),
)


@_SETTINGS
@given(_pairs(_maven_version))
def test_maven_agrees_with_comparable_version(pairs: list[tuple[str, str]]) -> None:
    pairs = _with_neighbours(pairs, ("-SNAPSHOT", ".0", "-1", "-sp", "a1", ".RELEASE", "-0"))
    reference = refversions.maven(pairs)
    assert [(a, b, r) for (a, b), r in zip(pairs, reference, strict=True) if MAVEN.compare(a, b) != r] == []
    # keys of equal versions are equal and hash alike (versions lists are looked up in sets)
    equal = [(a, b) for (a, b), r in zip(pairs, reference, strict=True) if r == 0]
    assert equal and all(hash(MAVEN.key(a)) == hash(MAVEN.key(b)) for a, b in equal)


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("1.0-SNAPSHOT", "1.0", -1), ("1.0", "1.0.0.0", 0), ("1.0-alpha-1", "1.0-a1", 0), ("1.0-rc1", "1.0-cr1", 0),
    ("1.0.Final", "1.0", 0), ("1.0-sp1", "1.0", 1), ("1.0-foo", "1.0-sp", 1), ("2.0.0.RELEASE", "2.0", 0),
    ("1.0-beta", "1.0-milestone", -1), ("1.0.1", "1.0-sp", 1),
])
def test_maven_documented_order(a: str, b: str, expected: int) -> None:
    # the ordering table of ComparableVersion's javadoc and Maven's version-order documentation
    assert MAVEN.compare(a, b) == expected
    assert refversions.maven([(a, b)]) == [expected]


# --- RubyGems -----------------------------------------------------------------------------

_gem_segment = st.one_of(st.sampled_from(["0", "1", "2", "10", "01"]),
                         st.sampled_from(["a", "b", "pre", "rc", "alpha", "beta", "A", "Z", "rc1", "1a", "x2y"]))
_gem_version = st.builds(
    lambda first, rest, pre: first + "".join("." + s for s in rest) + (f"-{pre}" if pre else ""),
    st.sampled_from(["0", "1", "2", "1.0", "10"]),
    st.lists(_gem_segment, max_size=5),
    st.one_of(st.none(), st.sampled_from(["1", "rc1", "beta.2", "x-y"])),
)


@_SETTINGS
@given(_pairs(st.one_of(_gem_version, st.sampled_from(["", " 1.0 ", "1..0", "a1", "1.0-", "-1", "1_0", "1.0.a-"]))))
def test_rubygems_agrees_with_gem_version(pairs: list[tuple[str, str]]) -> None:
    pairs = _with_neighbours(pairs, (".0", ".a", ".1", "-1", ".pre"))
    reference = refversions.rubygems(pairs)
    ours: list[int | None] = []
    for a, b in pairs:
        try:
            ours.append(RUBYGEMS.compare(a, b))
        except InvalidVersion:
            ours.append(None)
    assert [(p, o, r) for p, o, r in zip(pairs, ours, reference, strict=True) if o != r] == []
    equal = [(a, b) for (a, b), r in zip(pairs, reference, strict=True) if r == 0]
    assert equal and all(hash(RUBYGEMS.key(a)) == hash(RUBYGEMS.key(b)) for a, b in equal)


# --- RPM ------------------------------------------------------------------------------------

_rpm_part = st.text(st.sampled_from(list("0123456789") * 3 + list("abzAZ.~^_+")), min_size=1, max_size=8)
_rpm_version = st.builds(
    lambda epoch, ver, rel: (f"{epoch}:" if epoch is not None else "") + ver + (f"-{rel}" if rel else ""),
    st.one_of(st.none(), st.integers(0, 3)),
    _rpm_part.filter(lambda s: "-" not in s),
    st.one_of(st.none(), _rpm_part),
)


@_SETTINGS
@given(_pairs(_rpm_version))
def test_rpm_agrees_with_rpm_vercmp(pairs: list[tuple[str, str]]) -> None:
    pairs = _with_neighbours(pairs, ("~rc1", "^git1", ".1", "a", "_1", ".0"))
    reference = refversions.rpm(pairs)
    assert [(a, b, r) for (a, b), r in zip(pairs, reference, strict=True) if RPM.compare(a, b) != r] == []


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("1.0~rc1-1", "1.0-1", -1), ("1.0^git1-1", "1.0-1", 1), ("1.0^git1-1", "1.0.1-1", -1),
    ("1:1.0-1", "2.0-1", 1), ("0:1.0-1", "1.0-1", 0), ("1.010-1", "1.10-1", 0), ("1.0a-1", "1.0.1-1", -1),
    ("2.28-225.el8", "2.28-225.el8_8.6", -1), ("1.1.1k-9.el8_7", "1.1.1k-12.el8_9", -1),
    ("1.0", "1.0-1", -1), ("1.0-1", "1.0", 1), ("b", "b-~8+^7z0A", -1),  # no release < any release
])
def test_rpm_documented_order(a: str, b: str, expected: int) -> None:
    assert RPM.compare(a, b) == expected
    assert refversions.rpm([(a, b)]) == [expected]


# --- npm / crates.io semver ------------------------------------------------------------------

_ident = st.sampled_from(["alpha", "beta", "rc", "0", "1", "2", "10", "a1", "x-y", "RC", "beta2", "-", "11a"])
_semver = st.builds(
    lambda core, pre, build: core + (f"-{'.'.join(pre)}" if pre else "") + (f"+{build}" if build else ""),
    st.builds(lambda *n: ".".join(map(str, n)), st.integers(0, 3), st.integers(0, 12), st.integers(0, 12)),
    st.lists(_ident, max_size=4),
    st.one_of(st.none(), st.sampled_from(["build.1", "001", "sha.abc"])),
)


@_SETTINGS
@given(_pairs(_semver))
def test_npm_and_crates_semver_agree_with_node_semver(pairs: list[tuple[str, str]]) -> None:
    pairs = _with_neighbours(pairs, ("-0", ".1", "-rc.1", "+b"))
    reference = refversions.node_semver(pairs)
    checked = [(a, b, r) for (a, b), r in zip(pairs, reference, strict=True) if r is not None]
    assert len(checked) > len(pairs) // 2
    assert [(a, b, r) for a, b, r in checked if SEMVER.compare(a, b) != r] == []
    assert scheme_for("npm") is SEMVER and scheme_for("crates.io") is SEMVER


# --- Go ---------------------------------------------------------------------------------------

_go_version = st.one_of(
    _semver.map(lambda v: "v" + v),
    st.builds(lambda base, ts: f"v{base}-{ts}-abcdef123456", st.sampled_from(["0.0.0", "1.2.4-0", "1.2.4-pre.0"]),
              st.sampled_from(["20210101000000", "20200101000000", "20221231235959"])),
    _semver.map(lambda v: f"v{v.split('+')[0]}+incompatible"),
)


@_SETTINGS
@given(_pairs(_go_version))
def test_go_semver_core_agrees_with_node_semver(pairs: list[tuple[str, str]]) -> None:
    reference = refversions.node_semver([(a[1:], b[1:]) for a, b in pairs])
    checked = [(a, b, r) for (a, b), r in zip(pairs, reference, strict=True) if r is not None]
    assert len(checked) > len(pairs) // 2
    assert [(a, b, r) for a, b, r in checked if GO.compare(a, b) != r] == []


@pytest.mark.parametrize(("a", "b", "expected"), [
    # the Go modules reference: pseudo-versions sort after their base tag and before the next release
    ("v0.0.0-20191109021931-daa7c04131f5", "v0.0.1", -1),
    ("v1.2.3", "v1.2.4-0.20191109021931-daa7c04131f5", -1),
    ("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.4", -1),
    ("v1.2.4-pre", "v1.2.4-pre.0.20191109021931-daa7c04131f5", -1),
    # +incompatible is build metadata: no effect on the order
    ("v2.0.0+incompatible", "2.0.0", 0), ("v4.1.2+incompatible", "v4.1.10+incompatible", -1),
    # shorthands and the toolchain's spellings
    ("v1.2", "v1.2.0", 0), ("go1.21.3", "1.21.3", 0), ("1.21rc2", "1.21.0", -1), ("1.22beta1", "1.22rc1", -1),
    ("1.21.0-rc.2", "1.21rc2", 0), ("1.20.14", "1.21.0", -1),
])
def test_go_documented_order(a: str, b: str, expected: int) -> None:
    assert GO.compare(a, b) == expected


# --- NuGet -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("a", "b", "expected"), [
    # NuGet "Package versioning": pre-release labels, SemVer 2.0 precedence, case-insensitive labels
    ("1.0.0-alpha", "1.0.0-beta", -1), ("1.0.0-beta", "1.0.0-rc", -1), ("1.0.0-rc", "1.0.0", -1),
    ("1.0.0-alpha.1", "1.0.0-alpha.beta", -1), ("1.0.0-beta.2", "1.0.0-beta.11", -1),
    ("1.0.0-RC1", "1.0.0-rc1", 0), ("1.0.0-Beta", "1.0.0-alpha", 1),
    # legacy 4-part versions and normalisation: 1.0 == 1.0.0 == 1.0.0.0, leading zeros dropped
    ("1.0", "1.0.0.0", 0), ("1.01.1", "1.1.1", 0), ("1.0.0.1", "1.0.0", 1), ("1.0.0.1", "1.0.1", -1),
    ("4.3.0-preview1-24530-04", "4.3.0", -1),
    # metadata is ignored
    ("1.0.0+git.abc", "1.0.0", 0),
])
def test_nuget_documented_order(a: str, b: str, expected: int) -> None:
    assert NUGET.compare(a, b) == expected
    assert NUGET.compare(b, a) == -expected


@pytest.mark.parametrize("bad", ["", "1.2.3.4.5", "v1.0", "1.0-", "1.0+", "1..0", "1.0.0-beta..1", "99999999999"])
def test_nuget_rejects(bad: str) -> None:
    with pytest.raises(InvalidVersion):
        NUGET.key(bad)


@pytest.mark.parametrize(("ecosystem", "scheme"), [
    ("Go", GO), ("Maven", MAVEN), ("RubyGems", RUBYGEMS), ("NuGet", NUGET), ("AlmaLinux:8", RPM), ("AlmaLinux:9", RPM),
])
def test_scheme_for_new_ecosystems(ecosystem: str, scheme: object) -> None:
    assert scheme_for(ecosystem) is scheme
    assert scheme_for("Packagist") is None  # no comparator and no data: composer packages are inventory only
