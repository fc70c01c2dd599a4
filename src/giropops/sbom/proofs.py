"""Which layer bytes in local files were proven to hash to their digest and diff_id: a stat cache.

The layer cache (``cache.py``) holds a layer's records under its diff_id, and a record is
only written once the layer's bytes were read to the end and hashed to that diff_id.  A warm
run must not take a layer's claimed diff_id on trust, though: an archive or layout edited in
place still names the old digests, and its records would be served for bytes that are not
there any more.  Hashing every layer again would make a warm run as slow as a cold one, so,
as git's index does, the proof is remembered with the file's identity:

    (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns) of the file
        -> [(offset, length, digest, diff_id), ...] proven in it

A layer whose bytes are a region of a plain file (an archive member, a layout blob) is
served from the layer cache only when the file's identity is unchanged and that region was
proven to hold that digest and diff_id; otherwise it is read (and so verified) again, and
the proof recorded anew.

Why an unchanged identity means unchanged bytes.  Every write to a file, through ``write``,
``truncate`` or a shared mapping, updates its change time (ctime); so does ``utime``, which
can put the modification time back but not the change time.  Only the kernel sets ctime,
from the clock: changing it at will takes setting the system clock or writing the block
device, i.e. root, who can rewrite the cache itself.  A file replaced by another (rename
over it, delete and recreate) has another inode, or the same inode number with a later
ctime.  The one gap is a coarse clock: a write landing in the same timestamp tick as the
modification before our read leaves ctime as it was ("racy git").  A proof is therefore
only recorded when the file's ctime is ``settle_seconds`` older than the moment the read
began (more than any file system's timestamp granularity) and the identity is the same
before and after the read; a file that was just written is simply read again next time.

What is trusted is the cache directory, as for the layer records themselves (files 0600,
written atomically): whoever can write a proof here can write a record too.  Anything
unreadable is a miss.  Layers whose bytes are not in a local file (a registry's, an image
built in memory) are not covered: their content address is their identity, as before.
"""

from __future__ import annotations

import _thread
import io
import json
import os
import time

from giropops.fileio import atomic_write
from giropops.oci.image import Layer
from giropops.oci.memory import BlobLayer, FileSlice
from giropops.record import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

#: A file whose ctime is less than this old when its read begins gets no proof (see the docstring).
SETTLE_SECONDS = 2.0
#: Proof files kept at most (one per archive or layout blob file seen); the oldest go first.
MAX_FILES = 4096
#: Proven regions kept per file at most (an archive holds a few layers; a layout blob one).
MAX_REGIONS = 1024

Identity = tuple[int, int, int, int, int]


@record
class Where:
    """A layer's bytes: ``length`` bytes from ``offset`` of the file whose identity is ``identity``."""

    identity: Identity
    offset: int
    length: int


def _identity(fd: int) -> Identity:
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def where(layer: Layer) -> Where | None:
    """Where ``layer``'s blob lies when it is a region of a plain local file, else None."""
    if not isinstance(layer, BlobLayer):
        return None
    try:
        stream = layer.open_raw()
    except (OSError, ValueError):
        return None
    try:
        raw: Any = getattr(stream, "raw", stream)
        if isinstance(raw, FileSlice):
            fd, offset, length = raw.region
        elif isinstance(raw, io.FileIO) and raw.tell() == 0:
            fd, offset = raw.fileno(), 0
            length = os.fstat(fd).st_size
        else:
            return None
        identity = _identity(fd)
    except (OSError, ValueError):
        return None
    finally:
        stream.close()
    if length != layer.size:
        return None
    return Where(identity, offset, length)


class Proofs:
    """Proofs on disk under ``<root>/sbom-proofs/<dev>-<ino>`` (JSON; see the module docstring)."""

    def __init__(self, root: Path | str, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.root = os.path.join(os.fspath(root), "sbom-proofs")  # a string: a cold run imports no pathlib
        self.settle_ns = int(settle_seconds * 1e9)
        self._loaded: dict[Identity, set[tuple[int, int, str, str]]] = {}
        self._lock = _thread.allocate_lock()  # layers are read, and proven, in parallel (threading.Lock)

    def _path(self, identity: Identity) -> str:
        return os.path.join(self.root, f"{identity[0]:x}-{identity[1]:x}")

    def _load(self, identity: Identity) -> set[tuple[int, int, str, str]]:
        if identity in self._loaded:
            return self._loaded[identity]
        proven: set[tuple[int, int, str, str]] = set()
        try:
            with open(self._path(identity), "rb") as f:
                doc = json.loads(f.read())
            if isinstance(doc, dict) and doc.get("identity") == list(identity):
                for item in doc.get("regions", ()):
                    offset, length, digest, diff_id = item
                    if isinstance(offset, int) and isinstance(length, int) and isinstance(digest, str) \
                            and isinstance(diff_id, str):
                        proven.add((offset, length, digest, diff_id))
        except (OSError, ValueError, TypeError):
            proven = set()
        self._loaded[identity] = proven
        return proven

    def proven(self, layer: Layer) -> bool:
        """True when ``layer``'s bytes are a file region proven to hash to its digest and diff_id."""
        w = where(layer)
        return w is not None and self._holds(w, layer)

    def may_serve(self, layer: Layer) -> bool:
        """May the layer cache serve ``layer`` by its diff_id: its bytes are proven, or are not in a local
        file at all (a registry's blob, an image built in memory: known by its content address alone)."""
        w = where(layer)
        return w is None or self._holds(w, layer)

    def _holds(self, w: Where, layer: Layer) -> bool:
        return (w.offset, w.length, str(layer.digest), str(layer.diff_id)) in self._load(w.identity)

    def record(self, layer: Layer, before: Where | None, started_ns: int) -> None:
        """``layer`` was just read to its end and verified; ``before`` is ``where(layer)`` taken before the
        read began at ``started_ns`` (``time.time_ns()``).  Best effort, like every cache."""
        if before is None or before.identity[4] > started_ns - self.settle_ns:
            return  # not a file, or written too recently to tell a later write in the same tick apart
        if where(layer) != before:
            return  # changed (or replaced) while it was read
        region = (before.offset, before.length, str(layer.digest), str(layer.diff_id))
        path = self._path(before.identity)
        with self._lock:
            regions = self._load(before.identity)
            if region in regions:
                return
            kept = sorted(regions)[-(MAX_REGIONS - 1):] if len(regions) >= MAX_REGIONS else sorted(regions)
            kept.append(region)
            doc = {"identity": list(before.identity), "regions": [list(r) for r in kept]}
            try:
                os.makedirs(self.root, exist_ok=True)
                atomic_write(path, json.dumps(doc, separators=(",", ":")).encode(), 0o600)
            except OSError:
                return
            self._loaded[before.identity] = set(kept)
        self._evict(path)

    def _evict(self, keep: str) -> None:
        try:
            names = [os.path.join(self.root, n) for n in os.listdir(self.root) if not n.startswith(".")]
        except OSError:
            return
        if len(names) <= MAX_FILES:
            return
        dated = []
        for p in names:
            try:
                dated.append((p != keep, os.stat(p).st_mtime, p))
            except OSError:
                continue
        dated.sort()  # ``keep`` (False) first, then the others oldest first: those go
        for _, _, p in dated[1 : len(dated) - MAX_FILES + 1]:
            try:
                os.unlink(p)
            except OSError:
                continue


def now_ns() -> int:
    return time.time_ns()


__all__ = ["MAX_FILES", "MAX_REGIONS", "SETTLE_SECONDS", "Proofs", "Where", "now_ns", "where"]
