"""From an image (or a directory) to an ``SBOM``: layer records, squash, distro, catalogers."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

from giropops.oci.blob import GZIP_MAGIC, ZSTD_MAGIC, DiffIdCheck, decompressed
from giropops.oci.image import Image, Layer, compressed_size
from giropops.oci.memory import BlobLayer, FileSlice
from giropops.progress import NO_PROGRESS, Progress
from giropops.record import replace
from giropops.sbom import distro as distro_mod
from giropops.sbom.cache import LayerCache
from giropops.sbom.catalogers import (
    Cataloger,
    LockfileCataloger,
    default_catalogers,
    directory_catalogers,
    interest_for,
)
from giropops.sbom.filesystem import DirectoryResolver, Filesystem, Interest, LayerRecords, Resolver, read_layer
from giropops.sbom.model import SBOM, Distro, Package, Subject, Unknown
from giropops.sbom.proofs import Where, now_ns, where
from giropops.sbom.tarstream import RegionReader

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from pathlib import Path

MAX_PARALLEL_LAYERS = 4  # and no more than the machine has cores (each layer keeps two threads busy)


def catalog(
    resolver: Resolver, catalogers: Sequence[Cataloger] | None = None
) -> tuple[Distro | None, list[Package], list[Unknown]]:
    found_distro = distro_mod.detect(resolver)
    packages: list[Package] = []
    declared: list[Package] = []
    unknowns: list[Unknown] = []
    for c in catalogers if catalogers is not None else default_catalogers():
        result = c.catalog(resolver, found_distro)
        (declared if isinstance(c, LockfileCataloger) else packages).extend(result.packages)
        unknowns.extend(result.unknowns)
    return found_distro, merge_declared(packages, declared), unknowns


def merge_declared(installed: list[Package], declared: list[Package]) -> list[Package]:
    """A package a lock file declares and that is also installed is one package: the lock file's
    location joins the installed one's (the first of that type, name and version)."""
    index: dict[tuple[str, str, str], int] = {}
    out = list(installed)
    for i, p in enumerate(out):
        index.setdefault((p.type, p.name, p.version), i)
    for p in declared:
        key = (p.type, p.name, p.version)
        if key in index:
            first = out[index[key]]
            out[index[key]] = replace(first, locations=first.locations + p.locations)
        else:
            index[key] = len(out)
            out.append(p)
    return out


def _start(target: Callable[[], object]) -> tuple[Callable[[], None], Callable[[], bool]]:
    """Run ``target`` on a thread of its own; the functions returned wait for it to end (``Thread.join``)
    and tell whether it has (``not Thread.is_alive()``).

    ``_thread``, not ``threading``: importing ``threading`` is a visible part of a cold run on a small image,
    and what is used of it here is a daemon thread and a join.  ``target`` catches what it raises itself
    (both callers hand it to the waiting thread); like a daemon thread, it is not waited for at exit."""
    import _thread

    done = _thread.allocate_lock()
    done.acquire()

    def run() -> None:
        try:
            target()
        finally:
            done.release()

    _thread.start_new_thread(run, ())

    def join() -> None:
        with done:  # released when ``target`` returns (or raises)
            pass

    def ended() -> bool:
        return not done.locked()

    return join, ended


def _local_plain(layer: Layer) -> bool:
    """True for an uncompressed layer whose blob is a region of a local file (an archive member, an
    OCI layout blob): its digest is proven on a thread of its own while it is parsed."""
    return isinstance(layer, BlobLayer) and layer.diff_id == layer.digest and where(layer) is not None


class _Verification:
    """A layer's blob read to its end through ``open_compressed`` (size and digest checked, as every
    read of it is) on a thread of its own; ``wait`` waits for it and raises what it raised.  A blob
    lying in a local file is hashed where it lies (``verify_region``: mapped, one call that releases
    the interpreter lock once, no copy), with the same checks and errors.

    The parse reads the same bytes through ``open_raw`` meanwhile: hashing (the longest part of a
    large uncompressed layer) then overlaps the start-up, the parse and the copy of the bytes instead
    of following each chunk's read.  Nothing parsed is returned, cached or written before the digest
    is proven (``layer_records``).  ``started_ns`` / ``before`` are taken before the first byte is
    read, for ``Proofs.record``."""

    def __init__(self, layer: Layer) -> None:
        self.started_ns, self.before = now_ns(), where(layer)
        self._failed: list[BaseException] = []
        self._join, self._ended = _start(lambda: self._run(layer))

    def _run(self, layer: Layer) -> None:
        try:
            if isinstance(layer, BlobLayer):
                from giropops.oci.blob import verify_region  # the module is imported already

                with layer.open_raw() as raw_stream:
                    region = _file_region(raw_stream)
                    # a region of a local file: hashed where it lies, not copied
                    if region is not None and verify_region(*region, layer.digest, layer.size, f"layer {layer.digest}"):
                        return
            with layer.open_compressed() as stream:
                # straight into this buffer: read, hash, reuse; no larger than the blob (zeroing 4 MiB
                # holds the interpreter lock for milliseconds, which the parse of a small layer waits for)
                buf = bytearray(min(4 << 20, max(layer.size, 64 << 10)))
                readinto: Callable[[bytearray], int] = stream.readinto  # type: ignore[attr-defined]
                while readinto(buf):
                    pass
        except BaseException as exc:  # noqa: BLE001 - raised in the waiting thread
            self._failed.append(exc)

    def done(self) -> bool:
        return self._ended()

    def wait(self) -> None:
        self._join()
        if self._failed:
            raise self._failed[0]


