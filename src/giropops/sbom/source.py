"""``sbom_for(spec)``: an SBOM from any source spec.

``sbom://FILE`` decodes an SBOM (ours, SPDX or CycloneDX JSON, Trivy's and
Syft's too); ``fs://DIR`` catalogs a plain directory; everything else is an
image opened through ``giropops.oci.transport.open_image``.  Until that module
lands, ``archive://FILE`` (and a bare path to a ``.tar``) is read by a small
docker-archive reader of our own (``_stopgap_archive``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from giropops.errors import ReferenceError_, SBOMError
from giropops.oci.image import Image
from giropops.oci.model import Platform
from giropops.sbom.formats import CREATED_ANNOTATION, MAX_DOCUMENT_BYTES, decode
from giropops.sbom.generate import generate, generate_from_directory, subject_for
from giropops.sbom.model import SBOM, Subject


def read_sbom_file(path: Path) -> SBOM:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise SBOMError(f"{path}: cannot read SBOM: {exc.strerror}") from exc
    return decode(data, str(path))


def _transport() -> Callable[..., Any] | None:
    try:
        module = importlib.import_module("giropops.oci.transport")
    except ImportError:
        return None
    fn = getattr(module, "open_image", None)
    return fn if callable(fn) else None


def open_image(spec: str, platform: Platform | None = None) -> Image:
    opener = _transport()
    if opener is not None:
        image = opener(spec, platform=platform) if platform is not None else opener(spec)
        if not isinstance(image, Image):
            raise SBOMError(f"{spec}: not a single image (choose one with --platform)")
        return image
    path = spec[len("archive://") :] if spec.startswith("archive://") else spec
    if "://" in path:
        raise ReferenceError_(f"unsupported source {spec!r} (this build reads archive://, fs:// and sbom://)")
    from giropops.sbom._stopgap_archive import DockerArchiveImage

    if not Path(path).is_file():
        raise ReferenceError_(f"{spec}: no such file")
    return DockerArchiveImage(Path(path))


def sbom_for(spec: str, platform: str | None = None, *, use_cache: bool = True) -> SBOM:
    if spec.startswith("sbom://"):
        return read_sbom_file(Path(spec[len("sbom://") :]))
    if spec.startswith("fs://"):
        root = Path(spec[len("fs://") :])
        if not root.is_dir():
            raise ReferenceError_(f"{spec}: not a directory")
        return generate_from_directory(root, Subject(name=spec))
    want = Platform.parse(platform) if platform else None
    image = open_image(spec, want)
    subject = subject_for(image, spec)
    created = image.config.created
    if created:
        subject = Subject(
            subject.name, subject.digest, subject.platform, subject.size, subject.diff_ids,
            {**subject.annotations, CREATED_ANNOTATION: created},
        )
    return generate(image, subject, use_cache=use_cache)
