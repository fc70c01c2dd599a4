"""Carry an image's signatures, attestations, SBOMs and referrers to another store (``cosign copy`` / ``save``).

Everything is copied byte for byte (manifests keep their digests), so whatever verified at the source
verifies at the destination with the same key or identity: the ``.sig`` / ``.att`` / ``.sbom`` manifests
(tags ``sha256-<hex>.<suffix>`` in a registry, ``kind`` entries in an OCI layout) and the OCI 1.1
referrers of the image (cosign v3 bundles and any other artifact naming it as ``subject``).
Every blob read is checked against its digest by the source store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from giropops.errors import ManifestError
from giropops.oci.model import Digest, Manifest
from giropops.sign.errors import PayloadMalformedError
from giropops.sign.storage import ATT_SUFFIX, SBOM_SUFFIX, SIG_SUFFIX, Store

SUFFIXES = (SIG_SUFFIX, ATT_SUFFIX, SBOM_SUFFIX)


@dataclass
class TransferReport:
    attached: dict[str, Digest] = field(default_factory=dict)  # suffix -> manifest digest
    referrers: list[Digest] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.attached) + len(self.referrers)


def _blobs(src: Store, manifest: Manifest) -> dict[Digest, bytes]:
    return {d.digest: src.read_blob(d) for d in (manifest.config, *manifest.layers)}


def copy_signatures(src: Store, dst: Store, subject: Digest) -> TransferReport:
    """Copy what is attached to ``subject`` in ``src`` to ``dst`` (which already holds the image)."""
    report = TransferReport()
    for suffix in SUFFIXES:
        att = src.read_attached(subject, suffix)
        if att is None:
            continue
        report.attached[suffix] = dst.write_attached(subject, suffix, att.raw, _blobs(src, att.manifest))
    for desc in src.referrers(subject):
        raw = src.read_manifest(desc.digest)
        try:
            manifest = Manifest.from_bytes(raw)
        except ManifestError as exc:
            raise PayloadMalformedError(f"referrer {desc.digest} of {subject} is not an image manifest: {exc}") from exc
        if manifest.subject is None or manifest.subject.digest != subject:
            continue  # a registry's referrers list is not proof: the manifest itself must name the subject
        report.referrers.append(dst.write_referrer(raw, desc.media_type, _blobs(src, manifest)))
    return report
