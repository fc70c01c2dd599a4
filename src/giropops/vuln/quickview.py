"""``quickview``: the image and its base image, with counts per severity for each.

The base is found by ``giropops.oci.baseimage`` (the detector ``recommendations`` uses too):
the annotations ``org.opencontainers.image.base.name`` / ``.base.digest`` (set by BuildKit and
by our builder; the SBOM subject's, then the manifest's), the same keys as config labels,
SLSA provenance attached to the image (when the caller read any), or by matching layers: a
candidate whose layer list (diff_ids) is a prefix of the image's is its base; the longest
such prefix wins.  A base named by metadata is shown from the candidate that has its digest
or name, else from a layer match among the candidates, else by name only (the CLI scans it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from giropops.errors import ImageReferenceError, ManifestError
from giropops.oci.baseimage import (
    BaseImage,
    LayerCandidate,
    Provenance,
    best_layer_match,
    detect,
    from_layers,
    name_of,
)
from giropops.oci.model import Digest
from giropops.oci.reference import Reference
from giropops.sbom.model import SBOM
from giropops.vuln.report.view import ReportView, counts_text

#: How each way of finding the base reads in the table: "debian:12-slim (from annotation)".
HOW_SHOWN = {"annotations": "annotation", "labels": "label", "provenance": "provenance, unverified",
             "layers": "layers"}


def _digest(text: str | None) -> Digest | None:
    try:
        return Digest.parse(text) if text else None
    except ManifestError:
        return None


def _names(text: str) -> set[str]:
    """``text`` and, when it is an image reference, its normalised ``host/repo:tag`` form."""
    try:
        return {text, name_of(Reference.parse(text.removeprefix("registry://")))}
    except ImageReferenceError:
        return {text}


def _candidate(sbom: SBOM) -> LayerCandidate:
    s = sbom.subject
    return LayerCandidate(s.name, s.name, _digest(s.digest), s.diff_ids)


def _no_statements() -> Sequence[Provenance] | None:
    return None


def pick_base(
    sbom: SBOM,
    candidates: Sequence[SBOM],
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    statements: Callable[[], Sequence[Provenance] | None] = _no_statements,
) -> tuple[SBOM | None, BaseImage | None]:
    """The base among ``candidates`` and how it was found; (None, named base) when no candidate is it."""
    s = sbom.subject
    opened = [_candidate(c) for c in candidates]
    found = detect({**s.annotations, **(annotations or {})}, labels or {}, s.diff_ids, _digest(s.digest),
                   statements=statements, candidates=lambda: (opened, ()), candidate_count=len(candidates))
    if not found.found:
        return None, None
    if found.how != "layers":
        for cand, c in zip(candidates, opened, strict=True):
            if (found.digest and c.digest == found.digest) or (found.name and found.name in _names(cand.subject.name)):
                return cand, found
    best = best_layer_match(s.diff_ids, _digest(s.digest), opened)
    if best is None:
        return None, found  # named by metadata, not among the candidates: shown by name
    if found.how != "layers":
        found = from_layers(s.diff_ids, _digest(s.digest), opened) or found
    return candidates[best[0]], found


@dataclass(frozen=True)
class QuickView:
    image: ReportView
    base: ReportView | None
    base_ref: BaseImage | None
    base_error: str | None = None


def render(q: QuickView, spec: str) -> str:
    img = q.image.sbom.subject
    rows = [("Target", img.name, counts_text(q.image.counts())), ("  digest", img.digest or "unknown", "")]
    if q.base is not None:
        b = q.base.sbom.subject
        how = f"(from {HOW_SHOWN.get(q.base_ref.how, q.base_ref.how)})" if q.base_ref else ""
        rows += [("Base image", f"{b.name} {how}".strip(), counts_text(q.base.counts())),
                 ("  digest", b.digest or "unknown", "")]
    elif q.base_ref is not None:
        ref = q.base_ref.reference
        named = ref.familiar() if ref is not None else q.base_ref.name or q.base_ref.digest
        rows += [("Base image", f"{named} (not scanned: {q.base_error})", "")]
    else:
        rows += [("Base image", "unknown (no base annotations, no candidate's layers match)", "")]
    w0 = max(len(r[0]) for r in rows) + 2
    w1 = max(len(r[1]) for r in rows) + 2
    lines = [f"{r[0]:<{w0}}│ {r[1]:<{w1}}│ {r[2]}".rstrip() for r in rows]
    lines += ["", "What's next:", f"    View vulnerabilities → giropops cves {spec}"]
    if q.base is None and q.base_ref is None:
        lines.append(f"    Find the base image → giropops quickview {spec} --base CANDIDATE_IMAGE")
    fixable = sum(1 for f in q.image.findings if f.fixed)
    if fixable:
        lines.append(f"    {fixable} vulnerabilities have a fixed version → update the packages: "
                     f"giropops cves {spec} --only-fixed")
    if q.base is not None:
        own = len(q.image.findings) - len(q.base.findings)
        lines.append(f"    {len(q.base.findings)} vulnerabilities come with the base image, {max(own, 0)} were added on"
                     f" top → giropops compare {spec} --to {q.base.sbom.subject.name}")
        in_base = sum(1 for f in q.image.findings if f.base is True)
        in_own = sum(1 for f in q.image.findings if f.base is False)
        if in_base or in_own:
            lines.append(f"    {in_base} vulnerabilities come from the base image's layers, {in_own} from the image's"
                         f" own layers → giropops cves {spec} --ignore-base")
        if q.base.findings:
            lines.append("    A minimal base (distroless, Wolfi) usually carries fewer vulnerabilities")
    return "\n".join(lines) + "\n"
