"""A streaming tar reader with hard limits, for layers we do not trust.

``tarfile`` reads PAX and GNU long-name headers of any declared size into memory
and raises a variety of exceptions on malformed input; a layer is hostile input,
so this reader parses the 512-byte headers itself: metadata records above
``MAX_META_BYTES`` are skipped (their data discarded as it streams by), names are
returned raw for the caller to sanitize, and every structural problem is an
``SBOMError`` naming the layer and the offset.  Data is never buffered beyond the
chunk the caller asks for.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator

from giropops.errors import SBOMError
from giropops.runtime_typing import Protocol

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    import mmap
    from typing import BinaryIO

BLOCK = 512
MAX_META_BYTES = 1 << 20  # a PAX record or GNU long name larger than this is ignored
_CHUNK = 1 << 20
# More than the 1 MiB buffer of the verified and decompressed streams: a ``BufferedReader`` asked
# for more than its buffer reads straight into the result instead of copying through the buffer.
_PREFETCH_CHUNK = 2 << 20
_SMALL_READ = 4096  # what ``RegionReader`` reads after a skip, before it knows how dense the entries are

REGULAR = "file"
DIRECTORY = "dir"
SYMLINK = "symlink"
HARDLINK = "hardlink"
OTHER = "other"  # devices, fifos, sparse files: present in the index, never read

_TYPES = {
    b"0": REGULAR,
    b"\0": REGULAR,
    b"7": REGULAR,
    b"1": HARDLINK,
    b"2": SYMLINK,
    b"3": OTHER,
    b"4": OTHER,
    b"5": DIRECTORY,
    b"6": OTHER,
    b"S": OTHER,
}


_NO_DATA = frozenset({b"1", b"2", b"3", b"4", b"5", b"6"})
_META = frozenset({b"L", b"K", b"x", b"g"})  # records about the next entry: GNU long names, PAX headers
_ZERO_BLOCK = bytes(BLOCK)


class TarEntry:
    """One member's header, as the stream yields it (one per member: a plain slotted class, no dataclass)."""

    __slots__ = ("kind", "linkname", "mode", "name", "size")

    def __init__(self, name: str, kind: str, linkname: str, size: int, mode: int) -> None:
        self.name = name
        self.kind = kind
        self.linkname = linkname
        self.size = size
        self.mode = mode

    def __repr__(self) -> str:
        return (f"TarEntry(name={self.name!r}, kind={self.kind!r}, linkname={self.linkname!r}, "
                f"size={self.size!r}, mode={self.mode!r})")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not TarEntry:
            return NotImplemented
        assert isinstance(other, TarEntry)
        return (self.name, self.kind, self.linkname, self.size, self.mode) == (
            other.name, other.kind, other.linkname, other.size, other.mode)

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass it replaces


def _octal(field: bytes, what: str, offset: int) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for large numbers
        value = field[0] & 0x7F
        for b in field[1:]:
            value = (value << 8) | b
        return value
    try:  # the usual "0000644\0" / "00000001234 ": no NUL left once the padding is cut
        return int(field.rstrip(b" \0") or b"0", 8)
    except ValueError:  # a NUL inside (the number ends there) or not a number: the careful way
        pass
    text = field.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise SBOMError(f"{what}: corrupt tar header at offset {offset} (bad number {text[:20]!r})") from None


