"""``sbom_for(spec)``: an SBOM from any source spec.

``sbom://FILE`` decodes an SBOM (ours, SPDX or CycloneDX JSON, Trivy's and
Syft's too); ``fs://DIR`` catalogs a plain directory in place (no tar of it is
made, unlike the transport's one-layer view); everything else is an image
opened through ``giropops.oci.transport.open_image``.
"""

from __future__ import annotations

from giropops.errors import ImageReferenceError, SBOMError
from giropops.fileio import read_bounded
from giropops.oci.model import Platform
from giropops.oci.transport import FSSpec, RegistrySpec, SBOMFileSpec, Spec, TransportOptions, as_spec, open_image
from giropops.progress import NO_PROGRESS, Progress
from giropops.sbom.formats import CREATED_ANNOTATION, MAX_DOCUMENT_BYTES, decode
from giropops.sbom.generate import generate, generate_from_directory, subject_for
from giropops.sbom.model import SBOM, Subject

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def read_sbom_file(path: Path) -> SBOM:
    return decode(read_bounded(path, MAX_DOCUMENT_BYTES, "SBOM", SBOMError), str(path))


def sbom_for(spec: Spec | str, platform: str | None = None, *, use_cache: bool = True,
             options: TransportOptions | None = None, progress: Progress = NO_PROGRESS,
             meanwhile: Callable[[], object] | None = None) -> SBOM:
    """The SBOM of ``spec`` (parsed by ``giropops.oci.transport``); its subject is named as the text given
    (a parsed registry spec: by its reference).  ``meanwhile``: as ``generate``'s, for an image (else
    not called)."""
    s: Spec | str
    if isinstance(spec, str) and spec.startswith("archive://"):
        name, s = spec, spec  # open_image reads it (as parse_spec would, without making a Path of it)
    else:
        parsed = as_spec(spec)
        name = spec if isinstance(spec, str) else str(parsed.ref) if isinstance(parsed, RegistrySpec) else str(parsed)
        if isinstance(parsed, SBOMFileSpec):
            return read_sbom_file(parsed.path)
        if isinstance(parsed, FSSpec):
            if not parsed.path.is_dir():
                raise ImageReferenceError(f"{name}: not a directory")
            return generate_from_directory(parsed.path, Subject(name=name))
        s = parsed
    want = Platform.parse(platform) if platform else None
    image = open_image(s, want, options or TransportOptions())
    subject = subject_for(image, name)
    created = image.config.created
    if created:
        subject = Subject(
            subject.name, subject.digest, subject.platform, subject.size, subject.diff_ids,
            {**subject.annotations, CREATED_ANNOTATION: created},
        )
    return generate(image, subject, use_cache=use_cache, progress=progress, meanwhile=meanwhile)
