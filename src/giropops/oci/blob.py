"""Verified blob streams and layer decompression.

Every byte handed to a caller passes through ``VerifyingReader``: when the
underlying stream ends, the size and digest are checked, and a mismatch raises
``BlobError`` instead of a silent EOF.  Reading past the declared size is an
error too, so a hostile server cannot make us buffer without bound.
"""

from __future__ import annotations

import io

from giropops.errors import BlobError
from giropops.oci.model import Digest
from giropops.runtime_typing import cast

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from typing import Any, BinaryIO

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from typing import Any, BinaryIO, cast
else:
    def cast(_type: object, value: object) -> object:  # typing.cast, without importing typing
        return value

GZIP_MAGIC = b"\x1f\x8b"
MAP_WINDOW = 16 << 20  # what ``verify_region`` maps and hashes at once (resident while hashed)
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_READ = 1 << 20


class VerifyingReader(io.RawIOBase):
    """Wraps a stream of a blob that must be exactly ``size`` bytes hashing to ``digest``."""

    def __init__(self, raw: BinaryIO, digest: Digest, size: int | None, what: str = "blob") -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._size = size
        self._what = what
        self._hasher = digest.hasher()
        self._count = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._done:
            return 0
        view = memoryview(b).cast("B")
        want = len(view)
        if self._size is not None:
            # Read one byte beyond the declared size to detect oversized blobs.
            want = min(want, self._size - self._count + 1)
        view = view[: max(want, 1)]
        readinto = getattr(self._raw, "readinto", None)
        if readinto is not None:
            n = readinto(view) or 0  # straight into the caller's buffer: no copy of every byte
        else:
            chunk = self._raw.read(len(view))
            n = len(chunk)
            view[:n] = chunk
        if not n:
            self._finish()
            return 0
        self._count += n
        if self._size is not None and self._count > self._size:
            self._done = True
            raise BlobError(f"{self._what} {self._digest}: more than the declared {self._size} bytes")
        self._hasher.update(view[:n])
        return n

    def _finish(self) -> None:
        self._done = True
        _check(self._hasher, self._count, self._digest, self._size, self._what)

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def _check(hasher: Any, count: int, digest: Digest, size: int | None, what: str) -> None:
    if size is not None and count != size:
        raise BlobError(f"{what} {digest}: truncated ({count} of {size} bytes)")
    got = hasher.hexdigest()
    if got != digest.hex:
        raise BlobError(f"{what} {digest}: content does not match its digest (got {digest.algorithm}:{got})")


def verify_region(fd: int, offset: int, length: int, digest: Digest, size: int | None, what: str = "blob") -> bool:
    """Prove that ``length`` bytes of the local file ``fd`` from ``offset`` are the blob ``digest`` of
    ``size`` bytes, raising ``BlobError`` as a ``verified`` stream read to its end does.  False (nothing
    proven, nothing raised) when the region cannot be mapped: the caller reads it as a stream.

    The region is mapped and hashed ``MAP_WINDOW`` bytes at a time: no copy of its bytes, and the
    interpreter lock is taken back once per window instead of twice per 4 MiB chunk read (a thread
    hashing 200 MB while another parsed waited for the lock after each chunk: a third of its time).
    The pages of each window hashed are dropped from the mapping (``MADV_DONTNEED``: the file's
    pages counted in the resident memory stay one window's).  (One call over the whole region, with
    another thread dropping pages every few milliseconds, was tried: the resident memory then hangs
    on that thread getting the lock and a core in time, 127 MB peaks for a 204 MB layer on a busy
    machine, and the time saved was lost to the faults and TLB flushes it caused.)  A region running past the end of the
    file is never mapped (touching a page past the end would kill the process): read as a stream, it
    is reported truncated."""
    import os

    if size is not None and length > size:
        raise BlobError(f"{what} {digest}: more than the declared {size} bytes")
    hasher = digest.hasher()
    if length > 0:
        import mmap

        start = offset - offset % mmap.ALLOCATIONGRANULARITY
        try:
            if os.fstat(fd).st_size < offset + length:
                return False
            mapped = mmap.mmap(fd, offset - start + length, prot=mmap.PROT_READ, offset=start)
        except (OSError, ValueError):  # not mappable (a special file...)
            return False
        drop = getattr(mmap, "MADV_DONTNEED", None)
        with mapped, memoryview(mapped) as view:
            pos, end = offset - start, offset - start + length
            while pos < end:
                stop = min(end, pos - pos % MAP_WINDOW + MAP_WINDOW)
                with view[pos:stop] as window:
                    hasher.update(window)
                if drop is not None:
                    done = pos - pos % mmap.PAGESIZE
                    mapped.madvise(drop, done, stop - done)
                pos = stop
    _check(hasher, length, digest, size, what)
    return True


class DiffIdCheck:
    """A layer's uncompressed bytes, hashed as they are consumed, against the diff_id its image config
    claims: ``finish`` (at EOF) raises ``BlobError`` on a mismatch.  The SBOM reader hashes on its
    parsing thread with this, while another thread inflates: two cores share the work."""

    def __init__(self, layer: Digest, diff_id: Digest) -> None:
        self._layer = layer
        self._diff_id = diff_id
        self._hasher = diff_id.hasher()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hasher.update(data)

    def finish(self) -> None:
        got = self._hasher.hexdigest()
        if got != self._diff_id.hex:
            raise _diff_id_mismatch(self._layer, self._diff_id, got)


