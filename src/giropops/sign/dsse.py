"""DSSE envelopes and the in-toto statements cosign puts in them.

The signature covers PAE(payloadType, payload) = ``DSSEv1 <len> <type> <len> <body>``, never the raw
payload.  cosign ``attest`` writes in-toto Statement v0.1; cosign v3 bundles carry Statement v1.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from giropops import jsonio
from giropops.errors import quote_for_error
from giropops.oci.model import Digest
from giropops.sign.encoding import b64decode_strict, b64encode
from giropops.sign.errors import (
    NoValidSignatureError,
    PayloadMalformedError,
    SignatureEncodingError,
    SubjectMismatchError,
)
from giropops.sign.keys import SigningKey, VerifyingKey
from giropops.sign.payload import go_json

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
MAX_ENVELOPE_BYTES = 64 * 1024 * 1024

# cosign's --type names and the predicate type URIs it maps them to (options/predicate.go).
PREDICATE_TYPES: Mapping[str, str] = {
    "custom": "https://cosign.sigstore.dev/attestation/v1",
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance02": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
    "spdx": "https://spdx.dev/Document",
    "spdxjson": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom",
    "cyclonedxxml": "https://cyclonedx.org/bom",
    "link": "https://in-toto.io/Link/v1",
    "vuln": "https://cosign.sigstore.dev/attestation/vuln/v1",
    "openvex": "https://openvex.dev/ns",
}
# Types whose predicate file is embedded as JSON; the others are embedded as a string.
_JSON_PREDICATES = frozenset({"slsaprovenance", "slsaprovenance02", "slsaprovenance1", "spdxjson", "cyclonedx",
                              "link", "vuln", "openvex"})


def predicate_type_uri(name: str) -> str:
    """``cyclonedx`` -> ``https://cyclonedx.org/bom``; a URI passes through, as in cosign."""
    uri = PREDICATE_TYPES.get(name)
    if uri is not None:
        return uri
    if "://" in name and " " not in name:
        return name
    choices = "|".join(PREDICATE_TYPES)
    raise PayloadMalformedError(f"invalid predicate type {quote_for_error(name)} (expected {choices} or a URI)")


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class DSSESignature:
    keyid: str
    sig: str  # base64, as stored


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[DSSESignature, ...]

    @classmethod
    def from_json(cls, obj: Any) -> Envelope:
        if not isinstance(obj, Mapping):
            raise PayloadMalformedError("DSSE envelope must be a JSON object")
        ptype = obj.get("payloadType")
        payload = obj.get("payload")
        sigs = obj.get("signatures")
        if not isinstance(ptype, str) or not isinstance(payload, str) or not isinstance(sigs, list):
            raise PayloadMalformedError("DSSE envelope needs string payloadType, payload and a signatures list")
        try:
            body = b64decode_strict(payload, "DSSE payload")
        except ValueError as exc:
            raise PayloadMalformedError(str(exc)) from exc
        out: list[DSSESignature] = []
        for s in sigs:
            if not isinstance(s, Mapping) or not isinstance(s.get("sig"), str):
                raise PayloadMalformedError("DSSE signature entries need a 'sig' string")
            keyid = s.get("keyid", "")
            out.append(DSSESignature(keyid if isinstance(keyid, str) else "", s["sig"]))
        return cls(ptype, body, tuple(out))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise PayloadMalformedError("DSSE envelope is too large")
        return cls.from_json(jsonio.loads(raw, "DSSE envelope", error=PayloadMalformedError))

    def to_json(self) -> dict[str, Any]:
        return {
            "payloadType": self.payload_type,
            "payload": b64encode(self.payload),
            "signatures": [{"keyid": s.keyid, "sig": s.sig} for s in self.signatures],
        }

    def to_bytes(self) -> bytes:
        return go_json(self.to_json())

    def verify(self, key: VerifyingKey) -> None:
        """Pass if any signature verifies over the PAE; raise otherwise."""
        if not self.signatures:
            raise NoValidSignatureError("the DSSE envelope has no signatures")
        message = pae(self.payload_type, self.payload)
        encoding_error: SignatureEncodingError | None = None
        for s in self.signatures:
            try:
                key.verify_b64(s.sig, message)
                return
            except SignatureEncodingError as exc:
                encoding_error = exc
            except NoValidSignatureError:
                continue
        if encoding_error is not None and len(self.signatures) == 1:
            raise encoding_error
        raise NoValidSignatureError("no DSSE signature verifies with the given key")


def sign_envelope(key: SigningKey, payload: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE) -> Envelope:
    sig = key.sign(pae(payload_type, payload))
    return Envelope(payload_type, payload, (DSSESignature("", b64encode(sig)),))


@dataclass(frozen=True)
class InTotoStatement:
    type: str
    predicate_type: str
    subjects: tuple[Mapping[str, Any], ...]
    predicate: Any
    raw: bytes

    @classmethod
    def from_bytes(cls, raw: bytes) -> InTotoStatement:
        obj = jsonio.loads(raw, "in-toto statement", error=PayloadMalformedError)
        if not isinstance(obj, dict):
            raise PayloadMalformedError("in-toto statement must be a JSON object")
        stype = obj.get("_type")
        if stype not in (STATEMENT_V01, STATEMENT_V1):
            raise PayloadMalformedError(f"unsupported in-toto statement type {quote_for_error(stype)}")
        ptype = obj.get("predicateType")
        if not isinstance(ptype, str):
            raise PayloadMalformedError("in-toto statement: 'predicateType' must be a string")
        subjects = obj.get("subject")
        if not isinstance(subjects, list) or not all(isinstance(s, dict) for s in subjects):
            raise PayloadMalformedError("in-toto statement: 'subject' must be a list of objects")
        return cls(stype, ptype, tuple(subjects), obj.get("predicate"), raw)

    def check_subject(self, digest: Digest) -> None:
        """At least one subject must carry ``digest`` (cosign's claim check)."""
        if not self.subjects:
            raise SubjectMismatchError("the statement has no subjects")
        for s in self.subjects:
            dg = s.get("digest")
            if isinstance(dg, dict) and dg.get(digest.algorithm) == digest.hex:
                return
        raise SubjectMismatchError(f"no subject of the statement has digest {digest}")


def build_statement(predicate_type_name: str, predicate_raw: bytes, subject_name: str, digest: Digest,
                    now: datetime.datetime | None = None) -> bytes:
    """The in-toto v0.1 statement ``cosign attest`` writes for an image."""
    uri = predicate_type_uri(predicate_type_name)
    predicate: Any
    if predicate_type_name == "custom" or predicate_type_name not in PREDICATE_TYPES:
        ts = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            data = predicate_raw.decode()
        except UnicodeDecodeError as exc:
            raise PayloadMalformedError(f"the custom predicate is not UTF-8 text: {exc}") from exc
        predicate = {"Data": data, "Timestamp": ts}
    elif predicate_type_name in _JSON_PREDICATES:
        predicate = jsonio.loads(predicate_raw, f"the {predicate_type_name} predicate", error=PayloadMalformedError)
    else:
        predicate = predicate_raw.decode("utf-8", "replace")
    doc = {
        "_type": STATEMENT_V01,
        "predicateType": uri,
        "subject": [{"name": subject_name, "digest": {digest.algorithm: digest.hex}}],
        "predicate": predicate,
    }
    return go_json(doc)
