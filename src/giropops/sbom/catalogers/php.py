"""PHP: Composer's ``vendor/composer/installed.json`` (Composer 2's ``{"packages": [...]}`` and
Composer 1's bare list).  Names are ``vendor/name``; licences are the ``license`` list."""

from __future__ import annotations

import json
from typing import Any

from giropops.sbom.catalogers import CatalogResult, LockfileCataloger, json_documents
from giropops.sbom.filesystem import Resolver
from giropops.sbom.model import Distro, Location, Package
from giropops.sbom.purl import purl as make_purl

NAME = "php-composer-installed"
GLOB = "**/vendor/composer/installed.json"


def composer_purl(name: str, version: str) -> str:
    vendor, _, base = name.rpartition("/")
    return make_purl(ptype="composer", namespace=vendor or None, name=base, version=version)


def composer_packages(entries: Any, location: Location) -> list[Package]:
    out: list[Package] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            continue
        lic = entry.get("license")
        licenses = tuple(x[:200] for x in lic if isinstance(x, str)) if isinstance(lic, list) else ()
        if isinstance(lic, str):
            licenses = (lic[:200],)
        out.append(
            Package(
                name=name,
                version=version,
                type="composer",
                purl=composer_purl(name, version),
                licenses=licenses,
                locations=(location,),
            )
        )
    return out


class ComposerInstalledCataloger:
    name = NAME
    globs = (GLOB,)

    def catalog(self, resolver: Resolver, distro: Distro | None) -> CatalogResult:
        result = CatalogResult()
        for location, doc in json_documents(resolver, resolver.glob(GLOB), NAME, result):
            entries = doc.get("packages") if isinstance(doc, dict) else doc
            if not isinstance(entries, list):
                result.unknown(location, NAME, "no packages list")
                continue
            result.packages.extend(composer_packages(entries, location))
        return result


# -- source trees: composer.lock ----------------------------------------------------------------------


def parse_composer_lock(text: str) -> list[tuple[str, str]]:
    """``packages`` (``packages-dev`` are not part of the application)."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("packages"), list):
        raise ValueError("no 'packages' list")
    return [(p.name, p.version) for p in composer_packages(doc["packages"], Location(""))]


LOCKFILE_CATALOGERS = (
    LockfileCataloger("composer-lock", ("**/composer.lock",), "composer", parse_composer_lock, composer_purl),
)
