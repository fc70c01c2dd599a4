"""Where signatures live: next to the image in its registry repository, or in an OCI layout directory.

Registry (as cosign): the signature manifest is tagged ``sha256-<hex>.sig`` (attestations ``.att``, SBOMs
``.sbom``) in the image's repository; cosign v3 bundles are OCI 1.1 referrers (or the ``sha256-<hex>``
fallback tag index when the registry has no referrers API).

OCI layout (as ``cosign save`` lays it out): ``index.json`` entries annotated ``kind`` =
``dev.cosignproject.cosign/image`` (or ``imageIndex``), ``dev.cosignproject.cosign/sigs`` and
``dev.cosignproject.cosign/atts`` (and ``dev.cosignproject.cosign/sboms`` for what cosign keeps in ``.sbom``);
OCI 1.1 referrers are plain ``index.json`` entries whose manifest has a ``subject``; blobs under ``blobs/sha256``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from giropops.errors import (
    BlobError,
    ImageError,
    ImageReferenceError,
    ManifestError,
    NotFoundError,
)
from giropops.oci import mediatypes as mt
from giropops.oci.blob import read_verified
from giropops.oci.layout import Layout, edit_index, put_blob, read_layout_blob, with_annotations
from giropops.oci.model import Descriptor, Digest, Index, Manifest
from giropops.oci.reference import Reference
from giropops.oci.transport import OCIDirSpec, RegistrySpec, Spec, TransportOptions, registry_options
from giropops.sign.errors import BlobMismatchError

SIG_SUFFIX = "sig"
ATT_SUFFIX = "att"
SBOM_SUFFIX = "sbom"
KIND_ANNOTATION = "kind"
KIND_IMAGE = "dev.cosignproject.cosign/image"
KIND_IMAGE_INDEX = "dev.cosignproject.cosign/imageIndex"
KIND_SIGS = "dev.cosignproject.cosign/sigs"
KIND_ATTS = "dev.cosignproject.cosign/atts"
KIND_SBOMS = "dev.cosignproject.cosign/sboms"  # giropops' own: cosign save keeps no SBOMs
_LAYOUT_KINDS = {SIG_SUFFIX: KIND_SIGS, ATT_SUFFIX: KIND_ATTS, SBOM_SUFFIX: KIND_SBOMS}
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
MAX_ATTACHED_BLOB = 64 * 1024 * 1024


def attached_tag(digest: Digest, suffix: str) -> str:
    """``sha256-<hex>.sig``: cosign's tag for what is attached to ``digest``."""
    return f"{digest.algorithm}-{digest.hex}.{suffix}"


@dataclass(frozen=True)
class SignedSubject:
    """The image being signed or verified, by digest."""

    digest: Digest
    media_type: str
    raw: bytes
    name: str  # docker-reference for payloads (repository, no tag)
    display: str  # what the user typed


@dataclass(frozen=True)
class Attached:
    """An attached-signature manifest (``.sig`` / ``.att``) with its raw bytes."""

    raw: bytes
    manifest: Manifest
    digest: Digest


class RegistryLike(Protocol):
    """The part of ``giropops.oci.registry.RegistryClient`` this module uses."""

    host: str

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, Digest]: ...

    def put_manifest(self, repo: str, reference: str, raw: bytes, media_type: str) -> Digest: ...

    def blob_exists(self, repo: str, digest: Digest) -> bool: ...

    def open_blob(self, repo: str, digest: Digest, size: int | None) -> BinaryIO: ...

    def push_blob(self, repo: str, digest: Digest, size: int, opener: Any) -> None: ...

    def referrers(self, repo: str, digest: Digest, artifact_type: str | None = None) -> Index: ...


class Store(Protocol):
    def subject(self) -> SignedSubject: ...

    def read_attached(self, subject: Digest, suffix: str) -> Attached | None: ...

    def write_attached(
        self, subject: Digest, suffix: str, manifest_raw: bytes, blobs: Mapping[Digest, bytes]
    ) -> Digest:
        ...

    def read_blob(self, desc: Descriptor) -> bytes: ...

    def read_manifest(self, digest: Digest) -> bytes: ...

    def referrers(self, subject: Digest) -> list[Descriptor]: ...

    def write_referrer(self, manifest_raw: bytes, media_type: str, blobs: Mapping[Digest, bytes]) -> Digest: ...

    def describe(self) -> str: ...


def _attached(raw: bytes, what: str) -> Attached:
    try:
        manifest = Manifest.from_bytes(raw)
    except ManifestError as exc:
        raise ImageError(f"{what}: not an image manifest: {exc}") from exc
    return Attached(raw, manifest, Digest.of(raw))


