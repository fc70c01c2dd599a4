"""The per-layer cache: shared base layers are read once, and whiteouts still apply on a warm cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from giropops.oci.archive import open_archive_image
from giropops.oci.model import Digest, ImageConfig, Manifest
from giropops.sbom import generate, sbom_for
from giropops.sbom.cache import LayerCache
from giropops.sbom.formats import encode
from giropops.sbom.model import Subject
from tests.sbom.conftest import BuiltImage


class CountingImage:
    """A real image whose layer reads are counted (the image itself is the real archive)."""

    def __init__(self, path: Path) -> None:
        self.inner = open_archive_image(path)
        self.opened: list[str] = []

    @property
    def digest(self) -> Digest:
        return self.inner.digest

    @property
    def raw_manifest(self) -> bytes:
        return self.inner.raw_manifest

    @property
    def manifest(self) -> Manifest:
        return self.inner.manifest

    @property
    def media_type(self) -> str:
        return self.inner.media_type

    @property
    def raw_config(self) -> bytes:
        return self.inner.raw_config

    @property
    def config(self) -> ImageConfig:
        return self.inner.config

    def layers(self) -> Sequence[Any]:
        counter = self

        class Layer:
            def __init__(self, inner: Any) -> None:
                self.inner = inner
                self.digest, self.diff_id, self.size, self.media_type = (
                    inner.digest, inner.diff_id, inner.size, inner.media_type
                )

            def open_compressed(self) -> BinaryIO:
                raise AssertionError("the SBOM reads uncompressed layers")

            def open_uncompressed(self) -> BinaryIO:
                counter.opened.append(str(self.diff_id))
                stream: BinaryIO = self.inner.open_uncompressed()
                return stream

        return [Layer(layer) for layer in self.inner.layers()]


def run(image: CountingImage, cache: LayerCache) -> bytes:
    sbom = generate(image, Subject("test", str(image.digest)), cache=cache)  # type: ignore[arg-type]
    return encode(sbom, "json")


def test_warm_cache_reads_no_layer_and_gives_the_same_sbom(venv_image: BuiltImage, tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "c")
    cold = CountingImage(venv_image.tar)
    first = run(cold, cache)
    assert len(cold.opened) == 2
    warm = CountingImage(venv_image.tar)
    assert run(warm, cache) == first
    assert warm.opened == []


def test_shared_base_layers_are_not_read_again(
    venv_image: BuiltImage, whiteout_image: BuiltImage, distroless_image: BuiltImage, tmp_path: Path
) -> None:
    cache = LayerCache(tmp_path / "c")
    run(CountingImage(distroless_image.tar), cache)
    upper = CountingImage(whiteout_image.tar)
    diff_ids = [str(d) for d in upper.config.diff_ids]
    run(upper, cache)
    assert sorted(upper.opened) == sorted(diff_ids[1:])  # the distroless base came from the cache


def test_whiteouts_apply_over_cached_lower_layers(
    venv_image: BuiltImage, whiteout_image: BuiltImage, tmp_path: Path
) -> None:
    """Records are cached per layer and squashed every run: a cached lower layer's packages that an
    upper layer deletes stay deleted."""
    cache = LayerCache(tmp_path / "c")
    run(CountingImage(venv_image.tar), cache)
    warm = CountingImage(whiteout_image.tar)
    warm_json = run(warm, cache)
    cold_json = run(CountingImage(whiteout_image.tar), LayerCache(tmp_path / "empty"))
    assert warm_json == cold_json
    assert b'"name": "zlib1g"' not in warm_json and b'"name": "six"' not in warm_json


def test_corrupt_cache_entries_are_misses(venv_image: BuiltImage, tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "c")
    first = run(CountingImage(venv_image.tar), cache)
    files = [p for p, _, _ in cache.records()]
    assert len(files) == 2
    files[0].write_bytes(files[0].read_bytes()[:100])  # truncated
    files[1].write_bytes(b"GIROPOPS-SBOM-LAYER-2\n" + b"\xff" * 20)  # garbage header
    again = CountingImage(venv_image.tar)
    assert run(again, cache) == first
    assert len(again.opened) == 2


def test_cache_dir_follows_the_environment(distroless_image: BuiltImage, cache_dir: Path) -> None:
    sbom_for(f"archive://{distroless_image.tar}")
    stored = [p for p in (cache_dir / "sbom-layers").rglob("*") if p.is_file() and p.name != ".ledger"]
    assert len(stored) == 1 and stored[0].name == str(open_archive_image(distroless_image.tar).config.diff_ids[0].hex)
