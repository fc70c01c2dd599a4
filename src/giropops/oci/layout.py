"""OCI image layout directories (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``).

Reading goes through a ``BlobStore`` so that the same code serves a directory
and a tarball of one (``archive.py``).  Every document is read with a size
limit and verified; layers stay lazy.

Writing is all-or-nothing: a new layout is staged in a temporary directory next
to the destination and renamed into place; appending to an existing layout
writes each missing blob through a temporary file + rename, rewrites
``index.json`` last (temp + rename) and removes the blobs it added if anything
fails.  An existing blob is reused (deduplicated by digest) only once its size and
digest are checked; a corrupt one is rewritten.  A ``blobs`` or ``blobs/<alg>``
directory that is a symbolic link, or leads out of the layout, is refused, as
the reader refuses it.
Signature storage edits a layout in place with ``put_blob`` and ``edit_index`` (the same
blob helper, the same checks, the same atomic ``index.json`` rewrite).

Selecting an image in a layout (``oci-dir://DIR:NAME`` or ``oci-dir://DIR@DIGEST``):
``NAME`` matches the ``org.opencontainers.image.ref.name`` annotation of an
``index.json`` entry (or ``io.containerd.image.name``); ``DIGEST`` any entry or
blob.  Without either, a layout with one entry gives that entry, and a layout
with several gives ``index.json`` itself as an index.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping, Sequence

from giropops.errors import ArchiveError, BlobError, ImageReferenceError, ManifestError
from giropops.fileio import atomic_write
from giropops.oci import mediatypes as mt
from giropops.oci.blob import read_verified
from giropops.oci.image import Image, ImageIndex
from giropops.oci.limits import check_disk_budget
from giropops.oci.memory import (
    BlobLayer,
    StaticImage,
    StaticIndex,
    children_of,
    descriptor_of,
    layer_diff_ids,
)
from giropops.oci.model import (
    Descriptor,
    Digest,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    canonical_json,
    parse_json_document,
    sniff_media_type,
)
from giropops.progress import NO_PROGRESS, Progress
from giropops.record import record, replace
from giropops.runtime_typing import Protocol
from giropops.tmpfiles import mkstemp

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:  # the copy pool is for writing: reading a layout or an archive does not import it
    from pathlib import Path
    from typing import BinaryIO

    from giropops.oci.copypool import Cancel, Task

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
LAYOUT_FILE = "oci-layout"
LAYOUT_VERSION = "1.0.0"
_CHUNK = 1 << 20


class BlobStore(Protocol):
    def open_blob(self, digest: Digest) -> BinaryIO:
        """The raw (unverified) bytes of a blob; BlobError if it is not there."""

    def has_blob(self, digest: Digest) -> bool: ...

    def describe(self) -> str:
        """What to call this store in error messages."""


def blob_path(root: Path, digest: Digest) -> Path:
    return root / "blobs" / digest.algorithm / digest.hex


class DirStore:
    """Blobs of a layout directory; a blob that is a link, or resolves outside the layout, is refused."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real = root.resolve()

    def describe(self) -> str:
        return f"layout {self.root}"

    def _path(self, digest: Digest) -> Path:
        path = blob_path(self.root, digest)
        real = path.resolve()
        if self._real not in real.parents:
            raise ArchiveError(f"{self.describe()}: blob {digest} resolves outside the layout")
        return path

    def has_blob(self, digest: Digest) -> bool:
        return self._path(digest).is_file()

    def open_blob(self, digest: Digest) -> BinaryIO:
        path = self._path(digest)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise BlobError(f"{self.describe()}: blob {digest} is missing") from None
        except OSError as exc:
            raise ArchiveError(f"{self.describe()}: cannot open blob {digest}: {exc.strerror}") from exc
        return os.fdopen(fd, "rb", buffering=_CHUNK)


# --- reading ------------------------------------------------------------------------------------


def read_document(store: BlobStore, desc: Descriptor, limit: int, what: str) -> bytes:
    return read_verified(store.open_blob(desc.digest), desc.digest, desc.size, limit, what)


def _opener(store: BlobStore, digest: Digest) -> Callable[[], BinaryIO]:
    return lambda: store.open_blob(digest)


