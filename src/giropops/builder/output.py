"""Turn built layers + config into an image, and write it: the one seam between the builder and ``giropops.oci``.

The image is a ``giropops.oci`` in-memory image (``build_image``), so every
transport of the OCI package writes it: ``archive://FILE`` (one tarball that
``podman load``, ``docker load``, Trivy and OCI tools all read),
``oci-dir://DIR`` (an OCI layout) and ``registry://REF`` (``--push``).  Base
image layers stay lazy ``Layer`` objects of their source; our own layers are
held in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from giropops.builder.errors import BuildError
from giropops.builder.layer import LayerBlob
from giropops.errors import ImageReferenceError
from giropops.oci import mediatypes as mt
from giropops.oci.image import Image, ImageIndex, Layer
from giropops.oci.memory import build_image, build_index, bytes_layer
from giropops.oci.model import Digest, ImageConfig
from giropops.oci.transport import ArchiveSpec, OCIDirSpec, Spec, TransportOptions, as_spec, write_image
from giropops.progress import NO_PROGRESS, Progress


@dataclass(frozen=True)
class BuiltImage:
    image: Image

    @property
    def digest(self) -> str:
        return str(self.image.digest)

    @property
    def manifest(self) -> bytes:
        return self.image.raw_manifest

    @property
    def config(self) -> bytes:
        return self.image.raw_config

    @property
    def layers(self) -> Sequence[Layer]:
        return self.image.layers()

    @property
    def compressed_size(self) -> int:
        return len(self.config) + sum(layer.size for layer in self.layers)


@dataclass(frozen=True)
class BuiltIndex:
    """One image per architecture under an OCI index (``archs`` with more than one entry)."""

    index: ImageIndex
    images: tuple[BuiltImage, ...]

    @property
    def digest(self) -> str:
        return str(self.index.digest)

    @property
    def compressed_size(self) -> int:
        return sum(i.compressed_size for i in self.images)


def index_of(images: Sequence[BuiltImage]) -> BuiltIndex:
    return BuiltIndex(build_index([(i.image, None) for i in images]), tuple(images))


def _obj(built: BuiltImage | BuiltIndex) -> Image | ImageIndex:
    return built.image if isinstance(built, BuiltImage) else built.index


def as_layer(blob: LayerBlob) -> Layer:
    return bytes_layer(blob.data, mt.OCI_LAYER_GZIP, Digest.parse(blob.diff_id))


def assemble(layers: Sequence[LayerBlob | Layer], config: ImageConfig, annotations: dict[str, str]) -> BuiltImage:
    oci_layers = [as_layer(x) if isinstance(x, LayerBlob) else x for x in layers]
    image = build_image(config.to_bytes(), oci_layers, annotations=dict(sorted(annotations.items())))
    return BuiltImage(image)


def write_output(
    image: BuiltImage | BuiltIndex,
    output: Spec | str,
    tags: Sequence[str],
    progress: Progress = NO_PROGRESS,
    options: TransportOptions | None = None,
) -> Spec:
    """Write to ``archive://FILE`` or ``oci-dir://DIR`` (named by the first tag); returns the spec written."""
    try:
        spec = as_spec(output)
    except ImageReferenceError as exc:
        raise BuildError(f"--output: {exc}") from exc
    if not isinstance(spec, ArchiveSpec | OCIDirSpec):
        raise BuildError(
            f"--output must be archive://FILE or oci-dir://DIR, got {str(output)!r} (use --push for a registry)"
        )
    opts = options or TransportOptions()
    if tags and spec.name is None:
        opts = TransportOptions(**{**opts.__dict__, "name": tags[0]})
    write_image(_obj(image), spec, opts, progress)
    return spec


def push(image: BuiltImage | BuiltIndex, tags: Sequence[str], progress: Progress = NO_PROGRESS,
         options: TransportOptions | None = None) -> list[str]:
    """Push to every tag's registry; returns ``ref@digest`` for each."""
    if not tags:
        raise BuildError("--push needs -t REF")
    out = []
    for tag in tags:
        digest = write_image(_obj(image), f"registry://{tag}", options or TransportOptions(), progress)
        out.append(f"{tag}@{digest}")
    return out