def _byte_sum(block: bytes) -> int:
    """``sum(block)`` of a 512-byte header, in C: Adler-32's first half is 1 plus the byte sum modulo
    65521, and the sum of 256 bytes is at most 65280, so each half's sum is exact (``sum`` walks the
    bytes as Python ints: half of the cost of a header)."""
    return (zlib.adler32(block[:256]) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _parse_pax(data: bytes) -> dict[str, str]:
    """``"%d %s=%s\\n"`` records; malformed records end the parse (what was read so far is kept)."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            break
        if length <= 0 or pos + length > len(data):
            break
        record = data[space + 1 : pos + length].rstrip(b"\n")
        key, eq, value = record.partition(b"=")
        if eq:
            out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


class TarReader:
    """Iterate entries; ``read_data(limit)`` returns up to ``limit`` bytes of the current entry."""

    def __init__(self, stream: BinaryIO, what: str) -> None:
        self._f = stream
        self._what = what
        self._offset = 0
        self._remaining = 0  # data bytes of the current entry not yet consumed
        self._padding = 0

    @property
    def offset(self) -> int:
        """The position in the stream: while an entry is current and none of its data is read, where
        that data starts."""
        return self._offset

    def _read_exact(self, n: int) -> bytes:
        parts: list[bytes] = []
        left = n
        while left:
            chunk = self._f.read(left)
            if not chunk:
                raise SBOMError(f"{self._what}: tar stream truncated at offset {self._offset}")
            parts.append(chunk)
            left -= len(chunk)
            self._offset += len(chunk)
        return b"".join(parts)

    def _skip(self, n: int) -> None:
        skip = getattr(self._f, "skip", None)
        if skip is not None:
            done = skip(n)
            self._offset += done
            if done != n:
                raise SBOMError(f"{self._what}: tar stream truncated at offset {self._offset}")
            return
        while n:
            chunk = self._f.read(min(n, _CHUNK))
            if not chunk:
                raise SBOMError(f"{self._what}: tar stream truncated at offset {self._offset}")
            n -= len(chunk)
            self._offset += len(chunk)

    def _finish_entry(self) -> None:
        left = self._remaining + self._padding
        if left:  # directories, links and empty files have nothing left to skip
            self._skip(left)
            self._remaining = 0
            self._padding = 0

    def read_data(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the current entry's data; the rest is skipped later."""
        n = min(limit, self._remaining)
        data = self._read_exact(n)
        self._remaining -= n
        return data

    def read_data_buffer(self, limit: int) -> bytearray:
        """As ``read_data``, into one preallocated buffer: a large entry is held once, not twice."""
        n = min(limit, self._remaining)
        buf = bytearray(n)
        view = memoryview(buf)
        pos = 0
        while pos < n:
            chunk = self._f.read(min(n - pos, _CHUNK))
            if not chunk:
                raise SBOMError(f"{self._what}: tar stream truncated at offset {self._offset}")
            view[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
            self._offset += len(chunk)
        view.release()
        self._remaining -= n
        return buf

    def read_data_mapped(self, limit: int) -> mmap.mmap:
        """As ``read_data_buffer``, into an unlinked temporary file mapped read-only: a large entry
        (an executable) costs the resident memory of the pages later looked at, not its size.
        Raises ``OSError`` when no temporary file can be written."""
        import mmap  # only for the few entries large enough to be worth it
        import tempfile

        n = min(limit, self._remaining)
        with tempfile.TemporaryFile() as tmp:  # unlinked already: nothing is left behind
            pos = 0
            while pos < n:
                chunk = self._f.read(min(n - pos, _CHUNK))
                if not chunk:
                    raise SBOMError(f"{self._what}: tar stream truncated at offset {self._offset}")
                self._offset += len(chunk)
                self._remaining -= len(chunk)
                try:
                    tmp.write(chunk)
                except OSError as exc:  # part of the entry is consumed: no way back to memory
                    raise SBOMError(f"{self._what}: cannot write a temporary file: {exc.strerror or exc}") from exc
                pos += len(chunk)
            tmp.flush()
            return mmap.mmap(tmp.fileno(), n, prot=mmap.PROT_READ)  # n > 0: only large entries come here

    def read_data_region(self, limit: int) -> FileRegion | None:
        """As ``read_data``, as a ``FileRegion`` read only where it is sliced, when the stream is a
        region of a local file (``RegionReader``); None (nothing consumed) otherwise."""
        region = getattr(self._f, "region", None)
        if region is None:
            return None
        n = min(limit, self._remaining)
        out: FileRegion | None = region(n, self._what, self._offset)
        if out is not None:
            self._offset += n
            self._remaining -= n
        return out

    def _data_block(self, size: int) -> bytes | None:
        """Read a metadata record's data, or discard it (returning None) when it is too large."""
        padded = -size % BLOCK
        if size > MAX_META_BYTES:
            self._skip(size + padded)
            return None
        data = self._read_exact(size)
        self._skip(padded)
        return data

    def __iter__(self) -> Iterator[TarEntry]:
        long_name: str | None = None
        long_link: str | None = None
        pax: dict[str, str] = {}
        global_pax: dict[str, str] = {}
        read = self._f.read
        what = self._what
        while True:
            left = self._remaining + self._padding  # the rest of the previous entry (``_finish_entry``)
            if left:
                self._skip(left)
                self._remaining = self._padding = 0
            header_offset = self._offset
            header = read(BLOCK)
            self._offset += len(header)
            if len(header) < BLOCK:
                if not header:
                    return  # EOF without end-of-archive blocks: tolerated, as GNU tar does
                raise SBOMError(f"{what}: tar stream truncated at offset {header_offset}")
            if header == _ZERO_BLOCK:
                return
            # the usual "0000644\0" numbers parsed inline (``_octal``'s first try); anything else
            # (base-256, a NUL inside, not a number: no int() takes them) by ``_octal`` itself
            try:
                stored = int(header[148:156].rstrip(b" \0") or b"0", 8)
            except ValueError:
                stored = _octal(header[148:156], what, header_offset)
            if stored != _byte_sum(header) - sum(header[148:156]) + 8 * 32:
                raise SBOMError(f"{what}: corrupt tar header at offset {header_offset} (checksum mismatch)")
            try:
                size = int(header[124:136].rstrip(b" \0") or b"0", 8)
            except ValueError:
                size = _octal(header[124:136], what, header_offset)
            typeflag = header[156:157]
            if typeflag in _META:
                data = self._data_block(size)
                if data is not None:
                    if typeflag == b"L":
                        long_name = _text(data)
                    elif typeflag == b"K":
                        long_link = _text(data)
                    elif typeflag == b"x":
                        pax = _parse_pax(data)
                    else:
                        global_pax.update(_parse_pax(data))
                continue
            name = header[0:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            if header[345] and header[257:262] == b"ustar":  # a prefix field that is not empty
                prefix = _text(header[345:500])
                if prefix:
                    name = f"{prefix}/{name}"
            linkname = _text(header[157:257]) if header[157] else ""
            if long_name is not None:
                name = long_name
                long_name = None
            if long_link is not None:
                linkname = long_link
                long_link = None
            if pax or global_pax:
                merged = {**global_pax, **pax}
                pax = {}
                name = merged.get("path", name)
                linkname = merged.get("linkpath", linkname)
                if "size" in merged:
                    try:
                        size = int(merged["size"])
                    except ValueError:
                        raise SBOMError(f"{what}: corrupt PAX size at offset {header_offset}") from None
            if size < 0:
                raise SBOMError(f"{what}: negative entry size at offset {header_offset}")
            if typeflag in _NO_DATA:
                # As tarfile does: links, directories and devices carry no data whatever the size
                # field says (some writers put the target's size on hard links).
                size = 0
            self._remaining = size
            self._padding = -size % BLOCK
            try:
                mode = int(header[100:108].rstrip(b" \0") or b"0", 8)
            except ValueError:
                mode = _octal(header[100:108], what, header_offset)
            yield TarEntry(name, _TYPES.get(typeflag, OTHER), linkname, size, mode)

    def drain(self) -> None:
        """Read to the end of the stream so a verifying reader can check the digest."""
        self._finish_entry()
        drain = getattr(self._f, "drain", None)
        if drain is not None:
            drain()
            return
        while self._f.read(_CHUNK):
            pass


class DigestCheck(Protocol):
    """Sees every byte of the stream in order; ``finish`` at its end raises if they were not the expected ones."""

    def update(self, data: bytes) -> None: ...

    def finish(self) -> None: ...


class FileRegion:
    """``length`` bytes of a file from ``offset``, read with ``pread`` only where sliced: what an
    extractor that reads a few parts of a large entry (an executable's headers and a section or two)
    is given instead of a copy of all of it.  Slices behave as on ``bytes`` (single bytes are taken
    from a slice); a file that turns out shorter than the region is an ``SBOMError``, as a truncated
    stream is."""

    __slots__ = ("_at", "_fd", "_length", "_offset", "_what")

    def __init__(self, fd: int, offset: int, length: int, what: str, at: int = 0) -> None:
        self._fd = fd
        self._offset = offset
        self._length = length
        self._what = what
        self._at = at  # where the region starts in the stream the caller reads (for error messages)

    def __len__(self) -> int:
        return self._length

    def _read(self, start: int, stop: int) -> bytes:
        if stop <= start:
            return b""
        data = os.pread(self._fd, stop - start, self._offset + start)
        if len(data) != stop - start:
            raise SBOMError(f"{self._what}: tar stream truncated at offset {self._at + start + len(data)}")
        return data

    def __getitem__(self, key: slice) -> bytes:
        start, stop, step = key.indices(self._length)
        if step != 1:
            return self._read(0, self._length)[key]
        return self._read(start, stop)

    def find(self, sub: bytes, start: int = 0) -> int:
        """As ``bytes.find``: the whole region is read (what a scan of all of it needs anyway)."""
        return self._read(0, self._length).find(sub, start)


class RegionReader:
    """A plain (uncompressed) tar lying in a region of a local file, read with ``pread``: headers and
    the contents kept are read, every other body is skipped by moving the position, not read.

    For a layer whose digest is proven elsewhere (``giropops.sbom.generate`` reads the whole blob
    verified on another thread): the parse then copies a fraction of the bytes instead of all."""

    def __init__(self, fd: int, offset: int, length: int, buffer: int = 1 << 16) -> None:
        self._fd = fd
        self._pos = offset
        self._end = offset + length
        self._size = buffer
        self._span = min(buffer, _SMALL_READ)  # the next refill: grows while reads run on, shrinks after a skip
        self._buf = b""
        self._buf_at = offset

    def read(self, n: int = -1) -> bytes:
        left = self._end - self._pos
        n = left if n < 0 else min(n, left)
        if n <= 0:
            return b""
        at = self._pos - self._buf_at
        if 0 <= at and at + n <= len(self._buf):
            out = self._buf[at : at + n]
        elif n >= self._size:
            out = os.pread(self._fd, n, self._pos)
        else:
            # A refill right where the buffer ended: small entries one after the other, read more at
            # once; after a body skipped past it, little (a header, perhaps a few small entries): the
            # bytes of skipped bodies are not copied into a buffer only to be thrown away.
            if at == len(self._buf):
                self._span = min(self._span * 2, self._size)
            else:
                self._span = min(self._size, _SMALL_READ)
            self._buf = os.pread(self._fd, min(max(self._span, n), left), self._pos)
            self._buf_at = self._pos
            out = self._buf[:n]
        self._pos += len(out)
        return out

    def skip(self, n: int) -> int:
        done = max(0, min(n, self._end - self._pos))
        self._pos += done
        return done

    def region(self, n: int, what: str, at: int) -> FileRegion | None:
        """The next ``n`` bytes as a ``FileRegion`` (consumed: the position moves past them), or None
        when fewer than ``n`` are left (the caller reads them, and meets the truncation).  ``at``: where
        they start in the caller's stream, for its error messages."""
        if n > self._end - self._pos:
            return None
        out = FileRegion(self._fd, self._pos, n, what, at)
        self._pos += n
        return out

    def drain(self) -> None:
        self._pos = self._end


class Prefetcher:
    """Reads a stream in a background thread while the caller parses what was read.

    Decompression, digest verification and reading from disk or network all
    release the GIL, so on two cores they overlap with tar parsing instead of
    adding to it.  Errors of the reading side (a digest mismatch at EOF) are
    raised in the caller's thread, at the point the caller reaches them.
    A ``check`` (a layer's diff_id) hashes each chunk as the caller takes it, so
    that inflating (reading thread) and hashing (caller) run on two cores.
    """

    def __init__(
        self, stream: BinaryIO, chunk: int = _PREFETCH_CHUNK, depth: int = 4, check: DigestCheck | None = None
    ) -> None:
        import queue  # imported here, with threading: a warm run reads no layer
        import threading

        self._check = check
        self._full = queue.Full
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._thread = threading.Thread(target=self._run, args=(stream, chunk), daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except self._full:
                continue
        return False

    def _run(self, stream: BinaryIO, chunk: int) -> None:
        try:
            while not self._stop.is_set():
                data = stream.read(chunk)
                if not data:
                    break
                if not self._put(data):
                    return
            self._put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread, which re-raises it
            self._put(exc)

    def _fill(self) -> bool:
        if self._eof:
            return False
        item = self._queue.get()
        if item is None:
            self._eof = True
            if self._check is not None:
                self._check.finish()
            return False
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        if self._check is not None:
            self._check.update(item)  # here, not in the reading thread: hashing releases the GIL
        self._buf, self._pos = item, 0
        return True

    def read(self, n: int = -1) -> bytes:
        if self._pos >= len(self._buf) and not self._fill():
            return b""
        if n < 0:
            n = len(self._buf) - self._pos
        out = self._buf[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def skip(self, n: int) -> int:
        done = 0
        while done < n:
            if self._pos >= len(self._buf) and not self._fill():
                break
            step = min(n - done, len(self._buf) - self._pos)
            self._pos += step
            done += step
        return done

    def drain(self) -> None:
        while self._fill():
            pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