def _file_region(stream: object) -> tuple[int, int, int] | None:
    """(descriptor, offset, length) of the local file region ``stream`` (a blob opened raw, not read
    yet) would read, or None when its bytes are not simply there (a network stream, a pipe...)."""
    import os

    raw: object = getattr(stream, "raw", stream)
    if isinstance(raw, FileSlice):
        return raw.region
    if isinstance(raw, io.FileIO) and raw.tell() == 0:
        return raw.fileno(), 0, os.fstat(raw.fileno()).st_size
    return None


def _read_unverified(layer: BlobLayer, diff_id: str, interest: Interest) -> LayerRecords:
    """``layer``'s records from its raw bytes (``_Verification`` proves them): a plain tar in a local
    file is read where it lies, bodies nobody wants skipped; anything else streams as usual."""
    import os

    with layer.open_raw() as raw_stream:
        region = _file_region(raw_stream)
        if region is not None and not os.pread(region[0], 4, region[1]).startswith((GZIP_MAGIC, ZSTD_MAGIC)):
            return read_layer(RegionReader(*region), diff_id, interest)
    with decompressed(layer.open_raw(), f"layer {layer.digest}") as stream:
        return read_layer(stream, diff_id, interest)


def start_verifications(image: Image, cache: LayerCache | None) -> dict[int, _Verification | None]:
    """Start proving the digests of the local uncompressed layers a cold run will read (by index), as
    soon as the image is known: before the catalogers are imported and the interest is built."""
    out: dict[int, _Verification | None] = {}  # None: looked at, not one of those (not asked again)
    for i, layer in enumerate(image.layers()):
        if cache is None or not cache.proofs.may_serve(layer):
            out[i] = _Verification(layer) if _local_plain(layer) else None
    return out


