"""Image tarballs: ``docker save`` archives and OCI archives (a tar of a layout), told apart by content.

Reading never extracts: the tar's headers are scanned once, each member's
offset is remembered, and blobs are read with ``pread`` from the (seekable)
file when asked.  A whole-archive gzip/zstd (``docker save | gzip``) is first
decompressed into an anonymous temporary file, of a bounded size (``limits.py``).  Entries with absolute paths or
``..``, links that leave the archive, devices, and members running past the end
of the file are refused before anything is read.

When both ``index.json``/``oci-layout`` and ``manifest.json`` are present
(``docker save`` since Docker 25, and what we write) the OCI view is preferred:
it keeps the original manifest digests.  A plain ``docker save`` archive has no
manifest, so one is synthesised (OCI media types; layers as stored, their
compression sniffed).

Writing produces one tarball that both kinds of tools read: ``blobs/sha256/*``,
``index.json`` and ``oci-layout`` for OCI tools, ``manifest.json`` and
``repositories`` for ``docker load``.  It is written to a temporary file in the
destination directory and renamed into place at the end.
"""

from __future__ import annotations

import io
import os
import posixpath
import re

from giropops import jsonio
from giropops.errors import ArchiveError, BlobError, ImageReferenceError, ManifestError, SBOMError
from giropops.oci import mediatypes as mt
from giropops.oci.blob import GZIP_MAGIC, ZSTD_MAGIC, decompressed
from giropops.oci.image import Image, ImageIndex
from giropops.oci.layout import (
    CONTAINERD_NAME,
    LAYOUT_FILE,
    REF_NAME,
    check_layout_file,
    layout_file_bytes,
    load_descriptor,
    plan_blobs,
    select_entry,
)
from giropops.oci.limits import MAX_EXPANSION_ENV, MAX_IMAGE_ENV, check_disk_budget, decompressed_limit
from giropops.oci.memory import (
    BlobLayer,
    FileSlice,
    StaticImage,
    StaticIndex,
    build_image,
    build_index,
    children_of,
    descriptor_of,
)
from giropops.oci.model import Descriptor, Digest, ImageConfig, Index, Platform, canonical_json
from giropops.progress import NO_PROGRESS, Progress
from giropops.record import record
from giropops.runtime_typing import cast
from giropops.tmpfiles import mkstemp

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    import tarfile
    from pathlib import Path
    from typing import IO, Any, BinaryIO

    from giropops.oci.copypool import Member
    from giropops.oci.reference import Reference

_CHUNK = 1 << 20
_BLOB_NAME = r"^blobs/(sha256|sha512)/([a-f0-9]+)$"  # compiled by re when an OCI archive is first read
_MAX_LINK_DEPTH = 16
_MAX_MEMBERS = 1_000_000


@record
class _Member:
    offset: int
    size: int


