"""Go executables: Debian's umoci (a GOPATH build: toolchain only) and real esbuild binaries published
on npm, one built by Go 1.17 (the old pointer build-info format) and one by Go 1.20 (the inline format),
compared with Trivy; hostile ELF files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from giropops.sbom import sbom_for
from giropops.sbom.catalogers.elf import GO_MAGIC
from tests.sbom.conftest import BuiltImage
from tests.sbom.ecosys_support import apt_download, elf64, name_of_purl, npm_install, trivy_inventory, unpack_deb
from tests.support import sbom_images as im
from tests.support.sbom_images import Entry, layer_from_entries

OLD = "esbuild-linux-64@0.13.15"  # built with go1.17.2
NEW = "@esbuild/linux-x64@0.19.12"  # built with go1.20.12


@pytest.fixture(scope="session")
def go_image(work: Path) -> BuiltImage:
    old = npm_install(work / "go-old", OLD) / "esbuild-linux-64" / "bin" / "esbuild"
    new = npm_install(work / "go-new", NEW) / "@esbuild" / "linux-x64" / "bin" / "esbuild"
    debian = work / "go-debian"
    if not (debian / "usr/bin/umoci").exists():
        unpack_deb(apt_download(("umoci",), work / "go-debs")["umoci"], debian)
    layer = layer_from_entries(
        [
            Entry("usr/local/bin/esbuild-old", data=old.read_bytes(), mode=0o755),
            Entry("opt/esbuild/esbuild", data=new.read_bytes(), mode=0o755),
            Entry("opt/esbuild/not-executable", data=new.read_bytes(), mode=0o644),
            Entry("usr/bin/script", data=b"#!/bin/sh\necho hi\n", mode=0o755),
            # Debian builds Go in GOPATH mode: no module information, only the toolchain (go1.19.8)
            Entry("usr/bin/umoci", data=(debian / "usr/bin/umoci").read_bytes(), mode=0o755),
        ]
    )
    return im.image(work, "go", [layer])


def test_go_binaries_old_and_new_build_info(go_image: BuiltImage) -> None:
    sbom = sbom_for(f"archive://{go_image.tar}", use_cache=False)
    found = {(p.locations[0].path, p.name, p.version) for p in sbom.packages if p.type == "golang"}
    assert found == {
        ("/usr/local/bin/esbuild-old", "stdlib", "1.17.2"),
        ("/usr/local/bin/esbuild-old", "golang.org/x/sys", "v0.0.0-20210908233432-aa78b53d3365"),
        ("/opt/esbuild/esbuild", "stdlib", "1.20.12"),
        ("/opt/esbuild/esbuild", "golang.org/x/sys", "v0.0.0-20220715151400-c0bba94af5f8"),
        ("/usr/bin/umoci", "stdlib", "1.19.8"),
    }
    for p in sbom.packages:
        assert name_of_purl(p.purl) == ("golang", p.name, p.version)
    assert sbom.unknowns == ()


def test_go_binaries_equal_trivy(go_image: BuiltImage, tmp_path: Path) -> None:
    sbom = sbom_for(f"archive://{go_image.tar}", use_cache=False)
    mine = {("golang", p.name, p.version) for p in sbom.packages if p.type == "golang"}
    theirs = trivy_inventory(go_image.tar, tmp_path / "trivy", {"golang"})
    # Convention difference (docs/sbom-conventions.md): Trivy lists the main module of a binary built
    # from a checkout (version "(devel)") with no version; a package without a version is not listed here.
    assert ("golang", "github.com/evanw/esbuild", "") in theirs
    # And Trivy spells the toolchain "v1.20.12"; the shared convention (and OSV's stdlib records) "1.20.12".
    theirs = {(t, n, v[1:] if n == "stdlib" else v) for t, n, v in theirs if v}
    assert mine == theirs, (sorted(mine - theirs), sorted(theirs - mine))


def test_hostile_elf_files_are_unknowns_never_crashes(work: Path) -> None:
    huge_varint = GO_MAGIC + bytes([8, 2]) + b"\0" * 16 + b"\xff" * 20
    bad_pointer = GO_MAGIC + bytes([8, 0]) + struct.pack("<QQ", 0xDEAD0000, 0xBEEF0000)
    long_string = GO_MAGIC + bytes([8, 2]) + b"\0" * 16 + b"\xff\xff\xff\xff\x0f"
    files = {
        "bin/truncated": b"\x7fELF\x02\x01\x01" + b"\0" * 20,
        "bin/bad-class": b"\x7fELF\x09\x01\x01" + b"\0" * 100,
        "bin/bad-sections": (lambda e: e[:0x28] + struct.pack("<Q", 10**12) + e[0x30:])(elf64([(".x", b"x")])),
        "bin/varint": elf64([(".go.buildinfo", huge_varint)]),
        "bin/pointer": elf64([(".go.buildinfo", bad_pointer)]),
        "bin/long": elf64([(".go.buildinfo", long_string)]),
        "bin/dep-not-zlib": elf64([(".dep-v0", b"not zlib at all")]),
    }
    layer = layer_from_entries([Entry(k, data=v, mode=0o755) for k, v in files.items()])
    sbom = sbom_for(f"archive://{im.image(work, 'elf-hostile', [layer]).tar}", use_cache=False)
    assert sbom.packages == ()
    unknown = {u.location.path for u in sbom.unknowns}
    assert unknown == {"/" + k for k in files}
    assert all(u.error.startswith("malformed executable") for u in sbom.unknowns)


def test_cached_layers_give_the_same_binaries(go_image: BuiltImage, cache_dir: Path) -> None:
    cold = sbom_for(f"archive://{go_image.tar}")
    assert any(cache_dir.rglob("*")), "nothing was cached"
    warm = sbom_for(f"archive://{go_image.tar}")
    assert warm.packages == cold.packages and len(cold.packages) == 5