def _diff_id_mismatch(layer: Digest, diff_id: Digest, got: str) -> BlobError:
    return BlobError(
        f"layer {layer}: uncompressed content is {diff_id.algorithm}:{got}, "
        f"but the image config claims diff_id {diff_id}"
    )


class _DiffIdReader(VerifyingReader):
    """An uncompressed layer stream that must hash to the diff_id the image config claims for it."""

    def __init__(self, raw: BinaryIO, layer: Digest, diff_id: Digest) -> None:
        super().__init__(raw, diff_id, None, f"layer {layer}")
        self._layer = layer

    def _finish(self) -> None:
        self._done = True
        got = self._hasher.hexdigest()
        if got != self._digest.hex:
            raise _diff_id_mismatch(self._layer, self._digest, got)


def verified_diff_id(stream: BinaryIO, layer: Digest, diff_id: Digest) -> BinaryIO:
    """``stream`` (a layer's uncompressed tar) checked against its claimed ``diff_id`` at EOF.

    Whatever is keyed by a diff_id (the SBOM layer cache) must only be written once
    this stream has been read to its end without an error.
    """
    return cast("BinaryIO", io.BufferedReader(_DiffIdReader(stream, layer, diff_id), buffer_size=1 << 20))


def verified(raw: BinaryIO, digest: Digest, size: int | None, what: str = "blob") -> BinaryIO:
    return cast("BinaryIO", io.BufferedReader(VerifyingReader(raw, digest, size, what), buffer_size=1 << 20))


def read_verified(raw: BinaryIO, digest: Digest, size: int | None, limit: int, what: str) -> bytes:
    """Read a whole small blob (manifest, config) with a hard size limit, verified."""
    if size is not None and size > limit:
        raise BlobError(f"{what} {digest} is {size} bytes, more than the {limit}-byte limit")
    with verified(raw, digest, size, what) as f:
        data = f.read(limit + 1)
        if len(data) > limit:
            raise BlobError(f"{what} {digest} is more than the {limit}-byte limit")
        f.read()  # reach EOF so the digest is checked
    return data


class _Decoder(io.RawIOBase):
    """A readable stream decoding ``raw`` (closed with it); errors name ``what``."""

    def __init__(self, raw: BinaryIO, what: str) -> None:
        super().__init__()
        self._raw = raw
        self._what = what

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


class _GzipStream(_Decoder):
    """Multi-member gzip decoder that reports truncation as BlobError, not EOFError.

    Inflating is done by ISA-L (``isal``): the same DEFLATE, about twice as fast as zlib on
    layers, and it releases the GIL as zlib does.  Raw input is read a megabyte at a time.
    """

    def __init__(self, raw: BinaryIO, what: str) -> None:
        from isal import isal_zlib  # only when a gzip layer is read

        super().__init__(raw, what)
        self._zlib: Any = isal_zlib
        self._d = isal_zlib.decompressobj(16 + isal_zlib.MAX_WBITS)
        self._buf = b""
        self._eof = False

    def readinto(self, b: Any) -> int:
        view = memoryview(b)
        while not self._buf and not self._eof:
            data = self._d.unconsumed_tail or self._raw.read(_GZIP_READ)
            if not data:
                if not self._d.eof:
                    raise BlobError(f"{self._what}: truncated gzip stream")
                self._eof = True
                break
            try:
                self._buf = self._d.decompress(data, len(view))
                if self._d.eof:
                    rest = self._d.unused_data
                    if rest.strip(b"\x00"):
                        self._d = self._zlib.decompressobj(16 + self._zlib.MAX_WBITS)
                        self._buf += self._d.decompress(rest, len(view))
            except self._zlib.error as exc:
                raise BlobError(f"{self._what}: corrupt gzip data: {exc}") from exc
        n = min(len(view), len(self._buf))
        view[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class _ZstdStream(_Decoder):
    def __init__(self, raw: BinaryIO, what: str) -> None:
        import zstandard  # most layers are gzip or plain tar: not imported on every start-up

        super().__init__(raw, what)
        self._zstd_error = zstandard.ZstdError
        self._reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)

    def readinto(self, b: Any) -> int:
        try:
            data = self._reader.read(len(b))
        except self._zstd_error as exc:
            raise BlobError(f"{self._what}: corrupt zstd data: {exc}") from exc
        n = len(data)
        memoryview(b)[:n] = data
        return n


def decompressed(stream: BinaryIO, what: str = "layer") -> BinaryIO:
    """Decompress gzip / zstd / plain tar, chosen by magic bytes (media types lie in the wild)."""
    buffered: Any = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(cast("Any", stream))
    head = buffered.peek(4)[:4]
    raw: io.RawIOBase
    if head.startswith(GZIP_MAGIC):
        raw = _GzipStream(buffered, what)
    elif head.startswith(ZSTD_MAGIC):
        raw = _ZstdStream(buffered, what)
    else:
        return cast("BinaryIO", buffered)
    return cast("BinaryIO", io.BufferedReader(raw, buffer_size=1 << 20))


def gzip_bytes(data: bytes, level: int = 6) -> bytes:
    """Deterministic gzip (mtime 0, no file name), as reproducible builds need."""
    import gzip  # writing only

    return gzip.compress(data, compresslevel=level, mtime=0)
