"""What is inside an image: a squashed filesystem view, catalogers per ecosystem, SBOM formats.

``generate(image, subject)`` catalogs an ``Image``; ``sbom_for(spec)`` takes any
source spec, including ``sbom://FILE`` (an SBOM read back) and ``fs://DIR``.
"""

from giropops.sbom.generate import generate, generate_from_directory, subject_for
from giropops.sbom.model import SBOM, Distro, Location, Package, Subject, Unknown
from giropops.sbom.source import sbom_for

__all__ = [
    "SBOM",
    "Distro",
    "Location",
    "Package",
    "Subject",
    "Unknown",
    "generate",
    "generate_from_directory",
    "sbom_for",
    "subject_for",
]
