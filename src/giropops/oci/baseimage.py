"""Which image an image was built on, and how we know: the one base-image detector.

In order of trust:

1. the manifest annotations ``org.opencontainers.image.base.name`` / ``.base.digest``
   (written by BuildKit and by ``giropops build``);
2. the same keys as config labels (builders that can only set labels);
3. a SLSA provenance statement attached to the image (cosign's ``.att`` tag): the first
   container-image material (SLSA v0.2 ``materials``, v1 ``resolvedDependencies``);
4. the image's leading layers: a candidate whose diff_ids are a prefix of the image's own
   is a base; the longest such prefix wins.

When none of these answers, ``BaseImage.found`` is False and ``detail`` says what was tried.

This module only decides; it reads nothing.  Callers hand it what they have: an image's
annotations, labels and diff_ids (``giropops.reco.base`` from an image, ``giropops.vuln.quickview``
from an SBOM), and callables for the costly parts (reading attestations, opening candidates),
called only when the cheaper sources did not answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote

from giropops.errors import GiropopsError, ImageReferenceError, ManifestError
from giropops.oci.model import Digest
from giropops.oci.reference import Reference

BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
PROVENANCE_TYPES = ("https://slsa.dev/provenance/v0.2", "https://slsa.dev/provenance/v1")


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
        except ImageReferenceError:
            return None
        return ref


class Provenance(Protocol):
    """What detection reads of an in-toto statement (``giropops.sign.dsse.InTotoStatement`` is one)."""

    @property
    def predicate_type(self) -> str: ...

    @property
    def predicate(self) -> object: ...


@dataclass(frozen=True)
class LayerCandidate:
    """A possible base, already opened: what to call it, its reference and digest, its diff_ids."""

    label: str  # as the user gave it, for the detail line
    name: str | None
    digest: Digest | None
    diff_ids: tuple[str, ...]


def name_of(ref: Reference) -> str:
    """``host/repo:tag`` (the digest is kept apart); ``host/repo@digest`` when there is no tag to follow."""
    if ref.tag:
        return str(Reference(ref.domain, ref.path, ref.tag, None))
    return str(ref)


def from_keys(values: Mapping[str, str], how: str, where: str) -> tuple[BaseImage | None, tuple[str, ...]]:
    """The base named by the two OCI keys in ``values`` (annotations or labels), with notes on invalid ones."""
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
            name = name_of(ref)
        except ImageReferenceError:
            notes = (*notes, f"ignored invalid {BASE_NAME} {name[:80]!r} in the {where}")
            name = None
    if name is None and digest is None:
        return None, notes
    return BaseImage(how, name, digest, f"from the {where} {BASE_NAME} / {BASE_DIGEST}", notes), notes


def material_ref(uri: str) -> str | None:
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


def _materials(st: Provenance) -> list[Mapping[str, Any]]:
    pred = st.predicate
    if not isinstance(pred, Mapping):
        return []
    found: Any = pred.get("materials")
    if not isinstance(found, list):
        bd = pred.get("buildDefinition")
        found = bd.get("resolvedDependencies") if isinstance(bd, Mapping) else None
    return [m for m in found if isinstance(m, Mapping)] if isinstance(found, list) else []


def from_provenance(statements: Sequence[Provenance]) -> BaseImage | None:
    """The first container-image material of the first SLSA provenance statement that has one."""
    for st in statements:
        if st.predicate_type not in PROVENANCE_TYPES:
            continue
        for m in _materials(st):
            uri = m.get("uri")
            if not isinstance(uri, str):
                continue
            ref_text = material_ref(uri)
            if ref_text is None:
                continue
            try:
                ref = Reference.parse(ref_text)
            except ImageReferenceError:
                continue
            digest = ref.digest
            d = m.get("digest")
            if isinstance(d, Mapping) and isinstance(d.get("sha256"), str):
                try:
                    digest = Digest("sha256", d["sha256"])
                except ManifestError:
                    pass
            return BaseImage(
                "provenance", name_of(ref), digest,
                f"from the SLSA provenance attestation ({st.predicate_type}) attached to the image; "
                "its signature was not checked",
            )
    return None


def best_layer_match(
    diff_ids: Sequence[str], digest: Digest | None, candidates: Sequence[LayerCandidate]
) -> tuple[int, int] | None:
    """(index of the candidate, layers shared) for the longest prefix of ``diff_ids``; never the image itself.

    A candidate with the image's own digest is skipped; one with all of the image's layers counts
    only when both digests are known and differ (the same layers under another config).
    """
    mine = list(diff_ids)
    best: tuple[int, int] | None = None
    for i, cand in enumerate(candidates):
        if digest is not None and cand.digest == digest:
            continue
        theirs = list(cand.diff_ids)
        if not theirs or len(theirs) > len(mine) or mine[: len(theirs)] != theirs:
            continue
        if len(theirs) == len(mine) and (digest is None or cand.digest is None):
            continue
        if best is None or len(theirs) > best[1]:
            best = (i, len(theirs))
    return best


def from_layers(
    diff_ids: Sequence[str], digest: Digest | None, candidates: Sequence[LayerCandidate]
) -> BaseImage | None:
    """The base by layers (``best_layer_match``), or None."""
    best = best_layer_match(diff_ids, digest, candidates)
    if best is None:
        return None
    cand, n = candidates[best[0]], best[1]
    return BaseImage("layers", cand.name, cand.digest,
                     f"its first {n} layer{'s' if n != 1 else ''} (diff_ids) are those of {cand.label}")


def _no_statements() -> Sequence[Provenance] | None:
    return None


def _no_candidates() -> tuple[Sequence[LayerCandidate], Sequence[str]]:
    return (), ()


def detect(
    annotations: Mapping[str, str],
    labels: Mapping[str, str],
    diff_ids: Sequence[str],
    digest: Digest | None,
    statements: Callable[[], Sequence[Provenance] | None] = _no_statements,
    candidates: Callable[[], tuple[Sequence[LayerCandidate], Sequence[str]]] = _no_candidates,
    candidate_count: int = 0,
) -> BaseImage:
    """How an image names its base, trying the sources in the module's order.

    ``statements()`` gives the attached statements (None: the source holds none; a
    ``GiropopsError`` becomes a note); ``candidates()`` the opened candidates and notes on those
    that could not be opened; ``candidate_count`` how many were asked for (for the detail line).
    """
    notes: list[str] = []
    for values, how, where in ((annotations, "annotations", "manifest annotations"),
                               (labels, "labels", "config labels")):
        found, key_notes = from_keys(values, how, where)
        if found is not None:
            return found
        notes.extend(key_notes)
    unreadable = False
    read: Sequence[Provenance] | None
    try:
        read = statements()
    except GiropopsError as exc:
        read = None
        unreadable = True
        notes.append(f"attestations not read: {exc}")
    if read:
        found = from_provenance(read)
        if found is not None:
            return found
    opened, layer_notes = candidates()
    notes.extend(layer_notes)
    by_layers = from_layers(diff_ids, digest, opened)
    if by_layers is not None:
        return BaseImage(by_layers.how, by_layers.name, by_layers.digest, by_layers.detail, tuple(notes))
    tried = [f"no valid {BASE_NAME}/{BASE_DIGEST} annotation or label"]
    if read is None:
        tried.append("attestations unreadable" if unreadable else "no attestations (the source holds none)")
    else:
        tried.append("no SLSA provenance attestation with a container-image material")
    tried.append(
        f"no layer match among {candidate_count} candidate image{'s' if candidate_count != 1 else ''}"
    )
    return BaseImage("none", None, None, "the base image could not be determined: " + "; ".join(tried),
                     tuple(notes))
