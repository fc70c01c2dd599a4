"""``giropops copy --with-signatures``: signatures, attestations, SBOMs and referrers travel with the image.

Two real registries (CNCF distribution): the session one and a second started here; images are pushed with
skopeo. The source carries a cosign ``.sig``, an ``.att``, an ``.sbom`` and a cosign v3 bundle referrer;
the copy must verify with the same key (the bundle proves the referrer came along) or the same identity.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from giropops.errors import UsageError
from giropops.oci.model import Descriptor, Digest
from giropops.oci.reference import Reference
from giropops.oci.registry import RegistryClient, RegistryOptions
from giropops.sign import errors as se
from giropops.sign.bundle import BUNDLE_V03
from giropops.sign.dsse import STATEMENT_V1, sign_envelope
from giropops.sign.image import COSIGN_SIGN_PREDICATE, attached_manifest
from giropops.sign.keys import SigningKey
from giropops.sign.payload import go_json
from giropops.sign.storage import LayoutStore, RegistryStore
from giropops.sign.transfer import copy_signatures
from tests.sign.conftest import KeyPair
from tests.sign.test_keyless import ID, _layout
from tests.sign.test_registry import giropops, push_image
from tests.support.services import Registry

EMPTY = b"{}"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
SPDX = b'{"spdxVersion": "SPDX-2.3", "name": "app", "packages": []}'


@pytest.fixture(scope="module")
def registry2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("registry2"))
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


def _bundle_referrer(client: RegistryClient, repo: str, subject: Digest, subject_size: int, key: SigningKey) -> Digest:
    """A cosign v3 style signature: a v0.3 bundle (DSSE, cosign/sign/v1 statement) as an OCI referrer."""
    statement = go_json({"_type": STATEMENT_V1, "subject": [{"digest": {"sha256": subject.hex},
                                                              "annotations": {"env": "prod"}}],
                         "predicateType": COSIGN_SIGN_PREDICATE, "predicate": {}})
    env = sign_envelope(key, statement)
    bundle = json.dumps({"mediaType": BUNDLE_V03, "verificationMaterial": {"publicKey": {"hint": "x"}},
                         "dsseEnvelope": env.to_json()}).encode()
    for blob in (EMPTY, bundle):
        client.push_blob(repo, Digest.of(blob), len(blob), lambda b=blob: io.BytesIO(b))
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": BUNDLE_V03,
        "config": {"mediaType": EMPTY_TYPE, "digest": str(Digest.of(EMPTY)), "size": 2},
        "layers": [{"mediaType": BUNDLE_V03, "digest": str(Digest.of(bundle)), "size": len(bundle)}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": str(subject),
                    "size": subject_size},
        "annotations": {"dev.sigstore.bundle.content": "dsse-envelope",
                        "dev.sigstore.bundle.predicateType": COSIGN_SIGN_PREDICATE},
    }).encode()
    return client.put_manifest(repo, str(Digest.of(manifest)), manifest, "application/vnd.oci.image.manifest.v1+json")


@pytest.fixture(scope="module")
def signed_source(registry: Registry, keypair: KeyPair, tmp_path_factory: pytest.TempPathFactory) -> Digest:
    tmp = tmp_path_factory.mktemp("src")
    digest = push_image(registry, tmp, "travel/app", "1", b"travelling image")
    ref = f"{registry.host}/travel/app:1"
    proc = giropops("sign", "--key", str(keypair.private), "-a", "env=prod", ref, password=keypair.password)
    assert proc.returncode == 0, proc.stderr
    pred = tmp / "vex.json"
    pred.write_text('{"@context": "https://openvex.dev/ns/v0.2.0", "statements": []}')
    proc = giropops("attest", "--key", str(keypair.private), "--type", "openvex", "--predicate", str(pred), ref,
                    password=keypair.password)
    assert proc.returncode == 0, proc.stderr
    client = RegistryClient(registry.host)
    store = RegistryStore(client, Reference.parse(ref))
    layer = Descriptor("text/spdx+json", Digest.of(SPDX), len(SPDX))
    raw, config = attached_manifest([layer])
    store.write_attached(digest, "sbom", raw, {layer.digest: SPDX, Digest.of(config): config})
    size = len(client.get_manifest("travel/app", "1")[0])
    _bundle_referrer(client, "travel/app", digest, size, SigningKey.load(keypair.private, keypair.password))
    return digest


def _check_copy(ref: str, keypair: KeyPair) -> None:
    proc = giropops("verify", "--key", str(keypair.public), "-a", "env=prod", ref)
    assert proc.returncode == 0, proc.stderr
    payloads = json.loads(proc.stdout)
    # the .sig payload and the referrer bundle's statement: both came along
    assert {p.get("predicateType", "simple-signing") for p in payloads} == {"simple-signing", COSIGN_SIGN_PREDICATE}
    proc = giropops("verify-attestation", "--key", str(keypair.public), "--type", "openvex", ref)
    assert proc.returncode == 0, proc.stderr


def test_registry_to_registry(registry, registry2, signed_source, keypair):
    src = f"{registry.host}/travel/app:1"
    proc = giropops("copy", "--with-signatures", "--quiet", src, f"{registry2.host}/mirror/app:1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(signed_source)
    _check_copy(f"{registry2.host}/mirror/app:1", keypair)
    a, b = RegistryClient(registry.host), RegistryClient(registry2.host)
    tag = f"sha256-{signed_source.hex}.sbom"
    assert b.get_manifest("mirror/app", tag)[0] == a.get_manifest("travel/app", tag)[0]
    assert [d.digest for d in b.referrers("mirror/app", signed_source).manifests] == \
        [d.digest for d in a.referrers("travel/app", signed_source).manifests]
    # without the flag nothing is attached, so verification fails: the flag is what carried them
    proc = giropops("copy", "--quiet", src, f"{registry2.host}/bare/app:1")
    assert proc.returncode == 0, proc.stderr
    proc = giropops("verify", "--key", str(keypair.public), f"{registry2.host}/bare/app:1")
    assert proc.returncode == se.NoSignaturesError.exit_code, proc.stderr


def test_registry_to_layout_to_registry(registry, registry2, signed_source, keypair, tmp_path):
    layout = tmp_path / "airgap.oci"
    proc = giropops("copy", "--with-signatures", "--quiet", f"{registry.host}/travel/app:1",
                    f"oci-dir://{layout}:app:1")
    assert proc.returncode == 0, proc.stderr
    _check_copy(f"oci-dir://{layout}:app:1", keypair)
    kinds = sorted(e.get("annotations", {}).get("kind", "") for e in
                   json.loads((layout / "index.json").read_text())["manifests"])
    assert kinds == ["", "dev.cosignproject.cosign/atts", "dev.cosignproject.cosign/image",
                     "dev.cosignproject.cosign/sboms", "dev.cosignproject.cosign/sigs"]
    proc = giropops("copy", "--with-signatures", "--quiet", f"oci-dir://{layout}:app:1",
                    f"{registry2.host}/airgapped/app:2")
    assert proc.returncode == 0, proc.stderr
    _check_copy(f"{registry2.host}/airgapped/app:2", keypair)


def test_with_signatures_needs_registry_or_layout(registry, signed_source, tmp_path):
    proc = giropops("copy", "--with-signatures", f"{registry.host}/travel/app:1", f"archive://{tmp_path}/a.tar")
    assert proc.returncode == UsageError.exit_code
    assert list(tmp_path.iterdir()) == []


def test_keyless_signature_travels(tmp_path):
    target = _layout(tmp_path / "src")
    src_root = Path(target.removeprefix("oci-dir://"))
    # a second layout holding only the image (as a copy without --with-signatures leaves it)
    dst_root = tmp_path / "dst"
    dst_root.mkdir()
    (dst_root / "blobs" / "sha256").mkdir(parents=True)
    (dst_root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = json.loads((src_root / "index.json").read_text())
    sigs = "dev.cosignproject.cosign/sigs"
    image = next(e for e in index["manifests"] if e.get("annotations", {}).get("kind") != sigs)
    image = {k: v for k, v in image.items() if k != "annotations"}
    digest = Digest.parse(image["digest"])
    (dst_root / "blobs" / "sha256" / digest.hex).write_bytes((src_root / "blobs" / "sha256" / digest.hex).read_bytes())
    (dst_root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [image]}))
    proc = giropops("verify", *ID, f"oci-dir://{dst_root}")
    assert proc.returncode == se.NoSignaturesError.exit_code, proc.stderr
    report = copy_signatures(LayoutStore(src_root, None, digest), LayoutStore(dst_root, None, digest), digest)
    assert list(report.attached) == ["sig"]
    proc = giropops("verify", *ID, f"oci-dir://{dst_root}")
    assert proc.returncode == 0, proc.stderr
    proc = giropops("verify", "--certificate-identity", "other@example.com", "--certificate-oidc-issuer",
                    "https://github.com/login/oauth", f"oci-dir://{dst_root}")
    assert proc.returncode == se.CertificateIdentityError.exit_code


def test_signatures_reach_a_registry_that_needs_credentials(registry, signed_source, keypair, tmp_path):
    from tests.support.services import write_htpasswd

    work = tmp_path / "authreg"
    work.mkdir()
    reg = Registry(work, htpasswd=write_htpasswd(work / "htpasswd", {"mirror": "s3cret-pw"}))
    reg.start()
    try:
        env = {"GIROPOPS_REGISTRY_USERNAME": "", "GIROPOPS_REGISTRY_PASSWORD": ""}
        proc = subprocess.run(
            [sys.executable, "-m", "giropops", "copy", "--with-signatures", "--quiet", "--username", "mirror",
             "--password-stdin", f"{registry.host}/travel/app:1", f"{reg.host}/private/app:1"],
            input="s3cret-pw\n", capture_output=True, text=True, timeout=300,
            env={**{k: v for k, v in os.environ.items() if k not in env}, "HOME": str(tmp_path)})
        assert proc.returncode == 0, proc.stderr
        client = RegistryClient(reg.host, RegistryOptions(username="mirror", password="s3cret-pw"))
        tag = f"sha256-{signed_source.hex}.sig"
        assert client.get_manifest("private/app", tag)[0] == RegistryClient(registry.host).get_manifest(
            "travel/app", tag)[0]
    finally:
        reg.stop()
