"""A root filesystem directory read as a one-layer image (``fs://DIR``).

The tar is deterministic: entries sorted by path, owner 0:0 with no names,
mtime from ``SOURCE_DATE_EPOCH`` (or 0), permission bits as on disk.  Symlinks
are stored as links (never followed), files with several links as hard links
to the first path seen.  Sockets, fifos and device nodes are refused by name:
they have no place in an image layer built from a directory.
"""

from __future__ import annotations

import os
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO, cast

from giropops.errors import ArchiveError
from giropops.oci.empty import empty_image
from giropops.oci.image import Image
from giropops.oci.model import Platform
from giropops.oci.mutate import append_layers, canonicalize, layer_from_tar, source_date_epoch

_CHUNK = 1 << 20


def _entries(root: Path) -> list[str]:
    """Every path under ``root``, relative, sorted so parents precede children."""
    out: list[str] = []

    def walk(rel: str) -> None:
        path = os.path.join(root, rel) if rel else str(root)
        try:
            names = sorted(os.listdir(path))
        except OSError as exc:
            raise ArchiveError(f"cannot list {path}: {exc.strerror}") from exc
        for name in names:
            child = f"{rel}/{name}" if rel else name
            out.append(child)
            st = os.lstat(os.path.join(root, child))
            if stat.S_ISDIR(st.st_mode):
                walk(child)

    walk("")
    return out


def write_fs_tar(root: Path, out: BinaryIO, mtime: int) -> None:
    """The deterministic tar of ``root`` (see the module docstring)."""
    seen: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.copybufsize = _CHUNK  # type: ignore[attr-defined]
        for rel in _entries(root):
            full = os.path.join(root, rel)
            st = os.lstat(full)
            ti = tarfile.TarInfo(rel)
            ti.mtime = mtime
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            ti.mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                ti.type = tarfile.DIRTYPE
                tar.addfile(ti)
            elif stat.S_ISLNK(st.st_mode):
                ti.type = tarfile.SYMTYPE
                ti.linkname = os.readlink(full)
                tar.addfile(ti)
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen:
                    ti.type = tarfile.LNKTYPE
                    ti.linkname = seen[key]
                    tar.addfile(ti)
                    continue
                seen[key] = rel
                ti.size = st.st_size
                try:
                    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                except OSError as exc:
                    raise ArchiveError(f"cannot read {full}: {exc.strerror}") from exc
                with os.fdopen(fd, "rb") as f:
                    try:
                        tar.addfile(ti, f)
                    except OSError as exc:
                        raise ArchiveError(f"{full} changed while it was being read: {exc}") from exc
            else:
                kind = (
                    "socket" if stat.S_ISSOCK(st.st_mode)
                    else "fifo" if stat.S_ISFIFO(st.st_mode)
                    else "device node"
                )
                raise ArchiveError(f"refusing to put {kind} {full} in an image layer")


def open_fs(root: Path, platform: Platform | None = None) -> Image:
    """``root`` as a one-layer image on top of scratch, with canonical timestamps."""
    if not root.is_dir():
        raise ArchiveError(f"fs://{root}: not a directory")
    epoch = source_date_epoch()
    with tempfile.TemporaryFile() as tmp:
        try:
            write_fs_tar(root, cast(BinaryIO, tmp), epoch)
        except OSError as exc:
            raise ArchiveError(f"fs://{root}: cannot read {exc.filename or ''}: {exc.strerror or exc}") from exc
        tmp.seek(0)
        layer = layer_from_tar(cast(BinaryIO, tmp))
    image = append_layers(empty_image(platform), [layer], created_by=f"giropops: fs {root.name or '/'}")
    return canonicalize(image, epoch)
