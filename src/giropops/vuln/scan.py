"""From what the user typed (``IMAGE``) to an ``SBOM`` and the image facts reports need.

``sbom_for`` is the single place where the vulnerability commands meet the SBOM
side: it is ``giropops.sbom.sbom_for`` (images through the OCI transports,
``fs://DIR``, and ``sbom://FILE`` in our JSON, SPDX or CycloneDX).  Environment,
labels and manifest annotations are not part of an SBOM; ``image_facts`` reads
them from the image itself when the spec names one.  ``stored_sbom_for`` is
``sbom_for`` through the stored whole results of ``giropops.sbom.results``: a
warm ``cves`` of an unchanged archive or layout scans the inventory the first
run stored, without opening the image.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from giropops.sbom.model import SBOM
from giropops.vuln.match import ScanResult, scan
from giropops.vuln.model import Finding
from giropops.vuln.report.filters import Filters, VexStatement, apply, apply_vex
from giropops.vuln.report.view import ReportView

if TYPE_CHECKING:
    # the transports and the catalogers are imported by what opens an image: a warm scan of an unchanged
    # archive reads its stored inventory instead (``stored_sbom_for``); base images are looked for when a
    # report asks (--locations, --only-base...), not by every scan
    from giropops.oci.baseimage import Provenance
    from giropops.oci.transport import Spec, TransportOptions
    from giropops.vuln.db.store import VulnDB


def sbom_for(spec: Spec | str, platform: str | None = None, options: TransportOptions | None = None) -> SBOM:
    """The SBOM of any source spec (an image, ``fs://DIR`` or ``sbom://FILE``); ``platform`` picks from an index."""
    from giropops.sbom import sbom_for as _sbom_for

    return _sbom_for(spec, platform, options=options)


#: The stored form of an inventory: ``giropops sbom -f json``'s document, which decodes to an equal ``SBOM``.
STORED_FORMAT = "json"


def stored_sbom(spec: str, platform: str | None = None) -> SBOM | None:
    """The stored inventory ``stored_sbom_for`` would answer with, without computing one: None on a miss."""
    from giropops.sbom import results

    request = results.request(spec, platform, STORED_FORMAT, frozenset())
    return None if request is None else _decoded(results.load(request))


def _decoded(data: bytes | None) -> SBOM | None:
    if data is None:
        return None
    import warnings

    from giropops.sbom.formats import decode

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            sbom = decode(data)
        except Exception:  # noqa: BLE001 - a damaged entry is a miss, never an error
            return None
    return None if caught else sbom


def stored_sbom_for(spec: str, platform: str | None = None, options: TransportOptions | None = None,
                    *, store: bool = True) -> SBOM:
    """``sbom_for``, through the stored whole results of ``giropops.sbom.results``: the inventory of an
    unchanged ``archive://FILE`` is the JSON document a former run (of ``cves`` or of ``giropops sbom -f
    json``) stored for the same file identity, request, environment and code, decoded; the same request
    key as ``giropops sbom IMAGE -f json`` (so each serves the other).  A miss computes it and stores it,
    unless the computation warned (a warm run must warn as the cold one did: it recomputes), the document
    does not decode to an equal ``SBOM`` (then a warm scan could differ), or ``store`` is False (registry
    credentials given, as for ``giropops sbom``).  A stored document that does not decode
    cleanly, without a warning, is a miss."""
    import warnings

    from giropops.sbom import results

    request = results.request(spec, platform, STORED_FORMAT, frozenset()) if store else None
    if request is not None and (stored := _decoded(results.load(request))) is not None:
        return stored
    shown: list[object] = []
    show = warnings.showwarning

    def counted(*warning: object, **where: object) -> None:
        shown.append(warning)
        show(*warning, **where)  # type: ignore[arg-type]

    warnings.showwarning = counted
    try:
        sbom = sbom_for(spec, platform, options)
    finally:
        warnings.showwarning = show
    if request is not None and not shown:
        from giropops.sbom.formats import EncodeOptions, encode

        document = encode(sbom, STORED_FORMAT, EncodeOptions())
        if _decoded(document) == sbom:  # what a warm run would scan is what this one scans, or nothing is kept
            results.store(request, document)
    return sbom


@dataclass(frozen=True)
class ImageFacts:
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


def image_facts(spec: Spec | str, platform: str | None = None,
                options: TransportOptions | None = None) -> ImageFacts | None:
    """Config env / labels and manifest annotations of the image ``spec`` names; None for SBOMs and directories."""
    from giropops.oci.model import Platform
    from giropops.oci.transport import NO_IMAGE, TransportOptions, as_spec, open_image

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
    from giropops.vuln.quickview import pick_base

    opened = [sbom_for(c, platform, options) for c in candidates]
    base, ref = pick_base(sbom, opened, facts.annotations if facts else None, facts.labels if facts else None,
                          statements=statements or (lambda: None))
    if ref is None:
        return None
    if base is not None:
        return BaseSplit(frozenset(base.subject.diff_ids), base.subject.name, ref.how)
    if not ref.name:
        return None
    from giropops.oci.model import Platform
    from giropops.oci.transport import TransportOptions, open_image

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


__all__ = ["STORED_FORMAT", "BaseSplit", "ImageFacts", "find_base", "image_facts", "mark_base", "sbom_for", "scan_spec",
           "stored_sbom", "stored_sbom_for", "view_for", "with_base"]
