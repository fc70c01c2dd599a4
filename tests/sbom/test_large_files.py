"""Large executables are read through a mapped temporary file, not held in memory, with the same result;
Go build information longer than the first window read is still read whole (issue 19)."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

from giropops.sbom import sbom_for
from giropops.sbom.filesystem import MAP_BYTES
from tests.sbom.ecosys_support import elf64
from tests.support import sbom_images as im
from tests.support.sbom_images import Entry, layer_from_entries

GO_MAGIC = b"\xff Go buildinf:"


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def go_binary(version: str, deps: list[tuple[str, str]], pad: int) -> bytes:
    """An ELF with a Go 1.18+ ``.go.buildinfo`` section (inline strings), written out from Go's
    debug/buildinfo layout: 14-byte magic, pointer size, flags (2 = inline), padding to 32 bytes,
    then the varint-prefixed version and module text (framed by 16 bytes on each side)."""
    mod = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\n"
    mod += "".join(f"dep\t{name}\t{ver}\th1:AAAA=\n" for name, ver in deps)
    framed = b"0" * 16 + mod.encode() + b"\n" + b"1" * 15  # byte 17 from the end is the newline
    header = GO_MAGIC + bytes([8, 2]) + b"\0" * 16
    info = header + _uvarint(len(version)) + version.encode() + _uvarint(len(framed)) + framed
    return elf64([(".text", b"\x90" * pad), (".go.buildinfo", info)])


def go_packages(tar: Path) -> set[tuple[str, str, str]]:
    sbom = sbom_for(f"archive://{tar}", use_cache=False)
    return {(p.locations[0].path, p.name, p.version) for p in sbom.packages if p.type == "golang"}


def test_a_large_executable_is_mapped_not_held_and_gives_the_same_packages(tmp_path: Path) -> None:
    deps = [("github.com/pkg/errors", "v0.9.1"), ("golang.org/x/sys", "v0.15.0")]
    size = 5 * MAP_BYTES  # 40 MiB: read into memory, a bytearray of that size
    big = go_binary("go1.21.5", deps, size)
    small = go_binary("go1.21.5", deps, 4096)
    layer = layer_from_entries(
        [Entry("usr/bin/big", data=big, mode=0o755), Entry("usr/bin/small", data=small, mode=0o755)]
    )
    tar = im.image(tmp_path, "large-exe", [layer]).tar
    del big, layer
    tracemalloc.start()
    try:
        found = go_packages(tar)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = {
        (path, name, version)
        for path in ("/usr/bin/big", "/usr/bin/small")
        for name, version in [("stdlib", "1.21.5"), *deps]
    }
    assert found == expected
    # Held in memory, the binary alone is a 40 MiB bytearray (57 MB peak measured so); mapped, the
    # peak is the reading pipeline's bounded buffers (15 MB measured).
    assert peak < size * 3 // 4, f"{peak} bytes allocated while reading a {size}-byte executable"


def test_go_module_text_longer_than_the_first_window_is_read_whole(tmp_path: Path) -> None:
    # About 150 KiB of module text: more than the 64 KiB read first, less than Go's 4 MiB string bound.
    deps = [(f"example.com/dep{i:05d}/with/a/rather/long/module/path", f"v1.{i}.0") for i in range(2500)]
    exe = go_binary("go1.22.1", deps, 1024)
    assert len(exe) > 128 * 1024
    tar = im.image(tmp_path, "long-mod", [layer_from_entries([Entry("app", data=exe, mode=0o755)])]).tar
    found = go_packages(tar)
    assert found == {("/app", "stdlib", "1.22.1")} | {("/app", n, v) for n, v in deps}


def test_elf_helper_writes_the_section_where_the_header_says() -> None:
    """The fixture itself: the section table names .go.buildinfo at the offset holding the magic."""
    exe = go_binary("go1.21.5", [], 64)
    shoff, = struct.unpack_from("<Q", exe, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", exe, 0x3C)
    names_off, names_size = struct.unpack_from("<QQ", exe, shoff + shstrndx * 64 + 24)
    names = exe[names_off : names_off + names_size]
    offsets = {}
    for i in range(1, shnum):
        name_idx, = struct.unpack_from("<I", exe, shoff + i * 64)
        off, = struct.unpack_from("<Q", exe, shoff + i * 64 + 24)
        offsets[names[name_idx : names.index(b"\0", name_idx)]] = off
    assert exe[offsets[b".go.buildinfo"] :].startswith(GO_MAGIC)


def test_header_checksum_sum_equals_the_byte_sum_on_extremes_and_random_blocks() -> None:
    import random

    from giropops.sbom.tarstream import _byte_sum

    rng = random.Random(19)
    blocks = [bytes(512), b"\xff" * 512, b"\xff" * 256 + bytes(256), bytes(256) + b"\xff" * 256]
    blocks += [bytes(rng.choice((0, 255, rng.randrange(256))) for _ in range(512)) for _ in range(2000)]
    for block in blocks:
        assert _byte_sum(block) == sum(block)


def test_a_header_whose_checksum_is_off_by_one_is_refused(tmp_path: Path) -> None:
    import io

    import pytest

    from giropops.errors import SBOMError
    from giropops.sbom.catalogers import default_catalogers, interest_for
    from giropops.sbom.filesystem import read_layer

    layer = bytearray(layer_from_entries([Entry("etc/hostname", data=b"box\n")]))
    header = 0  # the file's header: a short name needs no PAX record
    assert bytes(layer[header : header + 12]) == b"etc/hostname"
    stored = int(bytes(layer[header + 148 : header + 156]).replace(b"\0", b" ").strip(), 8)
    layer[header + 148 : header + 156] = f"{stored + 1:06o}\0 ".encode()
    with pytest.raises(SBOMError, match="checksum mismatch"):
        read_layer(io.BytesIO(bytes(layer)), None, interest_for(default_catalogers()))