class TarStore:
    """Random access to the regular files of a tar held in an open, seekable file."""

    def __init__(self, file: IO[bytes], label: str) -> None:
        self.label = label
        self._file = file
        self._fd = file.fileno()
        self.files: dict[str, _Member] = {}
        self.links: dict[str, str] = {}
        self._scan()

    def describe(self) -> str:
        return f"archive {self.label}"

    def _fail(self, msg: str) -> ArchiveError:
        return ArchiveError(f"{self.describe()}: {msg}")

    def _clean(self, name: str, what: str = "entry") -> str:
        if name.startswith("/"):
            raise self._fail(f"tar {what} {name!r} is an absolute path")
        norm = name
        while norm.startswith("./"):
            norm = norm[2:]
        norm = norm.rstrip("/")
        parts = norm.split("/")
        if ".." in parts:
            raise self._fail(f"tar {what} {name!r} contains '..'")
        return posixpath.normpath(norm) if norm else "."

    def _scan(self) -> None:
        # The headers are read with giropops' own bounded tar reader (metadata records over 1 MiB are
        # skipped, every malformed header is one error), the bodies skipped by moving the position.
        from giropops.sbom.tarstream import DIRECTORY, HARDLINK, REGULAR, SYMLINK, RegionReader, TarReader

        total = os.fstat(self._fd).st_size
        what = self.describe()
        reader = TarReader(cast("BinaryIO", RegionReader(self._fd, 0, total)), what)
        count = 0
        try:
            for m in reader:
                count += 1
                if count > _MAX_MEMBERS:
                    raise self._fail(f"more than {_MAX_MEMBERS} entries")
                name = self._clean(m.name)
                kind = DIRECTORY if m.kind == REGULAR and m.name.endswith("/") else m.kind
                if kind == REGULAR:
                    if reader.offset + m.size > total:
                        raise self._fail(f"truncated: {m.name!r} runs past the end of the file")
                    self.files[name] = _Member(reader.offset, m.size)
                    self.links.pop(name, None)
                elif kind == SYMLINK:
                    if m.linkname.startswith("/"):
                        raise self._fail(f"symlink {m.name!r} points at absolute path {m.linkname!r}")
                    target = posixpath.normpath(posixpath.join(posixpath.dirname(name), m.linkname))
                    if target == ".." or target.startswith("../"):
                        raise self._fail(f"symlink {m.name!r} -> {m.linkname!r} escapes the archive")
                    self.links[name] = target
                    self.files.pop(name, None)
                elif kind == HARDLINK:
                    target = self._clean(m.linkname, "hard link target")
                    self.links[name] = target
                    self.files.pop(name, None)
                elif kind == DIRECTORY:
                    continue
                else:
                    raise self._fail(f"tar entry {m.name!r} is a device, fifo or other special file")
        except SBOMError as exc:  # the reader's own words, after its "archive LABEL: "
            detail = str(exc).removeprefix(f"{what}: ")
            raise self._fail(f"{'truncated' if 'truncated' in detail else 'not a valid'} tar file: {detail}") from None
        if count == 0:
            raise self._fail("not a valid tar file: empty file")

    def resolve(self, name: str) -> _Member | None:
        key = self._clean(name, "path")
        for _ in range(_MAX_LINK_DEPTH):
            if key in self.files:
                return self.files[key]
            if key not in self.links:
                return None
            key = self.links[key]
        raise self._fail(f"too many levels of links resolving {name!r}")

    def has(self, name: str) -> bool:
        return self.resolve(name) is not None

    def member(self, name: str, what: str = "file") -> _Member:
        m = self.resolve(name)
        if m is None:
            raise self._fail(f"{what} {name!r} is not in the archive")
        return m

    def open_member(self, name: str) -> BinaryIO:
        m = self.member(name)
        return cast("BinaryIO", io.BufferedReader(FileSlice(self._fd, m.offset, m.size, owner=self._file), _CHUNK))

    def read_member(self, name: str, limit: int, what: str) -> bytes:
        m = self.member(name, what)
        if m.size > limit:
            raise self._fail(f"{what} {name!r} is {m.size} bytes, more than the {limit}-byte limit")
        return os.pread(self._fd, m.size, m.offset)

    def head(self, name: str, n: int = 4) -> bytes:
        m = self.member(name)
        return os.pread(self._fd, min(n, m.size), m.offset)

    # BlobStore
    def has_blob(self, digest: Digest) -> bool:
        return self.has(f"blobs/{digest.algorithm}/{digest.hex}")

    def open_blob(self, digest: Digest) -> BinaryIO:
        name = f"blobs/{digest.algorithm}/{digest.hex}"
        if self.resolve(name) is None:
            raise BlobError(f"{self.describe()}: blob {digest} is missing")
        return self.open_member(name)


@record
class DockerEntry:
    config: str
    repo_tags: tuple[str, ...]
    layers: tuple[str, ...]


