"""Gzip for pushing uncompressed layers: ISA-L's deflate (the ``isal`` package), zlib without it.

A push gzips each uncompressed layer (from a docker-archive, or a layout written without
compression) as Docker and skopeo do.  Which bytes come out does not matter for correctness: the
pushed manifest names the compressed blob by its digest, and the blob-info cache records which
blob each diff_id became, so a later push reuses it whatever compressor made it.  It matters for
speed: zlib at level 6 gzips about 40 MB/s of text-like tar on the bench machine, ISA-L at its
default level 2 about 300 MB/s with a slightly smaller result (0.442 of the input against zlib's
0.450 on the bench's text layer), and it passes over incompressible data ten times faster.

``layer_from_tar`` (builds) keeps zlib at level 6: a build's layer digests are part of its
reproducibility.  Without an ``isal`` wheel for the platform, pushes fall back to zlib level 6.

The result is deterministic for a given compressor: no file name, modification time 0, OS byte
255 ("unknown").
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from giropops.oci.memory import FileSlice
from giropops.oci.model import Digest

_CHUNK = 1 << 20
ISAL_LEVEL = 2
ZLIB_LEVEL = 6


def _compressor() -> tuple[Any, Callable[[Any, int], int]]:
    """A raw-deflate compressor and the crc32 to go with it: ISA-L's when installed."""
    try:
        from isal import isal_zlib
    except ImportError:  # no wheel for this platform: zlib, as builds use
        return zlib.compressobj(ZLIB_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS), zlib.crc32
    return isal_zlib.compressobj(ISAL_LEVEL, isal_zlib.DEFLATED, -15), isal_zlib.crc32


class _Spool:
    """An anonymous temporary file that lives as long as an opener of it."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()

    def opener(self, size: int) -> BinaryIO:
        return cast(BinaryIO, io.BufferedReader(FileSlice(self.file.fileno(), 0, size, owner=self), _CHUNK))


def gzip_for_push(src: BinaryIO) -> tuple[Callable[[], BinaryIO], Digest, int]:
    """Gzip ``src`` to its end into a temporary file: an opener of the result, its digest and size.

    ``src`` is read once and not hashed here: a layer's stream verifies its own digest at EOF
    (and raises ``BlobError`` on a mismatch, before anything is pushed).
    """
    spool = _Spool()
    out = spool.file
    sha = hashlib.sha256()
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    out.write(header)
    sha.update(header)
    size = len(header)
    deflate, crc32 = _compressor()
    crc = 0
    length = 0
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    readinto = cast(io.BufferedIOBase, src).readinto  # layer streams are buffered readers
    while n := readinto(view):
        chunk = view[:n]
        crc = crc32(chunk, crc)
        length += n
        data = deflate.compress(chunk)
        if data:
            out.write(data)
            sha.update(data)
            size += len(data)
    tail = deflate.flush() + crc.to_bytes(4, "little") + (length & 0xFFFFFFFF).to_bytes(4, "little")
    out.write(tail)
    sha.update(tail)
    size += len(tail)
    out.flush()
    return (lambda: spool.opener(size)), Digest("sha256", sha.hexdigest()), size
