"""sign-blob / verify-blob / attest-blob / verify-blob-attestation: our output checked independently with
``cryptography``, and real cosign / sigstore blob artifacts (tests/data/cosign-keyless) verified by us."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from giropops.errors import UsageError
from giropops.oci.model import Digest
from giropops.sign import errors as se
from giropops.sign.attached import Trust
from giropops.sign.blob import verify_blob
from giropops.sign.trustroot import TrustedRoot
from tests.sign.test_cli_offline import run

DATA = Path(__file__).resolve().parent.parent / "data" / "cosign-keyless"


def _pub(path: Path) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def test_sign_blob_signature_and_v03_bundle_verify_independently(tmp_path, keypair):
    blob = tmp_path / "release.tar"
    blob.write_bytes(b"some release bytes\n" * 100)
    proc = run("sign-blob", "--key", str(keypair.private), "--bundle", str(tmp_path / "b.json"), str(blob),
               password=keypair.password.decode())
    assert proc.returncode == 0, proc.stderr
    signature = base64.b64decode(proc.stdout.strip(), validate=True)
    pub = _pub(keypair.public)
    pub.verify(signature, blob.read_bytes(), ec.ECDSA(hashes.SHA256()))  # raises if not valid
    bundle = json.loads((tmp_path / "b.json").read_bytes())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    ms = bundle["messageSignature"]
    assert ms["messageDigest"] == {"algorithm": "SHA2_256",
                                   "digest": base64.b64encode(hashlib.sha256(blob.read_bytes()).digest()).decode()}
    pub.verify(base64.b64decode(ms["signature"]), blob.read_bytes(), ec.ECDSA(hashes.SHA256()))
    spki = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    hint = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == hint

    proc = run("sign-blob", "--key", str(keypair.private), "--output-signature", str(tmp_path / "sig"), str(blob),
               password=keypair.password.decode())
    assert proc.returncode == 0 and proc.stdout == ""
    for flag, path in (("--signature", tmp_path / "sig"), ("--bundle", tmp_path / "b.json")):
        proc = run("verify-blob", "--key", str(keypair.public), flag, str(path), str(blob))
        assert proc.returncode == 0, proc.stderr
        assert "Verified OK" in proc.stderr


def test_verify_blob_failures(tmp_path, keypair, keypair2):
    blob = tmp_path / "a.txt"
    blob.write_text("hello\n")
    run("sign-blob", "--key", str(keypair.private), "--output-signature", str(tmp_path / "sig"), "--bundle",
        str(tmp_path / "b.json"), str(blob), password=keypair.password.decode())
    other = tmp_path / "b.txt"
    other.write_text("hello!\n")
    cases = [
        (["--key", str(keypair2.public), "--signature", str(tmp_path / "sig"), str(blob)], se.NoValidSignatureError),
        (["--key", str(keypair2.public), "--bundle", str(tmp_path / "b.json"), str(blob)], se.NoValidSignatureError),
        (["--key", str(keypair.public), "--signature", str(tmp_path / "sig"), str(other)], se.NoValidSignatureError),
        (["--key", str(keypair.public), "--bundle", str(tmp_path / "b.json"), str(other)], se.DigestMismatchError),
        (["--key", str(keypair.public), str(blob)], UsageError),
        (["--signature", str(tmp_path / "sig"), "--certificate-identity", "x", "--certificate-oidc-issuer", "y",
          str(blob)], UsageError),
    ]
    for args, error in cases:
        proc = run("verify-blob", *args)
        assert proc.returncode == error.exit_code, (args, proc.stderr)
        assert proc.stderr.strip().count("\n") == 0 or error is UsageError, proc.stderr
    (tmp_path / "bad").write_text("not base64 &&&")
    proc = run("verify-blob", "--key", str(keypair.public), "--signature", str(tmp_path / "bad"), str(blob))
    assert proc.returncode == se.SignatureEncodingError.exit_code


def test_sign_blob_leaves_no_partial_file(tmp_path, keypair):
    blob = tmp_path / "a.txt"
    blob.write_text("x")
    proc = run("sign-blob", "--key", str(keypair.private), "--bundle", str(tmp_path / "b.json"), str(blob),
               password="wrong")
    assert proc.returncode == se.WrongPasswordError.exit_code
    proc = run("sign-blob", "--key", str(keypair.private), "--bundle", str(tmp_path / "no" / "b.json"), str(blob),
               password=keypair.password.decode())
    assert proc.returncode == UsageError.exit_code
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_attest_blob_envelope_verifies_independently(tmp_path, keypair):
    blob = tmp_path / "app.bin"
    blob.write_bytes(b"\x7fELF fake binary")
    pred = tmp_path / "prov.json"
    pred.write_text('{"buildType": "https://example.com/build", "builder": {"id": "ci"}}')
    proc = run("attest-blob", "--key", str(keypair.private), "--type", "slsaprovenance", "--predicate", str(pred),
               "--output-signature", str(tmp_path / "att.json"), "--bundle", str(tmp_path / "att.bundle"),
               str(blob), password=keypair.password.decode())
    assert proc.returncode == 0, proc.stderr
    env = json.loads((tmp_path / "att.json").read_bytes())
    payload = base64.b64decode(env["payload"])
    ptype = env["payloadType"].encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
    _pub(keypair.public).verify(base64.b64decode(env["signatures"][0]["sig"]), pae, ec.ECDSA(hashes.SHA256()))
    statement = json.loads(payload)
    assert statement["predicateType"] == "https://slsa.dev/provenance/v0.2"
    assert statement["subject"] == [{"name": "app.bin",
                                     "digest": {"sha256": hashlib.sha256(blob.read_bytes()).hexdigest()}}]
    assert json.loads((tmp_path / "att.bundle").read_bytes())["dsseEnvelope"] == env

    for flag, path in (("--signature", "att.json"), ("--bundle", "att.bundle")):
        proc = run("verify-blob-attestation", "--key", str(keypair.public), flag, str(tmp_path / path),
                   "--type", "slsaprovenance", str(blob))
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["predicate"]["builder"] == {"id": "ci"}
    proc = run("verify-blob-attestation", "--key", str(keypair.public), "--signature", str(tmp_path / "att.json"),
               "--type", "cyclonedx", str(blob))
    assert proc.returncode == se.NoMatchingAttestationError.exit_code
    other = tmp_path / "other"
    other.write_text("other")
    proc = run("verify-blob-attestation", "--key", str(keypair.public), "--signature", str(tmp_path / "att.json"),
               str(other))
    assert proc.returncode == se.SubjectMismatchError.exit_code
    proc = run("verify-blob-attestation", "--key", str(keypair.public), "--signature", str(tmp_path / "att.json"),
               "--check-claims", "false", str(other))
    assert proc.returncode == 0, proc.stderr


ATT = DATA / "attest-blob-dsse"


@pytest.mark.parametrize(("envelope", "blob", "code"), [
    ("slsa-provenance", "blob", 0),
    ("multiple-subjects", "blob", 0),
    ("empty-subject", "blob", se.SubjectMismatchError.exit_code),
    ("missing-sha256", "blob", se.SubjectMismatchError.exit_code),
    ("multiple-subjects-invalid", "blob", se.SubjectMismatchError.exit_code),
    ("slsa-provenance", "other-blob", se.SubjectMismatchError.exit_code),
])
def test_cosign_attest_blob_vectors(envelope, blob, code):
    proc = run("verify-blob-attestation", "--key", str(ATT / "cosign.pub"), "--signature",
               str(ATT / f"{envelope}.dsse.json"), str(ATT / blob))
    assert proc.returncode == code, proc.stderr


def test_sigstore_go_v03_message_signature_bundle():
    d = DATA / "public-key-validity"
    proc = run("verify-blob", "--key", str(d / "public-key-validity.pem"), "--bundle",
               str(d / "public-key-validity.sigstore.json"), str(d / "artifact.txt"))
    assert proc.returncode == 0, proc.stderr
    proc = run("verify-blob", "--key", str(d / "public-key-validity.pem"), "--bundle",
               str(d / "public-key-validity.sigstore.json"), str(ATT / "blob"))
    assert proc.returncode == se.DigestMismatchError.exit_code


def test_old_cosign_blob_bundle_keyless():
    raw = (DATA / "sign-blob-legacy-bundle" / "artifact.bundle").read_bytes()
    doc = json.loads(raw)
    body = json.loads(base64.b64decode(doc["rekorBundle"]["Payload"]["body"]))
    # the artifact is not part of the vector: verify against the digest the log recorded
    digest = Digest("sha256", body["spec"]["data"]["hash"]["value"])
    root = TrustedRoot.public_good()

    def trust(**kw: object) -> Trust:
        args: dict[str, object] = {"trusted_root": root, "log_keys": root.tlog_keys(), "require_tlog": True,
                                   "require_sct": True, "certificate_identity": "daniel.bevenius@gmail.com",
                                   "certificate_oidc_issuer": "https://github.com/login/oauth"}
        args.update(kw)
        return Trust(**args)  # type: ignore[arg-type]

    verify_blob(trust(), digest=digest, bundle_raw=raw)
    with pytest.raises(se.CertificateIdentityError):
        verify_blob(trust(certificate_identity="mitr@redhat.com"), digest=digest, bundle_raw=raw)
    with pytest.raises(se.NoValidSignatureError):
        verify_blob(trust(), digest=Digest("sha256", "0" * 64), bundle_raw=raw)
    with pytest.raises(se.CertificateValidityError):
        verify_blob(trust(log_keys=None, require_tlog=False), digest=digest, bundle_raw=raw)
    grafted = dict(doc)
    grafted["rekorBundle"] = json.loads((DATA / "rekor-bundle-kubewarden" / "bundle.json").read_bytes())
    with pytest.raises(se.LogEntryMismatchError):
        verify_blob(trust(), digest=digest, bundle_raw=json.dumps(grafted).encode())
