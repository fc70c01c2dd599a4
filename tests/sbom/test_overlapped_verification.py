"""An uncompressed layer of a local archive is parsed while its digest is proven on another thread
(``giropops.sbom.generate``): an altered blob is still refused with the error a verified read gives,
and nothing is cached or written for it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from giropops.errors import BlobError
from giropops.oci.transport import open_image
from giropops.sbom import generate, subject_for
from giropops.sbom.cache import LayerCache
from giropops.sbom.catalogers import default_catalogers, interest_for
from tests.support.sbom_images import Entry, layer_from_entries, write_docker_archive

STATUS = b"Package: alpha\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"


def archive(tmp_path: Path) -> tuple[Path, bytes]:
    layer = layer_from_entries([Entry("var/lib/dpkg/status", STATUS), Entry("usr/bin/tool", b"\x7fELF" + bytes(4096))])
    return write_docker_archive(tmp_path / "image.tar", [layer]), layer


def alter(tar: Path, layer: bytes, old: bytes, new: bytes) -> None:
    data = tar.read_bytes()
    at = data.index(layer) + layer.index(old)  # the layer blob is stored as it is (uncompressed)
    tar.write_bytes(data[:at] + new + data[at + len(new) :])


def run(tar: Path, cache: LayerCache) -> tuple[list[str], str]:
    image = open_image(f"archive://{tar}")
    diff_id = str(image.config.diff_ids[0])
    try:
        sbom = generate(image, subject_for(image, "test"), cache=cache)
    finally:
        cached = cache.load(diff_id, interest_for(default_catalogers()).fingerprint)
    return [f"{p.name} {p.version}" for p in sbom.packages], "cached" if cached is not None else "not cached"


def test_an_untouched_archive_is_read_and_cached(tmp_path: Path) -> None:
    tar, _ = archive(tmp_path)
    assert run(tar, LayerCache(tmp_path / "cache")) == (["alpha 1.0"], "cached")


@pytest.mark.parametrize(("old", "new"), [(b"Version: 1.0", b"Version: 6.6"), (b"\x7fELF", b"\x7fELG")])
def test_an_altered_layer_is_refused_and_nothing_is_cached(tmp_path: Path, old: bytes, new: bytes) -> None:
    tar, layer = archive(tmp_path)
    alter(tar, layer, old, new)
    cache = LayerCache(tmp_path / "cache")
    with pytest.raises(BlobError, match="does not match its digest"):
        run(tar, cache)
    image = open_image(f"archive://{tar}")
    assert cache.load(str(image.config.diff_ids[0]), interest_for(default_catalogers()).fingerprint) is None


def test_the_command_says_one_line_and_writes_nothing(tmp_path: Path) -> None:
    tar, layer = archive(tmp_path)
    alter(tar, layer, b"Version: 1.0", b"Version: 6.6")
    out = tmp_path / "sbom.json"
    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "giropops", "sbom", f"archive://{tar}", "-f", "cyclonedx-json",
                           "-o", str(out)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode != 0
    assert "does not match its digest" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def _layers() -> dict[str, bytes]:
    big = Entry("usr/lib/libbig.so", b"\x7fELF" + bytes(300_000))
    status = Entry("var/lib/dpkg/status", STATUS)
    long_name = Entry("usr/share/doc/" + "d" * 150 + "/copyright", b"License: MIT\n")
    normal = layer_from_entries([status, big, long_name, Entry("usr/bin/hard", hardlink="usr/lib/libbig.so"),
                                 Entry("etc/os-release", b"ID=debian\nVERSION_ID=12\n")])
    header = normal.index(b"libbig.so") - len("usr/lib/")
    truncated = normal[: header + 512 + 1000]  # the big file's data ends early, then nothing
    return {"normal": normal, "truncated": truncated, "empty": b"", "zeros": bytes(1024)}


@pytest.mark.parametrize("name", ["normal", "truncated", "empty", "zeros"])
def test_reading_in_place_gives_what_streaming_gives(tmp_path: Path, name: str) -> None:
    import io

    from giropops.errors import SBOMError
    from giropops.sbom.filesystem import read_layer
    from giropops.sbom.tarstream import RegionReader

    layer = _layers()[name]
    interest = interest_for(default_catalogers())
    path = tmp_path / "file"
    path.write_bytes(b"x" * 777 + layer + b"trailing bytes outside the region")

    def outcome(make: object) -> object:
        try:
            return vars(read_layer(make(), "sha256:x", interest))  # type: ignore[operator]
        except SBOMError as exc:
            return str(exc)

    streamed = outcome(lambda: io.BytesIO(layer))
    with path.open("rb") as f:
        in_place = outcome(lambda: RegionReader(f.fileno(), 777, len(layer), buffer=4096))
    assert in_place == streamed
    if name == "normal":
        assert isinstance(streamed, dict) and "var/lib/dpkg/status" in streamed["contents"]
    if name == "truncated":
        assert "truncated" in str(streamed)


def _generate_with(tar: Path, cache: LayerCache, meanwhile: Callable[[], object]) -> list[str]:
    image = open_image(f"archive://{tar}")
    sbom = generate(image, subject_for(image, "test"), cache=cache, meanwhile=meanwhile)
    return [f"{p.name} {p.version}" for p in sbom.packages]


def test_meanwhile_runs_once_and_the_sbom_is_the_same(tmp_path: Path) -> None:
    tar, _ = archive(tmp_path)
    calls: list[str] = []
    assert _generate_with(tar, LayerCache(tmp_path / "cache"), lambda: calls.append("called")) == ["alpha 1.0"]
    assert calls == ["called"]


def test_an_altered_layer_is_reported_before_what_meanwhile_raised(tmp_path: Path) -> None:
    tar, layer = archive(tmp_path)
    alter(tar, layer, b"Version: 1.0", b"Version: 6.6")

    def fails() -> None:
        raise RuntimeError("meanwhile failed")

    cache = LayerCache(tmp_path / "cache")
    with pytest.raises(BlobError, match="does not match its digest"):
        _generate_with(tar, cache, fails)
    image = open_image(f"archive://{tar}")
    assert cache.load(str(image.config.diff_ids[0]), interest_for(default_catalogers()).fingerprint) is None


def test_what_meanwhile_raises_is_raised_once_the_digests_are_proven(tmp_path: Path) -> None:
    tar, _ = archive(tmp_path)

    def fails() -> None:
        raise RuntimeError("meanwhile failed")

    cache = LayerCache(tmp_path / "cache")
    with pytest.raises(RuntimeError, match="meanwhile failed"):
        _generate_with(tar, cache, fails)
    image = open_image(f"archive://{tar}")  # the layer was proven (and so cached) before that was raised
    assert cache.load(str(image.config.diff_ids[0]), interest_for(default_catalogers()).fingerprint) is not None
