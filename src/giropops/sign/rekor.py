"""Offline Rekor evidence: signed entry timestamps (SET), Merkle inclusion proofs, checkpoints, entry bodies.

Nothing here talks to a transparency log: giropops never uploads (like ``cosign --tlog-upload=false``),
but it can check the evidence cosign attached when someone else signed with a log.

* SET: the log's signature over compact, key-sorted JSON ``{"body","integratedTime","logID","logIndex"}``.
* Inclusion proof: RFC 6962 / RFC 9162 audit path from ``sha256(0x00 || body)`` to the root hash.
* Checkpoint: a signed note ``origin\\nsize\\nroot\\n\\n— name b64(keyid[4] || sig)``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from giropops import jsonio
from giropops.errors import quote_for_error
from giropops.sign.encoding import b64_value, b64decode_strict
from giropops.sign.errors import (
    InclusionProofError,
    LogEntryMismatchError,
    NoValidSignatureError,
    SignedEntryTimestampError,
    TransparencyLogError,
)
from giropops.sign.keys import VerifyingKey, pem_blocks


@dataclass(frozen=True)
class LogKeys:
    """Trusted transparency-log keys by log ID (hex sha256 of the key's SPKI DER)."""

    keys: Mapping[str, VerifyingKey]

    @classmethod
    def from_pems(cls, *pems: bytes) -> LogKeys:
        out: dict[str, VerifyingKey] = {}
        for pem in pems:
            k = VerifyingKey.from_pem(pem, "transparency log key")
            out[hashlib.sha256(k.der()).hexdigest()] = k
        return cls(out)

    @classmethod
    def from_trusted_root(cls, doc: Mapping[str, Any]) -> LogKeys:
        """The ``tlogs`` of a sigstore ``trusted_root.json``."""
        out: dict[str, VerifyingKey] = {}
        tlogs = doc.get("tlogs")
        if not isinstance(tlogs, list):
            raise TransparencyLogError("trusted root has no 'tlogs' list")
        for t in tlogs:
            try:
                raw = b64decode_strict(t["publicKey"]["rawBytes"], "tlog key")
                log_id = b64decode_strict(t["logId"]["keyId"], "tlog id").hex()
            except (KeyError, TypeError, ValueError) as exc:
                raise TransparencyLogError(f"trusted root: malformed tlog entry ({exc})") from exc
            out[log_id] = VerifyingKey.from_der(raw, "tlog key")
        return cls(out)

    def get(self, log_id_hex: str) -> VerifyingKey:
        key = self.keys.get(log_id_hex)
        if key is None:
            raise TransparencyLogError(f"no trusted transparency log key for log ID {log_id_hex}")
        return key


def set_payload(body_b64: str, integrated_time: int, log_index: int, log_id_hex: str) -> bytes:
    # Key-sorted, compact: what Rekor signs (RFC 8785 canonical JSON for these plain values).
    doc = {"body": body_b64, "integratedTime": integrated_time, "logID": log_id_hex, "logIndex": log_index}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def verify_set(set_sig: bytes, body_b64: str, integrated_time: int, log_index: int, log_id_hex: str,
               keys: LogKeys) -> None:
    key = keys.get(log_id_hex)
    try:
        key.verify(set_sig, set_payload(body_b64, integrated_time, log_index, log_id_hex))
    except NoValidSignatureError as exc:
        raise SignedEntryTimestampError("the signed entry timestamp (SET) does not verify with the log's key") from exc


@dataclass(frozen=True)
class RekorBundle:
    """cosign's ``dev.sigstore.cosign/bundle`` annotation (and ``rekorBundle`` of old blob bundles)."""

    signed_entry_timestamp: bytes
    body_b64: str
    integrated_time: int
    log_index: int
    log_id_hex: str

    @classmethod
    def from_json(cls, obj: Any) -> RekorBundle:
        try:
            p = obj["Payload"]
            sig = b64decode_strict(obj["SignedEntryTimestamp"], "SignedEntryTimestamp")
            body, t, idx, lid = p["body"], p["integratedTime"], p["logIndex"], p["logID"]
        except (KeyError, TypeError, ValueError) as exc:
            raise TransparencyLogError(f"malformed Rekor bundle: {exc}") from exc
        if not (isinstance(body, str) and isinstance(t, int) and isinstance(idx, int) and isinstance(lid, str)):
            raise TransparencyLogError("malformed Rekor bundle: wrong field types")
        return cls(sig, body, t, idx, lid)

    def verify(self, keys: LogKeys) -> None:
        verify_set(self.signed_entry_timestamp, self.body_b64, self.integrated_time, self.log_index,
                   self.log_id_hex, keys)

    def body(self) -> dict[str, Any]:
        return decode_body(self.body_b64)


def decode_body(body_b64: str) -> dict[str, Any]:
    try:
        obj = jsonio.loads(b64decode_strict(body_b64, "entry body"), "the log entry body",
                           error=TransparencyLogError)
    except ValueError as exc:
        raise TransparencyLogError(f"the log entry body is not base64 JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise TransparencyLogError("the log entry body is not a JSON object")
    return obj


def _hash_children(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf_hash(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 section 2.1.3.2."""
    if index < 0 or index >= tree_size:
        raise InclusionProofError(f"inclusion proof: index {index} outside a tree of {tree_size}")
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            raise InclusionProofError("inclusion proof: audit path is too long")
        if fn & 1 or fn == sn:
            r = _hash_children(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _hash_children(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise InclusionProofError("inclusion proof does not lead to the root hash")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes


def verify_checkpoint(envelope: str, keys: LogKeys, log_id_hex: str) -> Checkpoint:
    body, sep, sigs = envelope.partition("\n\n")
    if not sep:
        raise InclusionProofError("checkpoint: no signature section")
    text = body + "\n"
    lines = body.split("\n")
    if len(lines) < 3:
        raise InclusionProofError("checkpoint: needs origin, size and root hash lines")
    try:
        size = int(lines[1])
        root = b64decode_strict(lines[2], "checkpoint root")
    except ValueError as exc:
        raise InclusionProofError(f"checkpoint: {exc}") from exc
    key = keys.get(log_id_hex)
    for line in sigs.strip("\n").split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014":
            continue
        try:
            raw = b64decode_strict(parts[2], "checkpoint signature")
        except ValueError:
            continue
        if len(raw) < 5:
            continue
        try:
            key.verify(raw[4:], text.encode())
        except NoValidSignatureError:
            continue
        return Checkpoint(lines[0], size, root)
    raise InclusionProofError("checkpoint: no signature verifies with the log's key")


# ------------------------------------------------------------------ entry bodies


def public_key_der_from_pem(pem: bytes) -> bytes:
    """SPKI DER of a PEM public key or certificate, as log entries carry either."""
    for label, der in pem_blocks(pem, "log entry key"):
        if label == "CERTIFICATE":
            cert = x509.load_der_x509_certificate(der)
            return VerifyingKey(cert.public_key()).der()  # type: ignore[arg-type]
        if label == "PUBLIC KEY":
            return der
    raise TransparencyLogError("log entry key is neither a certificate nor a public key")


def _b64(v: Any, what: str) -> bytes:
    return b64_value(v, what, lambda m: TransparencyLogError(f"log entry body: {m}"), f"{what} missing")


def check_body(body: Mapping[str, Any], *, signature: bytes, signer_der: bytes,
               artifact_sha256: str | None = None, envelope_payload: bytes | None = None) -> None:
    """The logged entry must record this very signature, key and artifact (or DSSE payload)."""
    kind = body.get("kind")
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise TransparencyLogError("log entry body has no spec")
    try:
        if kind in ("hashedrekord", "rekord"):
            sig = spec["signature"]
            got_sig = _b64(sig["content"], "signature")
            got_key = public_key_der_from_pem(_b64(sig["publicKey"]["content"], "public key"))
            hsh = spec["data"]["hash"]
            if hsh.get("algorithm") != "sha256" or hsh.get("value") != artifact_sha256:
                raise LogEntryMismatchError("the logged artifact hash is not the signed payload's")
        elif kind == "dsse":
            entries = spec["signatures"]
            pairs = [(_b64(e["signature"], "signature"),
                      public_key_der_from_pem(_b64(e["verifier"], "verifier"))) for e in entries]
            match = [p for p in pairs if p == (signature, signer_der)]
            if not match:
                raise LogEntryMismatchError("the logged DSSE signature/verifier is not this envelope's")
            got_sig, got_key = match[0]
            ph = spec["payloadHash"]
            if envelope_payload is None or ph.get("value") != hashlib.sha256(envelope_payload).hexdigest():
                raise LogEntryMismatchError("the logged DSSE payload hash is not this envelope's")
        elif kind == "intoto":
            env = spec["content"]["envelope"]
            pairs = []
            for e in env["signatures"]:
                sig_b64 = _b64(e["sig"], "signature").decode("ascii", "replace")
                pairs.append((_b64(sig_b64, "signature"), public_key_der_from_pem(_b64(e["publicKey"], "key"))))
            match = [p for p in pairs if p == (signature, signer_der)]
            if not match:
                raise LogEntryMismatchError("the logged in-toto signature/key is not this envelope's")
            got_sig, got_key = match[0]
            ph = spec["content"]["payloadHash"]
            if envelope_payload is None or ph.get("value") != hashlib.sha256(envelope_payload).hexdigest():
                raise LogEntryMismatchError("the logged in-toto payload hash is not this envelope's")
        else:
            raise TransparencyLogError(f"unsupported log entry kind {quote_for_error(kind)}")
    except (KeyError, TypeError, AttributeError) as exc:
        raise TransparencyLogError(f"malformed {kind} log entry body: {exc}") from exc
    if got_sig != signature:
        raise LogEntryMismatchError("the logged signature is not this signature")
    if got_key != signer_der:
        raise LogEntryMismatchError("the logged key/certificate is not the signer's")
