""".NET: an application's ``*.deps.json``, the libraries of type ``package`` (NuGet packages).

``libraries`` is keyed ``Name/Version``; projects and reference assemblies are
other types and are left out.  NuGet names are case-insensitive; the spelling
from the file is kept.
"""

from __future__ import annotations

import json

from giropops.sbom.catalogers import CatalogResult, LockfileCataloger, json_documents
from giropops.sbom.filesystem import Resolver
from giropops.sbom.model import Distro, Package
from giropops.sbom.purl import purl as make_purl

NAME = "dotnet-deps"
GLOB = "**/*.deps.json"


def nuget_purl(name: str, version: str) -> str:
    return make_purl(ptype="nuget", name=name, version=version)


class DotnetDepsCataloger:
    name = NAME
    globs = (GLOB,)

    def catalog(self, resolver: Resolver, distro: Distro | None) -> CatalogResult:
        result = CatalogResult()
        for location, doc in json_documents(resolver, resolver.glob(GLOB), NAME, result):
            libraries = doc.get("libraries") if isinstance(doc, dict) else None
            if not isinstance(libraries, dict):
                result.unknown(location, NAME, "no 'libraries' object")
                continue
            for key, lib in sorted(libraries.items()):
                if not isinstance(lib, dict) or lib.get("type") != "package":
                    continue
                name, sep, version = key.partition("/")
                if not sep or not name or not version:
                    result.unknown(location, NAME, f"library key {key[:100]!r} is not Name/Version")
                    continue
                result.packages.append(
                    Package(
                        name=name, version=version, type="nuget", purl=nuget_purl(name, version), locations=(location,)
                    )
                )
        return result


# -- source trees: packages.lock.json -----------------------------------------------------------------


def parse_packages_lock(text: str) -> list[tuple[str, str]]:
    doc = json.loads(text)
    frameworks = doc.get("dependencies") if isinstance(doc, dict) else None
    if not isinstance(frameworks, dict):
        raise ValueError("no 'dependencies' object")
    out: list[tuple[str, str]] = []
    for deps in frameworks.values():
        for name, entry in (deps or {}).items() if isinstance(deps, dict) else ():
            if isinstance(entry, dict) and entry.get("type") != "Project" and isinstance(entry.get("resolved"), str):
                out.append((name, entry["resolved"]))
    return out


LOCKFILE_CATALOGERS = (
    LockfileCataloger("nuget-packages-lock", ("**/packages.lock.json",), "nuget", parse_packages_lock, nuget_purl),
)
