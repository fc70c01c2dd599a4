"""Signing and attesting an image in an OCI layout directory, offline, laid out as ``cosign save`` does."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from giropops.oci.model import Descriptor, Digest
from giropops.sign import errors as se
from giropops.sign.attached import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE, Trust
from giropops.sign.image import attached_manifest, attest_image, sign_image, tree, verify_attestations, verify_image
from giropops.sign.keys import SigningKey, VerifyingKey
from giropops.sign.storage import LayoutStore
from tests.support.services import require_binary


def test_sig_manifest_bytes_follow_go_containerregistry_field_order():
    """The ``.sig`` manifest and config, byte for byte, as cosign (go-containerregistry) writes them.

    This was proved against a cosign v3.0.4 capture from a GPL-3.0 project, which may not ship in this
    repository.  The expected bytes are now written out here by hand from go-containerregistry's
    ``v1.Manifest`` / ``v1.Descriptor`` / ``v1.ConfigFile`` field order (Go's encoding/json writes struct
    fields in declaration order, compact, zero time ``0001-01-01T00:00:00Z``), independently of
    ``attached_manifest``; the classic ``.sig`` layers themselves are verified against real cosign
    signatures in test_vectors (containers-image section).
    """
    payload = b'{"critical":{"identity":{"docker-reference":"example.invalid/app"},"image":{"docker-manifest-digest":' \
              b'"sha256:' + b"ab" * 32 + b'"},"type":"cosign container image signature"},"optional":null}'
    sig = "MEUCIQ" + "A" * 90 + "="
    pdigest = "sha256:" + hashlib.sha256(payload).hexdigest()
    layer = Descriptor(SIMPLE_SIGNING_MEDIA_TYPE, Digest.of(payload), len(payload), {SIGNATURE_ANNOTATION: sig})
    manifest, config = attached_manifest([layer])
    want_config = ('{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],'
                   '"os":"","rootfs":{"type":"layers","diff_ids":["' + pdigest + '"]},"config":{}}').encode()
    assert config == want_config
    want = ('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":'
            '"application/vnd.oci.image.config.v1+json","size":' + str(len(want_config)) + ',"digest":"sha256:'
            + hashlib.sha256(want_config).hexdigest() + '"},"layers":[{"mediaType":'
            '"application/vnd.dev.cosign.simplesigning.v1+json","size":' + str(len(payload)) + ',"digest":"'
            + pdigest + '","annotations":{"dev.cosignproject.cosign/signature":"' + sig + '"}}]}').encode()
    assert manifest == want


def _blob(root: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def make_layout(root: Path, name: str = "app:1", content: bytes = b"hello") -> Digest:
    root.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        tf.addfile(info, io.BytesIO(content))
    tar = buf.getvalue()
    layer = _blob(root, gzip.compress(tar, mtime=0))
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
                         "config": {}}).encode()
    cfg = _blob(root, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}]}).encode()
    m = _blob(root, manifest)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **m,
         "annotations": {"org.opencontainers.image.ref.name": name}}]}))
    return Digest.parse(m["digest"])


def test_sign_layout_offline_then_verify(tmp_path, keypair, keypair2):
    root = tmp_path / "layout"
    digest = make_layout(root)
    key = SigningKey.load(keypair.private, keypair.password)
    store = LayoutStore(root, "app:1")
    r1 = sign_image(store, key, {"env": "prod"})
    assert r1.subject.digest == digest and r1.added and r1.total == 1
    r2 = sign_image(store, SigningKey.load(keypair2.private, keypair2.password))
    assert r2.total == 2  # appended, not replaced
    index = json.loads((root / "index.json").read_text())
    kinds = [m.get("annotations", {}).get("kind") for m in index["manifests"]]
    assert kinds == ["dev.cosignproject.cosign/image", "dev.cosignproject.cosign/sigs"]
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "app:1"

    v1 = verify_image(LayoutStore(root), Trust(key=VerifyingKey.load(keypair.public)), {"env": "prod"})
    assert [p["critical"]["image"]["docker-manifest-digest"] for p in v1.payloads_json()] == [str(digest)]
    v2 = verify_image(LayoutStore(root), Trust(key=VerifyingKey.load(keypair2.public)))
    assert len(v2.signatures) == 1
    with pytest.raises(se.AnnotationsMismatchError):
        verify_image(LayoutStore(root), Trust(key=VerifyingKey.load(keypair.public)), {"env": "dev"})

    # the result is still a valid OCI layout for independent tools
    tool = require_binary("oci-image-tool")
    subprocess.run([tool, "validate", "--type", "image", "--ref", "name=app:1", str(root)], check=True,
                   capture_output=True)
    sigs = root / "blobs" / "sha256" / index["manifests"][1]["digest"].split(":")[1]
    subprocess.run([tool, "validate", "--type", "manifest", str(sigs)], check=True, capture_output=True)


def test_unsigned_layout_has_no_signatures(tmp_path, keypair):
    root = tmp_path / "layout"
    make_layout(root)
    with pytest.raises(se.NoSignaturesError):
        verify_image(LayoutStore(root), Trust(key=VerifyingKey.load(keypair.public)))


def test_attest_layout_and_verify_attestation(tmp_path, keypair):
    root = tmp_path / "layout"
    digest = make_layout(root)
    key = SigningKey.load(keypair.private, keypair.password)
    predicate = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}).encode()
    attest_image(LayoutStore(root), key, "cyclonedx", predicate)
    attest_image(LayoutStore(root), key, "custom", b"free text")
    _, atts = verify_attestations(LayoutStore(root), Trust(key=VerifyingKey.load(keypair.public)), "cyclonedx")
    assert [a.statement.predicate_type for a in atts] == ["https://cyclonedx.org/bom"]
    st = json.loads(atts[0].statement.raw)
    assert st["_type"] == "https://in-toto.io/Statement/v0.1"
    assert st["subject"] == [{"name": "app:1", "digest": {"sha256": digest.hex}}]
    assert st["predicate"]["bomFormat"] == "CycloneDX"
    with pytest.raises(se.NoMatchingAttestationError):
        verify_attestations(LayoutStore(root), Trust(key=VerifyingKey.load(keypair.public)), "slsaprovenance")
    _, entries = tree(LayoutStore(root))
    assert sorted(e.detail for e in entries if e.kind == "attestation") == [
        "https://cosign.sigstore.dev/attestation/v1", "https://cyclonedx.org/bom"]


def test_layout_blob_tampered_is_a_blob_mismatch(tmp_path, keypair):
    root = tmp_path / "layout"
    make_layout(root)
    key = SigningKey.load(keypair.private, keypair.password)
    result = sign_image(LayoutStore(root), key)
    blob = root / "blobs" / "sha256" / result.layer.digest.hex
    blob.write_bytes(blob.read_bytes().replace(b"critical", b"CRITICAL"))
    with pytest.raises(se.BlobMismatchError):
        verify_image(LayoutStore(root), Trust(key=VerifyingKey.load(keypair.public)))


def test_attestations_read_unverified_name_the_subject_only(tmp_path, keypair):
    from giropops.sign.image import has_attached, read_attestations_unverified

    root = tmp_path / "layout"
    digest = make_layout(root)
    store = LayoutStore(root)
    assert read_attestations_unverified(store, digest) == [] and not has_attached(store, digest, "att")
    key = SigningKey.load(keypair.private, keypair.password)
    attest_image(store, key, "slsaprovenance", json.dumps({"materials": []}).encode())
    (st,) = read_attestations_unverified(store, digest)
    assert st.predicate_type == "https://slsa.dev/provenance/v0.2" and has_attached(store, digest, "att")
    # the same .att entry read for another digest: its statement does not name that image
    assert read_attestations_unverified(store, Digest("sha256", "0" * 64)) == []
