"""Sigstore bundles (v0.1 to v0.3): the format cosign v3 attaches by default, and ``sign-blob --bundle``.

Verification with a given public key (or certificate roots for keyless bundles), never selecting the key
by ``publicKey.hint``: hints are opaque (npm's are not key fingerprints).  Transparency-log evidence is
checked offline when log keys are supplied: SET, inclusion proof, checkpoint, and that the logged body
records this very signature.  RFC 3161 timestamps are not checked.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from giropops import jsonio
from giropops.errors import quote_for_error
from giropops.oci.model import Digest
from giropops.sign.attached import Trust, certificate_key
from giropops.sign.certs import leaf_key
from giropops.sign.dsse import Envelope, InTotoStatement, pae
from giropops.sign.encoding import b64_value, b64decode_strict
from giropops.sign.errors import (
    BundleError,
    CertificateError,
    DigestMismatchError,
    InclusionProofError,
    NoValidSignatureError,
    SignatureEncodingError,
    TransparencyLogError,
)
from giropops.sign.keys import VerifyingKey
from giropops.sign.rekor import (
    LogKeys,
    check_body,
    decode_body,
    leaf_hash,
    verify_checkpoint,
    verify_inclusion,
    verify_set,
)

BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_MEDIA_TYPES = frozenset({
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    BUNDLE_V03,
})
MAX_BUNDLE_BYTES = 16 * 1024 * 1024


def _b64(v: Any, what: str) -> bytes:
    return b64_value(v, what, lambda m: BundleError(f"bundle: {m}"), f"{what} must be a base64 string")


def _int(v: Any, what: str) -> int:
    # protobuf JSON writes int64 as strings
    if isinstance(v, bool):
        raise BundleError(f"bundle: {what} must be an integer")
    try:
        return int(v)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"bundle: {what} must be an integer") from exc


@dataclass(frozen=True)
class TlogEntry:
    log_index: int
    log_id_hex: str
    kind: str
    integrated_time: int
    set_sig: bytes | None
    body: bytes
    proof: Mapping[str, Any] | None

    @classmethod
    def from_json(cls, obj: Any) -> TlogEntry:
        if not isinstance(obj, Mapping):
            raise BundleError("bundle: tlog entry must be an object")
        promise = obj.get("inclusionPromise")
        set_sig = None
        if isinstance(promise, dict):
            set_sig = _b64(promise.get("signedEntryTimestamp"), "signedEntryTimestamp")
        kv = obj.get("kindVersion") or {}
        return cls(
            log_index=_int(obj.get("logIndex"), "logIndex"),
            log_id_hex=_b64((obj.get("logId") or {}).get("keyId"), "logId.keyId").hex(),
            kind=str(kv.get("kind", "")),
            integrated_time=_int(obj.get("integratedTime", 0), "integratedTime"),
            set_sig=set_sig,
            body=_b64(obj.get("canonicalizedBody"), "canonicalizedBody"),
            proof=obj.get("inclusionProof") if isinstance(obj.get("inclusionProof"), dict) else None,
        )

    def verify(self, log_keys: LogKeys) -> None:
        if self.set_sig is None and self.proof is None:
            raise TransparencyLogError("the log entry has neither an inclusion promise nor a proof")
        if self.set_sig is not None:
            body_b64 = base64_std(self.body)
            verify_set(self.set_sig, body_b64, self.integrated_time, self.log_index, self.log_id_hex, log_keys)
        if self.proof is not None:
            p = self.proof
            hashes = p.get("hashes") or []
            if not isinstance(hashes, list):
                raise BundleError("bundle: inclusionProof.hashes must be a list")
            root = _b64(p.get("rootHash"), "rootHash")
            size = _int(p.get("treeSize"), "treeSize")
            verify_inclusion(leaf_hash(self.body), _int(p.get("logIndex"), "proof logIndex"), size,
                             [_b64(h, "proof hash") for h in hashes], root)
            cp = p.get("checkpoint")
            if isinstance(cp, dict) and isinstance(cp.get("envelope"), str):
                checkpoint = verify_checkpoint(cp["envelope"], log_keys, self.log_id_hex)
                if checkpoint.root != root or checkpoint.size != size:
                    raise InclusionProofError("the checkpoint is for another tree than the inclusion proof")


def base64_std(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Bundle:
    media_type: str
    raw: Mapping[str, Any]
    hint: str | None
    certificates: tuple[x509.Certificate, ...]
    tlog_entries: tuple[TlogEntry, ...]
    envelope: Envelope | None
    message_digest: bytes | None
    message_signature: bytes | None

    @classmethod
    def from_bytes(cls, raw: bytes) -> Bundle:
        if len(raw) > MAX_BUNDLE_BYTES:
            raise BundleError("bundle is too large")
        obj = jsonio.loads(raw, "bundle", error=BundleError)
        return cls.from_json(obj)

    @classmethod
    def from_json(cls, obj: Any) -> Bundle:
        if not isinstance(obj, Mapping):
            raise BundleError("bundle must be a JSON object")
        mt = obj.get("mediaType")
        if mt not in BUNDLE_MEDIA_TYPES:
            raise BundleError(f"unsupported bundle media type {quote_for_error(mt)}")
        vm = obj.get("verificationMaterial")
        if not isinstance(vm, Mapping):
            raise BundleError("bundle has no verificationMaterial")
        hint = None
        certs: list[x509.Certificate] = []
        if isinstance(vm.get("publicKey"), Mapping):
            h = vm["publicKey"].get("hint")
            hint = h if isinstance(h, str) else None
        raws: list[Any] = []
        if isinstance(vm.get("certificate"), Mapping):
            raws = [vm["certificate"].get("rawBytes")]
        elif isinstance(vm.get("x509CertificateChain"), Mapping):
            raws = [c.get("rawBytes") for c in vm["x509CertificateChain"].get("certificates") or []]
        for r in raws:
            try:
                certs.append(x509.load_der_x509_certificate(_b64(r, "certificate")))
            except ValueError as exc:
                raise BundleError(f"bundle: invalid certificate: {exc}") from exc
        entries = vm.get("tlogEntries") or []
        if not isinstance(entries, list):
            raise BundleError("bundle: tlogEntries must be a list")
        envelope = None
        mdigest = msig = None
        if isinstance(obj.get("dsseEnvelope"), Mapping):
            envelope = Envelope.from_json(obj["dsseEnvelope"])
        elif isinstance(obj.get("messageSignature"), Mapping):
            ms = obj["messageSignature"]
            msig = _b64(ms.get("signature"), "messageSignature.signature")
            md = ms.get("messageDigest")
            if isinstance(md, Mapping):
                if md.get("algorithm") != "SHA2_256":
                    raise BundleError(f"unsupported message digest algorithm {quote_for_error(md.get('algorithm'))}")
                mdigest = _b64(md.get("digest"), "messageDigest.digest")
        else:
            raise BundleError("bundle has neither a dsseEnvelope nor a messageSignature")
        return cls(mt, obj, hint, tuple(certs), tuple(TlogEntry.from_json(e) for e in entries), envelope,
                   mdigest, msig)

    def statement(self) -> InTotoStatement:
        if self.envelope is None:
            raise BundleError("bundle holds a message signature, not an attestation")
        return InTotoStatement.from_bytes(self.envelope.payload)


@dataclass(frozen=True)
class VerifiedBundle:
    bundle: Bundle
    key: VerifyingKey
    statement: InTotoStatement | None


def verify_bundle(bundle: Bundle, trust: Trust, artifact: bytes | None = None,
                  artifact_digest: Digest | None = None) -> VerifiedBundle:
    """Signature, artifact binding, and (when log keys are trusted) transparency-log evidence."""
    keyless = bool(bundle.certificates) and trust.key is None
    key = leaf_key(bundle.certificates[0]) if keyless else _bundle_key(bundle, trust)
    statement: InTotoStatement | None = None
    if bundle.envelope is not None:
        bundle.envelope.verify(key)
        signature, body_payload = dsse_signature(bundle.envelope, key), bundle.envelope.payload
        statement = InTotoStatement.from_bytes(bundle.envelope.payload)
        if artifact is not None:
            artifact_digest = Digest.of(artifact)
        if artifact_digest is not None:
            statement.check_subject(artifact_digest)
        artifact_sha = None
    else:
        assert bundle.message_signature is not None
        signature, body_payload = bundle.message_signature, None
        digest = bundle.message_digest
        if artifact is not None:
            actual = hashlib.sha256(artifact).digest()
            if digest is not None and digest != actual:
                raise DigestMismatchError("the bundle's message digest is not the artifact's sha256")
            digest = actual
        elif artifact_digest is not None:
            if digest is not None and digest.hex() != artifact_digest.hex:
                raise DigestMismatchError("the bundle's message digest is not the artifact's")
            digest = bytes.fromhex(artifact_digest.hex)
        if digest is None:
            raise BundleError("nothing to verify the message signature against (no artifact, no digest)")
        if artifact is not None:
            key.verify(signature, artifact)
        else:
            key.verify_prehashed(signature, digest)
        artifact_sha = digest.hex()
    when = None
    if trust.log_keys is not None:
        if not bundle.tlog_entries and trust.require_tlog:
            raise TransparencyLogError("the bundle has no transparency log entry")
        for entry in bundle.tlog_entries:
            entry.verify(trust.log_keys)
            check_body(decode_body(base64_std(entry.body)), signature=signature, signer_der=key.der(),
                       artifact_sha256=artifact_sha, envelope_payload=body_payload)
            if when is None and entry.set_sig is not None:
                # only a verified SET signs integratedTime; an inclusion proof covers the body alone
                when = datetime.datetime.fromtimestamp(entry.integrated_time, datetime.UTC)
    elif trust.trusted_root is None and bundle.tlog_entries:
        when = datetime.datetime.fromtimestamp(bundle.tlog_entries[0].integrated_time, datetime.UTC)
    if keyless:
        certificate_key(bundle.certificates[0], bundle.certificates[1:], trust, when)
    return VerifiedBundle(bundle, key, statement)


def dsse_signature(env: Envelope, key: VerifyingKey) -> bytes:
    message = pae(env.payload_type, env.payload)
    for s in env.signatures:
        try:
            sig = b64decode_strict(s.sig, "signature")
            key.verify(sig, message)
            return sig
        except (ValueError, NoValidSignatureError, SignatureEncodingError):
            continue
    raise NoValidSignatureError("no DSSE signature verifies with the given key")


def _bundle_key(bundle: Bundle, trust: Trust) -> VerifyingKey:
    if trust.key is None:
        raise NoValidSignatureError("the bundle names its key only by a hint; a public key must be given")
    return trust.key


def trusted_root_certificates(doc: Mapping[str, Any]) -> list[x509.Certificate]:
    """Every CA certificate of a sigstore ``trusted_root.json`` (Fulcio chains)."""
    out: list[x509.Certificate] = []
    for ca in doc.get("certificateAuthorities") or []:
        for c in ((ca or {}).get("certChain") or {}).get("certificates") or []:
            try:
                out.append(x509.load_der_x509_certificate(_b64(c.get("rawBytes"), "CA certificate")))
            except ValueError as exc:
                raise CertificateError(f"trusted root: invalid CA certificate: {exc}") from exc
    return out


def roots_only(certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    return [c for c in certs if c.subject == c.issuer]
