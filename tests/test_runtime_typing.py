"""``giropops.runtime_typing``'s stand-ins answer ``isinstance`` as ``typing``'s protocols do: for each protocol
of ``giropops.oci.image``, a ``typing.Protocol`` made of the same members is asked the same questions."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from giropops.oci import image as image_module
from giropops.oci.transport import open_any, open_image
from giropops.progress import NO_PROGRESS, Progress
from giropops.runtime_typing import cast
from tests.support.sbom_images import Entry, layer_from_entries, write_docker_archive

PROTOCOLS = ("Layer", "Image", "ImageIndex")


def as_typing(cls: type) -> type:
    """A ``typing`` runtime-checkable protocol with ``cls``'s members."""
    namespace = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__", "_members")}
    made: type = typing.runtime_checkable(type(cls.__name__, (typing.Protocol,), namespace))  # type: ignore[arg-type]
    return made


class Members:
    """An object with every member of every protocol of ``giropops.oci.image`` (``missing`` left out,
    ``none`` set to None)."""

    def __init__(self, missing: str = "", none: str = "") -> None:
        for proto in PROTOCOLS:
            for name in vars(getattr(image_module, proto)):
                if not name.startswith("_") and name != missing:
                    object.__setattr__(self, name, None if name == none else (lambda *a: None))


def candidates(tmp_path: Path) -> list[object]:
    tar = write_docker_archive(tmp_path / "image.tar", [layer_from_entries([Entry("etc/hostname", b"x\n")])])
    img = open_image(f"archive://{tar}")
    return [img, img.layers()[0], open_any(f"archive://{tar}"), object(), NO_PROGRESS, Members(),
            Members(missing="layers"), Members(none="open_compressed"), Members(none="digest"), "text"]


@pytest.mark.parametrize("name", PROTOCOLS)
def test_isinstance_answers_as_typing_does(tmp_path: Path, name: str) -> None:
    ours = getattr(image_module, name)
    theirs = as_typing(ours)
    objects = candidates(tmp_path)
    answers = [isinstance(obj, ours) for obj in objects]
    assert answers == [isinstance(obj, theirs) for obj in objects]
    assert True in answers and False in answers  # the question told something apart


def test_a_plain_protocol_is_a_plain_class_and_cast_returns_its_value() -> None:
    assert not isinstance(NO_PROGRESS, Progress)  # typing would refuse the question; nothing asks it
    value = object()
    assert cast("Progress", value) is value
