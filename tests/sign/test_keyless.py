"""Keyless verification offline: Fulcio chain, SCT, Rekor SET / inclusion proof, identity — real vectors.

The vectors are vendored in ``tests/data/cosign-keyless`` (see its PROVENANCE.md); every failure case is
a real signature with one thing changed, and each reason has its own exit code.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from giropops.errors import UsageError
from giropops.oci.model import Descriptor, Digest
from giropops.sign import errors as se
from giropops.sign.attached import BUNDLE_ANNOTATION, SignatureLayer, Trust
from giropops.sign.bundle import Bundle, verify_bundle
from giropops.sign.certs import IdentityPolicy, github_claim
from giropops.sign.image import attached_manifest
from giropops.sign.storage import LayoutStore
from giropops.sign.trustroot import TrustedRoot
from tests.sign.test_cli_offline import run

DATA = Path(__file__).resolve().parent.parent / "data" / "cosign-keyless"
FULCIO = DATA / "fulcio-rekor-valid"
ID = ["--certificate-identity", "mitr@redhat.com", "--certificate-oidc-issuer", "https://github.com/login/oauth"]
BUILTIN = Path(__file__).resolve().parents[2] / "src" / "giropops" / "data" / "sigstore" / "trusted_root.json"


def _layer(case: Path) -> SignatureLayer:
    return SignatureLayer.from_containers_image((case / "signature-1").read_bytes())


def _layout(root: Path, annotations: dict[str, str] | None = None) -> str:
    """An OCI layout with the vector's image manifest and its signature layer (annotations overridable)."""
    manifest = (FULCIO / "manifest.json").read_bytes()
    digest = hashlib.sha256(manifest).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "blobs" / "sha256" / digest).write_bytes(manifest)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": json.loads(manifest)["mediaType"], "digest": f"sha256:{digest}", "size": len(manifest)}]}))
    layer = _layer(FULCIO)
    ann = dict(layer.annotations)
    ann.update(annotations or {})
    ann = {k: v for k, v in ann.items() if v}
    desc = Descriptor(layer.media_type, Digest.of(layer.payload), len(layer.payload), ann)
    raw, config = attached_manifest([desc])
    LayoutStore(root).write_attached(Digest("sha256", digest), "sig", raw,
                                     {desc.digest: layer.payload, Digest.of(config): config})
    return f"oci-dir://{root}"


def _root_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(BUILTIN.read_bytes())
    return doc


def test_builtin_trusted_root_is_the_public_good_one():
    doc = _root_doc()
    assert doc["mediaType"] == "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
    rekor = next(t for t in doc["tlogs"] if t["baseUrl"] == "https://rekor.sigstore.dev")
    der = base64.b64decode(rekor["publicKey"]["rawBytes"])
    # the log ID every public-good Rekor entry names is sha256 of this key
    assert hashlib.sha256(der).hexdigest() == "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
    root = TrustedRoot.public_good()
    assert root.tlog_keys().get(hashlib.sha256(der).hexdigest()).der() == der
    assert {ca.root.subject.rfc4514_string() for ca in root.certificate_authorities} == {"CN=sigstore,O=sigstore.dev"}


def test_keyless_image_verifies_offline_with_builtin_root(tmp_path):
    target = _layout(tmp_path / "img")
    proc = run("verify", *ID, target)
    assert proc.returncode == 0, proc.stderr
    assert "SCT was verified" in proc.stderr
    assert "transparency log was verified offline" in proc.stderr
    assert json.loads(proc.stdout)[0]["critical"]["identity"]["docker-reference"] == \
        "192.168.64.2:5000/cosign-signed/fulcio-rekor-1"
    proc = run("verify", "--certificate-identity-regexp", "^mitr@redhat\\.", "--certificate-oidc-issuer-regexp",
               "github\\.com", target)
    assert proc.returncode == 0, proc.stderr
    proc = run("verify", "--trusted-root", str(BUILTIN), *ID, target)
    assert proc.returncode == 0, proc.stderr


