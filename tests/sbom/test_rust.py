"""Rust: cargo-auditable's ``.dep-v0`` section.  No cargo-auditable binary is published in the registries
this project may use, so the ELF is assembled here, its section laid out as cargo-auditable writes it
(zlib-compressed JSON: ``packages`` with name, version, source, kind, dependencies, root)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

from giropops.sbom import sbom_for
from tests.sbom.ecosys_support import elf64, name_of_purl, trivy_inventory
from tests.support import sbom_images as im
from tests.support.sbom_images import Entry, layer_from_entries

AUDIT = {
    "packages": [
        {"name": "myapp", "version": "0.1.0", "source": "local", "dependencies": [1, 2], "root": True},
        {"name": "serde", "version": "1.0.188", "source": "crates.io"},
        {"name": "smallvec", "version": "1.11.0", "source": "crates.io", "kind": "runtime"},
        {"name": "cc", "version": "1.0.83", "source": "crates.io", "kind": "build"},
    ]
}


def test_cargo_auditable_dependencies(work: Path) -> None:
    good = elf64([(".text", b"\x90" * 32), (".dep-v0", zlib.compress(json.dumps(AUDIT).encode()))])
    bomb = elf64([(".dep-v0", zlib.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]", 9))])
    layer = layer_from_entries(
        [Entry("usr/bin/myapp", data=good, mode=0o755), Entry("usr/bin/bomb", data=bomb, mode=0o755)]
    )
    sbom = sbom_for(f"archive://{im.image(work, 'rust', [layer]).tar}", use_cache=False)
    found = {(p.name, p.version, p.purl, p.locations[0].path) for p in sbom.packages}
    assert found == {
        ("myapp", "0.1.0", "pkg:cargo/myapp@0.1.0", "/usr/bin/myapp"),
        ("serde", "1.0.188", "pkg:cargo/serde@1.0.188", "/usr/bin/myapp"),
        ("smallvec", "1.11.0", "pkg:cargo/smallvec@1.11.0", "/usr/bin/myapp"),
    }
    assert all(name_of_purl(p.purl) == ("cargo", p.name, p.version) for p in sbom.packages)
    assert [(u.location.path, "inflates to more than" in u.error) for u in sbom.unknowns] == [("/usr/bin/bomb", True)]


def test_cargo_auditable_equals_trivy(work: Path, tmp_path: Path) -> None:
    good = elf64([(".text", b"\x90" * 32), (".dep-v0", zlib.compress(json.dumps(AUDIT).encode()))])
    img = im.image(work, "rust-trivy", [layer_from_entries([Entry("usr/bin/myapp", data=good, mode=0o755)])])
    mine = {(p.type, p.name, p.version) for p in sbom_for(f"archive://{img.tar}", use_cache=False).packages}
    theirs = trivy_inventory(img.tar, tmp_path / "trivy", {"cargo"})
    assert mine == theirs, (sorted(mine - theirs), sorted(theirs - mine))