class RegistryStore:
    def __init__(self, client: RegistryLike, ref: Reference) -> None:
        self.client = client
        self.ref = ref
        self.repo = ref.path

    def describe(self) -> str:
        return str(self.ref)

    def subject(self) -> SignedSubject:
        from giropops.sign.payload import docker_reference

        raw, media_type, digest = self.client.get_manifest(self.repo, self.ref.identifier)
        if self.ref.digest is not None and digest != self.ref.digest:
            raise ManifestError(f"{self.ref}: registry returned {digest}")
        return SignedSubject(digest, media_type, raw, docker_reference(self.ref), str(self.ref))

    def read_attached(self, subject: Digest, suffix: str) -> Attached | None:
        tag = attached_tag(subject, suffix)
        try:
            raw, _, _ = self.client.get_manifest(self.repo, tag)
        except NotFoundError:
            return None
        return _attached(raw, f"{self.ref.repository}:{tag}")

    def write_attached(
        self, subject: Digest, suffix: str, manifest_raw: bytes, blobs: Mapping[Digest, bytes]
    ) -> Digest:
        for digest, data in blobs.items():
            if not self.client.blob_exists(self.repo, digest):
                self.client.push_blob(self.repo, digest, len(data), _opener(data))
        return self.client.put_manifest(self.repo, attached_tag(subject, suffix), manifest_raw, mt.OCI_MANIFEST)

    def read_blob(self, desc: Descriptor) -> bytes:
        try:
            stream = self.client.open_blob(self.repo, desc.digest, desc.size)
            return read_verified(stream, desc.digest, desc.size, MAX_ATTACHED_BLOB, "attached blob")
        except BlobError as exc:
            raise BlobMismatchError(f"{self.ref.repository}: {exc}") from exc

    def read_manifest(self, digest: Digest) -> bytes:
        raw, _, got = self.client.get_manifest(self.repo, str(digest))
        if got != digest:
            raise BlobMismatchError(f"{self.ref.repository}: manifest {digest} came back as {got}")
        return raw

    def referrers(self, subject: Digest) -> list[Descriptor]:
        return list(self.client.referrers(self.repo, subject).manifests)

    def write_referrer(self, manifest_raw: bytes, media_type: str, blobs: Mapping[Digest, bytes]) -> Digest:
        """Push a manifest that names a ``subject`` (the client keeps the fallback tag index if needed)."""
        for digest, data in blobs.items():
            if not self.client.blob_exists(self.repo, digest):
                self.client.push_blob(self.repo, digest, len(data), _opener(data))
        return self.client.put_manifest(self.repo, str(Digest.of(manifest_raw)), manifest_raw, media_type)



def _opener(data: bytes) -> Any:
    def open_() -> BinaryIO:
        return io.BytesIO(data)

    return open_


def open_registry_store(ref: Reference, options: TransportOptions = TransportOptions()) -> RegistryStore:
    from giropops.oci.registry import RegistryClient

    return RegistryStore(RegistryClient(ref.registry_host, registry_options(options)), ref)


def open_store(spec: Spec, options: TransportOptions = TransportOptions()) -> Store | None:
    """Where the image ``spec`` names keeps its signatures and attestations: its registry repository or
    its OCI layout; None for sources that cannot hold them (archives, directories, engines, SBOMs)."""
    if isinstance(spec, RegistrySpec):
        return open_registry_store(spec.ref, options)
    if isinstance(spec, OCIDirSpec):
        return LayoutStore(spec.path, spec.name, spec.digest)
    return None


# ---------------------------------------------------------------------------- OCI layout


