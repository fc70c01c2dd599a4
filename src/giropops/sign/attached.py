"""cosign's attached signatures: the layers of a ``sha256-<hex>.sig`` manifest, and how one is verified.

Each layer is the exact payload blob cosign signed, with the signature in the layer's
``dev.cosignproject.cosign/signature`` annotation (plus, for keyless or logged signatures, a certificate,
its chain and a Rekor bundle).  One valid signature is enough; when none is, the error raised is the one
of the signature that came closest to passing, so the reason is the most useful one.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography import x509

from giropops import jsonio
from giropops.errors import VerificationError, quote_for_error
from giropops.oci.model import Digest
from giropops.sign.certs import (
    IdentityPolicy,
    check_time,
    issuer_of,
    leaf_key,
    load_pem_certificates,
    verify_chain,
    verify_embedded_sct,
)
from giropops.sign.encoding import b64decode_strict
from giropops.sign.errors import (
    AnnotationsMismatchError,
    CertificateError,
    CertificateValidityError,
    DigestMismatchError,
    IdentityMismatchError,
    NoSignaturesError,
    NotSimpleSigningError,
    NoValidSignatureError,
    PayloadMalformedError,
    SignatureEncodingError,
    TransparencyLogError,
)
from giropops.sign.keys import VerifyingKey
from giropops.sign.payload import SimpleSigningPayload
from giropops.sign.rekor import LogKeys, RekorBundle, check_body
from giropops.sign.trustroot import TrustedRoot

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
PREDICATE_TYPE_ANNOTATION = "predicateType"
CONTAINERS_SIGSTORE_PREFIX = b"\x00sigstore-json\n"


@dataclass(frozen=True)
class SignatureLayer:
    media_type: str
    payload: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> Digest:
        return Digest.of(self.payload)

    @classmethod
    def from_containers_image(cls, raw: bytes) -> SignatureLayer:
        """containers/image ``dir:`` encoding: ``\\x00sigstore-json\\n`` + {mimeType, payload, annotations}."""
        if not raw.startswith(CONTAINERS_SIGSTORE_PREFIX):
            raise PayloadMalformedError("not a containers/image sigstore signature file")
        try:
            obj = jsonio.loads(raw[len(CONTAINERS_SIGSTORE_PREFIX) :], "containers/image signature",
                               error=PayloadMalformedError)
            payload = b64decode_strict(obj["payload"], "payload")
            mime = obj["mimeType"]
            ann = obj.get("annotations") or {}
        except (ValueError, KeyError, TypeError) as exc:
            raise PayloadMalformedError(f"malformed containers/image signature: {exc}") from exc
        if not isinstance(mime, str) or not isinstance(ann, dict):
            raise PayloadMalformedError("malformed containers/image signature: wrong field types")
        return cls(mime, payload, {str(k): str(v) for k, v in ann.items()})


@dataclass(frozen=True)
class Trust:
    """What a signature may be verified with: a public key, or roots for a certificate; log keys optional.

    Keyless against a Sigstore trusted root (``trusted_root``): the leaf must chain to a Fulcio CA valid at
    the signing time (the log's integrated time once the SET/proof verified, else now), carry an SCT from a
    trusted CT log (``require_sct``), and match the identity policy.  With bare ``roots`` (own PKI, or
    ``--ca-roots``) there are no validity windows for the CAs and no SCT.
    """

    key: VerifyingKey | None = None
    roots: Sequence[x509.Certificate] = ()
    log_keys: LogKeys | None = None
    require_tlog: bool = False
    certificate_identity: str | None = None  # SAN the signing certificate must carry (keyless / PKI)
    certificate_oidc_issuer: str | None = None  # Fulcio OIDC issuer extension it must carry
    certificate_identity_regexp: str | None = None
    certificate_oidc_issuer_regexp: str | None = None
    github_claims: Mapping[str, str] = field(default_factory=dict)  # trigger|sha|name|repository|ref -> value
    trusted_root: TrustedRoot | None = None
    require_sct: bool = False

    def identity_policy(self) -> IdentityPolicy:
        return IdentityPolicy(self.certificate_identity, self.certificate_identity_regexp,
                              self.certificate_oidc_issuer, self.certificate_oidc_issuer_regexp,
                              dict(self.github_claims))


def certificate_key(leaf: x509.Certificate, chain: Sequence[x509.Certificate], trust: Trust,
                    when: datetime.datetime | None) -> VerifyingKey:
    """The signing key of a certificate ``trust`` accepts at signing time ``when``; identity checked last."""
    if trust.trusted_root is None:
        key = verify_chain(leaf, chain, trust.roots, when)
    else:
        at = when or datetime.datetime.now(datetime.UTC)
        check_time(leaf, at)
        cas = trust.trusted_root.authorities_at(at)
        if not cas:
            raise CertificateError(f"no certificate authority of the trusted root was valid at {at.isoformat()}")
        errors: list[CertificateError] = []
        pool: list[x509.Certificate] = []
        for ca in cas:
            try:
                key = verify_chain(leaf, [*chain, *ca.chain], [ca.root], at)
                pool = [*chain, *ca.chain]
                break
            except CertificateValidityError:
                raise
            except CertificateError as exc:
                errors.append(exc)
        else:
            raise CertificateError(f"the certificate does not chain to a certificate authority of the trusted root "
                                   f"valid at {at.isoformat()}: {errors[0]}")
        if trust.require_sct:
            verify_embedded_sct(leaf, issuer_of(leaf, pool), trust.trusted_root.ct_keys(at).keys)
    trust.identity_policy().check(leaf)
    return key


def verify_layer(layer: SignatureLayer, trust: Trust, image_digest: Digest | None,
                 required: Mapping[str, str] | None = None, image_name: str | None = None) -> SimpleSigningPayload:
    """Verify one simple-signing layer; raise the precise VerificationError."""
    if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE:
        raise NotSimpleSigningError(f"layer media type {quote_for_error(layer.media_type)} is not a "
                                    f"simple-signing payload")
    sig_text = layer.annotations.get(SIGNATURE_ANNOTATION)
    if sig_text is None:
        raise SignatureEncodingError(f"layer has no {SIGNATURE_ANNOTATION} annotation")
    try:
        signature = b64decode_strict(sig_text, "signature annotation")
    except ValueError as exc:
        raise SignatureEncodingError(str(exc)) from exc
    if trust.key is not None:
        trust.key.verify(signature, layer.payload)
        if trust.log_keys is not None and (BUNDLE_ANNOTATION in layer.annotations or trust.require_tlog):
            verify_attached_bundle(layer, signature, trust.key, trust.log_keys)
    else:
        # Keyless: the log entry first, since only a verified entry gives a signing time to trust.
        leaf, chain = layer_certificates(layer)
        key = leaf_key(leaf)
        key.verify(signature, layer.payload)
        when = None
        if trust.log_keys is not None and (BUNDLE_ANNOTATION in layer.annotations or trust.require_tlog):
            when = _time(verify_attached_bundle(layer, signature, key, trust.log_keys).integrated_time)
        elif trust.trusted_root is None:
            when = _unverified_time(layer)
        certificate_key(leaf, chain, trust, when)
    payload = SimpleSigningPayload.from_bytes(layer.payload)
    if image_digest is None:
        raise DigestMismatchError("there is no image manifest to bind the signature to")
    if payload.manifest_digest != image_digest and image_name and payload.docker_reference != image_name:
        # Rejected for the digest either way; say that it was made for another image altogether.
        raise IdentityMismatchError(
            f"the signature is for another image ({payload.docker_reference}@{payload.manifest_digest}), "
            f"not {image_name}@{image_digest}"
        )
    payload.check_digest(image_digest)
    payload.check_annotations(required or {})
    return payload


def _time(t: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(t, datetime.UTC)


def _unverified_time(layer: SignatureLayer) -> datetime.datetime | None:
    text = layer.annotations.get(BUNDLE_ANNOTATION)
    return _time(RekorBundle.from_json(_json(text)).integrated_time) if text else None


def layer_certificates(layer: SignatureLayer) -> tuple[x509.Certificate, list[x509.Certificate]]:
    cert_pem = layer.annotations.get(CERTIFICATE_ANNOTATION)
    if not cert_pem:
        raise CertificateError("no key given and the signature carries no certificate")
    leaf = load_pem_certificates(cert_pem.encode(), "signing certificate")[0]
    chain_pem = layer.annotations.get(CHAIN_ANNOTATION, "")
    chain = load_pem_certificates(chain_pem.encode(), "certificate chain") if chain_pem.strip() else []
    return leaf, chain


def signer_key(layer: SignatureLayer, trust: Trust, signature: bytes | None = None,
               envelope_payload: bytes | None = None) -> VerifyingKey:
    """The key to check an attestation layer with: ``trust.key`` or its certificate's.

    When log keys are trusted, the layer's Rekor bundle is checked first (SET, and, given the DSSE
    ``signature`` and payload, that the logged entry records them); keyless, its integrated time is then
    the signing time the certificate must be valid at.
    """
    text = layer.annotations.get(BUNDLE_ANNOTATION)
    leaf: x509.Certificate | None = None
    chain: list[x509.Certificate] = []
    if trust.key is not None:
        key = trust.key
    else:
        leaf, chain = layer_certificates(layer)
        key = leaf_key(leaf)
    when = None
    if trust.log_keys is not None and (text or trust.require_tlog):
        if not text:
            raise TransparencyLogError("a transparency log entry is required but the attestation has none")
        rb = RekorBundle.from_json(_json(text))
        rb.verify(trust.log_keys)
        if signature is not None:
            check_body(rb.body(), signature=signature, signer_der=key.der(), envelope_payload=envelope_payload)
        when = _time(rb.integrated_time)
    elif trust.trusted_root is None:
        when = _unverified_time(layer)
    if leaf is not None:
        certificate_key(leaf, chain, trust, when)
    return key


def check_certificate_identity(leaf: x509.Certificate, trust: Trust) -> None:
    trust.identity_policy().check(leaf)


def verify_attached_bundle(layer: SignatureLayer, signature: bytes, key: VerifyingKey,
                           log_keys: LogKeys) -> RekorBundle:
    text = layer.annotations.get(BUNDLE_ANNOTATION)
    if not text:
        raise TransparencyLogError("a transparency log entry is required but the signature has none")
    rb = RekorBundle.from_json(_json(text))
    rb.verify(log_keys)
    check_body(rb.body(), signature=signature, signer_der=key.der(),
               artifact_sha256=hashlib.sha256(layer.payload).hexdigest())
    return rb


def _json(text: str) -> object:
    return jsonio.loads(text, "Rekor bundle annotation", error=TransparencyLogError)


def manifest_digest(raw: bytes) -> Digest:
    """The digest a signature must name; schema 1 manifests (JWS-signed, digest ill-defined) are refused."""
    obj = jsonio.loads(raw, "the image manifest", error=DigestMismatchError)
    if isinstance(obj, dict) and obj.get("schemaVersion") == 1:
        raise DigestMismatchError("schema 1 manifests have no stable digest to bind a signature to")
    return Digest.of(raw)


def check_identity(payload: SimpleSigningPayload, expected: str) -> None:
    """The signed ``docker-reference`` must name ``expected`` (tag and digest ignored on both sides)."""

    def strip(ref: str) -> str:
        ref = ref.split("@", 1)[0]
        slash, colon = ref.rfind("/"), ref.rfind(":")
        return ref[:colon] if colon > slash else ref

    if strip(payload.docker_reference) != strip(expected):
        raise IdentityMismatchError(f"signed for {quote_for_error(payload.docker_reference)}, expected "
                                    f"{quote_for_error(expected)}")


# The closer an error is to "verified", the more it says: a valid signature for another digest beats
# a signature from another key, which beats an unreadable signature.
_RANK: tuple[type[VerificationError], ...] = (
    AnnotationsMismatchError,
    DigestMismatchError,
    IdentityMismatchError,
    PayloadMalformedError,
    TransparencyLogError,
    CertificateError,
    NoValidSignatureError,
    SignatureEncodingError,
    NotSimpleSigningError,
)


def most_informative(errors: Sequence[VerificationError]) -> VerificationError:
    def rank(e: VerificationError) -> int:
        for i, cls in enumerate(_RANK):
            if isinstance(e, cls):
                return i
        return len(_RANK)

    return sorted(errors, key=rank)[0]


@dataclass(frozen=True)
class Verified:
    layer: SignatureLayer
    payload: SimpleSigningPayload


def verify_layers(layers: Sequence[SignatureLayer], trust: Trust, image_digest: Digest | None,
                  required: Mapping[str, str] | None = None, image_name: str | None = None) -> list[Verified]:
    """All layers that verify; raises when none does (NoSignaturesError when there are none)."""
    if not layers:
        raise NoSignaturesError("no signatures found")
    good: list[Verified] = []
    errors: list[VerificationError] = []
    for layer in layers:
        try:
            good.append(Verified(layer, verify_layer(layer, trust, image_digest, required, image_name)))
        except VerificationError as exc:
            errors.append(exc)
    if good:
        return good
    err = most_informative(errors)
    if len(layers) > 1:
        raise type(err)(f"none of the {len(layers)} signatures is valid; closest: {err}") from err
    raise err
