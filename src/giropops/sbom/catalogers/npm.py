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

from giropops.sbom.catalogers import CatalogResult, LockfileCataloger, json_documents
from giropops.sbom.filesystem import Resolver
from giropops.sbom.model import Distro, Location, Package
from giropops.sbom.purl import purl as make_purl

NAME = "npm"
PLAIN = "**/node_modules/*/package.json"
SCOPED = "**/node_modules/@*/*/package.json"


def npm_purl(name: str, version: str) -> str:
    namespace, _, base = name.rpartition("/")
    return make_purl(ptype="npm", namespace=namespace or None, name=base, version=version)


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
        paths = sorted(set(resolver.glob(PLAIN) + resolver.glob(SCOPED)))
        for location, doc in json_documents(resolver, paths, NAME, result, say_size=True):
            if not isinstance(doc, dict):
                result.unknown(location, NAME, "package.json is not a JSON object")
                continue
            name, version = doc.get("name"), doc.get("version")
            if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
                continue
            result.packages.append(package(name, version, location, licenses_of(doc)))
        return result


# -- source trees: package-lock.json (v1-v3), yarn.lock (classic and berry), pnpm-lock.yaml ------------


def _json_object(text: str) -> dict[str, Any]:
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    return doc


def parse_package_lock(text: str) -> list[tuple[str, str]]:
    """v2/v3 ``packages`` keyed by install path; v1's nested ``dependencies``.  Dev-only, linked and
    bundled-by-path entries are not installed packages of the application."""
    doc = _json_object(text)
    out: list[tuple[str, str]] = []
    packages = doc.get("packages")
    if isinstance(packages, dict):
        for key, entry in packages.items():
            if not key or not isinstance(entry, dict) or entry.get("link") or entry.get("dev"):
                continue
            if "node_modules/" not in key:
                continue  # a workspace folder, not an installed package
            name = entry.get("name") or key.rsplit("node_modules/", 1)[1]
            version = entry.get("version")
            if isinstance(name, str) and isinstance(version, str):
                out.append((name, version))
        return out
    stack = [doc.get("dependencies")]
    while stack:
        deps = stack.pop()
        if not isinstance(deps, dict):
            continue
        for name, entry in deps.items():
            if not isinstance(entry, dict) or entry.get("dev"):
                continue
            version = entry.get("version")
            if isinstance(version, str) and not version.startswith(("file:", "link:")):
                out.append((name, version))
            stack.append(entry.get("dependencies"))
    return out


def _yarn_name(spec: str) -> str:
    spec = spec.strip().strip('"')
    at = spec.find("@", 1)
    return spec[:at] if at > 0 else spec


def parse_yarn_lock(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    name: str | None = None
    skip = False
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            header = line.rstrip(":").strip()
            first = header.split(",")[0].strip().strip('"')
            name = _yarn_name(first) if first != "__metadata" else None
            skip = any(m in first for m in ("@workspace:", "@link:", "@portal:", "@file:"))
            continue
        stripped = line.strip()
        if name and not skip and (stripped.startswith("version ") or stripped.startswith("version:")):
            version = stripped[len("version") :].lstrip(": ").strip().strip('"')
            out.append((name, version))
            name = None
    return out


def parse_pnpm_lock(text: str) -> list[tuple[str, str]]:
    """``packages`` keys: ``/name/1.0.0`` (v5), ``/name@1.0.0`` (v6), ``name@1.0.0`` (v9); peer
    suffixes ``(...)`` or ``_...`` dropped.  Dev-only entries (``dev: true``) left out."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    if not isinstance(doc, dict):
        raise ValueError("not a YAML mapping")
    packages = doc.get("packages") or {}
    if not isinstance(packages, dict):
        raise ValueError("packages is not a mapping")
    out: list[tuple[str, str]] = []
    for key, entry in packages.items():
        if isinstance(entry, dict) and entry.get("dev") is True:
            continue
        k = str(key).lstrip("/").split("(")[0]
        at = k.find("@", 1)
        if at > 0:
            name, version = k[:at], k[at + 1 :]
        else:
            name, _, version = k.rpartition("/")
            version = version.split("_")[0]
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("version"), str):
            name, version = entry["name"], entry["version"]
        if name and version and not version.startswith(("link:", "file:")):
            out.append((name, version))
    return out


LOCKFILE_CATALOGERS = (
    LockfileCataloger("npm-package-lock", ("**/package-lock.json",), "npm", parse_package_lock, npm_purl),
    LockfileCataloger("yarn-lock", ("**/yarn.lock",), "npm", parse_yarn_lock, npm_purl),
    LockfileCataloger("pnpm-lock", ("**/pnpm-lock.yaml",), "npm", parse_pnpm_lock, npm_purl),
)