def load_image(store: BlobStore, desc: Descriptor) -> StaticImage:
    raw = read_document(store, desc, mt.MAX_MANIFEST_BYTES, "manifest")
    manifest = Manifest.from_bytes(raw)
    raw_config = read_document(store, manifest.config, mt.MAX_CONFIG_BYTES, "config")
    config = ImageConfig.from_bytes(raw_config)
    diff_ids = layer_diff_ids(manifest, config)
    layers = [BlobLayer(d, diff, _opener(store, d.digest)) for d, diff in zip(manifest.layers, diff_ids, strict=True)]
    return StaticImage(raw, raw_config, layers)


def load_index(store: BlobStore, desc: Descriptor) -> StaticIndex:
    raw = read_document(store, desc, mt.MAX_MANIFEST_BYTES, "index")
    return StaticIndex(raw, lambda d: load_descriptor(store, d))


def load_descriptor(store: BlobStore, desc: Descriptor) -> Image | ImageIndex:
    if desc.media_type in mt.MANIFEST_TYPES:
        return load_image(store, desc)
    if desc.media_type in mt.INDEX_TYPES:
        return load_index(store, desc)
    raise ManifestError(f"{store.describe()}: {desc.digest} has unsupported media type {desc.media_type!r}")


def load_by_digest(store: BlobStore, digest: Digest) -> Image | ImageIndex:
    """A manifest or index known only by digest: its media type is read from the document."""
    if not store.has_blob(digest):
        raise ArchiveError(f"{store.describe()}: no manifest or blob {digest}")
    with store.open_blob(digest) as f:
        raw = f.read(mt.MAX_MANIFEST_BYTES + 1)
    obj = parse_json_document(raw, f"document {digest}", mt.MAX_MANIFEST_BYTES)
    media = sniff_media_type(obj)
    return load_descriptor(store, Descriptor(media, digest, len(raw)))


def check_layout_file(raw: bytes, where: str) -> None:
    obj = parse_json_document(raw, f"{where}: oci-layout", 4096)
    if obj.get("imageLayoutVersion") != LAYOUT_VERSION:
        raise ArchiveError(f"{where}: unsupported imageLayoutVersion {obj.get('imageLayoutVersion')!r}")


def entry_names(desc: Descriptor) -> list[str]:
    return [n for n in (desc.annotations.get(REF_NAME), desc.annotations.get(CONTAINERD_NAME)) if n]


def _name_matches(desc: Descriptor, name: str) -> bool:
    names = entry_names(desc)
    if name in names:
        return True
    # "app:1" also finds "docker.io/library/app:1" (what Docker writes as io.containerd.image.name).
    try:
        from giropops.oci.reference import Reference  # a named image only: most reads name none

        want = Reference.parse(name)
    except ImageReferenceError:
        return False
    for n in names:
        try:
            if Reference.parse(n) == want:
                return True
        except ImageReferenceError:
            continue
    return False


def select_entry(
    store: BlobStore, top: StaticIndex, name: str | None, digest: Digest | None
) -> Image | ImageIndex:
    """Apply the selection rules in the module docstring to a layout's ``index.json``."""
    entries = top.index.manifests
    if digest is not None:
        for d in entries:
            if d.digest == digest:
                return top.child(d)
        return load_by_digest(store, digest)
    if name is not None:
        found = [d for d in entries if _name_matches(d, name)]
        if not found:
            have = sorted({n for d in entries for n in entry_names(d)})
            raise ArchiveError(
                f"{store.describe()}: no image named {name!r} (names: {', '.join(have) or 'none'})"
            )
        return top.child(found[-1])
    if len(entries) == 1:
        return top.child(entries[0])
    if not entries:
        raise ArchiveError(f"{store.describe()}: index.json lists no images")
    return top


