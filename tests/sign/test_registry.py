"""Whole commands against a real registry (CNCF distribution): sign, verify, attest, tree, and tampering.

Images are pushed with skopeo (an independent tool); every check runs ``python -m giropops`` as a user would.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from giropops.oci.model import Digest
from giropops.oci.registry import RegistryClient
from giropops.sign import errors as se
from tests.sign.conftest import KeyPair
from tests.sign.test_image_layout import make_layout
from tests.support.services import Registry, require_binary

SIMPLE = "application/vnd.dev.cosign.simplesigning.v1+json"


def giropops(*args: str, password: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"}
    if password is not None:
        env["COSIGN_PASSWORD"] = password.decode()
    proc = subprocess.run([sys.executable, "-m", "giropops", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, stdin=subprocess.DEVNULL, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def push_image(registry: Registry, tmp: Path, repo: str, tag: str = "1", content: bytes = b"hello") -> Digest:
    layout = tmp / f"layout-{repo.replace('/', '_')}-{tag}-{hashlib.sha256(content).hexdigest()[:8]}"
    make_layout(layout, "img", content)
    skopeo = require_binary("skopeo")
    subprocess.run([skopeo, "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:img",
                    f"docker://{registry.host}/{repo}:{tag}"], check=True, capture_output=True, timeout=120)
    raw, _, digest = RegistryClient(registry.host).get_manifest(repo, tag)
    assert Digest.of(raw) == digest
    return digest


def sig_manifest(registry: Registry, repo: str, digest: Digest, suffix: str = "sig") -> dict:
    raw, _, _ = RegistryClient(registry.host).get_manifest(repo, f"sha256-{digest.hex}.{suffix}")
    return json.loads(raw)


def test_generate_sign_verify_round_trip(registry, tmp_path):
    proc = giropops("generate-key-pair", password=b"s3cret", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "cosign.key").stat().st_mode & 0o777 == 0o600
    digest = push_image(registry, tmp_path, "rt/app")
    image = f"{registry.host}/rt/app:1"

    proc = giropops("sign", "--key", str(tmp_path / "cosign.key"), "--tlog-upload=false", "-a", "team=ops", image,
                    password=b"s3cret")
    assert proc.returncode == 0, proc.stderr
    assert str(digest) in proc.stderr  # signing a tag says which digest it signs
    assert "transparency log" in proc.stderr

    m = sig_manifest(registry, "rt/app", digest)
    assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert m["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    [layer] = m["layers"]
    assert layer["mediaType"] == SIMPLE
    assert base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"], validate=True)

    proc = giropops("verify", "--key", str(tmp_path / "cosign.pub"), "-a", "team=ops", image)
    assert proc.returncode == 0, proc.stderr
    [payload] = json.loads(proc.stdout)
    assert payload["critical"]["image"]["docker-manifest-digest"] == str(digest)
    assert payload["critical"]["identity"]["docker-reference"] == f"{registry.host}/rt/app"
    assert payload["optional"] == {"team": "ops"}
    assert "The signatures were verified against the specified public key" in proc.stderr

    proc = giropops("verify", "--key", str(tmp_path / "cosign.pub"), "-a", "team=dev", image)
    assert proc.returncode == se.AnnotationsMismatchError.exit_code


def test_unsigned_image_has_no_signatures(registry, tmp_path, keypair):
    push_image(registry, tmp_path, "rt/unsigned")
    proc = giropops("verify", "--key", str(keypair.public), f"{registry.host}/rt/unsigned:1")
    assert proc.returncode == se.NoSignaturesError.exit_code
    assert "no signatures" in proc.stderr


def _sign(registry: Registry, kp: KeyPair, image: str) -> None:
    proc = giropops("sign", "--key", str(kp.private), image, password=kp.password)
    assert proc.returncode == 0, proc.stderr


def test_two_keys_both_verify_and_signatures_append(registry, tmp_path, keypair, keypair2):
    digest = push_image(registry, tmp_path, "rt/two")
    image = f"{registry.host}/rt/two:1"
    _sign(registry, keypair, image)
    _sign(registry, keypair2, f"{registry.host}/rt/two@{digest}")
    assert len(sig_manifest(registry, "rt/two", digest)["layers"]) == 2
    for kp in (keypair, keypair2):
        proc = giropops("verify", "--key", str(kp.public), image)
        assert proc.returncode == 0, proc.stderr
        assert len(json.loads(proc.stdout)) == 1


# ------------------------------------------------------------------------------- tampering


@pytest.fixture
def signed(registry, tmp_path, keypair) -> Iterator[tuple[str, Digest]]:
    repo = f"tamper/{tmp_path.name.lower().replace('_', '-')[:40]}"
    digest = push_image(registry, tmp_path, repo)
    _sign(registry, keypair, f"{registry.host}/{repo}:1")
    yield repo, digest


def _rewrite_sig_layer(registry: Registry, repo: str, digest: Digest, payload: bytes | None = None,
                       signature: str | None = None) -> None:
    """Replace the .sig manifest's layer consistently (new blob, new descriptor) as an attacker would."""
    client = RegistryClient(registry.host)
    m = sig_manifest(registry, repo, digest)
    layer = m["layers"][0]
    if payload is not None:
        d = Digest.of(payload)
        client.push_blob(repo, d, len(payload), lambda: io.BytesIO(payload))
        layer["digest"], layer["size"] = str(d), len(payload)
    if signature is not None:
        layer["annotations"]["dev.cosignproject.cosign/signature"] = signature
    raw = json.dumps(m, separators=(",", ":")).encode()
    client.put_manifest(repo, f"sha256-{digest.hex}.sig", raw, m["mediaType"])


