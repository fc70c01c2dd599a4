"""The catalog of minimal alternatives per runtime (``data/reco/catalog.yaml``), extendable by users.

Files are read in order: the built-in catalog, then each file in ``GIROPOPS_RECO_CATALOG``
(``os.pathsep``-separated), then the files given on the command line.  A file with
``replace: true`` drops every entry read before it.  Malformed files are a ``ConfigError``
naming the file and the entry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from giropops import jsonio
from giropops.errors import ConfigError, ImageReferenceError, quote_for_error
from giropops.fileio import read_bounded
from giropops.oci.reference import Reference

ENV_VAR = "GIROPOPS_RECO_CATALOG"
MAX_CATALOG_BYTES = 1024 * 1024
_TOP_KEYS = {"version", "runtimes", "replace"}
_ENTRY_KEYS = {"image", "flavour", "description"}


@dataclass(frozen=True)
class CatalogEntry:
    runtime: str
    image: str
    flavour: str | None = None
    description: str = ""
    source: str = ""  # the file it came from


@dataclass(frozen=True)
class Catalog:
    entries: tuple[CatalogEntry, ...]

    def for_runtime(self, runtime: str) -> tuple[CatalogEntry, ...]:
        return tuple(e for e in self.entries if e.runtime == runtime)


def _parse(text: str, source: str) -> tuple[bool, list[CatalogEntry]]:
    doc = jsonio.load_yaml(text, source, error=ConfigError)
    if doc is None:
        return False, []
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{source}: a catalog is a mapping with 'runtimes'")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    if doc.get("version", 1) != 1:
        raise ConfigError(f"{source}: unsupported catalog version {quote_for_error(doc.get('version'))} (expected 1)")
    replace = doc.get("replace", False)
    if not isinstance(replace, bool):
        raise ConfigError(f"{source}: 'replace' must be true or false")
    runtimes = doc.get("runtimes") or {}
    if not isinstance(runtimes, Mapping):
        raise ConfigError(f"{source}: 'runtimes' must map a runtime name to a list of images")
    out: list[CatalogEntry] = []
    for runtime, items in runtimes.items():
        if not isinstance(runtime, str) or not runtime:
            raise ConfigError(f"{source}: runtime names must be strings")
        if not isinstance(items, list):
            raise ConfigError(f"{source}: runtimes.{runtime} must be a list")
        for i, item in enumerate(items):
            where = f"{source}: runtimes.{runtime}[{i}]"
            if not isinstance(item, Mapping):
                raise ConfigError(f"{where}: expected a mapping with 'image'")
            bad = set(item) - _ENTRY_KEYS
            if bad:
                raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, bad)))}")
            image = item.get("image")
            if not isinstance(image, str):
                raise ConfigError(f"{where}: 'image' must be an image reference")
            try:
                Reference.parse(image)
            except ImageReferenceError as exc:
                raise ConfigError(f"{where}: {exc}") from exc
            flavour = item.get("flavour")
            desc = item.get("description", "")
            if flavour is not None and not isinstance(flavour, str):
                raise ConfigError(f"{where}: 'flavour' must be text")
            if not isinstance(desc, str):
                raise ConfigError(f"{where}: 'description' must be text")
            out.append(CatalogEntry(runtime, image, flavour, desc, source))
    return replace, out


def builtin_text() -> str:
    return resources.files("giropops").joinpath("data/reco/catalog.yaml").read_text(encoding="utf-8")


def _read(path: Path) -> str:
    data = read_bounded(path, MAX_CATALOG_BYTES, "catalog", ConfigError)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"catalog {path} is not UTF-8") from exc


def load_catalog(files: Sequence[Path] = (), environ: Mapping[str, str] | None = None) -> Catalog:
    env = os.environ if environ is None else environ
    entries: list[CatalogEntry] = []
    _, builtin = _parse(builtin_text(), "built-in catalog")
    entries.extend(builtin)
    paths = [Path(p) for p in env.get(ENV_VAR, "").split(os.pathsep) if p]
    for path in [*paths, *files]:
        replace, more = _parse(_read(path), str(path))
        if replace:
            entries = []
        entries.extend(more)
    seen: set[tuple[str, str]] = set()
    unique = []
    for e in entries:
        if (e.runtime, e.image) not in seen:
            seen.add((e.runtime, e.image))
            unique.append(e)
    return Catalog(tuple(unique))