def _open_file(path: Path | str) -> IO[bytes]:
    """The archive, decompressed into a temporary file first if the whole tar is compressed."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise ArchiveError(f"archive {path} does not exist") from None
    except IsADirectoryError:
        raise ArchiveError(f"archive {path} is a directory (use oci-dir:// for a layout)") from None
    except OSError as exc:
        raise ArchiveError(f"cannot open archive {path}: {exc.strerror}") from exc
    head = f.read(4)
    f.seek(0)
    if not (head.startswith(GZIP_MAGIC) or head.startswith(ZSTD_MAGIC)):
        return f
    import tempfile  # a compressed archive only: not imported on every start-up

    limit = decompressed_limit(os.fstat(f.fileno()).st_size)
    try:
        tmp = tempfile.TemporaryFile()  # already unlinked: closing it frees the space
    except OSError as exc:
        f.close()
        raise ArchiveError(f"cannot decompress archive {path}: no temporary file ({exc.strerror or exc})") from exc
    try:
        written = 0
        with decompressed(cast("BinaryIO", f), f"archive {path}") as src:
            while chunk := src.read(min(_CHUNK, limit + 1 - written)):
                written += len(chunk)
                if written > limit:
                    raise ArchiveError(
                        f"archive {path} decompresses to more than {limit} bytes (the limit; raise it with "
                        f"{MAX_IMAGE_ENV} or {MAX_EXPANSION_ENV})"
                    )
                tmp.write(chunk)
        tmp.flush()
    except OSError as exc:  # out of space in the temporary directory, mostly
        tmp.close()
        raise ArchiveError(
            f"cannot decompress archive {path} into a temporary file: {exc.strerror or exc}"
        ) from exc
    except BaseException:
        tmp.close()
        raise
    return tmp


class Archive:
    """An image tarball opened for reading (see the module docstring for formats)."""

    def __init__(self, path: Path | str, file: IO[bytes] | None = None, label: str | None = None) -> None:
        self.path = path
        self.file = file if file is not None else _open_file(path)
        self.store = TarStore(self.file, label or str(path))
        self.is_oci = self.store.has("index.json") and self.store.has(LAYOUT_FILE)
        self.is_docker = self.store.has("manifest.json")
        if not self.is_oci and not self.is_docker:
            raise ArchiveError(
                f"{self.store.describe()}: neither a docker archive (manifest.json) "
                "nor an OCI archive (index.json + oci-layout)"
            )
        self._top: StaticIndex | None = None
        if self.is_oci:
            raw = self.store.read_member(LAYOUT_FILE, 4096, "oci-layout")
            check_layout_file(raw, self.store.describe())
            raw_index = self.store.read_member("index.json", mt.MAX_MANIFEST_BYTES, "index.json")
            try:
                self._top = StaticIndex(raw_index, lambda d: load_descriptor(self.store, d))
            except ManifestError as exc:
                raise ArchiveError(f"{self.store.describe()}: index.json: {exc}") from exc

    def close(self) -> None:
        self.file.close()

    # --- docker view ---
    def docker_entries(self) -> list[DockerEntry]:
        raw = self.store.read_member("manifest.json", mt.MAX_MANIFEST_BYTES, "manifest.json")
        doc = jsonio.loads(raw, f"{self.store.describe()}: manifest.json", error=ArchiveError)
        if not isinstance(doc, list) or not doc:
            raise ArchiveError(f"{self.store.describe()}: manifest.json must be a non-empty list")
        out = []
        for i, e in enumerate(doc):
            where = f"{self.store.describe()}: manifest.json entry {i}"
            if not isinstance(e, dict):
                raise ArchiveError(f"{where} is not an object")
            config = e.get("Config")
            layers = e.get("Layers")
            tags = e.get("RepoTags") or []
            if not isinstance(config, str):
                raise ArchiveError(f"{where}: 'Config' must be a string")
            if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
                raise ArchiveError(f"{where}: 'Layers' must be a list of strings")
            if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
                raise ArchiveError(f"{where}: 'RepoTags' must be a list of strings")
            for p in (config, *layers):
                self.store.member(p, "file named in manifest.json")  # exists, inside the archive
            out.append(DockerEntry(config, tuple(tags), tuple(layers)))
        return out

    def _member_digest(self, name: str) -> Digest | None:
        m = re.match(_BLOB_NAME, self.store._clean(name))
        return Digest(m.group(1), m.group(2)) if m else None

    def docker_image(self, entry: DockerEntry) -> StaticImage:
        raw_config = self.store.read_member(entry.config, mt.MAX_CONFIG_BYTES, "config")
        named = self._member_digest(entry.config)
        if named is not None and Digest.of(raw_config, named.algorithm) != named:
            raise BlobError(f"{self.store.describe()}: config {entry.config} does not match its digest")
        config = ImageConfig.from_bytes(raw_config)
        diff_ids = config.diff_ids
        if len(diff_ids) != len(entry.layers):
            raise ManifestError(
                f"{self.store.describe()}: config lists {len(diff_ids)} diff_ids, "
                f"manifest.json {len(entry.layers)} layers"
            )
        layers = []
        for path, diff_id in zip(entry.layers, diff_ids, strict=True):
            head = self.store.head(path)
            if head.startswith(GZIP_MAGIC):
                media = mt.OCI_LAYER_GZIP
            elif head.startswith(ZSTD_MAGIC):
                media = mt.OCI_LAYER_ZSTD
            else:
                media = mt.OCI_LAYER
            digest = self._member_digest(path)
            if digest is None:
                digest = diff_id if media == mt.OCI_LAYER else self._hash_member(path)
            size = self.store.member(path).size
            layers.append(BlobLayer(Descriptor(media, digest, size), diff_id, _member_opener(self.store, path)))
        return build_image(raw_config, layers, media_type=mt.OCI_MANIFEST, config_media_type=mt.OCI_CONFIG)

    def _hash_member(self, path: str) -> Digest:
        import hashlib  # a compressed layer not named by its digest only

        h = hashlib.sha256()
        with self.store.open_member(path) as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        return Digest("sha256", h.hexdigest())

    def _docker_select(self, name: str | None, digest: Digest | None) -> Image | ImageIndex:
        entries = self.docker_entries()
        if name is not None:
            from giropops.oci.reference import Reference  # a named image only: most reads name none

            want = _parse_name(name)
            for e in entries:
                for t in e.repo_tags:
                    try:
                        if Reference.parse(t) == want:
                            return self.docker_image(e)
                    except ImageReferenceError:
                        pass
            have = sorted({t for e in entries for t in e.repo_tags})
            raise ArchiveError(f"{self.store.describe()}: no image tagged {name!r} (tags: {', '.join(have) or 'none'})")
        images = [self.docker_image(e) for e in entries]
        if digest is not None:
            for img in images:
                if digest in (img.digest, img.manifest.config.digest):
                    return img
            raise ArchiveError(f"{self.store.describe()}: no image {digest}")
        if len(images) == 1:
            return images[0]
        platforms = [img.config.platform for img in images]
        if len(set(platforms)) != len(platforms):
            have = sorted({t for e in entries for t in e.repo_tags})
            raise ArchiveError(
                f"{self.store.describe()} holds {len(images)} images; choose one by name "
                f"(tags: {', '.join(have) or 'none'}) or by digest"
            )
        return build_index([(img, None) for img in images])

    def select(self, name: str | None = None, digest: Digest | None = None) -> Image | ImageIndex:
        if self._top is not None:
            try:
                return select_entry(self.store, self._top, name, digest)
            except (ArchiveError, ManifestError):
                if not self.is_docker or (name is None and digest is None):
                    raise
        return self._docker_select(name, digest)


def _member_opener(store: TarStore, path: str) -> Any:
    return lambda: store.open_member(path)


def _parse_name(name: str) -> Reference:
    from giropops.oci.reference import Reference

    try:
        return Reference.parse(name)
    except ImageReferenceError as exc:
        raise ImageReferenceError(f"invalid image name {name!r} for an archive: {exc}") from exc


def open_archive(path: Path | str, name: str | None = None, digest: Digest | None = None) -> Image | ImageIndex:
    return Archive(path).select(name, digest)


def open_archive_image(
    path: Path | str, name: str | None = None, digest: Digest | None = None, platform: Platform | None = None
) -> Image:
    obj = open_archive(path, name, digest)
    if isinstance(obj, Image):
        return obj
    return obj.image_for(platform or Platform.host())


# --- writing ------------------------------------------------------------------------------------


def _tarinfo(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    import tarfile  # writing only: reading an archive does not need it

    ti = tarfile.TarInfo(name)
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    if directory:
        ti.type = tarfile.DIRTYPE
        ti.mode = 0o755
    else:
        ti.size = size
        ti.mode = 0o644
    return ti


def _docker_images(obj: Image | ImageIndex) -> list[Image]:
    """Images ``docker load`` can take: platform images with filesystem layers (no attestations)."""
    if isinstance(obj, Image):
        return [obj]
    out: list[Image] = []
    for _d, child in children_of(obj):
        for img in _docker_images(child):
            if img.config.platform.os != "unknown" and img.digest not in {i.digest for i in out}:
                out.append(img)
    return out


def write_archive(
    obj: Image | ImageIndex, path: Path, name: str | None = None, progress: Progress = NO_PROGRESS,
    jobs: int | None = None,
) -> Descriptor:
    """Write ``obj`` as a tarball readable by ``docker load``/``podman load`` and OCI tools.

    Up to ``jobs`` layers (default ``copypool.DEFAULT_JOBS``) are read (downloaded) at once, each into
    its place in the file.
    """
    from giropops.oci.copypool import DEFAULT_JOBS, write_tar  # writing only: reading does not need it

    jobs = DEFAULT_JOBS if jobs is None else jobs
    ref = _parse_name(name) if name else None
    if path.is_dir():
        raise ArchiveError(f"{path} is a directory; an archive destination must be a file path")
    if path.exists() and not path.is_file():  # /dev/null, a pipe: never renamed over (and not seekable)
        raise ArchiveError(f"{path} is not a regular file; an archive destination must be a file path")
    parent = path.parent
    if not parent.is_dir():
        raise ArchiveError(f"cannot write {path}: {parent} is not a directory")
    blobs = plan_blobs(obj)
    base = descriptor_of(obj)
    check_disk_budget(sum(b.size for b in blobs), parent, f"image {base.digest}")
    ann: dict[str, str] = {}
    if ref is not None:
        ann[CONTAINERD_NAME] = str(ref)
        if ref.tag:
            ann[REF_NAME] = ref.tag
    entry = Descriptor(base.media_type, base.digest, base.size, annotations=ann)
    index = Index(media_type=mt.OCI_INDEX, manifests=(entry,))
    images = _docker_images(obj)
    tagged = images[0] if images else None
    if len(images) > 1:
        host = Platform.host()
        tagged = next((i for i in images if i.config.platform.matches(host)), images[0])
    manifest_json: list[dict[str, Any]] = []
    for img in images:
        if any(layer.media_type not in _LOADABLE for layer in img.layers()):
            continue
        repo_tags = [ref.familiar()] if ref is not None and ref.tag and img is tagged else []
        manifest_json.append({
            "Config": f"blobs/{img.manifest.config.digest.algorithm}/{img.manifest.config.digest.hex}",
            "RepoTags": repo_tags,
            "Layers": [f"blobs/{d.digest.algorithm}/{d.digest.hex}" for d in img.manifest.layers],
        })
    members: list[Member] = [(_tarinfo("blobs", directory=True), b"")]
    members += [(_tarinfo(f"blobs/{alg}", directory=True), b"") for alg in sorted({b.digest.algorithm for b in blobs})]
    for src in blobs:  # layers stream in concurrently (copypool.write_tar); documents are bytes
        content = src.data if src.data is not None else src
        members.append((_tarinfo(f"blobs/{src.digest.algorithm}/{src.digest.hex}", src.size), content))
    documents = [("index.json", index.to_bytes())]
    if manifest_json:  # artifacts without filesystem layers: an OCI archive only
        documents.append(("manifest.json", canonical_json(manifest_json)))
    documents.append((LAYOUT_FILE, layout_file_bytes()))
    if ref is not None and ref.tag and tagged is not None and manifest_json and tagged.manifest.layers:
        top = tagged.config.diff_ids[-1] if tagged.config.diff_ids else tagged.manifest.layers[-1].digest
        repo = ref.familiar().rsplit(":", 1)[0].split("@", 1)[0]
        documents.append(("repositories", canonical_json({repo: {ref.tag: top.hex}})))
    members += [(_tarinfo(member, len(data)), data) for member, data in documents]
    try:
        fd, tmp = mkstemp(parent, f".{path.name}.", ".tmp")
    except OSError as exc:
        raise ArchiveError(f"cannot write archive {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            write_tar(out.fileno(), members, progress, jobs)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:  # disk full, permissions...
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise ArchiveError(f"cannot write archive {path}: {exc.strerror or exc}") from exc
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return entry


_LOADABLE = frozenset({
    mt.OCI_LAYER, mt.OCI_LAYER_GZIP, mt.OCI_LAYER_ZSTD, mt.DOCKER_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar",
})

