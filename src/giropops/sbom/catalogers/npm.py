"""npm: every installed package's ``package.json`` under a ``node_modules`` directory.

Scoped (``node_modules/@scope/name``) and nested (``node_modules/a/node_modules/b``)
packages are each their own package, so several versions of one name are all
listed, each at its own location.  A ``package.json`` without a name or version
(a workspace link, a sub-directory manifest) is not a package; one that is not
valid JSON is an Unknown.  The package name is npm's full name (``@scope/name``),
the one OSV's npm ecosystem uses; the purl puts the scope in its namespace.
"""

from __future__ import annotations

import json
from typing import Any

from packageurl import PackageURL

from giropops.sbom.catalogers import CatalogResult, text_of
from giropops.sbom.filesystem import Resolver
from giropops.sbom.model import Distro, Location, Package

NAME = "npm"
PLAIN = "**/node_modules/*/package.json"
SCOPED = "**/node_modules/@*/*/package.json"


def npm_purl(name: str, version: str) -> str:
    namespace, _, base = name.rpartition("/")
    return PackageURL(type="npm", namespace=namespace or None, name=base, version=version).to_string()


def licenses_of(doc: dict[str, Any]) -> tuple[str, ...]:
    """``license`` as a string or an object, or the deprecated ``licenses`` list."""
    lic = doc.get("license")
    found: list[str] = []
    if isinstance(lic, str) and lic.strip():
        found.append(lic.strip())
    elif isinstance(lic, dict) and isinstance(lic.get("type"), str):
        found.append(lic["type"].strip())
    if not found and isinstance(doc.get("licenses"), list):
        for item in doc["licenses"]:
            if isinstance(item, str) and item.strip():
                found.append(item.strip())
            elif isinstance(item, dict) and isinstance(item.get("type"), str):
                found.append(item["type"].strip())
    return tuple(x[:200] for x in found if x)


def package(name: str, version: str, location: Location, lic: tuple[str, ...] = ()) -> Package:
    return Package(
        name=name,
        version=version,
        type="npm",
        purl=npm_purl(name, version),
        licenses=lic,
        locations=(location,),
    )


class NpmCataloger:
    name = NAME
    globs = (PLAIN, SCOPED)

    def catalog(self, resolver: Resolver, distro: Distro | None) -> CatalogResult:
        result = CatalogResult()
        for path in sorted(set(resolver.glob(PLAIN) + resolver.glob(SCOPED))):
            location = resolver.location(path)
            size = resolver.oversized(path)
            if size is not None:
                result.unknown(location, NAME, f"file is {size} bytes, more than the limit for package metadata")
                continue
            data = resolver.read(path)
            if data is None:
                continue
            try:
                doc = json.loads(text_of(data))
            except (ValueError, RecursionError) as exc:
                result.unknown(location, NAME, f"not JSON: {str(exc)[:120]}")
                continue
            if not isinstance(doc, dict):
                result.unknown(location, NAME, "package.json is not a JSON object")
                continue
            name, version = doc.get("name"), doc.get("version")
            if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
                continue
            result.packages.append(package(name, version, location, licenses_of(doc)))
        return result
