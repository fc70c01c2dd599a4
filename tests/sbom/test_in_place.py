"""A plain layer of a local archive is read where it lies (issue 19): its digest is proven by hashing
the mapped region on another thread while the parse skips every body nobody reads, and executables
are read in place (headers and the sections looked for) instead of copied whole.  The same records as
a streamed read, and every defence of a streamed read: an altered byte anywhere is refused, a corrupt
or truncated tar is one clear error, a region past the end of its file is never mapped."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from giropops.errors import BlobError, SBOMError
from giropops.oci.blob import verified, verify_region
from giropops.oci.model import Digest
from giropops.oci.transport import open_image
from giropops.sbom import generate, subject_for
from giropops.sbom.cache import LayerCache
from giropops.sbom.catalogers import default_catalogers, interest_for
from giropops.sbom.filesystem import read_layer
from giropops.sbom.tarstream import RegionReader
from tests.sbom.ecosys_support import elf64
from tests.sbom.test_large_files import GO_MAGIC, go_binary
from tests.support.sbom_images import Entry, layer_from_entries, write_docker_archive

STATUS = b"Package: alpha\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"
BODY = bytes(range(256)) * 64  # a file no cataloger reads: skipped by offset, never copied


def _stripped(elf: bytes) -> bytes:
    """``elf`` without its section header table (e_shoff = 0, e_shnum = 0): the Go build info header
    is then looked for through the whole file."""
    return elf[:0x28] + struct.pack("<Q", 0) + elf[0x30:0x3C] + struct.pack("<H", 0) + elf[0x3E:]


def _executables() -> list[Entry]:
    deps = [("github.com/pkg/errors", "v0.9.1")]
    aligned = b"\0" * (-(64 + 4) % 16)  # the stripped binary's header lands on a 16-byte boundary
    stripped_go = _stripped(elf64([(".data", b"\1" * 4 + aligned + GO_MAGIC + bytes([8, 2]) + b"\0" * 16
                                    + b"\x08go1.22.1\x00")]))
    return [
        Entry("usr/bin/go-app", data=go_binary("go1.21.5", deps, 4096), mode=0o755),
        Entry("usr/bin/go-stripped", data=stripped_go, mode=0o755),
        Entry("usr/bin/plain", data=elf64([(".text", b"\x90" * 5000)]), mode=0o755),
        Entry("usr/bin/truncated", data=b"\x7fELF\x02\x01\x01" + b"\0" * 20, mode=0o755),
        Entry("usr/bin/bad-sections", data=(lambda e: e[:0x28] + struct.pack("<Q", 10**12) + e[0x30:])(
            elf64([(".x", b"x")])), mode=0o755),
        Entry("usr/bin/odd-entsize", data=(lambda e: e[:0x3A] + struct.pack("<H", 72) + e[0x3C:])(
            elf64([(".go.buildinfo", b"y" * 40)])), mode=0o755),
        Entry("usr/bin/script", data=b"#!/bin/sh\necho hi\n", mode=0o755),
        Entry("usr/share/misc/body", data=BODY),
        Entry("var/lib/dpkg/status", data=STATUS),
    ]


def test_executables_read_in_place_give_what_streaming_gives(tmp_path: Path) -> None:
    layer = layer_from_entries(_executables())
    interest = interest_for(default_catalogers())
    path = tmp_path / "file"
    path.write_bytes(b"x" * 1234 + layer + b"bytes after the region")
    streamed = vars(read_layer(io.BytesIO(layer), "sha256:x", interest))
    with path.open("rb") as f:
        in_place = vars(read_layer(RegionReader(f.fileno(), 1234, len(layer)), "sha256:x", interest))
    assert in_place == streamed
    kept = streamed["contents"]
    assert b"go1.21.5" in kept["usr/bin/go-app"] and b"github.com/pkg/errors" in kept["usr/bin/go-app"]
    assert b"go1.22.1" in kept["usr/bin/go-stripped"]
    assert b"malformed executable" in kept["usr/bin/truncated"] and b"malformed" in kept["usr/bin/bad-sections"]
    assert "usr/bin/plain" not in kept and "usr/share/misc/body" not in kept


def test_an_executable_read_in_place_is_not_copied(tmp_path: Path) -> None:
    big = go_binary("go1.21.5", [], 6 << 20)  # under MAP_BYTES: a streamed read holds all of it
    layer = layer_from_entries([Entry("usr/bin/big", data=big, mode=0o755)])
    path = tmp_path / "file"
    path.write_bytes(layer)
    interest = interest_for(default_catalogers())
    del big
    with path.open("rb") as f:
        read_layer(RegionReader(f.fileno(), 0, len(layer)), "sha256:x", interest)  # imports, compiles
        tracemalloc.start()
        try:
            rec = read_layer(RegionReader(f.fileno(), 0, len(layer)), "sha256:x", interest)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert b"go1.21.5" in rec.contents["usr/bin/big"]
    assert peak < 1 << 20, f"{peak} bytes allocated reading a 6 MiB executable in place"


def _archive(tmp_path: Path, layer: bytes) -> Path:
    return write_docker_archive(tmp_path / "image.tar", [layer])


def _alter(tar: Path, layer: bytes, old: bytes, new: bytes) -> None:
    data = tar.read_bytes()
    at = data.index(layer) + layer.index(old)  # the layer blob is stored as it is (uncompressed)
    tar.write_bytes(data[:at] + new + data[at + len(new) :])


@pytest.mark.parametrize("old", [BODY[1000:1008], b"\x90" * 8], ids=["skipped-body", "executable-body"])
def test_a_byte_altered_in_a_body_nobody_copies_is_refused_and_nothing_is_cached(tmp_path: Path, old: bytes) -> None:
    layer = layer_from_entries(_executables())
    tar = _archive(tmp_path, layer)
    _alter(tar, layer, old, b"ALTERED!")
    cache = LayerCache(tmp_path / "cache")
    image = open_image(f"archive://{tar}")
    with pytest.raises(BlobError, match="does not match its digest"):
        generate(image, subject_for(image, "test"), cache=cache)
    assert cache.load(str(image.config.diff_ids[0]), interest_for(default_catalogers()).fingerprint) is None


def _sbom_command(tmp_path: Path, tar: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "sbom.json"
    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "giropops", "sbom", f"archive://{tar}", "-f", "cyclonedx-json",
                           "-o", str(out)], capture_output=True, text=True, timeout=120, env=env)
    return proc, out


def _one_error_line(proc: subprocess.CompletedProcess[str], out: Path, words: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert words in proc.stderr, proc.stderr
    assert not out.exists()


def test_a_layer_header_with_a_wrong_checksum_is_one_error_line(tmp_path: Path) -> None:
    layer = bytearray(layer_from_entries(_executables()))
    at = layer.index(b"usr/share/misc/body")  # a header of the layer: its name changes, not its checksum
    layer[at : at + 3] = b"USR"
    tar = _archive(tmp_path, bytes(layer))  # the blob's digest is of these bytes: only the tar is wrong
    proc, out = _sbom_command(tmp_path, tar)
    _one_error_line(proc, out, "checksum mismatch")


def test_a_layer_whose_last_member_is_truncated_is_one_error_line(tmp_path: Path) -> None:
    layer = layer_from_entries([Entry("var/lib/dpkg/status", data=STATUS), Entry("usr/bin/go-app",
                                data=go_binary("go1.21.5", [], 100_000), mode=0o755)])
    cut = layer[: layer.index(b"\x7fELF") + 5000]  # the executable's data ends early, then nothing
    proc, out = _sbom_command(tmp_path, _archive(tmp_path, cut))
    _one_error_line(proc, out, "truncated")


def _digest(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


def test_a_region_is_proven_as_a_verified_stream_is(tmp_path: Path) -> None:
    blob = os.urandom(300_000)
    path = tmp_path / "file"
    path.write_bytes(b"z" * 70_000 + blob + b"tail")  # an offset that is not a page boundary
    with path.open("rb") as f:
        fd = f.fileno()
        assert verify_region(fd, 70_000, len(blob), _digest(blob), len(blob)) is True
        assert verify_region(fd, 0, 0, _digest(b""), 0) is True
        with pytest.raises(BlobError, match="does not match its digest"):
            verify_region(fd, 70_001, len(blob), _digest(blob), len(blob))
        with pytest.raises(BlobError, match=f"truncated \\({len(blob) - 1} of {len(blob)} bytes\\)"):
            verify_region(fd, 70_000, len(blob) - 1, _digest(blob), len(blob))
        with pytest.raises(BlobError, match="more than the declared"):
            verify_region(fd, 70_000, len(blob) + 1, _digest(blob), len(blob))


def test_a_region_past_the_end_of_its_file_is_not_mapped(tmp_path: Path) -> None:
    blob = os.urandom(50_000)
    path = tmp_path / "file"
    path.write_bytes(blob[:20_000])  # the file ends inside the region: a page past its end is never touched
    with path.open("rb") as f:
        assert verify_region(f.fileno(), 0, len(blob), _digest(blob), len(blob)) is False
        with pytest.raises(BlobError, match="truncated"), verified(f, _digest(blob), len(blob)) as stream:
            stream.read()


def test_a_region_reader_refuses_a_corrupt_header_as_a_stream_does(tmp_path: Path) -> None:
    layer = bytearray(layer_from_entries(_executables()))
    at = layer.index(b"usr/bin/plain")
    layer[at : at + 3] = b"USR"  # a header's name changes, its checksum field does not
    path = tmp_path / "file"
    path.write_bytes(bytes(layer))
    interest = interest_for(default_catalogers())
    with pytest.raises(SBOMError, match="checksum mismatch") as streamed:
        read_layer(io.BytesIO(bytes(layer)), "sha256:x", interest)
    with path.open("rb") as f, pytest.raises(SBOMError, match="checksum mismatch") as in_place:
        read_layer(RegionReader(f.fileno(), 0, len(layer)), "sha256:x", interest)
    assert str(in_place.value) == str(streamed.value)



def test_a_byte_altered_at_the_end_of_a_large_region_is_refused(tmp_path: Path) -> None:
    blob = os.urandom(3 << 20)
    path = tmp_path / "file"
    path.write_bytes(b"z" * 70_000 + blob[:-1] + bytes([blob[-1] ^ 1]) + b"tail")  # the last byte, surely other
    with path.open("rb") as f, pytest.raises(BlobError, match="does not match its digest"):
        verify_region(f.fileno(), 70_000, len(blob), _digest(blob), len(blob))


def _resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_proving_a_large_region_keeps_its_pages_out_of_the_resident_memory(tmp_path: Path) -> None:
    import threading

    from giropops.oci.blob import MAP_WINDOW

    size = 256 << 20
    path = tmp_path / "big"
    block = os.urandom(1 << 20)
    with path.open("wb") as f:
        for _ in range(size >> 20):
            f.write(block)
    digest = _digest(block * (size >> 20))
    threads = threading.active_count()
    base = _resident()
    highest = [base]
    done = threading.Event()

    def sample() -> None:  # the resident size (file pages mapped included) while the other thread hashes
        while not done.is_set():
            highest[0] = max(highest[0], _resident())
            done.wait(0.0005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with path.open("rb") as f:
            assert verify_region(f.fileno(), 0, size, digest, size)
    finally:
        done.set()
        sampler.join()
    # mapped whole and never dropped: all 256 MiB resident at the end of the hash
    assert highest[0] - base <= 2 * MAP_WINDOW < size // 2, f"{highest[0] - base} more resident bytes hashing"
    assert threading.active_count() == threads
