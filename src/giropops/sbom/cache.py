"""Per-layer catalog cache, keyed by diff_id and by what the catalogers are interested in.

What is cached is a layer's ``LayerRecords`` (path index, whiteouts, contents of
interest), not packages: packages are a property of the *squashed* filesystem —
an upper layer's whiteout can delete a lower layer's status file — so the
squash and the catalogers run every time, on records that are cheap to load.
An image sharing base layers with one seen before reads only its new layers.

A record file is ``MAGIC``, an 8-byte header length, a JSON header and the kept
contents back to back.  Anything unreadable, truncated or of another version is
a miss, never an error: the cache is an optimisation.  Files are written to a
temporary name and renamed, so concurrent runs never see half a record.

The cache is bounded (``max_bytes``), least recently used records first, without walking it on every
store: like ccache's per-directory counters, ``sbom-layers/.ledger`` keeps the records' total size and
count, and is the lock (``flock``) under which a writer renames its record into place and adds its size.
Only a store that takes the total over the bound walks the records, and it frees down to a low-water mark
(``LOW_WATER_PERCENT``) so the next stores do not walk again; a missing or damaged ledger (a crash in the
middle of its write, ``giropops cache prune`` removing it) costs one walk, which rebuilds it.  Records
removed or added behind the ledger's back only make it drift until the next walk, which recounts.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import time

from giropops.cachedir import cache_root, cache_root_text
from giropops.sbom.filesystem import LayerRecords
from giropops.sbom.proofs import SETTLE_SECONDS, Proofs
from giropops.tmpfiles import mkstemp, unlink_quietly

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

# Version 2: records are only written once the layer's content is proven to hash to its diff_id;
# version 1 records were not, so they are misses (one of them may have been poisoned).
MAGIC = b"GIROPOPS-SBOM-LAYER-2\n"
#: The layer cache's size bound: once over it, the least recently used records go (``LayerCache.evict``).
MAX_BYTES_ENV = "GIROPOPS_SBOM_CACHE_MAX_BYTES"
DEFAULT_MAX_BYTES = 2 * 1024 * 1024 * 1024
#: ``<cache dir>/sbom-layers/.ledger``: the records' total size and count, and the lock its writers take.
LEDGER = ".ledger"
LEDGER_MAGIC = b"GIROPOPS-SBOM-LEDGER-1 "
#: An eviction frees down to this share of the bound, so the stores after it do not walk again.
LOW_WATER_PERCENT = 90
#: How long a store waits for the ledger's lock before it works without the ledger.
LOCK_SECONDS = 2.0


def max_bytes_from_env() -> int:
    """``$GIROPOPS_SBOM_CACHE_MAX_BYTES`` when it is a whole number of bytes, else ``DEFAULT_MAX_BYTES``."""
    text = os.environ.get(MAX_BYTES_ENV, "")
    return int(text) if text.isdigit() else DEFAULT_MAX_BYTES


def default_cache_dir() -> Path:
    """``giropops.cachedir.cache_root()`` (the one lookup, shared with the blob-info cache)."""
    return cache_root()


def encode(rec: LayerRecords) -> bytes:
    blobs: list[bytes] = []
    index: list[list[Any]] = []
    offset = 0
    for path, data in rec.contents.items():
        index.append([path, offset, len(data)])
        blobs.append(data)
        offset += len(data)
    header = json.dumps(
        {
            "diff_id": rec.diff_id,
            "entries": rec.entries,
            "whiteouts": rec.whiteouts,
            "opaque": rec.opaque,
            "contents": index,
            "oversized": rec.oversized,
            "skipped": rec.skipped,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8", "surrogateescape")
    return b"".join([MAGIC, struct.pack(">Q", len(header)), header, *blobs])


def _str_list(v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError("expected a list of strings")
    return v


def decode(data: bytes) -> LayerRecords:
    """Raises ValueError on anything unexpected."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 8:
        raise ValueError("not a layer record")
    (hlen,) = struct.unpack(">Q", data[len(MAGIC) : len(MAGIC) + 8])
    start = len(MAGIC) + 8
    if start + hlen > len(data):
        raise ValueError("truncated header")
    try:
        # json.loads, not jsonio.loads: every field is checked just below, and walking the whole header
        # for its depth (jsonio's guard for code that recurses into a document) was most of a warm run's
        # decoding; a header too deep for the parser is a RecursionError, i.e. a miss.
        header = json.loads(data[start : start + hlen].decode("utf-8", "surrogateescape"))
    except RecursionError:
        raise ValueError("cache record header is nested too deeply") from None
    body = memoryview(data)[start + hlen :]
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    diff_id = header.get("diff_id")
    if diff_id is not None and not isinstance(diff_id, str):
        raise ValueError("bad diff_id")
    rec = LayerRecords(diff_id)
    for e in header["entries"]:
        if not (
            isinstance(e, list)
            and len(e) == 4
            and isinstance(e[0], str)
            and isinstance(e[1], str)
            and isinstance(e[2], str)
            and isinstance(e[3], int)
        ):
            raise ValueError("bad entry")
        rec.entries.append((e[0], e[1], e[2], e[3]))
    rec.whiteouts = _str_list(header["whiteouts"])
    rec.opaque = _str_list(header["opaque"])
    rec.skipped = _str_list(header["skipped"])
    for item in header["contents"]:
        path, off, n = item
        if not isinstance(path, str) or not isinstance(off, int) or not isinstance(n, int):
            raise ValueError("bad content index")
        if off < 0 or n < 0 or off + n > len(body):
            raise ValueError("content out of range")
        rec.contents[path] = bytes(body[off : off + n])
    over = header["oversized"]
    if not isinstance(over, dict) or not all(isinstance(k, str) and isinstance(v, int) for k, v in over.items()):
        raise ValueError("bad oversized map")
    rec.oversized = over
    return rec