def layer_records(
    image: Image,
    interest: Interest,
    cache: LayerCache | None,
    progress: Progress = NO_PROGRESS,
    started: dict[int, _Verification | None] | None = None,
    unproven: list[Callable[[], None]] | None = None,
) -> list[LayerRecords]:
    """Each layer's records, from the cache when its diff_id was seen before, else by streaming it once.

    Layers are independent until they are squashed, so uncached ones are read in parallel: reading,
    decompressing and hashing release the GIL.  A layer whose uncompressed content does not hash to
    the diff_id the config claims is refused (``BlobError``), and nothing is cached for it.
    ``started``: the verifications ``start_verifications`` began, by layer index.  ``unproven``: a
    layer whose digest is still being proven when its parse ends is returned at once, and a function
    that waits for the proof (raising its error) and then caches the records is appended; the caller
    calls them all before it returns or writes anything derived from the records.
    """
    fingerprint = interest.fingerprint
    layers = list(image.layers())
    early = dict(started or {})
    # A layer whose bytes are in a local file is taken from the cache only while that file is proven
    # unchanged since its bytes were hashed (``giropops.sbom.proofs``); otherwise it is read again.
    results: list[LayerRecords | None] = [
        cache.load(str(layer.diff_id), fingerprint)
        if cache is not None and cache.proofs.may_serve(layer) else None
        for layer in layers
    ]
    todo = [(i, layer) for i, layer in enumerate(layers) if results[i] is None]
    # Largest first: the threads finish together instead of one of them starting the base layer last.
    todo.sort(key=lambda item: -item[1].size)
    if not todo:
        return [r for r in results if r is not None]
    import _thread  # only when a layer is read: a warm run needs no thread (``_start``: not threading)

    lock = _thread.allocate_lock()

    def one(i: int, layer: Layer) -> LayerRecords:
        diff_id = str(layer.diff_id)
        key = f"sbom:{diff_id}"
        with lock:
            progress.start(key, f"cataloging layer {layer.diff_id.short}", layer.size)
            known = i in early
            proving = early.pop(i, None)
        if not known and _local_plain(layer):
            proving = _Verification(layer)
        if proving is not None and isinstance(layer, BlobLayer):
            # its digest (= diff_id) is proven on another thread; the parse reads the same bytes
            started, before = proving.started_ns, proving.before
            try:
                rec = _read_unverified(layer, diff_id, interest)
            except BaseException:
                proving.wait()  # a blob that is not the one named (truncated, altered) says so, as when read verified
                raise
            if unproven is not None:  # the caller waits (and caches) before it returns anything
                with lock:
                    progress.finish(key)
                unproven.append(lambda: finish(proving, rec, layer, before, started))
                return rec
            proving.wait()
        else:
            started, before = now_ns(), where(layer) if cache is not None else None
            # An uncompressed blob is its own diff_id and is verified as the blob; any other layer's
            # claimed diff_id is proven while it is parsed, before its records may be cached under it.
            check = DiffIdCheck(layer.digest, layer.diff_id) if layer.diff_id != layer.digest else None
            with layer.open_uncompressed() as stream:
                rec = read_layer(stream, diff_id, interest, check=check)
        with lock:
            progress.finish(key)
        if cache is not None:
            cache.store(rec, fingerprint)
            cache.proofs.record(layer, before, started)
        return rec

    def finish(proving: _Verification, rec: LayerRecords, layer: Layer, before: Where | None, started: int) -> None:
        from giropops.sbom.cache import encode as encode_record  # imported with LayerCache already

        # the record is encoded while the digest may still be being proven; written only once it is
        encoded = None if cache is None or proving.done() else encode_record(rec)
        proving.wait()
        if cache is not None:
            cache.store(rec, fingerprint, encoded)
            cache.proofs.record(layer, before, started)

    if len(todo) == 1:
        i, layer = todo[0]
        results[i] = one(i, layer)
        return [r for r in results if r is not None]
    # Plain threads rather than concurrent.futures: its import (logging...) is a visible part of a
    # run on a small image.
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                if not todo or errors:
                    return
                i, layer = todo.pop(0)
            try:
                results[i] = one(i, layer)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread below
                with lock:
                    errors.append(exc)
                return

    import os

    width = max(1, min(MAX_PARALLEL_LAYERS, os.cpu_count() or 1, len(todo)))
    joins = [_start(worker)[0] for _ in range(width)]
    for join in joins:
        join()
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]


def subject_for(image: Image, name: str, platform: str | None = None) -> Subject:
    return Subject(
        name=name,
        digest=str(image.digest),
        platform=platform if platform is not None else str(image.config.platform),
        size=compressed_size(image),
        diff_ids=tuple(str(d) for d in image.config.diff_ids),
    )


def generate(
    image: Image,
    subject: Subject,
    *,
    cache: LayerCache | None = None,
    use_cache: bool = True,
    catalogers: Sequence[Cataloger] | None = None,
    progress: Progress = NO_PROGRESS,
    meanwhile: Callable[[], object] | None = None,
) -> SBOM:
    """The SBOM of an image: layers squashed (whiteouts applied), then every cataloger run on the result.

    ``meanwhile`` is called once the catalogers are done and before the last digests are waited for: work
    of the caller's that needs nothing of this SBOM (``giropops sbom`` loads its encoder and the SPDX license
    list) is then done while the hashing threads finish, instead of after them.  What it raises is raised
    once every digest is proven (a layer that is not the one named says so first)."""
    if use_cache and cache is None:
        cache = LayerCache()
    started = start_verifications(image, cache if use_cache else None)
    cats = tuple(catalogers) if catalogers is not None else default_catalogers()
    interest = interest_for(cats)
    unproven: list[Callable[[], None]] = []
    records = layer_records(image, interest, cache if use_cache else None, progress, started, unproven)
    # The squash and the catalogers run while the last digests are proven: in memory only (they take
    # hostile input anyway), and nothing is returned before every proof is in.
    try:
        found_distro, packages, unknowns = catalog(Filesystem(records), cats)
        if meanwhile is not None:
            meanwhile()
    except BaseException:
        for prove in unproven:
            prove()  # a layer that is not the one named says so rather than what choked on it
        raise
    for prove in unproven:
        prove()
    return SBOM(subject, found_distro, tuple(packages), tuple(unknowns)).sorted()


def generate_from_directory(
    root: Path, subject: Subject | None = None, catalogers: Sequence[Cataloger] | None = None
) -> SBOM:
    cats = tuple(catalogers) if catalogers is not None else directory_catalogers()
    resolver = DirectoryResolver(root, interest_for(cats))
    found_distro, packages, unknowns = catalog(resolver, cats)
    subj = subject if subject is not None else Subject(name=f"fs://{root}")
    return SBOM(subj, found_distro, tuple(packages), tuple(unknowns)).sorted()