def _payload(registry: Registry, repo: str, digest: Digest) -> bytes:
    m = sig_manifest(registry, repo, digest)
    layer = m["layers"][0]
    with RegistryClient(registry.host).open_blob(repo, Digest.parse(layer["digest"]), layer["size"]) as f:
        return f.read()


def test_tamper_payload_edited(registry, signed, keypair):
    repo, digest = signed
    payload = _payload(registry, repo, digest).replace(b'"optional":null', b'"optional":{"evil":"yes"}')
    _rewrite_sig_layer(registry, repo, digest, payload=payload)
    proc = giropops("verify", "--key", str(keypair.public), f"{registry.host}/{repo}:1")
    assert proc.returncode == se.NoValidSignatureError.exit_code, proc.stderr


def test_tamper_digest_swapped(registry, signed, keypair, tmp_path):
    """The tag now points to other content; the old signatures copied next to it do not bind it."""
    repo, digest = signed
    new = push_image(registry, tmp_path, repo, content=b"evil content")
    m = sig_manifest(registry, repo, digest)
    RegistryClient(registry.host).put_manifest(repo, f"sha256-{new.hex}.sig",
                                               json.dumps(m, separators=(",", ":")).encode(), m["mediaType"])
    proc = giropops("verify", "--key", str(keypair.public), f"{registry.host}/{repo}:1")
    assert proc.returncode == se.DigestMismatchError.exit_code, proc.stderr
    assert str(digest) in proc.stderr


def test_tamper_signature_from_another_key(registry, tmp_path, keypair, keypair2):
    digest = push_image(registry, tmp_path, "tamper/otherkey")
    _sign(registry, keypair2, f"{registry.host}/tamper/otherkey:1")
    proc = giropops("verify", "--key", str(keypair.public), f"{registry.host}/tamper/otherkey@{digest}")
    assert proc.returncode == se.NoValidSignatureError.exit_code, proc.stderr


def test_tamper_base64_corrupted(registry, signed, keypair):
    repo, digest = signed
    sig = sig_manifest(registry, repo, digest)["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"]
    _rewrite_sig_layer(registry, repo, digest, signature=sig + "=")
    proc = giropops("verify", "--key", str(keypair.public), f"{registry.host}/{repo}:1")
    assert proc.returncode == se.SignatureEncodingError.exit_code, proc.stderr


def test_tamper_sig_for_another_image(registry, tmp_path, keypair):
    a = push_image(registry, tmp_path, "tamper/victim", content=b"victim")
    b = push_image(registry, tmp_path, "tamper/donor", content=b"donor")
    _sign(registry, keypair, f"{registry.host}/tamper/donor:1")
    client = RegistryClient(registry.host)
    raw, mtype, _ = client.get_manifest("tamper/donor", f"sha256-{b.hex}.sig")
    for blob in json.loads(raw)["layers"] + [json.loads(raw)["config"]]:
        d = Digest.parse(blob["digest"])
        with client.open_blob("tamper/donor", d, blob["size"]) as f:
            data = f.read()
        client.push_blob("tamper/victim", d, len(data), lambda data=data: io.BytesIO(data))
    client.put_manifest("tamper/victim", f"sha256-{a.hex}.sig", raw, mtype)
    proc = giropops("verify", "--key", str(keypair.public), f"{registry.host}/tamper/victim:1")
    assert proc.returncode == se.IdentityMismatchError.exit_code, proc.stderr
    assert "another image" in proc.stderr