def test_keyless_without_identity_is_refused_with_cosigns_reason(tmp_path):
    target = _layout(tmp_path / "img")
    proc = run("verify", target)
    assert proc.returncode == UsageError.exit_code
    assert "--certificate-identity or --certificate-identity-regexp is required for verification in keyless mode" \
        in proc.stderr
    proc = run("verify", "--certificate-identity", "mitr@redhat.com", target)
    assert proc.returncode == UsageError.exit_code
    assert "--certificate-oidc-issuer or --certificate-oidc-issuer-regexp is required" in proc.stderr
    proc = run("verify", "--certificate-identity-regexp", "([", "--certificate-oidc-issuer", "x", target)
    assert proc.returncode == UsageError.exit_code
    assert proc.stderr.count("\n") == 1


@pytest.mark.parametrize(("flags", "error"), [
    (["--certificate-identity", "someone@else.example", "--certificate-oidc-issuer",
      "https://github.com/login/oauth"], se.CertificateIdentityError),
    (["--certificate-identity-regexp", "^redhat", "--certificate-oidc-issuer", "https://github.com/login/oauth"],
     se.CertificateIdentityError),
    (["--certificate-identity", "mitr@redhat.com", "--certificate-oidc-issuer", "https://accounts.google.com"],
     se.CertificateIssuerError),
    (["--certificate-identity", "mitr@redhat.com", "--certificate-oidc-issuer-regexp", "google"],
     se.CertificateIssuerError),
    ([*ID, "--certificate-github-workflow-repository", "containers/image"], se.CertificateIdentityError),
])
def test_wrong_identity_or_issuer(tmp_path, flags, error):
    proc = run("verify", *flags, _layout(tmp_path / "img"))
    assert proc.returncode == error.exit_code, proc.stderr
    assert len({se.CertificateIdentityError.exit_code, se.CertificateIssuerError.exit_code,
                se.CertificateValidityError.exit_code, se.LogEntryMismatchError.exit_code,
                se.SignedEntryTimestampError.exit_code, se.InclusionProofError.exit_code,
                se.SCTError.exit_code, se.CertificateError.exit_code, se.TransparencyLogError.exit_code}) == 9


def test_certificate_used_outside_its_validity(tmp_path):
    # Without the log entry there is no trusted signing time: the 10-minute Fulcio certificate of 2023 is
    # checked at the current time, as cosign does, and has long expired.
    proc = run("verify", *ID, "--insecure-ignore-tlog", _layout(tmp_path / "img"))
    assert proc.returncode == se.CertificateValidityError.exit_code, proc.stderr
    assert "was not valid at" in proc.stderr
    # No entry at all while the log is required: a transparency log error, not a pass.
    proc = run("verify", *ID, _layout(tmp_path / "img2", {BUNDLE_ANNOTATION: ""}))
    assert proc.returncode == se.TransparencyLogError.exit_code, proc.stderr


def test_grafted_set_is_refused(tmp_path):
    other = _layer(DATA / "key-rekor-valid").annotations[BUNDLE_ANNOTATION]
    # The grafted SET is genuine (the log signed it) but records another signature.
    assert json.loads(other)["Payload"]["logIndex"] != json.loads(_layer(FULCIO).annotations[BUNDLE_ANNOTATION])[
        "Payload"]["logIndex"]
    proc = run("verify", *ID, _layout(tmp_path / "img", {BUNDLE_ANNOTATION: other}))
    assert proc.returncode == se.LogEntryMismatchError.exit_code, proc.stderr


def test_forged_set_signature_is_refused(tmp_path):
    bundle = json.loads(_layer(FULCIO).annotations[BUNDLE_ANNOTATION])
    bundle["Payload"]["integratedTime"] += 1  # what the SET signs no longer matches
    proc = run("verify", *ID, _layout(tmp_path / "img", {BUNDLE_ANNOTATION: json.dumps(bundle)}))
    assert proc.returncode == se.SignedEntryTimestampError.exit_code, proc.stderr


