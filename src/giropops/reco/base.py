"""Which image an image was built on, and how we know.

In order of trust:

1. the manifest annotations ``org.opencontainers.image.base.name`` / ``.base.digest``
   (written by BuildKit and by ``giropops build``);
2. the same keys as config labels (builders that can only set labels);
3. a SLSA provenance attestation in the image's ``.att`` tag (cosign's layout): the first
   container-image material (SLSA v0.2 ``materials``, v1 ``resolvedDependencies``);
4. the image's leading layers: a candidate image whose diff_ids are a prefix of the
   image's own is a base; the longest such prefix wins.

When none of these answers, ``BaseImage.found`` is False and ``detail`` says what was tried.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from giropops.errors import GiropopsError, ManifestError, ReferenceError_
from giropops.oci.image import Image
from giropops.oci.model import Digest, Platform
from giropops.oci.reference import Reference
from giropops.oci.transport import RegistrySpec, Spec, TransportOptions, open_image, parse_spec
from giropops.reco.attestations import Statement, attached_statements
from giropops.reco.reach import Unreachable

BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
PROVENANCE_TYPES = ("https://slsa.dev/provenance/v0.2", "https://slsa.dev/provenance/v1")
DEFAULT_OPTIONS = TransportOptions()


@dataclass(frozen=True)
class BaseImage:
    how: str  # "annotations" | "labels" | "provenance" | "layers" | "none"
    name: str | None = None  # a reference: "host/repo:tag" (tag may be missing)
    digest: Digest | None = None
    detail: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def found(self) -> bool:
        return self.how != "none"

    @property
    def reference(self) -> Reference | None:
        if not self.name:
            return None
        try:
            ref = Reference.parse(self.name)
        except ReferenceError_:
            return None
        return ref


def _name_of(ref: Reference) -> str:
    """``host/repo:tag`` (the digest is kept apart); ``host/repo@digest`` when there is no tag to follow."""
    if ref.tag:
        return str(Reference(ref.domain, ref.path, ref.tag, None))
    return str(ref)


def _from_keys(values: Mapping[str, str], how: str, where: str) -> tuple[BaseImage | None, tuple[str, ...]]:
    name = (values.get(BASE_NAME) or "").strip() or None
    digest_text = (values.get(BASE_DIGEST) or "").strip()
    if not name and not digest_text:
        return None, ()
    digest: Digest | None = None
    notes: tuple[str, ...] = ()
    if digest_text:
        try:
            digest = Digest.parse(digest_text)
        except ManifestError:
            notes = (f"ignored invalid {BASE_DIGEST} {digest_text[:80]!r} in the {where}",)
    if name is not None:
        try:
            ref = Reference.parse(name)
            digest = digest or ref.digest
            name = _name_of(ref)
        except ReferenceError_:
            notes = (*notes, f"ignored invalid {BASE_NAME} {name[:80]!r} in the {where}")
            name = None
    if name is None and digest is None:
        return None, notes
    return BaseImage(how, name, digest, f"from the {where} {BASE_NAME} / {BASE_DIGEST}", notes), notes


def _material_ref(uri: str) -> str | None:
    """A container image reference from a provenance material URI (BuildKit writes package URLs)."""
    text = uri.strip()
    for prefix in ("pkg:docker/", "pkg:oci/"):
        if text.startswith(prefix):
            body = text[len(prefix):].split("?", 1)[0].split("#", 1)[0]
            body = unquote(body)
            name, sep, version = body.rpartition("@")
            if not sep:
                return body
            if version.startswith("sha256:"):
                return f"{name}@{version}"
            return f"{name}:{version}"
    if text.startswith("docker://"):
        return text[len("docker://"):]
    return None


def _materials(st: Statement) -> list[Mapping[str, Any]]:
    pred = st.predicate
    found: Any = pred.get("materials")
    if not isinstance(found, list):
        bd = pred.get("buildDefinition")
        found = bd.get("resolvedDependencies") if isinstance(bd, Mapping) else None
    return [m for m in found if isinstance(m, Mapping)] if isinstance(found, list) else []


def _from_provenance(statements: Sequence[Statement]) -> BaseImage | None:
    for st in statements:
        if st.predicate_type not in PROVENANCE_TYPES:
            continue
        for m in _materials(st):
            uri = m.get("uri")
            if not isinstance(uri, str):
                continue
            ref_text = _material_ref(uri)
            if ref_text is None:
                continue
            try:
                ref = Reference.parse(ref_text)
            except ReferenceError_:
                continue
            digest = ref.digest
            d = m.get("digest")
            if isinstance(d, Mapping) and isinstance(d.get("sha256"), str):
                try:
                    digest = Digest("sha256", d["sha256"])
                except ManifestError:
                    pass
            return BaseImage(
                "provenance", _name_of(ref), digest,
                f"from the SLSA provenance attestation ({st.predicate_type}) attached to the image; "
                "its signature was not checked",
            )
    return None


def _from_layers(
    image: Image, candidates: Sequence[str], options: TransportOptions, platform: Platform | None,
    unreachable: Unreachable,
) -> tuple[BaseImage | None, list[str]]:
    mine = [str(d) for d in image.config.diff_ids]
    best: tuple[int, str, Image] | None = None
    notes: list[str] = []
    for cand in candidates:
        try:
            cand_spec = parse_spec(cand)
        except GiropopsError as exc:
            notes.append(f"candidate {cand} not read: {exc}")
            continue
        skip = unreachable.skipped(cand_spec, cand)
        if skip is not None:
            notes.append(skip)
            continue
        try:
            other = open_image(cand_spec, platform or image.config.platform, options)
        except GiropopsError as exc:
            unreachable.record(cand_spec, exc)
            notes.append(f"candidate {cand} not read: {exc}")
            continue
        if other.digest == image.digest:
            continue
        theirs = [str(d) for d in other.config.diff_ids]
        if theirs and len(theirs) <= len(mine) and mine[: len(theirs)] == theirs and (
            best is None or len(theirs) > best[0]
        ):
            best = (len(theirs), cand, other)
    if best is None:
        return None, notes
    n, cand, other = best
    cand_spec = parse_spec(cand)
    name = _name_of(cand_spec.ref) if isinstance(cand_spec, RegistrySpec) else cand
    return BaseImage(
        "layers", name, other.digest,
        f"its first {n} layer{'s' if n != 1 else ''} (diff_ids) are those of {cand}", tuple(notes),
    ), notes


def detect_base(
    image: Image,
    spec: Spec,
    options: TransportOptions = DEFAULT_OPTIONS,
    candidates: Sequence[str] = (),
    platform: Platform | None = None,
    unreachable: Unreachable | None = None,
) -> BaseImage:
    """How ``image`` names its base, trying the sources in the module's order."""
    notes: list[str] = []
    for values, how, where in ((image.manifest.annotations, "annotations", "manifest annotations"),
                               (image.config.labels, "labels", "config labels")):
        found, key_notes = _from_keys(values, how, where)
        if found is not None:
            return found
        notes.extend(key_notes)
    unreadable = False
    try:
        statements = attached_statements(spec, image.digest, options)
    except GiropopsError as exc:
        statements = None
        unreadable = True
        notes.append(f"attestations not read: {exc}")
    if statements:
        found = _from_provenance(statements)
        if found is not None:
            return found
    by_layers, layer_notes = _from_layers(image, candidates, options, platform,
                                          unreachable if unreachable is not None else Unreachable())
    notes.extend(layer_notes)
    if by_layers is not None:
        return BaseImage(by_layers.how, by_layers.name, by_layers.digest, by_layers.detail, tuple(notes))
    tried = [f"no valid {BASE_NAME}/{BASE_DIGEST} annotation or label"]
    if statements is None:
        tried.append("attestations unreadable" if unreadable else "no attestations (the source holds none)")
    else:
        tried.append("no SLSA provenance attestation with a container-image material")
    tried.append(
        f"no layer match among {len(candidates)} candidate image{'s' if len(candidates) != 1 else ''}"
    )
    return BaseImage("none", None, None, "the base image could not be determined: " + "; ".join(tried),
                     tuple(notes))