class _TamperingProxy:
    """A loopback HTTP proxy in front of the registry that serves other bytes for one blob."""

    def __init__(self, upstream: str, blob: Digest) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def _forward(self, head: bool) -> None:
                conn = http.client.HTTPConnection(upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                if self.command == "GET" and self.path.endswith(f"/blobs/{blob}"):
                    body = body.replace(b"critical", b"CRITICAL")
                    proxy.tampered += 1
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)
                conn.close()

            def do_GET(self) -> None:
                self._forward(False)

            def do_HEAD(self) -> None:
                self._forward(True)

        self.tampered = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _TamperingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_tamper_registry_serves_a_different_blob(registry, signed, keypair):
    repo, digest = signed
    layer = sig_manifest(registry, repo, digest)["layers"][0]
    with _TamperingProxy(registry.host, Digest.parse(layer["digest"])) as proxy:
        proc = giropops("verify", "--key", str(keypair.public), f"{proxy.host}/{repo}@{digest}")
        assert proxy.tampered >= 1
    assert proc.returncode == se.BlobMismatchError.exit_code, proc.stderr


def test_tamper_wrong_password(registry, signed, keypair):
    repo, _ = signed
    proc = giropops("sign", "--key", str(keypair.private), f"{registry.host}/{repo}:1", password=b"not it")
    assert proc.returncode == se.WrongPasswordError.exit_code
    assert "wrong password" in proc.stderr


def test_tamper_truncated_key(registry, signed, keypair, tmp_path):
    repo, _ = signed
    cut = tmp_path / "cut.key"
    data = keypair.private.read_bytes()
    cut.write_bytes(data[: len(data) - 80])
    proc = giropops("sign", "--key", str(cut), f"{registry.host}/{repo}:1", password=keypair.password)
    assert proc.returncode == se.KeyFormatError.exit_code
    assert "truncated" in proc.stderr


def test_tamper_exit_codes_are_distinct():
    codes = [se.NoValidSignatureError, se.DigestMismatchError, se.SignatureEncodingError, se.IdentityMismatchError,
             se.BlobMismatchError, se.WrongPasswordError, se.KeyFormatError, se.NoSignaturesError,
             se.AnnotationsMismatchError, se.PayloadMalformedError]
    assert len({c.exit_code for c in codes}) == len(codes)


# ------------------------------------------------------------------------------- attestations, tree, bundles


def test_attest_verify_attestation_and_tree(registry, tmp_path, keypair):
    digest = push_image(registry, tmp_path, "rt/att")
    image = f"{registry.host}/rt/att:1"
    pred = tmp_path / "prov.json"
    pred.write_text(json.dumps({"buildType": "x", "builder": {"id": "giropops-test"}}))
    proc = giropops("attest", "--key", str(keypair.private), "--type", "slsaprovenance", "--predicate", str(pred),
                    image, password=keypair.password)
    assert proc.returncode == 0, proc.stderr
    m = sig_manifest(registry, "rt/att", digest, "att")
    [layer] = m["layers"]
    assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    assert layer["annotations"]["predicateType"] == "https://slsa.dev/provenance/v0.2"

    proc = giropops("verify-attestation", "--key", str(keypair.public), "--type", "slsaprovenance", image)
    assert proc.returncode == 0, proc.stderr
    st = json.loads(proc.stdout)
    assert st["subject"] == [{"name": f"{registry.host}/rt/att", "digest": {"sha256": digest.hex}}]
    assert st["predicate"]["builder"]["id"] == "giropops-test"

    proc = giropops("verify-attestation", "--key", str(keypair.public), "--type", "openvex", image)
    assert proc.returncode == se.NoMatchingAttestationError.exit_code

    _sign(registry, keypair, image)
    proc = giropops("tree", image)
    assert proc.returncode == 0, proc.stderr
    assert f"sha256-{digest.hex}.sig" in proc.stdout and f"sha256-{digest.hex}.att" in proc.stdout
    assert "https://slsa.dev/provenance/v0.2" in proc.stdout


