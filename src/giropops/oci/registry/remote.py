"""Images in a registry as lazy ``Image`` / ``ImageIndex`` objects, and pushing any image to one.

Reading fetches the manifest up front (its media type decides what we have) and
everything else on demand: the config on first use, each layer only when opened (a
pull to an archive or layout opens ``--jobs`` of them at once: ``giropops.oci.copypool``).

Writing goes bottom-up so a registry never sees a dangling reference: all blobs
(config and layers, in parallel on a small bounded pool, each skipped when the
registry already has it, mounted across repositories when the source or the
blob-info cache names another repository of the same registry), then each child
manifest by digest, then the top manifest under the tag.

Uncompressed layers are pushed gzip-compressed unless told otherwise; the
blob-info cache (``blobinfo.py``) says which compressed blob a layer became
before, so a layer the registry holds already costs a HEAD or a mount, not a
read and a compression.  The manifests pushed then name the compressed blobs.
"""

from __future__ import annotations

import _thread
import io
import json
from collections.abc import Callable, Sequence
from functools import cached_property

from giropops.errors import ManifestError, quote_for_error
from giropops.oci import mediatypes as mt
from giropops.oci.blob import decompressed, read_verified
from giropops.oci.copypool import Job, Pool, wait_first_failure
from giropops.oci.image import Image, ImageIndex, Layer
from giropops.oci.memory import (
    TAR_LAYER_TYPES,
    UNCOMPRESSED_LAYER_TYPES,
    DescribedLayer,
    StaticIndex,
    StoredImage,
)
from giropops.oci.model import Descriptor, Digest, ImageConfig, Index, Manifest, Platform, canonical_json
from giropops.oci.reference import Reference
from giropops.oci.registry.blobinfo import BlobInfoCache, BlobLocation
from giropops.oci.registry.client import RegistryClient, RegistryOptions
from giropops.progress import NO_PROGRESS, Progress

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from typing import Any, BinaryIO

#: Blobs uploaded at once by default (``write_registry(jobs=...)``, ``giropops copy --jobs``); a couple of
#: streams saturate a link, more only add memory and sockets.
PUSH_PARALLELISM = 4

_NON_DISTRIBUTABLE = frozenset({mt.DOCKER_LAYER_FOREIGN_GZIP, mt.OCI_LAYER_ND_GZIP})


class RemoteLayer(DescribedLayer):
    def __init__(self, client: RegistryClient, repo: str, desc: Descriptor, diff_id: Digest | None) -> None:
        self._client = client
        self._repo = repo
        self._descriptor = desc
        self._diff_id = diff_id

    @property
    def diff_id(self) -> Digest:
        if self._diff_id is None:
            raise ManifestError(f"layer {self._descriptor.digest}: the image config lists no diff_id for it")
        return self._diff_id

    def open_compressed(self) -> BinaryIO:
        return self._client.open_blob(self._repo, self._descriptor.digest, self._descriptor.size)

    def open_uncompressed(self) -> BinaryIO:
        return decompressed(self.open_compressed(), f"layer {self._descriptor.digest}")


class RemoteImage(StoredImage):
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
    options: RegistryOptions = RegistryOptions(),
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


#: Compressed forms of one layer tried against the destination before compressing it ourselves.
MAX_REUSE_TRIES = 4

_GZIP_LAYER_TYPES = frozenset({mt.OCI_LAYER_GZIP, mt.DOCKER_LAYER_GZIP})


def _gzip_type_for(manifest_type: str) -> str:
    return mt.DOCKER_LAYER_GZIP if manifest_type == mt.DOCKER_MANIFEST else mt.OCI_LAYER_GZIP


