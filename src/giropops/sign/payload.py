"""The simple-signing payload cosign signs for an image, byte for byte.

cosign marshals it with Go's ``encoding/json``: compact, struct fields in declaration order, map keys
sorted, and ``<``, ``>``, ``&``, U+2028/U+2029 escaped.  ``optional`` is ``null`` without annotations.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from giropops import jsonio
from giropops.errors import ManifestError, quote_for_error
from giropops.oci.model import Digest
from giropops.oci.reference import DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN, Reference
from giropops.sign.errors import AnnotationsMismatchError, DigestMismatchError, PayloadMalformedError

SIMPLE_SIGNING_TYPE = "cosign container image signature"
MAX_PAYLOAD_BYTES = 1024 * 1024


def go_json(obj: Any, sort_keys: bool = False) -> bytes:
    """JSON as Go's ``json.Marshal`` writes it (compact, HTML-safe escapes, UTF-8)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text.encode()


def docker_reference(ref: Reference) -> str:
    """The repository name as cosign writes it: no tag or digest, Docker Hub spelled ``index.docker.io``."""
    domain = LEGACY_DEFAULT_DOMAIN if ref.domain == DEFAULT_DOMAIN else ref.domain
    return f"{domain}/{ref.path}"


@dataclass(frozen=True)
class SimpleSigningPayload:
    docker_reference: str
    manifest_digest: Digest
    annotations: Mapping[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        doc = {
            "critical": {
                "identity": {"docker-reference": self.docker_reference},
                "image": {"docker-manifest-digest": str(self.manifest_digest)},
                "type": SIMPLE_SIGNING_TYPE,
            },
            "optional": dict(sorted(self.annotations.items())) if self.annotations else None,
        }
        return go_json(doc, sort_keys=False)

    @classmethod
    def from_bytes(cls, raw: bytes) -> SimpleSigningPayload:
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise PayloadMalformedError(f"signed payload is {len(raw)} bytes, more than {MAX_PAYLOAD_BYTES}")
        obj = jsonio.loads(raw, "signed payload", error=PayloadMalformedError)
        if not isinstance(obj, dict) or not isinstance(obj.get("critical"), dict):
            raise PayloadMalformedError("signed payload has no 'critical' object")
        crit = obj["critical"]
        if crit.get("type") != SIMPLE_SIGNING_TYPE:
            raise PayloadMalformedError(f"signed payload type is {quote_for_error(crit.get('type'))}, not "
                                        f"{quote_for_error(SIMPLE_SIGNING_TYPE)}")
        ident = crit.get("identity")
        image = crit.get("image")
        if not isinstance(ident, dict) or not isinstance(ident.get("docker-reference"), str):
            raise PayloadMalformedError("signed payload: critical.identity.docker-reference must be a string")
        if not isinstance(image, dict) or not isinstance(image.get("docker-manifest-digest"), str):
            raise PayloadMalformedError("signed payload: critical.image.docker-manifest-digest must be a string")
        try:
            digest = Digest.parse(image["docker-manifest-digest"])
        except ManifestError as exc:
            raise PayloadMalformedError(f"signed payload: {exc}") from exc
        optional = obj.get("optional")
        if optional is not None and not isinstance(optional, dict):
            raise PayloadMalformedError("signed payload: 'optional' must be an object or null")
        return cls(ident["docker-reference"], digest, optional or {})

    def check_digest(self, digest: Digest) -> None:
        if self.manifest_digest != digest:
            raise DigestMismatchError(
                f"the signature is for {self.manifest_digest}, but the image's manifest is {digest}"
            )

    def check_annotations(self, required: Mapping[str, str]) -> None:
        """cosign's ``-a key=value``: every pair must be in ``optional`` (values compared as text)."""
        for key, want in required.items():
            if key not in self.annotations:
                raise AnnotationsMismatchError(f"annotation {quote_for_error(key)} is missing from the signed payload")
            got = self.annotations[key]
            if _annotation_text(got) != want:
                raise AnnotationsMismatchError(f"annotation {quote_for_error(key)} is {quote_for_error(got)}, "
                                               f"expected {quote_for_error(want)}")


def _annotation_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"))