class LayerCache:
    """Layer records on disk under ``<cache dir>/sbom-layers/<fingerprint>/<algo>/<hex>``; ``proofs``
    (``<cache dir>/sbom-proofs``) says which local files hold which of those layers, unchanged.

    Paths are kept as strings (``pathlib`` is not imported by a cold run); ``root`` and ``records``
    give ``Path`` objects."""

    def __init__(self, root: Path | str | None = None, max_bytes: int | None = None,
                 settle_seconds: float = SETTLE_SECONDS) -> None:
        base = os.fspath(root) if root is not None else cache_root_text()
        self._root = os.path.join(base, "sbom-layers")
        self.max_bytes = max_bytes if max_bytes is not None else max_bytes_from_env()
        self.proofs = Proofs(base, settle_seconds)
        self._lock_stuck = False

    @property
    def root(self) -> Path:
        """``<cache dir>/sbom-layers``."""
        from pathlib import Path

        return Path(self._root)

    def records(self) -> list[tuple[Path, int, float]]:
        """(path, size, last use) of every record file; the last use is its modification time (``load``
        touches what it reads)."""
        from pathlib import Path

        return [(Path(path), size, used) for path, size, used in self._records()]

    def _records(self) -> list[tuple[str, int, float]]:
        """Every record file, by a walk (``lstat``: links are neither followed nor descended into).  Names
        starting with a dot are not records: the ledger, and writers' temporary files."""
        out: list[tuple[str, int, float]] = []
        try:
            walk = list(os.walk(self._root))
        except OSError:
            return out
        for directory, _dirs, files in walk:
            for name in files:
                if name.startswith("."):
                    continue
                path = os.path.join(directory, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                out.append((path, st.st_size, st.st_mtime))
        return out

    def ledger(self) -> tuple[int, int] | None:
        """(bytes, records) as the ledger says, or None when it is missing or damaged (the next ``store``
        rebuilds it by one walk)."""
        try:
            fd = os.open(os.path.join(self._root, LEDGER), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return _read_ledger(fd)
        finally:
            os.close(fd)

    def evict(self, keep: Path | str | None = None) -> int:
        """Walk the records and, when they are over ``max_bytes``, remove the least recently used down to
        the low-water mark (``LOW_WATER_PERCENT`` of the bound; ``keep``, the record just written, goes last and only
        if it alone is over the bound); the ledger is set to what is left.  Returns the bytes freed.  Best
        effort, like the rest."""
        kept = os.fspath(keep) if keep is not None else None
        fd = self._lock_ledger()
        try:
            total, count, freed = self._walk_and_evict(kept)
            if fd is not None:
                _write_ledger(fd, total, count)
        finally:
            if fd is not None:
                os.close(fd)  # closing releases the lock
        return freed

    def _walk_and_evict(self, kept: str | None) -> tuple[int, int, int]:
        """(bytes, records) left after an eviction by one walk, and the bytes freed."""
        records = self._records()
        total = sum(size for _, size, _ in records)
        count = len(records)
        freed = 0
        if total <= self.max_bytes:
            return total, count, freed
        low = self.max_bytes * LOW_WATER_PERCENT // 100
        for path, size, _ in sorted(records, key=lambda r: (r[0] == kept, r[2])):
            if total <= (self.max_bytes if path == kept else low):
                break
            try:
                os.unlink(path)
            except OSError:
                continue
            total -= size
            count -= 1
            freed += size
        return total, count, freed

    def _lock_ledger(self) -> int | None:
        """The ledger's descriptor, locked exclusively (``flock``; the kernel drops it if we die), or None:
        the cache cannot be written, the ledger is not a regular file, or the lock stayed busy for
        ``LOCK_SECONDS`` (a stopped process holding it; then not waited for again by this cache): the
        caller then works without the ledger."""
        if self._lock_stuck:
            return None
        path = os.path.join(self._root, LEDGER)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o600)
        except OSError as e:
            if e.errno != errno.ELOOP:
                return None
            try:  # a link planted in its place: removed, never followed, and the ledger made again
                os.unlink(path)
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except OSError:
                return None
        try:
            import fcntl
            import stat

            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                return None
            end = time.monotonic() + LOCK_SECONDS
            pause = 0.001
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    if time.monotonic() >= end:
                        self._lock_stuck = True  # not waited for again by this cache: it walks instead
                        os.close(fd)
                        return None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.02)
        except OSError:
            os.close(fd)
            return None

    def _path(self, diff_id: str, fingerprint: str) -> str | None:
        algo, sep, hexpart = diff_id.partition(":")
        if not sep or not algo.isalnum() or not hexpart.isalnum():
            return None
        return os.path.join(self._root, fingerprint, algo, hexpart)

    def load(self, diff_id: str, fingerprint: str) -> LayerRecords | None:
        path = self._path(diff_id, fingerprint)
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        try:
            rec = decode(data)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, struct.error):
            return None
        if rec.diff_id != diff_id:
            return None
        try:
            os.utime(path)  # recently used: evicted last
        except OSError:
            pass
        return rec

    def store(self, rec: LayerRecords, fingerprint: str, encoded: bytes | None = None) -> None:
        """Best effort: a cache that cannot be written (read-only home, full disk) is skipped.
        ``encoded``: ``encode(rec)``, when the caller made it already (while the layer was being proven).

        The record is written to a temporary file, then, under the ledger's lock, renamed into place and
        its size added to the ledger; only when the ledger crosses ``max_bytes`` (or is missing or
        damaged) are the records walked (``evict``).  Without the ledger (its lock busy too long), every
        store walks, as it always did."""
        if rec.diff_id is None:
            return
        path = self._path(rec.diff_id, fingerprint)
        if path is None:
            return
        data = encode(rec) if encoded is None else encoded
        directory = os.path.dirname(path)
        try:
            os.makedirs(directory, exist_ok=True)
            fd, tmp = mkstemp(directory, f".{os.path.basename(path)}.", ".tmp")
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except OSError:
            unlink_quietly(tmp)
            return
        ledger = self._lock_ledger()
        try:
            try:
                replaced = os.lstat(path).st_size
            except OSError:
                replaced = -1
            try:
                os.replace(tmp, path)
            except OSError:
                unlink_quietly(tmp)
                return
            state = _read_ledger(ledger) if ledger is not None else None
            if state is not None:
                total = state[0] + len(data) - max(replaced, 0)
                count = state[1] + (replaced < 0)
                if total > self.max_bytes:
                    total, count, _ = self._walk_and_evict(path)
            else:  # no ledger yet, a damaged one, or none to be had: one walk
                total, count, _ = self._walk_and_evict(path)
            if ledger is not None:
                _write_ledger(ledger, total, count)
        finally:
            if ledger is not None:
                os.close(ledger)  # closing releases the lock


def _read_ledger(fd: int) -> tuple[int, int] | None:
    try:
        data = os.pread(fd, 128, 0)
    except OSError:
        return None
    if not data.startswith(LEDGER_MAGIC) or not data.endswith(b"\n"):
        return None
    fields = data[len(LEDGER_MAGIC):-1].split(b" ")
    if len(fields) != 2 or not all(f.isdigit() and len(f) < 20 for f in fields):
        return None
    return int(fields[0]), int(fields[1])


def _write_ledger(fd: int, total: int, count: int) -> None:
    """In place, under the lock; a write torn by a crash reads as damaged (then rebuilt by a walk)."""
    data = LEDGER_MAGIC + b"%d %d\n" % (max(total, 0), max(count, 0))
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    except OSError:
        pass
