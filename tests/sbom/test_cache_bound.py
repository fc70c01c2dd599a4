"""Issue 16 item 8: the per-layer SBOM cache has a size bound (least recently used records go first), and
``giropops cache df`` / ``giropops cache prune [--sboms]`` show and empty the cache directory."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from giropops.cli.main import main
from giropops.sbom.cache import LayerCache
from giropops.sbom.filesystem import LayerRecords
from giropops.units import human_size


def record(n: int, size: int = 10_000) -> LayerRecords:
    rec = LayerRecords(f"sha256:{n:064x}")
    rec.contents["/var/lib/dpkg/status"] = bytes([n]) * size
    return rec


def on_disk(cache: LayerCache) -> tuple[int, int]:
    """(bytes, files) of the record files under the cache, by a walk of the test's own (dot files are not records)."""
    total = count = 0
    for directory, _dirs, names in os.walk(cache.root):
        for name in names:
            if not name.startswith("."):
                total += os.lstat(os.path.join(directory, name)).st_size
                count += 1
    return total, count


def record_size(tmp_path: Path) -> int:
    """The size of one record file of ``record(n)``, as written."""
    unbounded = LayerCache(tmp_path / "probe", max_bytes=10**12)
    unbounded.store(record(9), "fp")
    return on_disk(unbounded)[0]


def test_least_recently_used_records_go_when_over_the_bound(tmp_path: Path) -> None:
    one = record_size(tmp_path)
    cache = LayerCache(tmp_path / "c", max_bytes=10 * one)
    for n in range(10):
        cache.store(record(n), "fp")
    assert on_disk(cache) == (10 * one, 10)  # at the bound, not over it: nothing went
    for n, (path, _, _) in enumerate(sorted(cache.records())):
        os.utime(path, (1_000 + n, 1_000 + n))  # record n used at 1000 + n
    assert cache.load(record(0).diff_id or "", "fp") is not None  # record 0 is used: now the most recent
    cache.store(record(10), "fp")  # over the bound: the least recently used go, down to 90 % of it
    gone = [n for n in range(11) if cache.load(record(n).diff_id or "", "fp") is None]
    assert gone == [1, 2]
    assert on_disk(cache) == (9 * one, 9) and cache.ledger() == (9 * one, 9)
    tiny = LayerCache(tmp_path / "tiny", max_bytes=one // 2)
    tiny.store(record(4), "fp")  # a record larger than the whole bound is not kept
    assert tiny.records() == []
    just = LayerCache(tmp_path / "just", max_bytes=one)
    just.store(record(5), "fp")  # one over the low-water mark but within the bound: kept
    assert on_disk(just) == (one, 1)


def _image_tar(tmp_path: Path) -> str:
    from giropops.oci import mutate
    from giropops.oci.empty import empty_image
    from giropops.oci.transport import write_image

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        files = {"etc/os-release": "ID=debian\nVERSION_ID=\"12\"\n",
                 "var/lib/dpkg/status": "Package: tar\nStatus: install ok installed\nVersion: 1.34\n\n"}
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tf.addfile(info, io.BytesIO(text.encode()))
    img = mutate.append_layers(empty_image(), [mutate.layer_from_tar(buf.getvalue())])
    write_image(img, f"archive://{tmp_path / 'img.tar'}:c:1")
    return f"archive://{tmp_path / 'img.tar'}"


def test_cache_df_and_prune(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("GIROPOPS_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("GIROPOPS_DB", str(tmp_path / "db.sqlite3"))
    (tmp_path / "db.sqlite3").write_bytes(b"x" * 1000)
    blob = cache_dir / "blobs" / "sha256" / ("a" * 64)
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"b" * 5000)
    assert main(["sbom", _image_tar(tmp_path), "--format", "list"]) == 0
    layers = [p for p in (cache_dir / "sbom-layers").rglob("*") if p.is_file() and p.name != ".ledger"]
    assert len(layers) == 1
    capsys.readouterr()
    assert main(["cache", "df"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:4]}
    assert rows["sbom-layers"][1] == "1" and rows["blobs"][1] == "1" and rows["reco"][1] == "0"
    assert "vulnerability database" in out and "sbom-layers bound: 2.1 GB (default)" in out

    assert (cache_dir / "sbom-layers" / ".ledger").is_file()  # bookkeeping: not counted by df (1 file above)
    assert main(["cache", "prune", "--sboms"]) == 0
    out = capsys.readouterr().out
    assert "sbom-layers: 401 B freed" in out and "blobs" not in out
    assert not any(p.is_file() for p in (cache_dir / "sbom-layers").rglob("*"))  # the ledger too: reset
    assert LayerCache(cache_dir).ledger() is None
    assert blob.exists()
    assert main(["cache", "prune"]) == 0
    assert "blobs: 5.0 kB freed" in capsys.readouterr().out
    assert not blob.exists() and (tmp_path / "db.sqlite3").stat().st_size == 1000  # the database stays


def test_prune_removes_the_spdx_license_keys_a_run_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("GIROPOPS_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("GIROPOPS_DB", str(tmp_path / "db.sqlite3"))
    # a new process: the keys are read from the license index once per process, and kept in the cache directory
    # (for an index giropops ships no tables for: a copy of the installed one with one more byte, first on the path)
    from giropops.sbom import licenses

    installed = next(p for p in (Path(e or ".") / licenses._LICENSE_INDEX for e in sys.path) if p.is_file())
    other = tmp_path / "site" / licenses._LICENSE_INDEX
    other.parent.mkdir(parents=True)
    other.write_bytes(installed.read_bytes() + b"\n")
    subprocess.run([sys.executable, "-c", "from giropops.sbom.licenses import spdx_expression as e; "
                    "assert e('mit or apache-2.0') == 'MIT OR Apache-2.0'"], check=True,
                   env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    written = [p.name for p in cache_dir.iterdir()]
    assert written == ["spdx-license-keys.json"]
    size = (cache_dir / written[0]).stat().st_size
    assert main(["cache", "df"]) == 0
    row = next(line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(written[0]))
    assert row[1] == "1"
    assert main(["cache", "prune", "--sboms"]) == 0
    out = capsys.readouterr().out
    assert f"spdx-license-keys.json: {human_size(size)} freed" in out
    assert list(cache_dir.iterdir()) == []
    # the whole prune too; and a link in its place is removed, never followed
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    (cache_dir / written[0]).symlink_to(outside)
    assert main(["cache", "prune"]) == 0
    assert list(cache_dir.iterdir()) == [] and outside.read_text() == "{}"
