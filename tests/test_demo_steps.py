"""The demo's steps are library calls: its SBOM is ``giropops sbom``'s, its spec is found only where the user is."""

from __future__ import annotations

from pathlib import Path

import pytest

from giropops.demo import steps
from giropops.oci.transport import write_image
from giropops.sbom import sbom_for
from giropops.sbom.formats import CREATED_ANNOTATION, decode
from tests.support.oci_images import random_image


def test_the_demo_sbom_is_the_sbom_command_s(tmp_path: Path) -> None:
    archive = tmp_path / "app.tar"
    write_image(random_image(3), f"archive://{archive}")
    files = steps.write_sboms(archive, tmp_path / "app.spdx.json", tmp_path / "app.cdx.json")
    same = sbom_for(f"archive://{archive}")
    assert files.sbom.subject == same.subject
    assert files.sbom.subject.annotations[CREATED_ANNOTATION] == "1970-01-01T00:00:00Z"
    assert decode(files.spdx.read_bytes(), "spdx").subject.digest == same.subject.digest


def test_no_spec_here_is_an_error_not_the_source_checkout(tmp_path: Path) -> None:
    with pytest.raises(steps.DemoError, match=r"no giropops\.yaml in"):
        steps.find_spec(None, tmp_path)
