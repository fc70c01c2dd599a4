"""The squashed view: whiteouts, opaque directories, links kept inside the root, hostile tar entries."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from giropops.errors import SBOMError
from giropops.sbom.filesystem import (
    DirectoryResolver,
    Filesystem,
    Interest,
    LayerRecords,
    glob_literals,
    glob_regex,
    read_layer,
)
from tests.support.sbom_images import Entry, layer_from_entries, opaque, whiteout

INTEREST = Interest(
    ["etc/os-release", "usr/lib/os-release", "var/lib/dpkg/status", "var/lib/dpkg/status.d/*", "**/*.txt"]
)


def records(layer: bytes, diff_id: str = "sha256:" + "1" * 64, interest: Interest = INTEREST) -> LayerRecords:
    return read_layer(io.BytesIO(layer), diff_id, interest)


def squash(*layers: bytes) -> Filesystem:
    return Filesystem([records(layer, f"sha256:{i:064d}") for i, layer in enumerate(layers)])


def test_globs_follow_path_components() -> None:
    assert glob_regex("var/lib/dpkg/status.d/*").match("var/lib/dpkg/status.d/libc6")
    assert not glob_regex("var/lib/dpkg/status.d/*").match("var/lib/dpkg/status.d/x/y")
    assert glob_regex("**/*.dist-info/METADATA").match("a.dist-info/METADATA")
    assert glob_regex("**/*.dist-info/METADATA").match("opt/venv/lib/site-packages/a.dist-info/METADATA")
    assert not glob_regex("**/*.dist-info/METADATA").match("x/a.dist-info/sub/METADATA")


def test_a_glob_is_compiled_only_for_paths_with_its_literal_ends() -> None:
    assert glob_literals("/var/lib/dpkg/status") == ("var/lib/dpkg/status", "", True)
    assert glob_literals("**/*.dist-info/METADATA") == ("", ".dist-info/METADATA", False)
    assert glob_literals("**/x.txt") == ("", "x.txt", False)  # the "/" of "**/" is optional
    assert glob_literals("usr/share/doc/*/copyright") == ("usr/share/doc/", "/copyright", False)
    assert glob_literals("a/**/b?c") == ("a/", "c", False)
    fs = squash(layer_from_entries([Entry("etc/os-release", b"ID=x\n"), Entry("x.txt", b"1"), Entry("a/b/x.txt", b"2"),
                                    Entry("var/lib/dpkg/status.d/libc6", b"3"), Entry("c.txt/d", b"4")]))
    assert fs.glob("etc/os-release") == ["etc/os-release"] and fs.glob("/etc/os-release") == ["etc/os-release"]
    assert fs.glob("usr/lib/os-release") == []
    assert fs.glob("**/x.txt") == ["a/b/x.txt", "x.txt"]
    assert fs.glob("**/*.txt") == ["a/b/x.txt", "x.txt"]  # c.txt/d is not kept: no glob of interest reads it
    assert fs.glob("var/lib/dpkg/status.d/*") == ["var/lib/dpkg/status.d/libc6"]
    assert fs.glob("**/*.dist-info/METADATA") == [] and fs.glob("a/*") == []


def test_only_files_of_interest_are_kept() -> None:
    rec = records(layer_from_entries([Entry("etc/os-release", b"ID=x\n"), Entry("usr/bin/tool", b"\x7fELF" * 100)]))
    assert rec.contents == {"etc/os-release": b"ID=x\n"}
    assert {e[0] for e in rec.entries} == {"etc/os-release", "usr/bin/tool"}


def test_whiteout_deletes_a_lower_file_and_directory_tree() -> None:
    lower = layer_from_entries(
        [Entry("a/keep.txt", b"k"), Entry("a/gone.txt", b"g"), Entry("b/deep/x.txt", b"x"), Entry("b/y.txt", b"y")]
    )
    upper = layer_from_entries([whiteout("a/gone.txt"), whiteout("b")])
    fs = squash(lower, upper)
    assert fs.read("a/keep.txt") == b"k"
    assert fs.read("a/gone.txt") is None
    assert not fs.exists("b/deep/x.txt") and not fs.exists("b")
    assert fs.glob("**/*.txt") == ["a/keep.txt"]


def test_whiteout_applies_to_lower_layers_only() -> None:
    """OCI image spec: whiteouts apply to lower layers; the same layer may re-create the path."""
    lower = layer_from_entries([Entry("a/f.txt", b"old")])
    upper = layer_from_entries([whiteout("a/f.txt"), Entry("a/f.txt", b"new")])
    assert squash(lower, upper).read("a/f.txt") == b"new"


def test_opaque_directory_hides_everything_below_it() -> None:
    lower = layer_from_entries([Entry("d/one.txt", b"1"), Entry("d/sub/two.txt", b"2"), Entry("e.txt", b"e")])
    upper = layer_from_entries([opaque("d"), Entry("d/three.txt", b"3")])
    fs = squash(lower, upper)
    assert fs.glob("**/*.txt") == ["d/three.txt", "e.txt"]


def test_upper_file_replaces_lower_and_records_its_layer() -> None:
    lower = layer_from_entries([Entry("etc/os-release", b"ID=debian\n")])
    upper = layer_from_entries([Entry("etc/os-release", b"ID=wolfi\n")])
    fs = squash(lower, upper)
    assert fs.read("etc/os-release") == b"ID=wolfi\n"
    assert fs.location("etc/os-release").layer == f"sha256:{1:064d}"
    assert [data for _, data in fs.history("etc/os-release")] == [b"ID=debian\n", b"ID=wolfi\n"]


def test_file_replaced_by_directory_and_back() -> None:
    lower = layer_from_entries([Entry("x/a.txt", b"a")])
    upper = layer_from_entries([Entry("x", b"now a file")])
    fs = squash(lower, upper)
    assert fs.kind("x") == "file" and not fs.exists("x/a.txt")


def test_symlinks_resolve_inside_the_root_only() -> None:
    layer = layer_from_entries(
        [
            Entry("usr/lib/os-release", b"ID=debian\n"),
            Entry("etc/os-release", symlink="../usr/lib/os-release"),
            Entry("escape/a.txt", symlink="../../../../../../etc/passwd"),
            Entry("escape/b.txt", symlink="/../../etc/hostname"),
            Entry("loop/a.txt", symlink="b.txt"),
            Entry("loop/b.txt", symlink="a.txt"),
            Entry("lib", symlink="usr/lib"),
        ]
    )
    fs = squash(layer)
    assert fs.read("etc/os-release") == b"ID=debian\n"
    assert fs.read("/lib/os-release") == b"ID=debian\n"  # through a directory symlink (merged /usr)
    # ../../.. stops at the image root: these resolve to paths *in the image*, which do not exist.
    assert fs.realpath("escape/a.txt") is None
    assert fs.read("escape/a.txt") is None and fs.read("escape/b.txt") is None
    assert fs.read("loop/a.txt") is None  # a loop ends after the hop limit, not in a hang


def test_escaping_symlink_never_reads_the_host(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").symlink_to(secret)  # absolute: taken from the image root
    (root / "a.txt").symlink_to("../secret.txt")
    fs = DirectoryResolver(root, INTEREST)
    assert fs.read("etc/os-release") is None
    assert fs.read("a.txt") is None
    assert fs.glob("**/*.txt") == []


def test_symlinked_parent_directory_in_an_upper_layer_is_followed() -> None:
    """As containerd applies layers: writing lib/x when lib -> usr/lib lands in usr/lib/x."""
    lower = layer_from_entries([Entry("usr/lib", directory=True), Entry("lib", symlink="usr/lib")])
    upper = layer_from_entries([Entry("lib/new.txt", b"n")])
    fs = squash(lower, upper)
    assert fs.kind("lib") == "symlink"
    assert fs.glob("**/*.txt") == ["usr/lib/new.txt"]


def test_hard_links_share_contents() -> None:
    layer = layer_from_entries([Entry("a/orig.txt", b"same"), Entry("b/link.txt", hardlink="a/orig.txt")])
    fs = squash(layer)
    assert fs.read("b/link.txt") == b"same"


def test_hard_link_to_a_lower_layer_file() -> None:
    lower = layer_from_entries([Entry("a/orig.txt", b"lower")])
    upper = layer_from_entries([Entry("b/link.txt", hardlink="a/orig.txt")])
    assert squash(lower, upper).read("b/link.txt") == b"lower"


def _raw_tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    return ti, data


def test_hostile_names_are_dropped_not_followed() -> None:
    dev = tarfile.TarInfo("dev/sda.txt")
    dev.type = tarfile.BLKTYPE
    fifo = tarfile.TarInfo("run/fifo.txt")
    fifo.type = tarfile.FIFOTYPE
    layer = _raw_tar(
        [
            _file("../../evil.txt", b"x"),
            _file("a/../../evil2.txt", b"x"),
            _file("/abs/ok.txt", b"absolute names are relative to the root"),
            _file("./dot/ok.txt", b"fine"),
            (dev, None),
            (fifo, None),
            _file(".wh...", b""),
        ]
    )
    rec = records(layer)
    assert sorted(rec.skipped) == sorted(["../../evil.txt", "a/../../evil2.txt", ".wh..."])
    fs = Filesystem([rec])
    assert fs.glob("**/*.txt") == ["abs/ok.txt", "dot/ok.txt"]
    assert fs.kind("dev/sda.txt") == "other" and fs.read("dev/sda.txt") is None


def test_huge_pax_header_is_skipped_not_buffered() -> None:
    ti = tarfile.TarInfo("big/meta.txt")
    ti.pax_headers = {"comment": "x" * (3 << 20)}  # 3 MiB of PAX metadata
    layer = _raw_tar([(ti, b""), _file("after.txt", b"still read")])
    fs = squash(layer)
    assert fs.read("after.txt") == b"still read"


def test_oversized_file_of_interest_is_recorded_not_kept() -> None:
    small = Interest(["**/*.txt"], max_file_bytes=10)
    rec = records(layer_from_entries([Entry("a.txt", b"x" * 11), Entry("b.txt", b"ok")]), interest=small)
    assert rec.contents == {"b.txt": b"ok"}
    assert rec.oversized == {"a.txt": 11}


def test_deeply_nested_paths_do_not_hit_the_recursion_limit() -> None:
    deep = "/".join(["d"] * 3000)
    lower = layer_from_entries([Entry(f"{deep}/x.txt", b"x")])
    upper = layer_from_entries([whiteout("d")])
    fs = squash(lower)
    assert fs.read(f"{deep}/x.txt") == b"x"
    assert squash(lower, upper).glob("**/*.txt") == []


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b[:700],  # truncated inside an entry's data
        lambda b: b[:100] + b"\xff" * 50 + b[150:],  # header checksum no longer matches
    ],
)
def test_corrupt_tar_is_a_clear_sbom_error(mangle: object) -> None:
    layer = layer_from_entries([Entry("a.txt", b"x" * 2000)])
    with pytest.raises(SBOMError, match="layer"):
        records(mangle(layer))  # type: ignore[operator]


def test_directory_resolver_reads_a_plain_directory(tmp_path: Path) -> None:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text("Package: a\n")
    (tmp_path / "big").mkdir()
    fs = DirectoryResolver(tmp_path, INTEREST)
    assert fs.read("var/lib/dpkg/status") == b"Package: a\n"
    assert fs.location("var/lib/dpkg/status").layer is None


def test_interest_matches_named_paths_and_globs_alike() -> None:
    interest = Interest(["/etc/os-release", "var/lib/dpkg/status", "var/lib/dpkg/status.d/*", "**/*.txt", "a?c"])
    yes = ["etc/os-release", "var/lib/dpkg/status", "var/lib/dpkg/status.d/libc6", "x.txt", "d/e/f.txt", "abc"]
    no = ["etc/os-release.bak", "etc", "var/lib/dpkg/status.d", "var/lib/dpkg/status.d/a/b", "x.txt/y", "ac", "a/c"]
    assert [p for p in yes + no if interest.matches(p)] == yes
    named = Interest(["etc/os-release"])
    assert named.matches("etc/os-release") and not named.matches("etc/os-release2") and not named.matches("")
