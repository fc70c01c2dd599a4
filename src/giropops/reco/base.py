"""Which image an image was built on: ``giropops.oci.baseimage`` decides (and lists its order), this reads.

From an image it hands the detector the manifest annotations, the config labels and the
diff_ids; the attestations attached to the image, read through ``giropops.sign`` without
checking signatures (a hint, said so in ``detail``); and the candidate images, opened here,
skipping hosts that did not answer earlier in the run.
"""

from __future__ import annotations

from collections.abc import Sequence

from giropops.errors import GiropopsError
from giropops.oci.baseimage import (
    BASE_DIGEST,
    BASE_NAME,
    PROVENANCE_TYPES,
    BaseImage,
    LayerCandidate,
    detect,
    name_of,
)
from giropops.oci.image import Image
from giropops.oci.model import Platform
from giropops.oci.transport import RegistrySpec, Spec, TransportOptions, open_image, parse_spec
from giropops.reco.deps import statements_unverified
from giropops.reco.reach import Unreachable

__all__ = ["BASE_DIGEST", "BASE_NAME", "PROVENANCE_TYPES", "BaseImage", "detect_base"]

DEFAULT_OPTIONS = TransportOptions()


def _open_candidates(
    image: Image, candidates: Sequence[str], options: TransportOptions, platform: Platform | None,
    unreachable: Unreachable,
) -> tuple[list[LayerCandidate], list[str]]:
    """The candidates that could be opened (on the image's platform), and a note for each that could not."""
    opened: list[LayerCandidate] = []
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
        name = name_of(cand_spec.ref) if isinstance(cand_spec, RegistrySpec) else cand
        opened.append(LayerCandidate(cand, name, other.digest, tuple(str(d) for d in other.config.diff_ids)))
    return opened, notes


def detect_base(
    image: Image,
    spec: Spec,
    options: TransportOptions = DEFAULT_OPTIONS,
    candidates: Sequence[str] = (),
    platform: Platform | None = None,
    unreachable: Unreachable | None = None,
) -> BaseImage:
    """How ``image`` names its base, trying the sources in ``giropops.oci.baseimage``'s order."""
    reach = unreachable if unreachable is not None else Unreachable()
    return detect(
        image.manifest.annotations, image.config.labels, [str(d) for d in image.config.diff_ids], image.digest,
        statements=lambda: statements_unverified(spec, image.digest, options),
        candidates=lambda: _open_candidates(image, candidates, options, platform, reach),
        candidate_count=len(candidates),
    )
