"""gzip layers as registries and tools write them: several members (pigz, concatenated streams), zero
padding after the last member, outputs much larger than one read; corrupt data is one BlobError."""

from __future__ import annotations

import gzip
import io
import os
import zlib

import pytest

from giropops.errors import BlobError
from giropops.oci.blob import decompressed


def test_multi_member_gzip_is_read_to_the_end() -> None:
    parts = [os.urandom(300_000) + b"\0" * 2_000_000, b"second member" * 50_000, b"x"]
    gz = b"".join(gzip.compress(p, compresslevel=1) for p in parts) + b"\0" * 1024
    out = decompressed(io.BytesIO(gz)).read()
    assert len(out) == sum(len(p) for p in parts)
    assert out == b"".join(parts)


def test_reads_of_any_size_give_the_stream_in_order() -> None:
    payload = bytes(range(256)) * 40_000  # 10 MiB
    stream = decompressed(io.BytesIO(gzip.compress(payload, mtime=0)))
    got = bytearray()
    sizes = [1, 511, 512, 1 << 20, 3 << 20, 7]
    i = 0
    while chunk := stream.read(sizes[i % len(sizes)]):
        got += chunk
        i += 1
    assert bytes(got) == payload


def test_corrupt_deflate_data_is_a_blob_error() -> None:
    good = gzip.compress(b"layer" * 100_000)
    bad = good[:40] + bytes(b ^ 0xFF for b in good[40:80]) + good[80:]
    with pytest.raises(BlobError, match="corrupt gzip data"):
        decompressed(io.BytesIO(bad)).read()
    # zlib itself agrees that the stream is broken
    with pytest.raises(zlib.error):
        zlib.decompress(bad, 16 + zlib.MAX_WBITS)