def _write_root(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_sct_checked_against_ct_log_key(tmp_path):
    target = _layout(tmp_path / "img")
    doc = _root_doc()
    rekor_key = doc["tlogs"][0]["publicKey"]["rawBytes"]
    for ct in doc["ctlogs"]:
        ct["publicKey"]["rawBytes"] = rekor_key  # same log IDs, wrong keys
    bad = _write_root(tmp_path / "bad-ct.json", doc)
    proc = run("verify", "--trusted-root", str(bad), *ID, target)
    assert proc.returncode == se.SCTError.exit_code, proc.stderr
    proc = run("verify", "--trusted-root", str(bad), "--insecure-ignore-sct", *ID, target)
    assert proc.returncode == 0, proc.stderr
    doc["ctlogs"] = []
    proc = run("verify", "--trusted-root", str(_write_root(tmp_path / "no-ct.json", doc)), *ID, target)
    assert proc.returncode == se.SCTError.exit_code, proc.stderr
    # the right keys, but the CT logs' validity ended before the signing time (2023-01-20)
    doc = _root_doc()
    for ct in doc["ctlogs"]:
        ct["publicKey"]["validFor"]["end"] = "2022-12-01T00:00:00Z"
    proc = run("verify", "--trusted-root", str(_write_root(tmp_path / "old-ct.json", doc)), *ID, target)
    assert proc.returncode == se.SCTError.exit_code, proc.stderr


def test_fulcio_ca_must_be_valid_at_signing_time(tmp_path):
    target = _layout(tmp_path / "img")
    doc = _root_doc()
    # The 2023 signature was issued by the second Fulcio CA; end its validity before the signing time.
    for ca in doc["certificateAuthorities"]:
        ca["validFor"]["end"] = "2022-12-31T23:59:59Z"
    proc = run("verify", "--trusted-root", str(_write_root(tmp_path / "r.json", doc)), *ID, target)
    assert proc.returncode == se.CertificateError.exit_code, proc.stderr
    assert "trusted root" in proc.stderr
    bad = tmp_path / "notjson.json"
    bad.write_text("{")
    proc = run("verify", "--trusted-root", str(bad), *ID, target)
    assert proc.returncode == se.CertificateError.exit_code
    assert proc.stderr.count("\n") == 1


# ------------------------------------------------------------------ v0.3 bundle with an inclusion proof

ATT = DATA / "oci-attestation-bundle"


def _att_trust(**kw: Any) -> Trust:
    root = TrustedRoot.load(ATT / "trusted_root_pgi.json")
    args: dict[str, Any] = {"trusted_root": root, "log_keys": root.tlog_keys(), "require_tlog": True,
                            "require_sct": True, "certificate_identity": "cody@soyland.com",
                            "certificate_oidc_issuer": "https://github.com/login/oauth"}
    args.update(kw)
    return Trust(**args)


def _att_bundle(mutate: Any = None) -> Bundle:
    doc = json.loads((ATT / "oci-attestation.sigstore.json").read_bytes())
    if mutate:
        mutate(doc)
    return Bundle.from_json(doc)


def test_v03_bundle_keyless_with_inclusion_proof():
    vb = verify_bundle(_att_bundle(), _att_trust())
    assert vb.statement is not None and vb.statement.predicate_type == "https://cosign.sigstore.dev/attestation/v1"
    # the same with the built-in public-good root, whose Rekor key and CAs are the same
    root = TrustedRoot.public_good()
    verify_bundle(_att_bundle(), _att_trust(trusted_root=root, log_keys=root.tlog_keys()))
    with pytest.raises(se.CertificateIdentityError):
        verify_bundle(_att_bundle(), _att_trust(certificate_identity="mitr@redhat.com"))
    with pytest.raises(se.CertificateIssuerError):
        verify_bundle(_att_bundle(), _att_trust(certificate_oidc_issuer="https://token.actions.githubusercontent.com"))


def _flip(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def test_broken_inclusion_proof_and_checkpoint():
    def proof(doc: dict[str, Any]) -> None:
        p = doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
        p["hashes"][3] = _flip(p["hashes"][3])

    def checkpoint(doc: dict[str, Any]) -> None:
        cp = doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
        cp["envelope"] = cp["envelope"].replace("53604735", "53604736", 1)

    def set_only(doc: dict[str, Any]) -> None:
        del doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]

    for mutate in (proof, checkpoint):
        with pytest.raises(se.InclusionProofError) as info:
            verify_bundle(_att_bundle(mutate), _att_trust())
        assert info.value.exit_code == 35
    verify_bundle(_att_bundle(set_only), _att_trust())  # a SET alone is enough, as in cosign


def test_integrated_time_without_set_is_not_trusted():
    # An inclusion proof covers the entry body, not integratedTime: without the SET nothing vouches for the
    # signing time, so the short-lived certificate is checked at the current time and refused.
    def proof_only(doc: dict[str, Any]) -> None:
        del doc["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]

    with pytest.raises(se.CertificateValidityError):
        verify_bundle(_att_bundle(proof_only), _att_trust())


def test_bundle_certificate_outside_validity_without_log():
    with pytest.raises(se.CertificateValidityError):
        verify_bundle(_att_bundle(), _att_trust(log_keys=None, require_tlog=False))


# ------------------------------------------------------------------ GitHub workflow claims


def _github_cert(extensions: dict[str, bytes]) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = datetime.datetime.now(datetime.UTC)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
         .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(minutes=10))
         .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(
             "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1")]), critical=False))
    for oid, value in extensions.items():
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False)
    return b.sign(key, hashes.SHA256())


