"""A warm run serves a layer from the cache only while the file holding it is proven unchanged
(``giropops.sbom.proofs``): an archive edited in place, even with its size and mtime put back, is
read and verified again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from giropops.errors import BlobError
from giropops.oci.archive import open_archive_image
from giropops.sbom import generate
from giropops.sbom.cache import LayerCache
from giropops.sbom.formats import encode
from giropops.sbom.model import SBOM, Subject
from giropops.sbom.proofs import Proofs, where
from tests.support.sbom_images import Entry, layer_from_entries, write_docker_archive

STATUS = (
    b"Package: alpha\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"
    b"Package: bravo\nStatus: install ok installed\nVersion: 2.0\nArchitecture: amd64\n\n"
)


class Reads:
    """A real ``Progress``: the layers a run read (each read announces itself)."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, key: str, label: str, total: int | None = None, unit: str = "B") -> None:
        self.started.append(key)

    def advance(self, key: str, amount: int) -> None:
        pass

    def finish(self, key: str, message: str | None = None) -> None:
        pass

    def note(self, message: str) -> None:
        pass


def _archive(tmp_path: Path) -> Path:
    base = layer_from_entries([Entry("var/lib/dpkg/status", STATUS)])
    upper = layer_from_entries([Entry("app/readme.txt", b"hello " * 100)])
    return write_docker_archive(tmp_path / "image.tar", [base, upper])


def _run(tar: Path, cache: LayerCache) -> tuple[SBOM, list[str]]:
    reads = Reads()
    image = open_archive_image(tar)
    return generate(image, Subject("test", str(image.digest)), cache=cache, progress=reads), reads.started


def _edit_in_place(tar: Path, old: bytes, new: bytes) -> None:
    """Overwrite ``old`` with ``new`` (same length) in the file, then put its mtime back."""
    st = tar.stat()
    data = tar.read_bytes()
    at = data.index(old)
    with open(tar, "r+b") as f:
        f.seek(at)
        f.write(new)
    os.utime(tar, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert tar.stat().st_size == st.st_size and tar.stat().st_mtime_ns == st.st_mtime_ns


def test_a_proven_unchanged_archive_is_served_from_the_cache(tmp_path: Path) -> None:
    tar = _archive(tmp_path)
    cache = LayerCache(tmp_path / "cache", settle_seconds=0)
    cold, cold_reads = _run(tar, cache)
    assert len(cold_reads) == 2
    assert {p.name for p in cold.packages} == {"alpha", "bravo"}
    warm, warm_reads = _run(tar, LayerCache(tmp_path / "cache", settle_seconds=0))
    assert warm_reads == []
    assert encode(warm, "json") == encode(cold, "json")


def test_an_archive_edited_in_place_with_its_mtime_restored_is_not_served_from_the_cache(tmp_path: Path) -> None:
    tar = _archive(tmp_path)
    cache = LayerCache(tmp_path / "cache", settle_seconds=0)
    _run(tar, cache)
    _edit_in_place(tar, b"Package: alpha\n", b"Package: omega\n")
    # the layer is read again, and its bytes no longer hash to the diff_id the config names
    with pytest.raises(BlobError, match="does not match its digest"):
        _run(tar, LayerCache(tmp_path / "cache", settle_seconds=0))


def test_a_touched_but_identical_archive_is_read_again_and_proven_anew(tmp_path: Path) -> None:
    tar = _archive(tmp_path)
    cache = LayerCache(tmp_path / "cache", settle_seconds=0)
    cold, _ = _run(tar, cache)
    _edit_in_place(tar, b"Package: alpha\n", b"Package: alpha\n")  # same bytes: only the ctime moves
    again, reads = _run(tar, LayerCache(tmp_path / "cache", settle_seconds=0))
    assert len(reads) == 2
    assert encode(again, "json") == encode(cold, "json")
    _, reads = _run(tar, LayerCache(tmp_path / "cache", settle_seconds=0))
    assert reads == []


def test_a_copy_of_the_archive_is_proven_on_its_own(tmp_path: Path) -> None:
    tar = _archive(tmp_path)
    _run(tar, LayerCache(tmp_path / "cache", settle_seconds=0))
    copy = shutil.copyfile(tar, tmp_path / "copy.tar")
    _, reads = _run(copy, LayerCache(tmp_path / "cache", settle_seconds=0))
    assert len(reads) == 2  # records exist for these diff_ids, but nothing proved this file holds them


def test_a_file_written_just_now_gets_no_proof(tmp_path: Path) -> None:
    """The racy case: a file whose change time is within the settle time of the read is read again
    next time (a later write in the same timestamp tick would not show in its stat)."""
    tar = _archive(tmp_path)
    _run(tar, LayerCache(tmp_path / "cache", settle_seconds=3600))
    _, reads = _run(tar, LayerCache(tmp_path / "cache", settle_seconds=3600))
    assert len(reads) == 2
    assert not (tmp_path / "cache" / "sbom-proofs").exists()


def test_a_layout_blob_is_located_as_a_whole_file(tmp_path: Path) -> None:
    tar = _archive(tmp_path)
    layout = tmp_path / "layout"
    subprocess.run(["skopeo", "copy", "--quiet", f"docker-archive:{tar}", f"oci:{layout}:x"], check=True,
                   capture_output=True, timeout=120)
    from giropops.oci.layout import open_layout_image

    image = open_layout_image(layout)
    for layer in image.layers():
        w = where(layer)
        blob = layout / "blobs" / layer.digest.algorithm / layer.digest.hex
        assert w is not None and (w.offset, w.length) == (0, blob.stat().st_size)
        assert w.identity[:2] == (blob.stat().st_dev, blob.stat().st_ino)
    proofs = Proofs(tmp_path / "cache", settle_seconds=0)
    first = image.layers()[0]
    assert not proofs.proven(first)
    before = where(first)
    with first.open_uncompressed() as f:
        while f.read(1 << 20):
            pass
    proofs.record(first, before, time.time_ns())
    assert Proofs(tmp_path / "cache", settle_seconds=0).proven(first)


def test_the_cli_warm_run_refuses_an_archive_edited_in_place(tmp_path: Path) -> None:
    tar = _archive(tmp_path)
    old = time.time() - 3600  # ctime cannot be set back: wait out the settle time instead
    os.utime(tar, (old, old))
    time.sleep(2.1)
    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(tmp_path / "cache")}

    def sbom() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "giropops", "sbom", f"archive://{tar}"], env=env,
                              capture_output=True, text=True, timeout=120)

    assert "alpha" in sbom().stdout
    assert list((tmp_path / "cache" / "sbom-proofs").iterdir())
    _edit_in_place(tar, b"Package: alpha\n", b"Package: omega\n")
    proc = sbom()
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.startswith("giropops: error: ") and "does not match its digest" in proc.stderr
    assert proc.stderr.count("\n") == 1