class LayoutStore:
    """An OCI image layout directory signed in place, the way ``cosign save`` writes signatures.

    Reading and writing go through ``giropops.oci.layout`` (its path checks, verified reads,
    blob writer and atomic ``index.json`` rewrite); this class only knows cosign's annotations.
    """

    def __init__(self, root: Path, name: str | None = None, digest: Digest | None = None) -> None:
        self.root = root
        self.name = name
        self.digest = digest
        if not root.is_dir():
            raise ImageReferenceError(f"{root} is not an OCI image layout (no such directory)")
        Layout(root)  # validates oci-layout and index.json

    def describe(self) -> str:
        return f"oci-dir://{self.root}" + (f":{self.name}" if self.name else "")

    def _entries(self) -> tuple[Layout, tuple[Descriptor, ...]]:
        layout = Layout(self.root)
        return layout, layout.top.index.manifests

    def _image_entry(self, entries: tuple[Descriptor, ...]) -> Descriptor:
        entries = tuple(e for e in entries if e.annotations.get(KIND_ANNOTATION) not in _LAYOUT_KINDS.values())
        if self.digest is not None:
            picked = [e for e in entries if e.digest == self.digest]
        elif self.name is not None:
            picked = [e for e in entries if e.annotations.get(REF_NAME_ANNOTATION) == self.name]
        else:
            marked = [e for e in entries if e.annotations.get(KIND_ANNOTATION) in (KIND_IMAGE, KIND_IMAGE_INDEX)]
            picked = marked or list(entries)
        if len(picked) != 1:
            which = self.name or (str(self.digest) if self.digest else "the image")
            raise ImageReferenceError(
                f"{self.root}: {len(picked)} entries match {which} in index.json; name one with oci-dir://DIR:NAME"
            )
        return picked[0]

    def _blob(self, layout: Layout, digest: Digest, size: int | None, limit: int) -> bytes:
        try:
            return read_layout_blob(layout, digest, size, limit, "layout blob")
        except BlobError as exc:
            if not layout.store.has_blob(digest):
                raise BlobError(f"{self.root}: blob {digest} missing") from exc
            raise BlobMismatchError(f"{self.root}: {exc}") from exc

    def subject(self) -> SignedSubject:
        layout, entries = self._entries()
        e = self._image_entry(entries)
        raw = self._blob(layout, e.digest, e.size, mt.MAX_MANIFEST_BYTES)
        name = e.annotations.get(REF_NAME_ANNOTATION) or self.name or ""
        return SignedSubject(e.digest, e.media_type, raw, name, self.describe())

    def read_attached(self, subject: Digest, suffix: str) -> Attached | None:
        kind = _LAYOUT_KINDS.get(suffix)
        layout, entries = self._entries()
        for e in entries:
            if kind and e.annotations.get(KIND_ANNOTATION) == kind:
                return _attached(self._blob(layout, e.digest, e.size, mt.MAX_MANIFEST_BYTES), f"{self.root} {kind}")
        return None

    def write_attached(
        self, subject: Digest, suffix: str, manifest_raw: bytes, blobs: Mapping[Digest, bytes]
    ) -> Digest:
        kind = _LAYOUT_KINDS[suffix]
        for digest, data in blobs.items():
            if put_blob(self.root, data, "attached blob") != digest:
                raise BlobMismatchError(f"{self.root}: attached blob {digest} does not match its content")
        digest = put_blob(self.root, manifest_raw, "attached manifest")
        entry = Descriptor(mt.OCI_MANIFEST, digest, len(manifest_raw), {KIND_ANNOTATION: kind})

        def edit(index: Index) -> list[Descriptor]:
            image = self._image_entry(index.manifests)
            image_kind = KIND_IMAGE_INDEX if image.media_type in mt.INDEX_TYPES else KIND_IMAGE
            out = []
            for d in index.manifests:
                if d.annotations.get(KIND_ANNOTATION) == kind:
                    continue  # replaced by the new manifest, which carries every layer of the old one
                if d.digest == image.digest and KIND_ANNOTATION not in d.annotations:
                    d = with_annotations(d, {KIND_ANNOTATION: image_kind})
                out.append(d)
            return [*out, entry]

        edit_index(self.root, edit)
        return digest

    def read_blob(self, desc: Descriptor) -> bytes:
        return self._blob(Layout(self.root), desc.digest, desc.size, MAX_ATTACHED_BLOB)

    def write_referrer(self, manifest_raw: bytes, media_type: str, blobs: Mapping[Digest, bytes]) -> Digest:
        """Store a manifest that names a ``subject`` as its own ``index.json`` entry (once)."""
        for digest, data in blobs.items():
            if put_blob(self.root, data, "referrer blob") != digest:
                raise BlobMismatchError(f"{self.root}: referrer blob {digest} does not match its content")
        digest = put_blob(self.root, manifest_raw, "referrer manifest")
        try:
            artifact_type = Manifest.from_bytes(manifest_raw).artifact_type
        except ManifestError as exc:
            raise ImageError(f"{self.root}: referrer {digest} is not an image manifest: {exc}") from exc
        entry = Descriptor(media_type, digest, len(manifest_raw), artifact_type=artifact_type)

        def edit(index: Index) -> list[Descriptor]:
            if any(d.digest == digest for d in index.manifests):
                return list(index.manifests)
            return [*index.manifests, entry]

        edit_index(self.root, edit)
        return digest

    def read_manifest(self, digest: Digest) -> bytes:
        return self._blob(Layout(self.root), digest, None, mt.MAX_MANIFEST_BYTES)

    def referrers(self, subject: Digest) -> list[Descriptor]:
        layout, entries = self._entries()
        out = []
        for e in entries:
            if e.media_type != mt.OCI_MANIFEST or e.annotations.get(KIND_ANNOTATION):
                continue
            try:
                m = Manifest.from_bytes(self._blob(layout, e.digest, e.size, mt.MAX_MANIFEST_BYTES))
            except (ManifestError, BlobError):
                continue
            if m.subject is not None and m.subject.digest == subject:
                out.append(Descriptor(e.media_type, e.digest, e.size, m.annotations,
                                      artifact_type=m.artifact_type or m.config.media_type))
        return out