class _Pusher:
    """Uploads each distinct blob once, in parallel, and remembers what it has scheduled.

    With ``compress``, an uncompressed layer is pushed gzip-compressed (as Docker and skopeo
    do); a compressed form the blob-info cache knows is tried first (HEAD in the destination,
    mount from another repository of the same registry), so a layer pushed before is neither
    read nor compressed again.  ``layer`` futures give the descriptor the pushed manifest uses.
    """

    def __init__(
        self, client: RegistryClient, repo: str, pool: Pool, progress: Progress,
        cache: BlobInfoCache | None = None, compress: bool = False,
    ) -> None:
        self.client = client
        self.repo = repo
        self.pool = pool
        self.progress = progress
        self.cache = cache
        self.compress = compress
        self.futures: list[Job[Any]] = []
        self._seen: set[Digest] = set()
        self._plain: list[tuple[Digest, int, Callable[[], BinaryIO], str | None, str]] = []
        self._layers: dict[tuple[Digest, str], Job[Descriptor]] = {}
        self._lock = _thread.allocate_lock()
        self._known: dict[Digest, list[BlobLocation]] = {}
        self.learned: list[BlobLocation] = []
        self.contradicted: list[BlobLocation] = []

    # -- the cache's view ------------------------------------------------------------------------

    def consult(self, images: Sequence[Image]) -> None:
        """One cache query for every layer of every image to push (by diff_id and by stored digest)."""
        if self.cache is None:
            return
        diff_ids: set[Digest] = set()
        digests: set[Digest] = set()
        for img in images:
            digests.add(img.manifest.config.digest)
            for desc, diff_id in zip(img.manifest.layers, img.config.diff_ids, strict=False):
                if desc.media_type in TAR_LAYER_TYPES:
                    diff_ids.add(diff_id)
                    digests.add(desc.digest)
        for loc in self.cache.lookup(diff_ids, digests, near=(self.client.host, self.repo)):
            self._known.setdefault(loc.diff_id, []).append(loc)
            if loc.digest != loc.diff_id:
                self._known.setdefault(loc.digest, []).append(loc)

    def _learn(self, loc: BlobLocation) -> None:
        with self._lock:
            self.learned.append(loc)

    def _contradicted(self, loc: BlobLocation) -> None:
        with self._lock:
            self.contradicted.append(loc)

    def here(self, diff_id: Digest, digest: Digest, media_type: str, size: int) -> BlobLocation:
        return BlobLocation(diff_id, digest, media_type, size, self.client.host, self.repo)

    # -- scheduling --------------------------------------------------------------------------------

    def blob(
        self, digest: Digest, size: int, opener: Callable[[], BinaryIO], mount_from: str | None, media_type: str
    ) -> None:
        """Schedule a blob that is not a layer (a config) for ``plain_blobs``."""
        with self._lock:
            if digest in self._seen:
                return
            self._seen.add(digest)
        self._plain.append((digest, size, opener, mount_from, media_type))

    def plain_blobs(self) -> None:
        """The configs, once the layers are on their way: each one the registry has, or mounts, is settled
        here with that one request, beside the layers' (a config is no layer transfer: ``jobs`` bounds
        those); one it must be sent goes to the pool like a layer.  A warm push then waits for one
        request per layer, not for a config queued behind the layers."""
        for digest, size, opener, mount_from, media_type in self._plain:
            mount_from = mount_from or self._mount_source_for(digest)
            mount = mount_from is not None and mount_from != self.repo
            key = str(digest)
            if mount and self.client.mount_blob(self.repo, digest, mount_from or ""):
                how = f"mounted from {mount_from}"
            elif not mount and self.client.blob_size(self.repo, digest) in (size, -1):
                how = "already exists"
            else:  # not there: sent from the pool (it asks once more first, then uploads)
                self.futures.append(self.pool.submit(self._push_plain, digest, size, opener, None, media_type))
                continue
            self.progress.start(key, digest.short, size)
            self.progress.finish(key, how)
            self._learn(self.here(digest, digest, media_type, size))
        self._plain.clear()

    def _mount_source_for(self, digest: Digest) -> str | None:
        """Another repository of this registry that the cache saw ``digest`` in."""
        for loc in self._known.get(digest, ()):
            if loc.digest == digest and loc.registry == self.client.host and loc.repository != self.repo:
                return loc.repository
        return None

    def _push_plain(
        self, digest: Digest, size: int, opener: Callable[[], BinaryIO], mount_from: str | None, media_type: str
    ) -> None:
        """A blob that is not a layer (the config), pushed as is (``plain_blobs`` tried a mount already)."""
        self.client.push_blob(self.repo, digest, size, opener, mount_from, self.progress)
        self._learn(self.here(digest, digest, media_type, size))

    def image_blobs(self, image: Image, target_host: str) -> list[Job[Descriptor] | None]:
        """Schedule the config and the layers; one future per manifest layer (None: left where it is)."""
        mount_from = _mount_source(image, target_host)
        man = image.manifest
        raw_config = image.raw_config
        self.blob(man.config.digest, man.config.size, lambda: io.BytesIO(raw_config), mount_from, man.config.media_type)
        layers = image.layers()
        if len(layers) != len(man.layers):
            raise ManifestError(f"image {image.digest}: {len(layers)} layers but {len(man.layers)} in its manifest")
        out: list[Job[Descriptor] | None] = []
        for desc, layer in zip(man.layers, layers, strict=True):
            if desc.digest != layer.digest:
                raise ManifestError(f"image {image.digest}: layer {layer.digest} is not {desc.digest} of its manifest")
            if desc.media_type in _NON_DISTRIBUTABLE and desc.urls:
                out.append(None)  # foreign layers stay where their URLs point, as Docker does
                continue
            compress = self.compress and desc.media_type in UNCOMPRESSED_LAYER_TYPES
            target = _gzip_type_for(man.media_type) if compress else desc.media_type
            key = (desc.digest, target)
            with self._lock:
                fut = self._layers.get(key)
                if fut is None:
                    if compress:
                        fut = self.pool.submit(self._push_compressed, desc, layer, target)
                    else:
                        fut = self.pool.submit(self._push_stored, desc, layer, mount_from)
                    self._layers[key] = fut
                    self.futures.append(fut)
            out.append(fut)
        return out

    # -- one layer -------------------------------------------------------------------------------

    def _push_stored(self, desc: Descriptor, layer: Layer, mount_from: str | None) -> Descriptor:
        """The blob as it is; mounted from another repository of this registry when the cache knows one."""
        # push_blob HEADs first, and uploads when the mount does not happen.
        mount_from = mount_from or self._mount_source_for(desc.digest)
        self.client.push_blob(self.repo, desc.digest, desc.size, layer.open_compressed, mount_from, self.progress)
        if desc.media_type in TAR_LAYER_TYPES and desc.media_type not in UNCOMPRESSED_LAYER_TYPES:
            diff_id = _diff_id_of(layer)
            if diff_id is not None:
                self._learn(self.here(diff_id, desc.digest, desc.media_type, desc.size))
        return desc

    def _push_compressed(self, desc: Descriptor, layer: Layer, target: str) -> Descriptor:
        """A gzip form of an uncompressed layer: one the registry has already, else compressed here once."""
        diff_id = desc.digest  # the blob as stored is the uncompressed tar
        key = str(desc.digest)
        reused = self._reuse(diff_id, target)
        if reused is not None:
            loc, how = reused
            self.progress.start(key, desc.digest.short, loc.size)
            self.progress.finish(key, how)
            return Descriptor(target, loc.digest, loc.size, desc.annotations)
        from giropops.oci.copygzip import gzip_for_push  # compressing only

        self.progress.note(f"compressing layer {desc.digest.short}")
        # One pass: the stream checks its own digest (the diff_id) at EOF, raising BlobError on a mismatch.
        with layer.open_compressed() as src:
            opener, digest, size = gzip_for_push(src)
        self.client.push_blob(self.repo, digest, size, opener, None, self.progress)
        self._learn(self.here(diff_id, digest, target, size))
        return Descriptor(target, digest, size, desc.annotations)

    def _reuse(self, diff_id: Digest, target: str) -> tuple[BlobLocation, str] | None:
        """A known gzip form of ``diff_id`` that the destination repository has (or now has, mounted)."""
        host, repo = self.client.host, self.repo
        forms = [
            loc for loc in self._known.get(diff_id, ())
            if loc.diff_id == diff_id and loc.media_type in _GZIP_LAYER_TYPES and loc.digest != diff_id
        ]
        # Here first (a HEAD), then other repositories of this registry (a mount), then other registries
        # (the same digest may have been pushed here by someone else: a HEAD).
        forms.sort(key=lambda loc: 0 if (loc.registry, loc.repository) == (host, repo) else
                   1 if loc.registry == host else 2)
        headed: set[Digest] = set()
        tries = 0
        for loc in forms:
            if tries >= MAX_REUSE_TRIES:
                break
            mount = loc.registry == host and loc.repository != repo
            if not mount and loc.digest in headed:
                continue
            tries += 1
            how = "already exists"
            if mount:
                if not self.client.mount_blob(repo, loc.digest, loc.repository):
                    self._contradicted(loc)
                    continue
                how = f"mounted from {loc.repository}"
            headed.add(loc.digest)
            size = self.client.blob_size(repo, loc.digest)
            if size is None or size != loc.size:
                # Absent, or not the size recorded: the entry is wrong; upload for real.
                self._contradicted(loc)
                continue
            here = self.here(diff_id, loc.digest, target, size)
            self._learn(here)
            return here, how
        return None

    def wait(self) -> None:
        done, pending = wait_first_failure(self.futures)
        for f in done:
            exc = f.exception()
            if exc is not None:
                for p in pending:
                    p.cancel()
                raise exc

    def save(self) -> None:
        """Tell the cache what the registry contradicted and what it holds now."""
        if self.cache is not None:
            self.cache.update(add=self.learned, forget=self.contradicted)


