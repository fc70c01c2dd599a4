"""Images in a registry as lazy ``Image`` / ``ImageIndex`` objects, and pushing any image to one.

Reading fetches the manifest up front (its media type decides what we have) and
everything else on demand: the config on first use, each layer only when opened.

Writing goes bottom-up so a registry never sees a dangling reference: all blobs
(config and layers, in parallel on a small bounded pool, each skipped when the
registry already has it, mounted across repositories when the source is another
repository of the same registry), then each child manifest by digest, then the
top manifest under the tag.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from functools import cached_property
from typing import BinaryIO

from giropops.errors import ManifestError, quote_for_error
from giropops.oci import mediatypes as mt
from giropops.oci.blob import decompressed, read_verified
from giropops.oci.image import Image, ImageIndex, Layer
from giropops.oci.memory import StaticIndex
from giropops.oci.model import Descriptor, Digest, ImageConfig, Manifest, Platform
from giropops.oci.reference import Reference
from giropops.oci.registry.client import RegistryClient, RegistryOptions
from giropops.progress import NO_PROGRESS, Progress

#: Blobs uploaded at once; a couple of streams saturate a link, more only add memory and sockets.
PUSH_PARALLELISM = 4

_NON_DISTRIBUTABLE = frozenset({mt.DOCKER_LAYER_FOREIGN_GZIP, mt.OCI_LAYER_ND_GZIP})


class RemoteLayer:
    def __init__(self, client: RegistryClient, repo: str, desc: Descriptor, diff_id: Digest | None) -> None:
        self._client = client
        self._repo = repo
        self._desc = desc
        self._diff_id = diff_id

    @property
    def digest(self) -> Digest:
        return self._desc.digest

    @property
    def diff_id(self) -> Digest:
        if self._diff_id is None:
            raise ManifestError(f"layer {self._desc.digest}: the image config lists no diff_id for it")
        return self._diff_id

    @property
    def size(self) -> int:
        return self._desc.size

    @property
    def media_type(self) -> str:
        return self._desc.media_type

    @property
    def descriptor(self) -> Descriptor:
        return self._desc

    def open_compressed(self) -> BinaryIO:
        return self._client.open_blob(self._repo, self._desc.digest, self._desc.size)

    def open_uncompressed(self) -> BinaryIO:
        return decompressed(self.open_compressed(), f"layer {self._desc.digest}")


class RemoteImage:
    """An image manifest in a registry; ``client``/``repo`` let a push to the same host mount its blobs."""

    def __init__(self, client: RegistryClient, repo: str, raw: bytes, media_type: str, digest: Digest) -> None:
        if media_type not in mt.MANIFEST_TYPES:
            raise ManifestError(f"{client.host}/{repo}@{digest}: {quote_for_error(media_type)} is not an image "
                                f"manifest")
        self.client = client
        self.repo = repo
        self._raw = raw
        self._media_type = media_type
        self._digest = digest
        self._manifest = Manifest.from_bytes(raw)

    @property
    def digest(self) -> Digest:
        return self._digest

    @property
    def raw_manifest(self) -> bytes:
        return self._raw

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def media_type(self) -> str:
        return self._media_type

    @cached_property
    def raw_config(self) -> bytes:
        desc = self._manifest.config
        with self.client.open_blob(self.repo, desc.digest, desc.size) as f:
            what = f"{self.client.host}/{self.repo}: config"
            return read_verified(f, desc.digest, desc.size, mt.MAX_CONFIG_BYTES, what)

    @cached_property
    def config(self) -> ImageConfig:
        return ImageConfig.from_bytes(self.raw_config)

    def layers(self) -> Sequence[Layer]:
        descs = self._manifest.layers
        diff_ids: Sequence[Digest | None] = self.config.diff_ids
        if diff_ids and len(diff_ids) != len(descs):
            raise ManifestError(
                f"{self.client.host}/{self.repo}@{self._digest}: manifest has {len(descs)} layers "
                f"but the config lists {len(diff_ids)} diff_ids"
            )
        if not diff_ids:
            diff_ids = [None] * len(descs)
        return [RemoteLayer(self.client, self.repo, d, i) for d, i in zip(descs, diff_ids, strict=True)]


class RemoteIndex(StaticIndex):
    """An index in a registry; children (images or nested indexes) are fetched when first asked for."""

    def __init__(self, client: RegistryClient, repo: str, raw: bytes, media_type: str, digest: Digest) -> None:
        if media_type not in mt.INDEX_TYPES:
            raise ManifestError(f"{client.host}/{repo}@{digest}: {quote_for_error(media_type)} is not an image index")
        self.client = client
        self.repo = repo
        super().__init__(raw, self._load_child)
        if self.digest != digest:
            raise ManifestError(f"{client.host}/{repo}: index bytes hash to {self.digest}, not {digest}")

    def _load_child(self, desc: Descriptor) -> Image | ImageIndex:
        raw, mtype, got = self.client.get_manifest(self.repo, str(desc.digest))
        if mtype in mt.INDEX_TYPES:
            return RemoteIndex(self.client, self.repo, raw, mtype, got)
        return RemoteImage(self.client, self.repo, raw, mtype, got)


def open_registry(
    ref: Reference,
    options: RegistryOptions = RegistryOptions(),  # noqa: B008 - frozen, so sharing it is safe
    platform: Platform | None = None,
) -> Image | ImageIndex:
    """The image or index ``ref`` names; with ``platform`` an index resolves to that platform's image."""
    client = RegistryClient(ref.registry_host, options)
    raw, mtype, digest = client.get_manifest(ref.path, ref.identifier)
    if mtype in mt.INDEX_TYPES:
        index = RemoteIndex(client, ref.path, raw, mtype, digest)
        return index.image_for(platform) if platform is not None else index
    if mtype in mt.MANIFEST_TYPES:
        return RemoteImage(client, ref.path, raw, mtype, digest)
    raise ManifestError(f"{ref}: unsupported manifest media type {quote_for_error(mtype)}")