def _utf8(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 128
    return bytes([0x0C, len(raw)]) + raw


def test_github_claims_from_deprecated_and_new_extensions():
    f = "1.3.6.1.4.1.57264.1."
    old = _github_cert({f + "2": b"push", f + "3": b"a" * 40, f + "4": b"release", f + "5": b"acme/app",
                        f + "6": b"refs/tags/v1", f + "8": _utf8("https://token.actions.githubusercontent.com")})
    new = _github_cert({f + "20": _utf8("push"), f + "13": _utf8("a" * 40),
                        f + "12": _utf8("https://github.com/acme/app"), f + "14": _utf8("refs/tags/v1"),
                        f + "8": _utf8("https://token.actions.githubusercontent.com")})
    for cert in (old, new):
        assert github_claim(cert, "repository") == "acme/app"
        assert github_claim(cert, "ref") == "refs/tags/v1"
        assert github_claim(cert, "trigger") == "push"
        assert github_claim(cert, "sha") == "a" * 40
        IdentityPolicy(identity_regexp="^https://github.com/acme/",
                       issuer="https://token.actions.githubusercontent.com",
                       github={"repository": "acme/app", "ref": "refs/tags/v1", "trigger": "push"}).check(cert)
        with pytest.raises(se.CertificateIdentityError):
            IdentityPolicy(github={"repository": "acme/other"}).check(cert)
        with pytest.raises(se.CertificateIdentityError):
            IdentityPolicy(identity="https://github.com/acme/app").check(cert)  # exact, not a prefix
    assert github_claim(old, "name") == "release"
    assert github_claim(new, "name") is None  # the newer extensions carry no workflow name


def test_sha256_of_log_key_matches_vendored_rekor_entry():
    # independent: the SET annotation's logID is sha256 of the public-good Rekor key's SPKI
    bundle = json.loads(_layer(FULCIO).annotations[BUNDLE_ANNOTATION])
    root = TrustedRoot.public_good()
    der = root.tlog_keys().get(bundle["Payload"]["logID"]).key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert hashlib.sha256(der).hexdigest() == bundle["Payload"]["logID"]


def test_malformed_trusted_root_is_a_certificate_error():
    a = _root_doc()
    b = copy.deepcopy(a)
    b["tlogs"] = "nope"
    with pytest.raises(se.CertificateError):
        TrustedRoot.from_json(b)
    assert TrustedRoot.from_json(a).tlogs


# ------------------------------------------------------------------ .att layers and the log


def test_attestation_log_entry_must_record_the_envelope(tmp_path, keypair):
    from tests.sign.test_image_layout import make_layout

    root = tmp_path / "layout"
    digest = make_layout(root, "app:1")
    target = f"oci-dir://{root}:app:1"
    pred = tmp_path / "vex.json"
    pred.write_text('{"@context": "https://openvex.dev/ns/v0.2.0", "statements": []}')
    proc = run("attest", "--key", str(keypair.private), "--type", "openvex", "--predicate", str(pred), target,
               password=keypair.password.decode())
    assert proc.returncode == 0, proc.stderr
    rekor_pem = TrustedRoot.public_good().tlog_keys().get(
        "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d").pem()
    (tmp_path / "rekor.pub").write_bytes(rekor_pem)
    base = ["verify-attestation", "--key", str(keypair.public), "--type", "openvex"]
    assert run(*base, target).returncode == 0
    # the log is required, and this attestation was never logged
    proc = run(*base, "--rekor-public-key", str(tmp_path / "rekor.pub"), target)
    assert proc.returncode == se.TransparencyLogError.exit_code, proc.stderr
    # a genuine SET of another signature grafted onto the attestation
    store = LayoutStore(root, "app:1")
    att = store.read_attached(digest, "att")
    assert att is not None
    d = att.manifest.layers[0]
    grafted = {**d.annotations, BUNDLE_ANNOTATION: _layer(DATA / "key-rekor-valid").annotations[BUNDLE_ANNOTATION]}
    layer = Descriptor(d.media_type, d.digest, d.size, grafted)
    raw, config = attached_manifest([layer])
    store.write_attached(digest, "att", raw, {d.digest: store.read_blob(d), Digest.of(config): config})
    proc = run(*base, "--rekor-public-key", str(tmp_path / "rekor.pub"), target)
    assert proc.returncode == se.LogEntryMismatchError.exit_code, proc.stderr


# ------------------------------------------------------------------ 2021: the first Fulcio CA, no SCT yet


def test_2021_signature_chains_to_the_first_fulcio_ca_without_sct():
    from giropops.sign.attached import (
        CERTIFICATE_ANNOTATION,
        SIGNATURE_ANNOTATION,
        SIMPLE_SIGNING_MEDIA_TYPE,
        verify_layer,
    )

    d = DATA / "rekor-bundle-kubewarden"
    payload = (d / "payload.json").read_bytes()
    layer = SignatureLayer(SIMPLE_SIGNING_MEDIA_TYPE, payload, {
        SIGNATURE_ANNOTATION: (d / "signature.b64").read_text().strip(),
        CERTIFICATE_ANNOTATION: (d / "cert.pem").read_text(),
        BUNDLE_ANNOTATION: (d / "bundle.json").read_text(),
    })
    digest = Digest.parse(json.loads(payload)["critical"]["image"]["docker-manifest-digest"])
    root = TrustedRoot.public_good()
    trust = Trust(trusted_root=root, log_keys=root.tlog_keys(), require_tlog=True, require_sct=False,
                  certificate_identity="flavio@castelli.me")
    assert verify_layer(layer, trust, digest).manifest_digest == digest
    # Fulcio embedded no SCT in October 2021: required, it is missing
    with pytest.raises(se.SCTError):
        verify_layer(layer, dataclasses.replace(trust, require_sct=True), digest)
    # the 2021 CA's validity window is what admits it: close it before the signing time
    doc = _root_doc()
    doc["certificateAuthorities"][0]["validFor"]["start"] = "2021-11-01T00:00:00Z"
    with pytest.raises(se.CertificateError):
        verify_layer(layer, dataclasses.replace(trust, trusted_root=TrustedRoot.from_json(doc)), digest)
