"""In-toto statements attached to an image the way cosign attaches them (the ``sha256-<hex>.att`` tag).

Read here without checking signatures: base-image detection only needs to know what a
provenance statement *says*, and says in its answer that it was not verified.  Checking
attestations against a key is ``giropops.sign``'s job (see ``deps.verify_sbom_attestation``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from giropops import jsonio
from giropops.errors import ImageError, NotFoundError
from giropops.oci.model import Digest, Manifest
from giropops.oci.transport import RegistrySpec, Spec, TransportOptions

DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
ATT_SUFFIX = "att"
SBOM_SUFFIX = "sbom"
MAX_ENVELOPE = 16 * 1024 * 1024


@dataclass(frozen=True)
class Statement:
    predicate_type: str
    predicate: Mapping[str, Any]
    subject_digests: tuple[str, ...]


def attached_tag(digest: Digest, suffix: str) -> str:
    return f"{digest.algorithm}-{digest.hex}.{suffix}"


def _client(spec: RegistrySpec, options: TransportOptions) -> Any:
    from giropops.oci.registry import RegistryClient, RegistryOptions

    return RegistryClient(spec.ref.registry_host, RegistryOptions(
        insecure=options.insecure, username=options.username, password=options.password,
        docker_config=options.docker_config,
    ))


def _statement(envelope: bytes) -> Statement | None:
    """The statement inside a DSSE envelope, or None when the layer is not one we can read."""
    try:
        env = jsonio.loads(envelope, "DSSE envelope")
        payload = base64.b64decode(env["payload"], validate=True)
        st = jsonio.loads(payload, "in-toto statement")
    except (jsonio.DocumentError, ValueError, KeyError, TypeError, binascii.Error):
        return None
    if not isinstance(st, dict):
        return None
    ptype = st.get("predicateType")
    pred = st.get("predicate")
    subjects = st.get("subject")
    if not isinstance(ptype, str):
        return None
    digests: list[str] = []
    for s in subjects if isinstance(subjects, list) else []:
        d = s.get("digest") if isinstance(s, dict) else None
        if isinstance(d, dict) and isinstance(d.get("sha256"), str):
            digests.append(f"sha256:{d['sha256']}")
    return Statement(ptype, pred if isinstance(pred, dict) else {}, tuple(digests))


def attached_statements(spec: Spec, digest: Digest, options: TransportOptions) -> list[Statement] | None:
    """Statements in the image's ``.att`` tag; None when the source cannot hold attachments.

    Only statements whose subject names ``digest`` are returned: an attestation copied
    from another image says nothing about this one.
    """
    if not isinstance(spec, RegistrySpec):
        return None
    client = _client(spec, options)
    try:
        raw, _, _ = client.get_manifest(spec.ref.path, attached_tag(digest, ATT_SUFFIX))
    except NotFoundError:
        return []
    out: list[Statement] = []
    for layer in Manifest.from_bytes(raw).layers:
        if layer.media_type != DSSE_MEDIA_TYPE or layer.size > MAX_ENVELOPE:
            continue
        try:
            with client.open_blob(spec.ref.path, layer.digest, layer.size) as f:
                data = f.read()
        except ImageError:
            continue
        st = _statement(data)
        if st is not None and str(digest) in st.subject_digests:
            out.append(st)
    return out


def has_attached_sbom(spec: Spec, digest: Digest, options: TransportOptions) -> bool | None:
    """Whether cosign's ``.sbom`` tag (``cosign attach sbom``) exists; None when the source has no tags."""
    if not isinstance(spec, RegistrySpec):
        return None
    client = _client(spec, options)
    return client.head_manifest(spec.ref.path, attached_tag(digest, SBOM_SUFFIX)) is not None
