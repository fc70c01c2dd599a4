"""Images and indexes held as bytes plus lazily opened layer blobs.

Every source (layout, archive, fs, daemon) ends up building a ``StaticImage``:
the small documents (manifest, config) are read eagerly and validated, layers
are ``BlobLayer`` objects that only open their blob when asked.  Mutations
(``mutate.py``) build new ``StaticImage`` objects that reuse the base layers.

``StaticIndex`` loads its children on demand through a loader callable, so an
index of ten platforms costs nothing until one is chosen.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping, Sequence

from giropops.errors import ImageError, ManifestError
from giropops.oci import mediatypes as mt
from giropops.oci.blob import decompressed, verified
from giropops.oci.image import Image, ImageIndex, Layer
from giropops.oci.model import Descriptor, Digest, ImageConfig, Index, Manifest, Platform
from giropops.runtime_typing import cast

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from typing import Any, BinaryIO

Opener = Callable[[], "BinaryIO"]

#: Layer media types whose blob is a tar archive (possibly compressed).
TAR_LAYER_TYPES = mt.LAYER_TYPES | {"application/vnd.docker.image.rootfs.diff.tar"}
UNCOMPRESSED_LAYER_TYPES = frozenset({mt.OCI_LAYER, "application/vnd.docker.image.rootfs.diff.tar"})


class FileSlice(io.RawIOBase):
    """``length`` bytes of an open file from ``offset``, read with ``pread`` (no shared file position).

    ``owner`` is any object that keeps the descriptor open (a file object, a
    temporary file); the slice never closes the descriptor itself unless
    ``close_fd`` is set.
    """

    def __init__(self, fd: int, offset: int, length: int, owner: object = None, close_fd: bool = False) -> None:
        super().__init__()
        self._fd = fd
        self._pos = offset
        self._end = offset + length
        self._owner = owner
        self._close_fd = close_fd

    @property
    def region(self) -> tuple[int, int, int]:
        """(descriptor, offset, length) of what is left to read."""
        return self._fd, self._pos, self._end - self._pos

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        want = min(len(view), self._end - self._pos)
        if want <= 0:
            return 0
        n = os.preadv(self._fd, [view[:want]], self._pos)  # straight into the caller's buffer
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed and self._close_fd:
            os.close(self._fd)
        self._owner = None
        super().close()


class DescribedLayer:
    """``descriptor``, ``digest``, ``size`` and ``media_type`` of a layer whose descriptor is ``_descriptor``."""

    _descriptor: Descriptor

    @property
    def descriptor(self) -> Descriptor:
        return self._descriptor

    @property
    def digest(self) -> Digest:
        return self._descriptor.digest

    @property
    def size(self) -> int:
        return self._descriptor.size

    @property
    def media_type(self) -> str:
        return self._descriptor.media_type


class StoredManifest:
    """``digest`` and ``raw_manifest`` of a manifest or index held as ``_digest`` and ``_raw``."""

    _digest: Digest
    _raw: bytes

    @property
    def digest(self) -> Digest:
        return self._digest

    @property
    def raw_manifest(self) -> bytes:
        return self._raw


class StoredImage(StoredManifest):
    """``StoredManifest`` plus the parsed ``manifest``, held as ``_manifest``."""

    _manifest: Manifest

    @property
    def manifest(self) -> Manifest:
        return self._manifest


class BlobLayer(DescribedLayer):
    """A layer known by its descriptor; ``opener`` returns the raw (unverified) blob stream.

    Every stream handed out is verified against the descriptor's size and digest.
    """

    def __init__(self, descriptor: Descriptor, diff_id: Digest, opener: Opener) -> None:
        self._descriptor = descriptor
        self._diff_id = diff_id
        self._opener = opener

    @property
    def diff_id(self) -> Digest:
        return self._diff_id

    def open_compressed(self) -> BinaryIO:
        return verified(self._opener(), self.digest, self.size, f"layer {self.digest}")

    def open_raw(self) -> BinaryIO:
        """The blob as its source gives it, unverified: only to learn where its bytes lie
        (``giropops.sbom.proofs``); read it through ``open_compressed`` / ``open_uncompressed``."""
        return self._opener()

    def open_uncompressed(self) -> BinaryIO:
        if self.media_type not in TAR_LAYER_TYPES:
            raise ImageError(f"layer {self.digest} has media type {self.media_type!r}, not a filesystem layer")
        return decompressed(self.open_compressed(), f"layer {self.digest}")

    def with_descriptor(self, descriptor: Descriptor) -> BlobLayer:
        """The same bytes under another descriptor (e.g. a Docker media type for an OCI one)."""
        if descriptor.digest != self.digest or descriptor.size != self.size:
            raise ImageError("with_descriptor cannot change a layer's digest or size")
        return BlobLayer(descriptor, self._diff_id, self._opener)


def bytes_layer(
    data: bytes,
    media_type: str = mt.OCI_LAYER_GZIP,
    diff_id: Digest | None = None,
    annotations: Mapping[str, str] | None = None,
) -> BlobLayer:
    """A layer (or any manifest 'layer' blob, such as a cosign signature payload) held in memory.

    ``diff_id`` defaults to the digest of ``data`` when the blob is not compressed;
    a compressed tar needs it given (or use ``mutate.layer_from_tar``).
    """
    digest = Digest.of(data)
    if diff_id is None:
        if media_type in TAR_LAYER_TYPES and media_type not in UNCOMPRESSED_LAYER_TYPES:
            raise ImageError("bytes_layer: a compressed layer needs its diff_id")
        diff_id = digest
    desc = Descriptor(media_type, digest, len(data), annotations=dict(annotations or {}))
    return BlobLayer(desc, diff_id, lambda: cast("BinaryIO", io.BytesIO(data)))


def descriptor_of_layer(layer: Layer) -> Descriptor:
    desc = getattr(layer, "descriptor", None)
    if isinstance(desc, Descriptor):
        return desc
    return Descriptor(layer.media_type, layer.digest, layer.size)


def descriptor_of(obj: Image | ImageIndex) -> Descriptor:
    """The descriptor that points at ``obj`` from an index."""
    if isinstance(obj, Image):
        return Descriptor(obj.media_type, obj.digest, len(obj.raw_manifest))
    return Descriptor(obj.index.media_type, obj.digest, len(obj.raw_manifest))


class StaticImage(StoredImage):
    """An image whose manifest and config are bytes in memory and whose layers are lazy."""

    def __init__(self, raw_manifest: bytes, raw_config: bytes, layers: Sequence[Layer]) -> None:
        manifest = Manifest.from_bytes(raw_manifest)
        if Digest.of(raw_config, manifest.config.digest.algorithm) != manifest.config.digest:
            raise ManifestError(f"config does not match its digest {manifest.config.digest}")
        if len(raw_config) != manifest.config.size:
            raise ManifestError(f"config is {len(raw_config)} bytes, manifest says {manifest.config.size}")
        if len(layers) != len(manifest.layers):
            raise ManifestError(f"manifest lists {len(manifest.layers)} layers, {len(layers)} given")
        for layer, desc in zip(layers, manifest.layers, strict=True):
            if layer.digest != desc.digest:
                raise ManifestError(f"layer {layer.digest} given where the manifest lists {desc.digest}")
        self._raw = raw_manifest
        self._manifest = manifest
        self._raw_config = raw_config
        self._config = ImageConfig.from_bytes(raw_config)
        self._layers = tuple(layers)
        self._digest = Digest.of(raw_manifest)

    @property
    def media_type(self) -> str:
        return self._manifest.media_type

    @property
    def raw_config(self) -> bytes:
        return self._raw_config

    @property
    def config(self) -> ImageConfig:
        return self._config

    def layers(self) -> Sequence[Layer]:
        return self._layers

    def __repr__(self) -> str:
        return f"<StaticImage {self._digest} {len(self._layers)} layers>"


def layer_diff_ids(manifest: Manifest, config: ImageConfig) -> list[Digest]:
    """diff_ids per manifest layer: from the config's rootfs, or the digest itself for non-tar blobs.

    An image config that lists filesystem layers must list exactly one diff_id per layer.
    """
    diff_ids = list(config.diff_ids)
    if "rootfs" in config.raw:
        if len(diff_ids) != len(manifest.layers):
            raise ManifestError(
                f"image config lists {len(diff_ids)} diff_ids but the manifest has {len(manifest.layers)} layers"
            )
        return diff_ids
    out = []
    for desc in manifest.layers:
        if desc.media_type in TAR_LAYER_TYPES and desc.media_type not in UNCOMPRESSED_LAYER_TYPES:
            raise ManifestError(f"compressed layer {desc.digest} has no diff_id in the image config")
        out.append(desc.digest)
    return out


def build_image(
    raw_config: bytes,
    layers: Sequence[Layer],
    *,
    media_type: str = mt.OCI_MANIFEST,
    config_media_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
    subject: Descriptor | None = None,
    artifact_type: str | None = None,
) -> StaticImage:
    """An image from a config blob and layers; the manifest is written canonically."""
    if config_media_type is None:
        config_media_type = mt.DOCKER_CONFIG if media_type == mt.DOCKER_MANIFEST else mt.OCI_CONFIG
    manifest = Manifest(
        media_type=media_type,
        config=Descriptor(config_media_type, Digest.of(raw_config), len(raw_config)),
        layers=tuple(descriptor_of_layer(layer) for layer in layers),
        annotations=dict(annotations or {}),
        subject=subject,
        artifact_type=artifact_type,
    )
    return StaticImage(manifest.to_bytes(), raw_config, layers)


ChildLoader = Callable[[Descriptor], "Image | ImageIndex"]

#: Indexes inside indexes deeper than this are refused.  Real images nest at most once or twice
#: (an index of per-platform indexes); a hostile chain of thousands would exhaust the stack of
#: every walker that follows it.
MAX_INDEX_NESTING = 16


class StaticIndex(StoredManifest):
    """An index whose children are produced on demand by ``loader`` (and cached)."""

    def __init__(self, raw_manifest: bytes, loader: ChildLoader) -> None:
        self._raw = raw_manifest
        self._index = Index.from_bytes(raw_manifest)
        self._digest = Digest.of(raw_manifest)
        self._loader = loader
        self._cache: dict[Digest, Image | ImageIndex] = {}
        self._nesting = 0  # how many indexes lead to this one

    @property
    def index(self) -> Index:
        return self._index

    @property
    def media_type(self) -> str:
        return self._index.media_type

    def child(self, desc: Descriptor) -> Image | ImageIndex:
        got = self._cache.get(desc.digest)
        if got is None:
            got = self._loader(desc)
            if got.digest != desc.digest:
                raise ManifestError(f"index entry {desc.digest} resolved to {got.digest}")
            if isinstance(got, StaticIndex):
                got._nesting = self._nesting + 1
                if got._nesting > MAX_INDEX_NESTING:
                    raise ManifestError(f"index {desc.digest} is nested more than {MAX_INDEX_NESTING} indexes deep")
            self._cache[desc.digest] = got
        return got

    def image(self, digest: Digest) -> Image:
        for desc in self._index.manifests:
            if desc.digest == digest:
                got = self.child(desc)
                if not isinstance(got, Image):
                    raise ManifestError(f"{digest} is an index, not an image")
                return got
        raise ManifestError(f"no manifest {digest} in index {self._digest}")

    def image_for(self, platform: Platform) -> Image:
        desc = self._index.select(platform)
        got = self.child(desc)
        if isinstance(got, Image):
            return got
        return got.image_for(platform)

    def __repr__(self) -> str:
        return f"<StaticIndex {self._digest} {len(self._index.manifests)} manifests>"


def children_of(index: ImageIndex) -> list[tuple[Descriptor, Image | ImageIndex]]:
    """Every child of an index, nested indexes included when the implementation can load them."""
    out: list[tuple[Descriptor, Image | ImageIndex]] = []
    child = getattr(index, "child", None)
    for desc in index.index.manifests:
        if callable(child):
            out.append((desc, cast("Image | ImageIndex", child(desc))))
        elif desc.media_type in mt.INDEX_TYPES:
            raise ManifestError(f"cannot load nested index {desc.digest} from this source")
        else:
            out.append((desc, index.image(desc.digest)))
    return out


def build_index(
    entries: Sequence[tuple[Image | ImageIndex, Platform | None]],
    *,
    media_type: str = mt.OCI_INDEX,
    annotations: Mapping[str, str] | None = None,
    entry_annotations: Sequence[Mapping[str, str] | None] | None = None,
) -> StaticIndex:
    """An index over in-memory children; a child's platform defaults to its config's."""
    descs: list[Descriptor] = []
    by_digest: dict[Digest, Image | ImageIndex] = {}
    for i, (obj, plat) in enumerate(entries):
        base = descriptor_of(obj)
        if plat is None and isinstance(obj, Image):
            plat = obj.config.platform
        ann = dict(entry_annotations[i] or {}) if entry_annotations else {}
        descs.append(Descriptor(base.media_type, base.digest, base.size, annotations=ann, platform=plat))
        by_digest[obj.digest] = obj
    index = Index(media_type=media_type, manifests=tuple(descs), annotations=dict(annotations or {}))

    def load(desc: Descriptor) -> Image | ImageIndex:
        return by_digest[desc.digest]

    return StaticIndex(index.to_bytes(), load)


def select_image(obj: Image | ImageIndex, platform: Platform | None) -> Image:
    """The image itself, or the one an index holds for ``platform`` (default: this machine's)."""
    if isinstance(obj, Image):
        return obj
    entries = obj.index.manifests
    if len(entries) > 1 and all(d.platform is None for d in entries):
        raise ManifestError(
            f"{obj.digest} lists {len(entries)} manifests and none names a platform: choose one by name or digest"
        )
    return obj.image_for(platform or Platform.host())