def _diff_id_of(layer: Layer) -> Digest | None:
    try:
        return layer.diff_id
    except ManifestError:  # a registry image whose config lists no diff_ids
        return None


def _with_layers(image: Image, layers: Sequence[Descriptor | None]) -> tuple[bytes, Digest]:
    """The image's manifest with the pushed layer descriptors (its raw bytes when nothing changed)."""
    man = image.manifest
    changed = {
        i: d for i, (d, old) in enumerate(zip(layers, man.layers, strict=True))
        if d is not None and (d.digest, d.size, d.media_type) != (old.digest, old.size, old.media_type)
    }
    if not changed:
        return image.raw_manifest, image.digest
    doc = json.loads(image.raw_manifest)
    for i, d in changed.items():
        entry = doc["layers"][i]
        entry["mediaType"], entry["digest"], entry["size"] = d.media_type, str(d.digest), d.size
    raw = canonical_json(doc)
    Manifest.from_bytes(raw)  # still a valid manifest
    return raw, Digest.of(raw)


def _with_children(index: ImageIndex, children: dict[Digest, tuple[bytes, Digest]]) -> tuple[bytes, Digest]:
    """The index pointing at its children as pushed."""
    if all(old == new for old, (_raw, new) in children.items()):
        return index.raw_manifest, index.digest
    doc = json.loads(index.raw_manifest)
    for entry in doc["manifests"]:
        old = Digest.parse(entry["digest"])
        if old in children and children[old][1] != old:
            raw, new = children[old]
            entry["digest"], entry["size"] = str(new), len(raw)
    raw = canonical_json(doc)
    Index.from_bytes(raw)
    return raw, Digest.of(raw)