class Layout:
    """A layout directory opened for reading."""

    def __init__(self, root: Path) -> None:
        self.root = root
        if not root.is_dir():
            raise ArchiveError(f"{root} is not a directory")
        self.store = DirStore(root)
        try:
            check_layout_file(_read_small(root / LAYOUT_FILE, 4096), str(root))
            raw_index = _read_small(root / "index.json", mt.MAX_MANIFEST_BYTES)
        except FileNotFoundError as exc:
            from pathlib import Path  # the module does not import it: reading an archive needs none of it

            raise ArchiveError(f"{root} is not an OCI image layout: {Path(exc.filename).name} is missing") from None
        except OSError as exc:  # e.g. ELOOP: index.json is a symlink
            from pathlib import Path

            raise ArchiveError(f"{root}: cannot read {Path(exc.filename or '?').name}: {exc.strerror}") from exc
        try:
            self.top = StaticIndex(raw_index, lambda d: load_descriptor(self.store, d))
        except ManifestError as exc:
            raise ArchiveError(f"{root}/index.json: {exc}") from exc

    def select(self, name: str | None = None, digest: Digest | None = None) -> Image | ImageIndex:
        return select_entry(self.store, self.top, name, digest)


def _read_small(path: Path, limit: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ArchiveError(f"{path} is more than {limit} bytes")
    return data


def open_layout(root: Path, name: str | None = None, digest: Digest | None = None) -> Image | ImageIndex:
    return Layout(root).select(name, digest)


def open_layout_image(
    root: Path, name: str | None = None, digest: Digest | None = None, platform: Platform | None = None
) -> Image:
    obj = open_layout(root, name, digest)
    if isinstance(obj, Image):
        return obj
    return obj.image_for(platform or Platform.host())


# --- planning what to write ---------------------------------------------------------------------


@record
class BlobSource:
    """One blob to write: small documents as bytes, layers as a verified stream opener."""

    digest: Digest
    size: int
    data: bytes | None
    opener: Callable[[], BinaryIO] | None
    label: str

    def open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.opener is None:
            raise BlobError(f"{self.label} {self.digest}: nothing to read")
        return self.opener()


def _doc(data: bytes, digest: Digest, label: str) -> BlobSource:
    if Digest.of(data, digest.algorithm) != digest:
        raise BlobError(f"{label} {digest}: content does not match its digest")
    return BlobSource(digest, len(data), data, None, label)


def plan_blobs(obj: Image | ImageIndex) -> list[BlobSource]:
    """Every blob of ``obj``, each once, children before the documents that point at them."""
    out: dict[Digest, BlobSource] = {}

    def visit(o: Image | ImageIndex) -> None:
        if isinstance(o, Image):
            for layer in o.layers():
                if layer.digest not in out:
                    out[layer.digest] = BlobSource(layer.digest, layer.size, None, layer.open_compressed,
                                                   f"layer {layer.digest.short}")
            cfg = o.manifest.config
            out.setdefault(cfg.digest, _doc(o.raw_config, cfg.digest, "config"))
            out.setdefault(o.digest, _doc(o.raw_manifest, o.digest, "manifest"))
            return
        for _desc, child in children_of(o):
            visit(child)
        out.setdefault(o.digest, _doc(o.raw_manifest, o.digest, "index"))

    visit(obj)
    return list(out.values())


def copy_blob(src: BlobSource, dst: BinaryIO, progress: Progress, cancel: Cancel | None = None) -> None:
    """Copy to EOF (so the verifying reader checks the digest), reporting progress."""
    if src.data is not None:  # manifests and configs: too small to be worth a progress line
        dst.write(src.data)
        return
    from giropops.oci.copypool import copy_into

    copy_into(src, lambda chunk, _pos: dst.write(chunk), progress, cancel)


# --- writing ------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _intact(path: Path, digest: Digest, size: int) -> bool | None:
    """None when no regular file is at ``path``; else whether it holds exactly the blob ``digest``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None  # missing, or a symbolic link: (re)written through a temporary file + rename
    with os.fdopen(fd, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        import stat  # an existing blob only

        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size != size:
            return False
        h = digest.hasher()
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return bool(h.hexdigest() == digest.hex)


def _blob_dir(root: Path, digest: Digest) -> Path:
    """``blobs/<algorithm>`` of the layout at ``root``, created if needed, refused if it leads out of it.

    A ``blobs`` or ``blobs/<algorithm>`` that is a symbolic link (or not a directory) would have the
    writer put blobs elsewhere on the machine: the reader refuses such a layout, and so does the writer.
    """
    real_root = root.resolve()
    for d in (root / "blobs", root / "blobs" / digest.algorithm):
        rel = d.relative_to(root)
        if d.is_symlink():
            raise ArchiveError(f"layout {root}: {rel} is a symbolic link; refusing to write through it")
        if not d.exists():
            d.mkdir(exist_ok=True)  # another thread of the same write may have just made it
        elif not d.is_dir():
            raise ArchiveError(f"layout {root}: {rel} is not a directory")
        if d.resolve() != real_root / rel:
            raise ArchiveError(f"layout {root}: {rel} resolves outside the layout")
    return root / "blobs" / digest.algorithm


def _put_blob(root: Path, src: BlobSource, progress: Progress, cancel: Cancel | None = None) -> bool:
    """Write one blob unless an intact copy is present; True when it was not there before.

    A blob already in the layout is only reused once its size and digest are checked: a corrupt
    (or truncated) one is rewritten, never trusted.
    """
    path = _blob_dir(root, src.digest) / src.digest.hex
    intact = _intact(path, src.digest, src.size)
    if intact:
        if src.data is None:
            progress.note(f"{src.label}: already present")
        return False
    if intact is False:
        progress.note(f"{src.label}: the copy in the layout is corrupt; rewriting it")
    fd, tmp = mkstemp(path.parent, f".{src.digest.hex[:16]}.", ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            copy_blob(src, f, progress, cancel)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return intact is None


def index_entry(obj: Image | ImageIndex, name: str | None) -> Descriptor:
    d = descriptor_of(obj)
    ann = {REF_NAME: name} if name else {}
    return Descriptor(d.media_type, d.digest, d.size, annotations=ann)


def merged_index(existing: Index | None, entry: Descriptor) -> Index:
    """``existing`` plus ``entry``; an entry with the same ref name (or the same unnamed digest) is replaced."""
    kept: list[Descriptor] = []
    name = entry.annotations.get(REF_NAME)
    for d in existing.manifests if existing else ():
        if name and d.annotations.get(REF_NAME) == name:
            continue
        if not name and d.digest == entry.digest and REF_NAME not in d.annotations:
            continue
        kept.append(d)
    kept.append(entry)
    annotations = existing.annotations if existing else {}
    return Index(media_type=mt.OCI_INDEX, manifests=tuple(kept), annotations=annotations)


def layout_file_bytes() -> bytes:
    return canonical_json({"imageLayoutVersion": LAYOUT_VERSION})


def write_layout(
    obj: Image | ImageIndex, root: Path, name: str | None = None, progress: Progress = NO_PROGRESS,
    jobs: int | None = None,
) -> Descriptor:
    """Write ``obj`` into the layout at ``root`` (created, or appended to); returns its index.json entry.

    Up to ``jobs`` layers (default ``copypool.DEFAULT_JOBS``) are read (downloaded) at once.
    """
    from giropops.oci.copypool import DEFAULT_JOBS

    jobs = DEFAULT_JOBS if jobs is None else jobs
    if name is not None and (not name or any(c in name for c in "\n\x00")):
        raise ArchiveError(f"invalid image name {name!r} for a layout")
    blobs = plan_blobs(obj)
    entry = index_entry(obj, name)
    if root.exists() and not root.is_dir():
        raise ArchiveError(f"{root} exists and is not a directory")
    appending = root.is_dir() and (root / LAYOUT_FILE).exists()
    missing = [b for b in blobs if not (appending and blob_path(root, b.digest).is_file())]
    check_disk_budget(sum(b.size for b in missing), root if root.is_dir() else root.parent, f"image {entry.digest}")
    try:
        if appending:
            _append_layout(root, blobs, entry, progress, jobs)
        elif root.is_dir() and any(root.iterdir()):
            raise ArchiveError(f"{root} exists, is not empty and is not an OCI image layout")
        else:
            _create_layout(root, blobs, entry, progress, jobs)
    except OSError as exc:  # disk full, permissions...: everything written so far is already removed
        raise ArchiveError(f"cannot write layout {root}: {exc.strerror or exc}") from exc
    return entry


def _put_blobs(root: Path, blobs: list[BlobSource], progress: Progress, jobs: int, added: list[Path]) -> None:
    """Every blob into ``root``, the layers ``jobs`` at a time; ``added`` gets the paths that were new."""

    def put(src: BlobSource) -> Task:
        def task(cancel: Cancel) -> None:
            if _put_blob(root, src, progress, cancel):
                added.append(blob_path(root, src.digest))  # list.append: safe from several threads

        return task

    from giropops.oci.copypool import run_jobs

    run_jobs([put(src) for src in blobs], jobs)


def _create_layout(
    root: Path, blobs: list[BlobSource], entry: Descriptor, progress: Progress, jobs: int
) -> None:
    parent = root.parent
    if not parent.is_dir():
        raise ArchiveError(f"cannot create {root}: {parent} is not a directory")
    import shutil  # writing a whole layout only: neither is imported on every start-up
    import tempfile
    from pathlib import Path

    stage = Path(tempfile.mkdtemp(dir=parent, prefix=f".{root.name}.", suffix=".tmp"))
    try:
        _put_blobs(stage, blobs, progress, jobs, [])
        (stage / LAYOUT_FILE).write_bytes(layout_file_bytes())
        (stage / "index.json").write_bytes(merged_index(None, entry).to_bytes())
        os.chmod(stage, 0o755)  # noqa: S103 - a layout is meant to be readable
        for d in (stage / "blobs", *(stage / "blobs").iterdir()):
            os.chmod(d, 0o755)  # noqa: S103
        os.rename(stage, root)  # replaces an empty directory atomically
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    try:
        _fsync_dir(parent)
    except OSError:
        pass


def _append_layout(
    root: Path, blobs: list[BlobSource], entry: Descriptor, progress: Progress, jobs: int
) -> None:
    layout = Layout(root)  # validates oci-layout and index.json before anything is written
    added: list[Path] = []
    try:
        _put_blobs(root, blobs, progress, jobs, added)
        atomic_write(root / "index.json", merged_index(layout.top.index, entry).to_bytes())
    except BaseException:
        for p in added:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        raise



# --- editing a layout in place (signatures and attestations: ``giropops.sign.storage``) ----------


def read_layout_blob(layout: Layout, digest: Digest, size: int | None, limit: int, what: str) -> bytes:
    """One blob of ``layout``, read with a size limit and verified against its digest (and size, when known)."""
    return read_verified(layout.store.open_blob(digest), digest, size, limit, what)


def put_blob(root: Path, data: bytes, label: str = "blob") -> Digest:
    """Store ``data`` in the existing layout at ``root`` unless a blob with its digest is there; its digest.

    Goes through the writer's own blob helper (temporary file + rename, same path checks).
    """
    digest = Digest.of(data)
    try:
        _put_blob(root, BlobSource(digest, len(data), data, None, label), NO_PROGRESS)
    except OSError as exc:
        raise ArchiveError(f"cannot write blob {digest} to layout {root}: {exc.strerror or exc}") from exc
    return digest


def edit_index(root: Path, edit: Callable[[Index], Sequence[Descriptor]]) -> Index:
    """Replace the entries of the layout's ``index.json`` with ``edit(current index)``, atomically; the new index.

    The layout is validated first; the index keeps its own annotations.  The file is rewritten
    through a temporary file and a rename, so a reader sees the old index or the new one.
    """
    layout = Layout(root)
    current = layout.top.index
    new = Index(media_type=mt.OCI_INDEX, manifests=tuple(edit(current)), annotations=current.annotations)
    try:
        atomic_write(root / "index.json", new.to_bytes())
    except OSError as exc:
        raise ArchiveError(f"cannot write {root}/index.json: {exc.strerror or exc}") from exc
    return new


def with_annotations(desc: Descriptor, extra: Mapping[str, str]) -> Descriptor:
    """``desc`` with ``extra`` added to its annotations (an index entry re-labelled in place)."""
    return replace(desc, annotations={**desc.annotations, **extra})
