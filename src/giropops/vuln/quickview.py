"""``quickview``: the image and its base image, with counts per severity for each.

The base image is found from the OCI annotations ``org.opencontainers.image.base.name``
/ ``.base.digest`` (set by BuildKit and by our builder), or by matching layers:
a candidate whose layer list (diff_ids) is a proper prefix of the image's is
its base; the longest such prefix wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from giropops.sbom.model import SBOM
from giropops.vuln.report.view import ReportView, counts_text

BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


@dataclass(frozen=True)
class BaseRef:
    name: str | None
    digest: str | None
    how: str  # "annotation" | "layers"


def annotated_base(sbom: SBOM, annotations: Mapping[str, str] | None = None) -> BaseRef | None:
    """The base named by the manifest's annotations (given) or the SBOM subject's."""
    ann = {**sbom.subject.annotations, **(annotations or {})}
    name, digest = ann.get(BASE_NAME), ann.get(BASE_DIGEST)
    if not name and not digest:
        return None
    return BaseRef(name or None, digest or None, "annotation")


def base_by_layers(sbom: SBOM, candidates: Sequence[SBOM]) -> SBOM | None:
    layers = sbom.subject.diff_ids
    best: SBOM | None = None
    for cand in candidates:
        cl = cand.subject.diff_ids
        if cl and len(cl) < len(layers) and tuple(layers[: len(cl)]) == tuple(cl):
            if best is None or len(cl) > len(best.subject.diff_ids):
                best = cand
    return best


def pick_base(sbom: SBOM, candidates: Sequence[SBOM], annotations: Mapping[str, str] | None = None,
              ) -> tuple[SBOM | None, BaseRef | None]:
    """The base among ``candidates`` (by annotation first, then by layers) and the reference that named it."""
    ref = annotated_base(sbom, annotations)
    if ref is not None:
        for cand in candidates:
            if (ref.digest and cand.subject.digest == ref.digest) or (ref.name and cand.subject.name == ref.name):
                return cand, ref
    found = base_by_layers(sbom, candidates)
    if found is not None:
        return found, BaseRef(found.subject.name, found.subject.digest, "layers")
    return None, ref


@dataclass(frozen=True)
class QuickView:
    image: ReportView
    base: ReportView | None
    base_ref: BaseRef | None
    base_error: str | None = None


def render(q: QuickView, spec: str) -> str:
    img = q.image.sbom.subject
    rows = [("Target", img.name, counts_text(q.image.counts())), ("  digest", img.digest or "unknown", "")]
    if q.base is not None:
        b = q.base.sbom.subject
        how = f"(from {q.base_ref.how})" if q.base_ref else ""
        rows += [("Base image", f"{b.name} {how}".strip(), counts_text(q.base.counts())),
                 ("  digest", b.digest or "unknown", "")]
    elif q.base_ref is not None:
        rows += [("Base image", f"{q.base_ref.name or q.base_ref.digest} (not scanned: {q.base_error})", "")]
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
        if q.base.findings:
            lines.append("    A minimal base (distroless, Wolfi) usually carries fewer vulnerabilities")
    return "\n".join(lines) + "\n"
