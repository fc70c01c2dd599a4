"""``cosign sign-blob`` / ``attest-blob`` and their verification: files, not images.

Signing writes what cosign writes with ``--tlog-upload=false``: the base64 ASN.1 signature over the blob
(``--output-signature``), or a Sigstore bundle v0.3 (``--bundle``) holding a ``messageSignature`` (sign-blob)
or a ``dsseEnvelope`` (attest-blob) and the key's hint ``b64(sha256(SPKI DER))``.

Verification reads v0.1-v0.3 bundles (keyless ones too, checked against the trusted root) and the old
cosign bundle ``{base64Signature, cert, rekorBundle}`` that ``cosign sign-blob --bundle`` wrote before v3.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from giropops.oci.model import Digest
from giropops.sign.attached import Trust, certificate_key
from giropops.sign.bundle import BUNDLE_V03, MAX_BUNDLE_BYTES, Bundle, verify_bundle
from giropops.sign.certs import leaf_key, load_pem_certificates
from giropops.sign.dsse import Envelope, InTotoStatement, build_statement, predicate_type_uri, sign_envelope
from giropops.sign.encoding import b64decode_strict, b64encode
from giropops.sign.errors import (
    BundleError,
    CertificateError,
    NoMatchingAttestationError,
    NoValidSignatureError,
    SignatureEncodingError,
    TransparencyLogError,
)
from giropops.sign.keys import SigningKey, VerifyingKey
from giropops.sign.rekor import RekorBundle, check_body


def key_hint(key: VerifyingKey) -> str:
    return base64.b64encode(hashlib.sha256(key.der()).digest()).decode()


def _bundle_json(key: VerifyingKey, content_name: str, content: Mapping[str, Any]) -> bytes:
    doc = {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {"publicKey": {"hint": key_hint(key)}},
        content_name: content,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SignedBlob:
    signature: bytes
    bundle: bytes  # Sigstore bundle v0.3


def sign_blob(key: SigningKey, blob: bytes) -> SignedBlob:
    signature = key.sign(blob)
    bundle = _bundle_json(key.public(), "messageSignature", {
        "messageDigest": {"algorithm": "SHA2_256", "digest": b64encode(hashlib.sha256(blob).digest())},
        "signature": b64encode(signature),
    })
    return SignedBlob(signature, bundle)


@dataclass(frozen=True)
class AttestedBlob:
    envelope: bytes
    bundle: bytes


def attest_blob(key: SigningKey, blob: bytes, name: str, predicate_type: str, predicate: bytes,
                now: datetime.datetime | None = None) -> AttestedBlob:
    """An in-toto statement naming the blob (``name``, sha256) in a DSSE envelope, as ``cosign attest-blob``."""
    statement = build_statement(predicate_type, predicate, name, Digest.of(blob), now)
    env = sign_envelope(key, statement)
    return AttestedBlob(env.to_bytes(), _bundle_json(key.public(), "dsseEnvelope", env.to_json()))


# ------------------------------------------------------------------------------ verify


@dataclass(frozen=True)
class LegacyBundle:
    """``{base64Signature, cert, rekorBundle}``: what ``cosign sign-blob --bundle`` wrote before v3."""

    signature: bytes
    certificate: x509.Certificate | None
    rekor: RekorBundle | None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> LegacyBundle:
        sig = obj.get("base64Signature")
        if not isinstance(sig, str):
            raise BundleError("cosign bundle: base64Signature must be a string")
        try:
            signature = b64decode_strict(sig, "base64Signature")
        except ValueError as exc:
            raise SignatureEncodingError(f"cosign bundle: {exc}") from exc
        cert = None
        if obj.get("cert"):
            if not isinstance(obj["cert"], str):
                raise BundleError("cosign bundle: cert must be a string")
            try:
                pem = b64decode_strict(obj["cert"], "cert")
            except ValueError as exc:
                raise BundleError(f"cosign bundle: {exc}") from exc
            cert = load_pem_certificates(pem, "cosign bundle certificate")[0]
        rekor = RekorBundle.from_json(obj["rekorBundle"]) if obj.get("rekorBundle") else None
        return cls(signature, cert, rekor)


def read_bundle(raw: bytes) -> Bundle | LegacyBundle:
    if len(raw) > MAX_BUNDLE_BYTES:
        raise BundleError("bundle is too large")
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"bundle is not JSON: {exc}") from exc
    if isinstance(obj, dict) and "base64Signature" in obj and "mediaType" not in obj:
        return LegacyBundle.from_json(obj)
    return Bundle.from_json(obj)


def _verify_signature(key: VerifyingKey, signature: bytes, blob: bytes | None, digest: Digest) -> None:
    if blob is not None:
        key.verify(signature, blob)
    else:
        key.verify_prehashed(signature, bytes.fromhex(digest.hex))


def verify_legacy_bundle(bundle: LegacyBundle, trust: Trust, blob: bytes | None, digest: Digest) -> VerifyingKey:
    keyless = trust.key is None
    if keyless:
        if bundle.certificate is None:
            raise CertificateError("no key given and the bundle carries no certificate")
        key = leaf_key(bundle.certificate)
    else:
        assert trust.key is not None
        key = trust.key
    _verify_signature(key, bundle.signature, blob, digest)
    when = None
    if trust.log_keys is not None and (bundle.rekor is not None or trust.require_tlog):
        if bundle.rekor is None:
            raise TransparencyLogError("a transparency log entry is required but the bundle has none")
        bundle.rekor.verify(trust.log_keys)
        check_body(bundle.rekor.body(), signature=bundle.signature, signer_der=key.der(), artifact_sha256=digest.hex)
        when = datetime.datetime.fromtimestamp(bundle.rekor.integrated_time, datetime.UTC)
    elif trust.trusted_root is None and bundle.rekor is not None:
        when = datetime.datetime.fromtimestamp(bundle.rekor.integrated_time, datetime.UTC)
    if keyless:
        assert bundle.certificate is not None
        certificate_key(bundle.certificate, [], trust, when)
    return key


def verify_blob(trust: Trust, *, blob: bytes | None = None, digest: Digest | None = None,
                signature_b64: bytes | None = None, bundle_raw: bytes | None = None) -> VerifyingKey:
    """Verify a blob (or, without it, its sha256 ``digest``) with a bare signature or a bundle."""
    if blob is not None:
        digest = Digest.of(blob)
    if digest is None or digest.algorithm != "sha256":
        raise BundleError("a blob or its sha256 digest is needed to verify against")
    if bundle_raw is not None:
        b = read_bundle(bundle_raw)
        if isinstance(b, LegacyBundle):
            return verify_legacy_bundle(b, trust, blob, digest)
        if b.message_signature is None:
            raise BundleError("the bundle holds an attestation (DSSE), not a blob signature")
        return verify_bundle(b, trust, artifact=blob, artifact_digest=None if blob is not None else digest).key
    if signature_b64 is None:
        raise BundleError("give a signature or a bundle")
    if trust.key is None:
        raise NoValidSignatureError("a bare signature can only be verified with a public key")
    try:
        signature = b64decode_strict(signature_b64.strip(), "signature")
    except ValueError as exc:
        raise SignatureEncodingError(str(exc)) from exc
    _verify_signature(trust.key, signature, blob, digest)
    return trust.key


def verify_blob_attestation(trust: Trust, blob: bytes, *, envelope_raw: bytes | None = None,
                            bundle_raw: bytes | None = None, predicate_type: str | None = None,
                            check_claims: bool = True) -> InTotoStatement:
    """The statement of a blob attestation: signature (PAE), subject digest, predicate type."""
    digest = Digest.of(blob)
    if bundle_raw is not None:
        b = read_bundle(bundle_raw)
        if isinstance(b, LegacyBundle) or b.envelope is None:
            raise BundleError("the bundle holds a blob signature, not an attestation (DSSE)")
        vb = verify_bundle(b, trust, artifact_digest=digest if check_claims else None)
        assert vb.statement is not None
        statement = vb.statement
    elif envelope_raw is not None:
        if trust.key is None:
            raise NoValidSignatureError("a bare envelope can only be verified with a public key")
        env = Envelope.from_bytes(envelope_raw)
        env.verify(trust.key)
        statement = InTotoStatement.from_bytes(env.payload)
        if check_claims:
            statement.check_subject(digest)
    else:
        raise BundleError("give an envelope (--signature) or a bundle")
    if predicate_type is not None:
        uri = predicate_type_uri(predicate_type)
        if statement.predicate_type != uri:
            raise NoMatchingAttestationError(
                f"the attestation's predicate type is {statement.predicate_type}, not {uri}")
    return statement


__all__ = ["attest_blob", "key_hint", "read_bundle", "sign_blob", "verify_blob",
           "verify_blob_attestation"]