def _mount_source(image: Image | ImageIndex, target_host: str) -> str | None:
    if isinstance(image, RemoteImage | RemoteIndex) and image.client.host == target_host:
        return image.repo
    return None


def write_registry(
    obj: Image | ImageIndex,
    ref: Reference,
    options: RegistryOptions = RegistryOptions(),
    progress: Progress = NO_PROGRESS,
    *,
    blob_cache: BlobInfoCache | None = None,
    compress: bool = True,
    jobs: int = PUSH_PARALLELISM,
    pushed_manifest: list[tuple[bytes, str]] | None = None,
) -> Digest:
    """Push ``obj`` to ``ref``; returns the digest of the top manifest as pushed.

    With ``compress`` (the default, as Docker and skopeo push) uncompressed tar layers go up
    gzip-compressed, so the pushed manifest (and an index above it) differs from ``obj``'s:
    layer descriptors name the compressed blobs, the config (its diff_ids) is unchanged.
    A reference with a digest pins the manifest, so nothing is rewritten then.
    ``blob_cache`` remembers which compressed blob each layer became, and where, so a layer
    pushed before costs a HEAD (or a mount) instead of a read and a compression.
    At most ``jobs`` blobs are uploaded at once.  ``pushed_manifest`` receives the top manifest's bytes
    and media type as they were PUT (a push replay record is made of them: ``replay.py``).
    """
    if ref.digest is not None and ref.digest != obj.digest:
        raise ManifestError(f"{ref}: the image to push is {obj.digest}, not the digest in the reference")
    compress = compress and ref.digest is None
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
    pushed: dict[Digest, tuple[bytes, Digest]] = {}
    with Pool(max(1, jobs), "giropops-push") as pool:
        pusher = _Pusher(client, repo, pool, progress, blob_cache, compress)
        per_image: list[tuple[Image, list[Job[Descriptor] | None]]] = []
        try:
            pusher.consult(children)
            for img in children:
                per_image.append((img, pusher.image_blobs(img, client.host)))
            pusher.plain_blobs()
        except BaseException:
            try:
                pusher.wait()
            finally:
                pusher.save()
            raise
        try:
            pusher.wait()
        except BaseException:
            pusher.save()
            raise
        # Every blob is there: what the registry said goes to the cache on a worker while the
        # manifests go up (both mostly wait: on the disk, on the registry); leaving the pool waits for it.
        saved = pool.submit(pusher.save)
        for img, futures in per_image:
            pushed[img.digest] = _with_layers(img, [f.result() if f is not None else None for f in futures])
        if isinstance(obj, ImageIndex):
            for img in children:
                raw, digest = pushed[img.digest]
                client.put_manifest(repo, str(digest), raw, img.media_type)
            top_raw, expected = _with_children(obj, pushed)
        else:
            top_raw, expected = pushed[obj.digest]
        target = ref.tag if ref.tag else str(expected)
        digest = client.put_manifest(repo, target, top_raw, top_type)
        saved.result()
    if digest != expected:
        raise ManifestError(f"{ref}: pushed manifest is {digest}, expected {expected}")
    if pushed_manifest is not None:
        pushed_manifest.append((top_raw, top_type))
    progress.note(f"pushed {ref.repository}@{digest}")
    return digest
