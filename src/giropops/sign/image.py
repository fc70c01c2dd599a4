"""Sign, attest and verify images the way cosign does, against any ``Store``.

The ``.sig`` / ``.att`` manifest is rebuilt byte-for-byte as cosign (go-containerregistry) writes it:
an OCI manifest, config ``application/vnd.oci.image.config.v1+json`` holding one diff_id and one empty
history entry per layer, compact JSON with descriptors ordered mediaType, size, digest, annotations.
New signatures are appended to the existing layers; an identical layer is not added twice.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from giropops import jsonio
from giropops.errors import ImageError, ManifestError, RegistryError, VerificationError
from giropops.oci import mediatypes as mt
from giropops.oci.model import Descriptor, Digest, Manifest
from giropops.sign.attached import (
    DSSE_MEDIA_TYPE,
    PREDICATE_TYPE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    SignatureLayer,
    Trust,
    Verified,
    layer_certificates,
    most_informative,
    signer_key,
    verify_layers,
)
from giropops.sign.bundle import BUNDLE_V03, Bundle, dsse_signature, verify_bundle
from giropops.sign.certs import leaf_key
from giropops.sign.dsse import (
    MAX_ENVELOPE_BYTES,
    Envelope,
    InTotoStatement,
    build_statement,
    predicate_type_uri,
    sign_envelope,
)
from giropops.sign.encoding import b64encode
from giropops.sign.errors import (
    NoMatchingAttestationError,
    NoSignaturesError,
    PayloadMalformedError,
)
from giropops.sign.keys import SigningKey
from giropops.sign.payload import SimpleSigningPayload, go_json
from giropops.sign.storage import ATT_SUFFIX, SBOM_SUFFIX, SIG_SUFFIX, Attached, SignedSubject, Store, attached_tag

COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
_ZERO_TIME = "0001-01-01T00:00:00Z"


def _descriptor_json(d: Descriptor) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": d.media_type, "size": d.size, "digest": str(d.digest)}
    if d.annotations:
        out["annotations"] = dict(sorted(d.annotations.items()))  # Go marshals maps key-sorted
    return out


def attached_manifest(layers: Sequence[Descriptor]) -> tuple[bytes, bytes]:
    """(manifest bytes, config bytes) of a cosign ``.sig`` / ``.att`` image with these layers."""
    config = go_json({
        "architecture": "",
        "created": _ZERO_TIME,
        "history": [{"created": _ZERO_TIME} for _ in layers],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [str(d.digest) for d in layers]},
        "config": {},
    })
    cfg = Descriptor(mt.OCI_CONFIG, Digest.of(config), len(config))
    manifest = go_json({
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": _descriptor_json(cfg),
        "layers": [_descriptor_json(d) for d in layers],
    })
    return manifest, config


@dataclass(frozen=True)
class AttachResult:
    subject: SignedSubject
    tag: str
    manifest_digest: Digest
    layer: Descriptor
    added: bool  # False when an identical signature was already there
    total: int


def _attach(store: Store, subject: SignedSubject, suffix: str, blob: bytes, layer: Descriptor) -> AttachResult:
    existing = store.read_attached(subject.digest, suffix)
    layers = list(existing.manifest.layers) if existing else []
    added = not any(d.digest == layer.digest and dict(d.annotations) == dict(layer.annotations) for d in layers)
    if added:
        layers.append(layer)
    manifest, config = attached_manifest(layers)
    blobs = {Digest.of(config): config, layer.digest: blob}
    digest = store.write_attached(subject.digest, suffix, manifest, blobs)
    return AttachResult(subject, attached_tag(subject.digest, suffix), digest, layer, added, len(layers))


def sign_image(store: Store, key: SigningKey, annotations: Mapping[str, str] | None = None,
               subject: SignedSubject | None = None) -> AttachResult:
    """Sign ``subject`` (resolved once by the caller, so what was announced is what gets signed)."""
    subject = subject or store.subject()
    payload = SimpleSigningPayload(subject.name, subject.digest, dict(annotations or {})).to_bytes()
    signature = b64encode(key.sign(payload))
    layer = Descriptor(SIMPLE_SIGNING_MEDIA_TYPE, Digest.of(payload), len(payload), {SIGNATURE_ANNOTATION: signature})
    return _attach(store, subject, SIG_SUFFIX, payload, layer)


def attest_image(store: Store, key: SigningKey, predicate_type: str, predicate: bytes,
                 now: datetime.datetime | None = None, subject: SignedSubject | None = None) -> AttachResult:
    subject = subject or store.subject()
    statement = build_statement(predicate_type, predicate, subject.name, subject.digest, now)
    envelope = sign_envelope(key, statement).to_bytes()
    uri = predicate_type_uri(predicate_type)
    layer = Descriptor(DSSE_MEDIA_TYPE, Digest.of(envelope), len(envelope),
                       {SIGNATURE_ANNOTATION: "", PREDICATE_TYPE_ANNOTATION: uri})
    return _attach(store, subject, ATT_SUFFIX, envelope, layer)


# ------------------------------------------------------------------------------ verify


@dataclass(frozen=True)
class ImageVerification:
    subject: SignedSubject
    signatures: tuple[Verified, ...]
    bundles: tuple[InTotoStatement, ...]

    def payloads_json(self) -> list[Any]:
        out: list[Any] = [jsonio.loads(v.layer.payload, "signed payload", error=PayloadMalformedError)
                          for v in self.signatures]
        out += [jsonio.loads(s.raw, "in-toto statement", error=PayloadMalformedError) for s in self.bundles]
        return out


def _layers(store: Store, attached: Attached | None) -> list[SignatureLayer]:
    if attached is None:
        return []
    return [SignatureLayer(d.media_type, store.read_blob(d), d.annotations) for d in attached.manifest.layers]


def _bundles(store: Store, subject: Digest, predicate_type: str | None) -> list[Bundle]:
    out = []
    for desc in store.referrers(subject):
        if desc.artifact_type != BUNDLE_V03:
            continue
        try:
            m = Manifest.from_bytes(store.read_manifest(desc.digest))
        except ManifestError:
            continue
        if m.subject is None or m.subject.digest != subject:
            continue
        ptype = m.annotations.get("dev.sigstore.bundle.predicateType")
        if predicate_type is not None and ptype is not None and ptype != predicate_type:
            continue
        for layer in m.layers:
            if layer.media_type == BUNDLE_V03:
                out.append(Bundle.from_bytes(store.read_blob(layer)))
    return out


def verify_image(store: Store, trust: Trust, annotations: Mapping[str, str] | None = None) -> ImageVerification:
    subject = store.subject()
    layers = _layers(store, store.read_attached(subject.digest, SIG_SUFFIX))
    try:
        bundles = _bundles(store, subject.digest, COSIGN_SIGN_PREDICATE)
    except RegistryError:
        if not layers:
            raise
        bundles = []  # a registry that fails the referrers API does not spoil attached .sig signatures
    if not layers and not bundles:
        raise NoSignaturesError(f"no signatures found for {subject.display} ({subject.digest})")
    errors: list[VerificationError] = []
    good: list[Verified] = []
    if layers:
        try:
            good = verify_layers(layers, trust, subject.digest, annotations, subject.name or None)
        except VerificationError as exc:
            errors.append(exc)
    statements: list[InTotoStatement] = []
    for b in bundles:
        try:
            vb = verify_bundle(b, trust, artifact_digest=subject.digest)
            if vb.statement is None or vb.statement.predicate_type != COSIGN_SIGN_PREDICATE:
                raise PayloadMalformedError("the bundle is not a cosign image signature")
            if annotations:
                # cosign v3 keeps -a annotations in the statement's subject annotations
                ann = {}
                for s in vb.statement.subjects:
                    if isinstance(s.get("annotations"), dict):
                        ann.update(s["annotations"])
                SimpleSigningPayload("", subject.digest, ann).check_annotations(annotations)
            statements.append(vb.statement)
        except VerificationError as exc:
            errors.append(exc)
    if not good and not statements:
        raise most_informative(errors)
    return ImageVerification(subject, tuple(good), tuple(statements))


def _bundle_predicate(b: Bundle) -> str | None:
    try:
        return b.statement().predicate_type
    except VerificationError:
        return None


@dataclass(frozen=True)
class VerifiedAttestation:
    statement: InTotoStatement
    envelope: Envelope | None


def verify_attestations(
    store: Store, trust: Trust, predicate_type: str | None
) -> tuple[SignedSubject, list[VerifiedAttestation]]:
    """Every attestation that verifies with ``trust``, binds this image and (if given) has the predicate type."""
    subject = store.subject()
    uri = predicate_type_uri(predicate_type) if predicate_type else None
    attached = store.read_attached(subject.digest, ATT_SUFFIX)
    bundles = [b for b in _bundles(store, subject.digest, uri) if b.envelope is not None
               and (uri is not None or _bundle_predicate(b) != COSIGN_SIGN_PREDICATE)]
    if attached is None and not bundles:
        raise NoSignaturesError(f"no attestations found for {subject.display} ({subject.digest})")
    errors: list[VerificationError] = []
    good: list[VerifiedAttestation] = []
    seen_types: set[str] = set()
    for desc in attached.manifest.layers if attached else ():
        try:
            blob = store.read_blob(desc)
            env = Envelope.from_bytes(blob)
            layer = SignatureLayer(desc.media_type, blob, desc.annotations)
            if trust.log_keys is None:
                env.verify(signer_key(layer, trust))
            else:
                # the log entry must record the very signature the signer made over this envelope
                candidate = trust.key or leaf_key(layer_certificates(layer)[0])
                signer_key(layer, trust, dsse_signature(env, candidate), env.payload)
            st = InTotoStatement.from_bytes(env.payload)
            st.check_subject(subject.digest)
            seen_types.add(st.predicate_type)
            if uri is not None and st.predicate_type != uri:
                continue
            good.append(VerifiedAttestation(st, env))
        except VerificationError as exc:
            errors.append(exc)
    for b in bundles:
        try:
            vb = verify_bundle(b, trust, artifact_digest=subject.digest)
            assert vb.statement is not None
            seen_types.add(vb.statement.predicate_type)
            if uri is not None and vb.statement.predicate_type != uri:
                continue
            good.append(VerifiedAttestation(vb.statement, b.envelope))
        except VerificationError as exc:
            errors.append(exc)
    if good:
        return subject, good
    if seen_types:
        raise NoMatchingAttestationError(
            f"no verified attestation of type {uri}; found: {', '.join(sorted(seen_types))}"
        )
    raise most_informative(errors) if errors else NoSignaturesError("no attestations found")


# ------------------------------------------------------------------------------ unverified reading


def read_attestations_unverified(store: Store, subject: Digest) -> list[InTotoStatement]:
    """UNVERIFIED: the in-toto statements attached to ``subject`` (its ``.att`` tag), signatures NOT checked.

    For hints only (where an image says it came from); never for a trust decision, which is
    ``verify_attestations``' job.  Statements that do not name ``subject`` (copied from another
    image) and layers that are not readable DSSE envelopes are left out.
    """
    attached = store.read_attached(subject, ATT_SUFFIX)
    out: list[InTotoStatement] = []
    for desc in attached.manifest.layers if attached else ():
        if desc.media_type != DSSE_MEDIA_TYPE or desc.size > MAX_ENVELOPE_BYTES:
            continue
        try:
            st = InTotoStatement.from_bytes(Envelope.from_bytes(store.read_blob(desc)).payload)
            st.check_subject(subject)
        except (VerificationError, ImageError):
            continue
        out.append(st)
    return out


def has_attached(store: Store, subject: Digest, suffix: str) -> bool:
    """Whether something is attached to ``subject`` under cosign's ``suffix`` tag (``sbom``, ``sig``, ``att``)."""
    return store.read_attached(subject, suffix) is not None


# ------------------------------------------------------------------------------ tree


@dataclass(frozen=True)
class TreeEntry:
    kind: str  # "signature" | "attestation" | "sbom" | "referrer"
    where: str  # tag or manifest digest
    digest: Digest
    media_type: str
    detail: str


def tree(store: Store) -> tuple[SignedSubject, list[TreeEntry]]:
    subject = store.subject()
    out: list[TreeEntry] = []
    for suffix, kind in ((SIG_SUFFIX, "signature"), (ATT_SUFFIX, "attestation"), (SBOM_SUFFIX, "sbom")):
        att = store.read_attached(subject.digest, suffix)
        if att is None:
            continue
        where = attached_tag(subject.digest, suffix)
        for d in att.manifest.layers:
            detail = d.annotations.get(PREDICATE_TYPE_ANNOTATION, "")
            out.append(TreeEntry(kind, where, d.digest, d.media_type, detail))
    for desc in store.referrers(subject.digest):
        detail = desc.annotations.get("dev.sigstore.bundle.predicateType", "")
        out.append(TreeEntry("referrer", str(desc.digest), desc.digest, desc.artifact_type or desc.media_type, detail))
    return subject, out
