"""Ruby: installed gems' ``specifications/*.gemspec`` (RubyGems' own install layout and Debian's
``rubygems-integration``).

An installed gemspec is Ruby that RubyGems wrote itself in a fixed shape
(``s.name = "rack".freeze``); it is read with patterns, never evaluated.  The
version may also be written ``Gem::Version.new("1.2")``; a gemspec without a
literal name and version is an Unknown.
"""

from __future__ import annotations

import re

from giropops.sbom.catalogers import CatalogResult, LockfileCataloger, metadata_files, text_of
from giropops.sbom.filesystem import Resolver
from giropops.sbom.model import Distro, Package
from giropops.sbom.purl import purl as make_purl

NAME = "ruby-gemspec"
GLOB = "**/specifications/*.gemspec"

_STR = r"""(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|%q[{<(\[]([^}>)\]]*)[}>)\]])"""
_NAME = re.compile(r"^\s*\w+\.name\s*=\s*" + _STR, re.M)
_VERSION = re.compile(r"^\s*\w+\.version\s*=\s*(?:Gem::Version\.new\(\s*)?" + _STR, re.M)
_LICENSES = re.compile(r"^\s*\w+\.licenses?\s*=\s*(.*)$", re.M)


def _first(m: re.Match[str] | None) -> str | None:
    if m is None:
        return None
    return next((g for g in m.groups() if g is not None), None)


def parse_gemspec(text: str) -> tuple[str, str, tuple[str, ...]] | None:
    name, version = _first(_NAME.search(text)), _first(_VERSION.search(text))
    if not name or not version:
        return None
    lic: list[str] = []
    m = _LICENSES.search(text)
    if m:
        lic = [a or b for a, b in re.findall(r""""([^"]*)"|'([^']*)'""", m.group(1)) if a or b]
    return name.strip(), version.strip(), tuple(x[:200] for x in lic)


class GemspecCataloger:
    name = NAME
    globs = (GLOB,)

    def catalog(self, resolver: Resolver, distro: Distro | None) -> CatalogResult:
        result = CatalogResult()
        for location, data in metadata_files(resolver, resolver.glob(GLOB), NAME, result):
            parsed = parse_gemspec(text_of(data))
            if parsed is None:
                result.unknown(location, NAME, "no literal name and version in the gemspec")
                continue
            name, version, lic = parsed
            result.packages.append(
                Package(
                    name=name,
                    version=version,
                    type="gem",
                    purl=make_purl(ptype="gem", name=name, version=version),
                    licenses=lic,
                    locations=(location,),
                )
            )
        return result


# -- source trees: Gemfile.lock -----------------------------------------------------------------------

_SPEC = re.compile(r"^    ([^\s(]+) \(([^)]+)\)$")


def parse_gemfile_lock(text: str) -> list[tuple[str, str]]:
    """The ``specs:`` of the ``GEM``, ``GIT`` and ``PATH`` sections (four-space entries; six-space lines
    are their dependencies).  A platform suffix (``1.15.4-x86_64-linux``) is not part of the version."""
    out: list[tuple[str, str]] = []
    section = ""
    for line in text.splitlines():
        if line and not line.startswith(" "):
            section = line.strip()
            continue
        if section not in ("GEM", "GIT", "PATH"):
            continue
        m = _SPEC.match(line)
        if m:
            version = m.group(2)
            base = re.match(r"^\d[0-9A-Za-z.]*", version)
            out.append((m.group(1), base.group(0) if base and "-" in version else version))
    return out


def gem_purl(name: str, version: str) -> str:
    return make_purl(ptype="gem", name=name, version=version)


LOCKFILE_CATALOGERS = (LockfileCataloger("gemfile-lock", ("**/Gemfile.lock",), "gem", parse_gemfile_lock, gem_purl),)