def test_cosign_v3_bundle_through_referrers_tag_fallback(registry, tmp_path, keypair, keypair2):
    """A cosign v3-style bundle (DSSE, InTotoStatement v1, predicate cosign/sign/v1) attached as a referrer.

    The envelope, its signature and the key hint are made here with ``cryptography`` and the DSSE spec's
    PAE, not with giropops' signing code (this replaces a cosign v3 capture that was GPL-3.0 licensed;
    real cosign DSSE bundles are verified in test_vectors.py).
    """
    import base64
    import hashlib

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from giropops.sign.keys import SigningKey

    digest = push_image(registry, tmp_path, "rt/bundle")
    private = SigningKey.load(keypair.private, keypair.password).key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v1",
                            "subject": [{"digest": {"sha256": digest.hex}, "annotations": {}}],
                            "predicateType": "https://sigstore.dev/cosign/sign/v1", "predicate": {}},
                           separators=(",", ":")).encode()
    ptype = b"application/vnd.in-toto+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(statement), statement)
    sig = base64.b64encode(private.sign(pae, ec.ECDSA(hashes.SHA256()))).decode()
    env = {"payloadType": ptype.decode(), "payload": base64.b64encode(statement).decode(),
           "signatures": [{"keyid": "", "sig": sig}]}
    spki = serialization.load_pem_public_key(keypair.public.read_bytes()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    hint = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    bundle = json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                         "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
                         "dsseEnvelope": env}).encode()
    client = RegistryClient(registry.host)
    empty = b"{}"
    for blob in (empty, bundle):
        client.push_blob("rt/bundle", Digest.of(blob), len(blob), lambda blob=blob: io.BytesIO(blob))
    raw_subject, subject_type, _ = client.get_manifest("rt/bundle", str(digest))
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "digest": str(Digest.of(empty))},
        "layers": [{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "size": len(bundle),
                    "digest": str(Digest.of(bundle))}],
        "annotations": {"dev.sigstore.bundle.content": "dsse-envelope",
                        "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1"},
        "subject": {"mediaType": subject_type, "size": len(raw_subject), "digest": str(digest)},
    }, separators=(",", ":")).encode()
    mdigest = Digest.of(manifest)
    client.put_manifest("rt/bundle", str(mdigest), manifest, "application/vnd.oci.image.manifest.v1+json")
    # distribution 2.8 has no referrers API: the client keeps the sha256-<hex> fallback tag index
    assert f"sha256-{digest.hex}" in client.list_tags("rt/bundle")

    proc = giropops("verify", "--key", str(keypair.public), f"{registry.host}/rt/bundle:1")
    assert proc.returncode == 0, proc.stderr
    [st] = json.loads(proc.stdout)
    assert st["predicateType"] == "https://sigstore.dev/cosign/sign/v1"
    assert st["subject"][0]["digest"] == {"sha256": digest.hex}
    proc = giropops("verify", "--key", str(keypair2.public), f"{registry.host}/rt/bundle:1")
    assert proc.returncode == se.NoValidSignatureError.exit_code
    proc = giropops("tree", f"{registry.host}/rt/bundle:1")
    assert str(mdigest) in proc.stdout


def test_attest_generated_sbom_without_predicate(registry, tmp_path, keypair):
    digest = push_image(registry, tmp_path, "rt/sbom")
    image = f"{registry.host}/rt/sbom:1"
    for ptype in ("cyclonedx", "spdxjson"):
        proc = giropops("attest", "--key", str(keypair.private), "--type", ptype, image, password=keypair.password)
        assert proc.returncode == 0, proc.stderr
        assert str(digest) in proc.stderr
    proc = giropops("verify-attestation", "--key", str(keypair.public), "--type", "cyclonedx", image)
    assert proc.returncode == 0, proc.stderr
    st = json.loads(proc.stdout)
    assert st["predicateType"] == "https://cyclonedx.org/bom"
    assert st["subject"][0]["digest"] == {"sha256": digest.hex}
    assert st["predicate"]["bomFormat"] == "CycloneDX"
    assert str(digest) in json.dumps(st["predicate"]["metadata"])  # the SBOM describes this very digest
    proc = giropops("verify-attestation", "--key", str(keypair.public), "--type", "spdxjson", image)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["predicate"]["spdxVersion"] == "SPDX-2.3"