class _Pusher:
    """Uploads each distinct blob once, in parallel, and remembers what it has scheduled."""

    def __init__(self, client: RegistryClient, repo: str, pool: ThreadPoolExecutor, progress: Progress) -> None:
        self.client = client
        self.repo = repo
        self.pool = pool
        self.progress = progress
        self.futures: list[Future[None]] = []
        self._seen: set[Digest] = set()
        self._lock = threading.Lock()

    def blob(self, digest: Digest, size: int, opener: Callable[[], BinaryIO], mount_from: str | None) -> None:
        with self._lock:
            if digest in self._seen:
                return
            self._seen.add(digest)
        self.futures.append(
            self.pool.submit(self.client.push_blob, self.repo, digest, size, opener, mount_from, self.progress)
        )

    def image_blobs(self, image: Image, target_host: str) -> None:
        mount_from = _mount_source(image, target_host)
        man = image.manifest
        raw_config = image.raw_config
        self.blob(man.config.digest, man.config.size, lambda: io.BytesIO(raw_config), mount_from)
        layers = image.layers()
        if len(layers) != len(man.layers):
            raise ManifestError(f"image {image.digest}: {len(layers)} layers but {len(man.layers)} in its manifest")
        for desc, layer in zip(man.layers, layers, strict=True):
            if desc.digest != layer.digest:
                raise ManifestError(f"image {image.digest}: layer {layer.digest} is not {desc.digest} of its manifest")
            if desc.media_type in _NON_DISTRIBUTABLE and desc.urls:
                continue  # foreign layers stay where their URLs point, as Docker does
            self.blob(desc.digest, desc.size, layer.open_compressed, mount_from)

    def wait(self) -> None:
        done, pending = wait(self.futures, return_when=FIRST_EXCEPTION)
        for f in done:
            exc = f.exception()
            if exc is not None:
                for p in pending:
                    p.cancel()
                raise exc


def _mount_source(image: Image | ImageIndex, target_host: str) -> str | None:
    if isinstance(image, RemoteImage | RemoteIndex) and image.client.host == target_host:
        return image.repo
    return None


def write_registry(
    obj: Image | ImageIndex,
    ref: Reference,
    options: RegistryOptions = RegistryOptions(),  # noqa: B008
    progress: Progress = NO_PROGRESS,
) -> Digest:
    """Push ``obj`` to ``ref``; returns the digest of the top manifest."""
    if ref.digest is not None and ref.digest != obj.digest:
        raise ManifestError(f"{ref}: the image to push is {obj.digest}, not the digest in the reference")
    client = RegistryClient(ref.registry_host, options)
    repo = ref.path
    children: list[Image] = []
    if isinstance(obj, ImageIndex):
        for desc in obj.index.manifests:
            if desc.media_type in mt.INDEX_TYPES:
                raise ManifestError(f"{ref}: nested image indexes are not supported ({desc.digest})")
            children.append(obj.image(desc.digest))
        top_type = obj.index.media_type
    else:
        children.append(obj)
        top_type = obj.media_type
    with ThreadPoolExecutor(max_workers=PUSH_PARALLELISM, thread_name_prefix="giropops-push") as pool:
        pusher = _Pusher(client, repo, pool, progress)
        try:
            for img in children:
                pusher.image_blobs(img, client.host)
        finally:
            pusher.wait()
    if isinstance(obj, ImageIndex):
        for img in children:
            client.put_manifest(repo, str(img.digest), img.raw_manifest, img.media_type)
    target = ref.tag if ref.tag else str(obj.digest)
    digest = client.put_manifest(repo, target, obj.raw_manifest, top_type)
    if digest != obj.digest:
        raise ManifestError(f"{ref}: pushed manifest is {digest}, the image says {obj.digest}")
    progress.note(f"pushed {ref.repository}@{digest}")
    return digest
