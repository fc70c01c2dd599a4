"""The inventory (type, name, version) of every test image equals what Trivy finds on the same tarball."""

from __future__ import annotations

from pathlib import Path

import pytest

from giropops.sbom import sbom_for
from tests.sbom.conftest import BuiltImage, inventory_of_cyclonedx, trivy_cyclonedx

IMAGES = ["distroless_image", "debootstrap_image", "venv_image", "whiteout_image", "apk_image"]


def ours(image: BuiltImage) -> set[tuple[str, str, str]]:
    sbom = sbom_for(f"archive://{image.tar}", use_cache=False)
    return {(p.type, p.name, p.version) for p in sbom.packages}


@pytest.mark.parametrize("fixture", IMAGES)
def test_inventory_equals_trivy(fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    image: BuiltImage = request.getfixturevalue(fixture)
    theirs = inventory_of_cyclonedx(trivy_cyclonedx(image.tar, tmp_path / "trivy.json", tmp_path / "trivy-cache"))
    mine = ours(image)
    assert mine, "no packages found"
    assert mine - theirs == set() and theirs - mine == set(), (sorted(mine - theirs), sorted(theirs - mine))
