"""What is inside an image: a squashed filesystem view, catalogers per ecosystem, SBOM formats.

``generate(image, subject)`` catalogs an ``Image``; ``sbom_for(spec)`` takes any
source spec, including ``sbom://FILE`` (an SBOM read back) and ``fs://DIR``.

The names below are imported when first used (PEP 562): importing a submodule such as
``giropops.sbom.names`` for a command's ``--help`` does not import the catalogers.
"""

from __future__ import annotations

import sys
import types

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from typing import Any

    from giropops.sbom.generate import generate, generate_from_directory, subject_for
    from giropops.sbom.model import SBOM, Distro, Location, Package, Subject, Unknown
    from giropops.sbom.source import sbom_for

_WHERE = {
    "SBOM": "model", "Distro": "model", "Location": "model", "Package": "model", "Subject": "model",
    "Unknown": "model", "generate": "generate", "generate_from_directory": "generate", "subject_for": "generate",
    "sbom_for": "source",
}


class _Package(types.ModuleType):
    """This package, whose ``generate`` stays the function when the submodule of that name is imported
    (the import system sets ``giropops.sbom.generate`` to the submodule then; an eager ``from ... import``
    in this file used to rebind it)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "generate" and isinstance(value, types.ModuleType):
            value = value.generate
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
