"""A root filesystem tree in memory and its deterministic tar layer.

Package archives are never extracted to the host: their members are read into
a ``Tree`` (validated: no ``..``, no absolute names, no device nodes, hardlinks
only to earlier members) and the tree is serialised as a tar with sorted
entries, fixed times and numeric owners, then gzip'd with mtime 0.  The same
tree gives the same bytes, so the same digest.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import posixpath
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, replace

from giropops.builder.errors import PackageError

FILE, DIR, SYMLINK = "file", "dir", "symlink"
MAX_MEMBER = 1 << 30


@dataclass(frozen=True)
class Entry:
    path: str  # relative, normalised, no leading "/" ("usr/bin/python3")
    kind: str
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    data: bytes = b""
    target: str = ""  # symlink target


def normalise(name: str, what: str) -> str:
    """A tar member name as a clean relative path, or ``PackageError`` for hostile names."""
    if "\x00" in name:
        raise PackageError(f"{what}: member name contains NUL")
    stripped = name
    while stripped.startswith("./"):
        stripped = stripped[2:]
    if stripped.startswith("/"):
        raise PackageError(f"{what}: absolute member name {name!r}")
    parts = [p for p in stripped.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise PackageError(f"{what}: member name {name!r} escapes the root with '..'")
    return "/".join(parts)


def _glob_match(path: str, pattern: str) -> bool:
    pattern = pattern.strip("/")
    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.rstrip("*").rstrip("/"))


class PathFilter:
    """gitignore-like excludes: ``usr/share/doc/*`` drops, ``!usr/share/doc/*/copyright`` keeps."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = [p.strip() for p in patterns if p.strip()]

    def excluded(self, path: str) -> bool:
        verdict = False
        for pat in self.patterns:
            neg = pat.startswith("!")
            if _glob_match(path, pat[1:] if neg else pat):
                verdict = not neg
        return verdict


class Tree:
    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def add(self, entry: Entry) -> None:
        if not entry.path:
            return
        parent = posixpath.dirname(entry.path)
        if parent and parent not in self.entries:
            self.add(Entry(parent, DIR, 0o755))
        old = self.entries.get(entry.path)
        if old is not None and old.kind == DIR and entry.kind == DIR:
            return  # first package to create a directory decides its mode, as dpkg does
        self.entries[entry.path] = entry

    def mkdir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        p = normalise(path.lstrip("/"), "directory")
        self.add(Entry(p, DIR, mode, uid, gid))
        self.entries[p] = Entry(p, DIR, mode, uid, gid)

    def write(self, path: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
        self.add(Entry(normalise(path.lstrip("/"), "file"), FILE, mode, uid, gid, data))

    def symlink(self, path: str, target: str) -> None:
        self.add(Entry(normalise(path.lstrip("/"), "symlink"), SYMLINK, 0o777, target=target))

    def add_tar(self, tar_bytes: bytes, what: str, path_filter: PathFilter | None = None) -> list[str]:
        """Add every member of an uncompressed tar; returns the paths added (files and links)."""
        added: list[str] = []
        local: dict[str, Entry] = {}
        try:
            tf = tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:")
        except tarfile.TarError as exc:
            raise PackageError(f"{what}: not a tar archive: {exc}") from exc
        with tf:
            try:
                members = tf.getmembers()
            except tarfile.TarError as exc:
                raise PackageError(f"{what}: corrupt tar: {exc}") from exc
            for m in members:
                path = normalise(m.name, what)
                if not path:
                    continue
                mode = m.mode & 0o7777
                if m.isdir():
                    entry = Entry(path, DIR, mode, m.uid, m.gid)
                elif m.isreg():
                    if m.size > MAX_MEMBER:
                        raise PackageError(f"{what}: member {path} is {m.size} bytes, over the limit")
                    f = tf.extractfile(m)
                    data = f.read() if f is not None else b""
                    entry = Entry(path, FILE, mode, m.uid, m.gid, data)
                elif m.issym():
                    if "\x00" in m.linkname or not m.linkname:
                        raise PackageError(f"{what}: symlink {path} has an invalid target")
                    entry = Entry(path, SYMLINK, 0o777, m.uid, m.gid, target=m.linkname)
                elif m.islnk():
                    src = local.get(normalise(m.linkname, what))
                    if src is None or src.kind != FILE:
                        raise PackageError(f"{what}: hardlink {path} points to {m.linkname!r}, not an earlier file")
                    entry = replace(src, path=path)  # a copy: layers stay valid whatever is excluded
                else:
                    raise PackageError(f"{what}: member {path} is a device, fifo or unknown type")
                local[path] = entry
                if path_filter is not None and entry.kind != DIR and path_filter.excluded(path):
                    continue
                self.add(entry)
                if entry.kind != DIR:
                    added.append(path)
        return added

    def prune(self, path_filter: PathFilter) -> None:
        """Drop excluded directories left empty (``usr/share/man``), deepest first."""
        children: dict[str, int] = {}
        for p in self.entries:
            parent = posixpath.dirname(p)
            children[parent] = children.get(parent, 0) + 1
        for p in sorted(self.entries, key=lambda x: -x.count("/")):
            e = self.entries[p]
            if e.kind == DIR and not children.get(p) and path_filter.excluded(p):
                del self.entries[p]
                parent = posixpath.dirname(p)
                children[parent] -= 1

    def to_tar(self, mtime: int) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tf:
            for path in sorted(self.entries):
                e = self.entries[path]
                ti = tarfile.TarInfo(path)
                ti.mtime = mtime
                ti.uid, ti.gid = e.uid, e.gid
                ti.uname = ti.gname = ""
                ti.mode = e.mode
                if e.kind == DIR:
                    ti.type = tarfile.DIRTYPE
                    tf.addfile(ti)
                elif e.kind == SYMLINK:
                    ti.type = tarfile.SYMTYPE
                    ti.linkname = e.target
                    tf.addfile(ti)
                else:
                    ti.size = len(e.data)
                    tf.addfile(ti, io.BytesIO(e.data))
        return buf.getvalue()


@dataclass(frozen=True)
class LayerBlob:
    """A finished layer: gzip'd bytes, their digest, and the diff_id of the tar inside."""

    data: bytes
    digest: str  # sha256:...
    diff_id: str  # sha256:...
    comment: str = ""

    @property
    def size(self) -> int:
        return len(self.data)


def make_layer(tar_bytes: bytes, comment: str = "", level: int = 9) -> LayerBlob:
    buf = io.BytesIO()
    # filename="" and mtime=0: nothing of the build machine leaks into the gzip header.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=level, mtime=0) as gz:
        gz.write(tar_bytes)
    data = buf.getvalue()
    return LayerBlob(
        data,
        "sha256:" + hashlib.sha256(data).hexdigest(),
        "sha256:" + hashlib.sha256(tar_bytes).hexdigest(),
        comment,
    )
