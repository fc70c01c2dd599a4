"""``giropops.sbom.purl`` writes the purl ``packageurl-python`` writes, for every type a cataloger uses,
on ordinary and hostile parts (the library is the oracle: it stays the parser of purls read back)."""

from __future__ import annotations

import itertools

import pytest
from packageurl import PackageURL

from giropops.sbom.purl import purl, quote

TYPES = ("deb", "apk", "rpm", "pypi", "npm", "golang", "maven", "gem", "cargo", "nuget", "composer", "generic")
NAMES = ("openssl", "Foo_Bar.baz", " padded ", "/slashed/", "@scope/pkg", "a b", "naïve", "100%", "x:y", "?#&=",
         "UPPER", "tab\tname", "emoji-😀", "~tilde", "a+b", "dots..", "github.com/Org/Mod")
VERSIONS = (None, "", "1.0", " 2.0 ", "1:2.3-4+deb12u1", "1.0~rc1", "v1.2.3+incompatible", "x y", "ü", "1%2", "a/b")
NAMESPACES = (None, "", "debian", "Alpine", "/a//b/", "@Scope", "org.Apache", " sp ace ", "github.com/Org", "ä/ö")
QUALIFIERS: tuple[dict[str, str] | None, ...] = (
    None, {}, {"arch": "amd64"}, {"distro": "debian-12", "arch": "arm64", "upstream": "src@1:2 3"},
    {" Arch ": "x86_64", "empty": "", "blank": " "}, {"epoch": "1", "distro": "rhel/9"}, {"k": "ü&=?#"},
)


def library(ptype: str, name: str, version: str | None, namespace: str | None,
            qualifiers: dict[str, str] | None) -> str:
    return PackageURL(type=ptype, namespace=namespace, name=name, version=version, qualifiers=qualifiers).to_string()


@pytest.mark.parametrize("ptype", TYPES)
def test_the_same_string_as_packageurl(ptype: str) -> None:
    checked = 0
    for name, version, namespace, quals in itertools.product(NAMES, VERSIONS, NAMESPACES, QUALIFIERS):
        try:
            want = library(ptype, name, version, namespace, quals)
        except (ValueError, TypeError):
            with pytest.raises(ValueError):
                purl(ptype, name, version, namespace, quals)
            continue
        assert purl(ptype, name, version, namespace, quals) == want, (name, version, namespace, quals)
        checked += 1
    assert checked > 1000


@pytest.mark.parametrize("quals", [{"9lives": "x"}, {"a%b": "x"}, {"a b": "x"}, {"a/b": "x"}])
def test_bad_qualifier_keys_are_refused_as_packageurl_refuses_them(quals: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        library("deb", "x", "1", None, quals)
    with pytest.raises(ValueError):
        purl("deb", "x", "1", None, quals)


@pytest.mark.parametrize("missing", ["type", "name"])
def test_a_missing_type_or_name_is_refused(missing: str) -> None:
    with pytest.raises(ValueError, match=f"{missing} is a required"):
        purl("" if missing == "type" else "deb", "" if missing == "name" else "x")


def test_quote_keeps_colons_and_slashes_and_escapes_the_rest() -> None:
    assert quote("a:b/c d%") == "a:b/c%20d%25"
    assert quote("ç") == "%C3%A7"
