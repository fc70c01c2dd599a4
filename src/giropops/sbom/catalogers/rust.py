"""Rust: the dependency list ``cargo auditable`` embeds in a binary's ``.dep-v0`` section (see ``elf.py``).

Every crate the binary was built from is listed with the version it was built
with, the root crate (the binary's own package) included; crates used only at
build time (``kind: build``, build scripts and proc-macros) are not in the
binary and are left out, as cargo-auditable's own tooling and Trivy do.
"""

from __future__ import annotations

from giropops.sbom.catalogers import CatalogResult, LockfileCataloger, toml_packages
from giropops.sbom.catalogers.elf import ElfExtractor
from giropops.sbom.catalogers.golang import elf_records
from giropops.sbom.filesystem import Resolver
from giropops.sbom.model import Distro, Package
from giropops.sbom.purl import purl as make_purl

NAME = "rust-audit-binary"


def cargo_purl(name: str, version: str) -> str:
    return make_purl(ptype="cargo", name=name, version=version)


class RustBinaryCataloger:
    name = NAME
    globs: tuple[str, ...] = ()
    extractors = (ElfExtractor(),)

    def catalog(self, resolver: Resolver, distro: Distro | None) -> CatalogResult:
        result = CatalogResult()
        for path, record in elf_records(resolver):
            rust = record.get("rust")
            if rust is None:
                continue
            location = resolver.location(path)
            crates = rust.get("packages") if isinstance(rust, dict) else None
            if not isinstance(crates, list):
                result.unknown(location, NAME, ".dep-v0 has no packages list")
                continue
            seen: set[tuple[str, str]] = set()
            for crate in crates:
                if not isinstance(crate, dict):
                    continue
                name, version = crate.get("name"), crate.get("version")
                if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
                    continue
                if crate.get("kind", "runtime") != "runtime" or (name, version) in seen:
                    continue
                seen.add((name, version))
                result.packages.append(
                    Package(
                        name=name,
                        version=version,
                        type="cargo",
                        purl=cargo_purl(name, version),
                        locations=(location,),
                        metadata={"source": str(crate.get("source", ""))[:100]},
                    )
                )
        return result


# -- source trees: Cargo.lock -------------------------------------------------------------------------


def parse_cargo_lock(text: str) -> list[tuple[str, str]]:
    return [(str(p["name"]), str(p["version"])) for p in toml_packages(text) if "name" in p and "version" in p]


LOCKFILE_CATALOGERS = (LockfileCataloger("cargo-lock", ("**/Cargo.lock",), "cargo", parse_cargo_lock, cargo_purl),)
