"""From what the user typed (``IMAGE``) to an ``SBOM`` and the image facts reports need.

``sbom_for`` is the single place where the vulnerability commands meet the SBOM
side: it is ``giropops.sbom.sbom_for`` (images through the OCI transports,
``fs://DIR``, and ``sbom://FILE`` in our JSON, SPDX or CycloneDX).  Environment,
labels and manifest annotations are not part of an SBOM; ``image_facts`` reads
them from the image itself when the spec names one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from giropops.oci.baseimage import Provenance
from giropops.oci.model import Platform
from giropops.oci.transport import NO_IMAGE, Spec, TransportOptions, as_spec, open_image
from giropops.sbom import sbom_for as _sbom_for
from giropops.sbom.model import SBOM
from giropops.vuln.db.store import VulnDB
from giropops.vuln.match import ScanResult, scan
from giropops.vuln.model import Finding
from giropops.vuln.quickview import pick_base
from giropops.vuln.report.filters import Filters, VexStatement, apply, apply_vex
from giropops.vuln.report.view import ReportView


def sbom_for(spec: Spec | str, platform: str | None = None, options: TransportOptions | None = None) -> SBOM:
    """The SBOM of any source spec (an image, ``fs://DIR`` or ``sbom://FILE``); ``platform`` picks from an index."""
    return _sbom_for(spec, platform, options=options)


@dataclass(frozen=True)
class ImageFacts:
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


def image_facts(spec: Spec | str, platform: str | None = None,
                options: TransportOptions | None = None) -> ImageFacts | None:
    """Config env / labels and manifest annotations of the image ``spec`` names; None for SBOMs and directories."""
    s = as_spec(spec)
    if isinstance(s, NO_IMAGE):
        return None
    image = open_image(s, Platform.parse(platform) if platform else None, options or TransportOptions())
    env: dict[str, str] = {}
    for item in image.config.env:
        key, _, value = item.partition("=")
        env[key] = value
    return ImageFacts(env, image.config.labels, dict(image.manifest.annotations))


NO_FILTERS = Filters()


def view_for(result: ScanResult, filters: Filters = NO_FILTERS, vex: tuple[VexStatement, ...] = (),
             show_disputed: bool = False, severity_source: str = "vendor") -> ReportView:
    """The findings a report counts, after VEX and ``filters``; disputed findings are set aside unless
    ``show_disputed``, ``not_affected`` ones always (``report.view``)."""
    kept, suppressed = apply_vex(result.findings, vex, [result.sbom.subject.name])
    not_affected = result.not_affected
    disputed = tuple(f for f in kept if f.disputed is not None)
    if not show_disputed:
        kept = tuple(f for f in kept if f.disputed is None)
    return ReportView(result.sbom, apply(kept, filters), tuple(s for s in suppressed if filters.keep(s.finding)),
                      result.notes, disputed=apply(disputed, filters), not_affected=apply(not_affected, filters),
                      severity_source=severity_source)


@dataclass(frozen=True)
class BaseSplit:
    """Which layers of the image are its base image's, and how the base was found."""

    layers: frozenset[str]  # the base's diff_ids ("sha256:...")
    name: str  # how the base is shown: its reference or the candidate's spec
    how: str  # baseimage.BaseImage.how: "annotations", "labels", "provenance", "layers"


def find_base(sbom: SBOM, facts: ImageFacts | None, candidates: Sequence[str], platform: str | None = None,
              statements: Callable[[], Sequence[Provenance] | None] | None = None,
              options: TransportOptions | None = None) -> BaseSplit | None:
    """The base image of ``sbom`` as ``quickview`` and ``recommendations`` find it (``oci.baseimage``):
    metadata first, then the candidates' layers; a base only named by metadata is opened for its layers.
    None when no base is found (or the image's layers are not known)."""
    if not sbom.subject.diff_ids:
        return None
    opened = [sbom_for(c, platform, options) for c in candidates]
    base, ref = pick_base(sbom, opened, facts.annotations if facts else None, facts.labels if facts else None,
                          statements=statements or (lambda: None))
    if ref is None:
        return None
    if base is not None:
        return BaseSplit(frozenset(base.subject.diff_ids), base.subject.name, ref.how)
    if not ref.name:
        return None
    image = open_image(ref.name, Platform.parse(platform) if platform else None, options or TransportOptions())
    return BaseSplit(frozenset(str(d) for d in image.config.diff_ids), ref.name, ref.how)


def mark_base(findings: Sequence[Finding], split: BaseSplit | None) -> tuple[Finding, ...]:
    """Each finding with ``base`` set: True when its package's layer is one of the base's, False when
    it is another layer, None when the package's layer or the base is unknown."""
    if split is None:
        return tuple(findings)
    return tuple(replace(f, base=None if f.layer is None else f.layer in split.layers) for f in findings)


def with_base(result: ScanResult, split: BaseSplit | None) -> ScanResult:
    if split is None:
        return result
    return replace(result, findings=mark_base(result.findings, split),
                   not_affected=mark_base(result.not_affected, split))


def scan_spec(spec: Spec | str, db: VulnDB, platform: str | None = None, severity_source: str = "vendor",
              options: TransportOptions | None = None) -> ScanResult:
    return scan(sbom_for(spec, platform, options), db, severity_source=severity_source)


__all__ = ["BaseSplit", "ImageFacts", "find_base", "image_facts", "mark_base", "sbom_for", "scan_spec", "view_for",
           "with_base"]
