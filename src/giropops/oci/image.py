"""Read-only protocols every image source implements (registry, archive, layout, fs, daemon).

Blobs are read lazily: nothing is fetched until ``open_*`` is called, and every
stream handed out verifies size and digest as it is consumed (see ``blob.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from giropops.oci.model import Digest, ImageConfig, Index, Manifest, Platform
from giropops.runtime_typing import Protocol, runtime_checkable

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from typing import BinaryIO


@runtime_checkable
class Layer(Protocol):
    @property
    def digest(self) -> Digest:
        """Digest of the blob as stored (compressed, if it is)."""

    @property
    def diff_id(self) -> Digest:
        """Digest of the uncompressed tar."""

    @property
    def size(self) -> int:
        """Size of the blob as stored."""

    @property
    def media_type(self) -> str: ...

    def open_compressed(self) -> BinaryIO:
        """The blob as stored; raises BlobError at EOF if size or digest mismatch."""

    def open_uncompressed(self) -> BinaryIO:
        """The uncompressed tar stream; verified against the blob digest as it is read."""


@runtime_checkable
class Image(Protocol):
    @property
    def digest(self) -> Digest:
        """Digest of ``raw_manifest``."""

    @property
    def raw_manifest(self) -> bytes: ...

    @property
    def manifest(self) -> Manifest: ...

    @property
    def media_type(self) -> str: ...

    @property
    def raw_config(self) -> bytes: ...

    @property
    def config(self) -> ImageConfig: ...

    def layers(self) -> Sequence[Layer]:
        """Layers bottom to top, each knowing both its digest and diff_id."""


@runtime_checkable
class ImageIndex(Protocol):
    @property
    def digest(self) -> Digest: ...

    @property
    def raw_manifest(self) -> bytes: ...

    @property
    def index(self) -> Index: ...

    def image(self, digest: Digest) -> Image: ...

    def image_for(self, platform: Platform) -> Image: ...


def compressed_size(image: Image) -> int:
    return image.manifest.config.size + sum(d.size for d in image.manifest.layers)
