import gzip
import hashlib
import io
import json

import pytest

from giropops.errors import BlobError, ManifestError
from giropops.oci import mediatypes as mt
from giropops.oci.blob import decompressed, read_verified, verified
from giropops.oci.model import Digest, Index, Manifest, Platform


def _desc(data: bytes, media_type: str, **extra):
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data), **extra}


def test_manifest_round_trips_through_json():
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
           "config": _desc(b"{}", mt.OCI_CONFIG),
           "layers": [_desc(b"x", mt.OCI_LAYER_GZIP)], "annotations": {"a": "b"}}
    m = Manifest.from_bytes(json.dumps(doc).encode())
    assert m.to_json() == doc
    assert m.layers[0].size == 1


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"schemaVersion": 2, "mediaType": "application/x-evil", "config": {}, "layers": []}', "unsupported"),
        (b'{"schemaVersion": 1, "mediaType": "' + mt.OCI_MANIFEST.encode() + b'", "config": {}, "layers": []}',
         "schemaVersion"),
        (b" " * (mt.MAX_MANIFEST_BYTES + 1), "limit"),
    ],
)
def test_manifest_rejects_hostile_documents(raw, needle):
    with pytest.raises(ManifestError, match=needle):
        Manifest.from_bytes(raw)


def test_negative_size_and_bad_digest_are_refused():
    with pytest.raises(ManifestError):
        Digest.parse("sha256:" + "g" * 64)
    doc = {"mediaType": mt.OCI_LAYER, "digest": "sha256:" + "a" * 64, "size": -1}
    with pytest.raises(ManifestError):
        Manifest.from_json({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                            "config": doc, "layers": []})


def test_index_selects_platform_and_skips_attestations():
    amd = _desc(b"amd", mt.OCI_MANIFEST, platform={"os": "linux", "architecture": "amd64"})
    arm = _desc(b"arm", mt.OCI_MANIFEST, platform={"os": "linux", "architecture": "arm64", "variant": "v8"})
    att = _desc(b"att", mt.OCI_MANIFEST, platform={"os": "unknown", "architecture": "unknown"})
    idx = Index.from_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [att, amd, arm]})
    assert idx.select(Platform.parse("linux/amd64")).digest == Digest.parse(amd["digest"])
    assert idx.select(Platform.parse("linux/arm64")).digest == Digest.parse(arm["digest"])
    with pytest.raises(ManifestError, match="linux/s390x"):
        idx.select(Platform.parse("linux/s390x"))


def test_verified_stream_detects_substituted_content():
    data = b"hello world"
    good = Digest.of(data)
    assert read_verified(io.BytesIO(data), good, len(data), 100, "blob") == data
    with pytest.raises(BlobError, match="does not match"):
        read_verified(io.BytesIO(b"hello WORLD"), good, len(data), 100, "blob")
    with pytest.raises(BlobError, match="truncated"):
        verified(io.BytesIO(data[:5]), good, len(data)).read()
    with pytest.raises(BlobError, match="more than"):
        verified(io.BytesIO(data + b"!"), good, len(data)).read()


def test_decompressed_detects_gzip_and_truncation():
    payload = b"tar bytes" * 1000
    gz = gzip.compress(payload)
    assert decompressed(io.BytesIO(gz)).read() == payload
    assert decompressed(io.BytesIO(payload)).read() == payload
    with pytest.raises(BlobError, match="truncated gzip"):
        decompressed(io.BytesIO(gz[: len(gz) // 2])).read()


def test_small_digests_before_hashlib_is_loaded_match_the_published_vectors() -> None:
    """``Digest.of`` hashes a manifest with the interpreter's own sha256/sha512 while ``hashlib`` (OpenSSL) is
    not loaded: the FIPS 180-2 test vectors for "abc", computed in a fresh interpreter."""
    import subprocess
    import sys

    code = ("import sys\nfrom giropops.oci.model import Digest\n"
            "print(Digest.of(b'abc'), Digest.of(b'abc', 'sha512'), 'hashlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.split() == [
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "False",
    ]
