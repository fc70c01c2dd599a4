"""giropops-senhas built by giropops vs the conventional debootstrap + python3 + pip image, same run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from giropops.builder.output import write_output
from tests.builder.conftest import BuiltSenhas, run
from tests.builder.conventional import conventional_rootfs, image_of_rootfs, uncompressed_size
from tests.support.paths import REPO_ROOT
from tests.support.services import require_binary


def _trivy_packages(trivy: str, archive: Path, tmp: Path) -> set[tuple[str, str]]:
    out = tmp / f"{archive.stem}.cdx.json"
    run(trivy, "image", "--cache-dir", str(tmp / "trivy"), "--input", str(archive), "--format", "cyclonedx",
        "--output", str(out), "--quiet")
    comps = json.loads(out.read_text())["components"]
    return {(c["name"], c.get("version", "")) for c in comps if c.get("type") == "library"}


@pytest.mark.slow
def test_smaller_and_fewer_packages_than_the_conventional_image(
    senhas_image: BuiltSenhas, trivy: str, tmp_path: Path
) -> None:
    require_binary("debootstrap")
    root = conventional_rootfs(tmp_path / "rootfs", REPO_ROOT)
    conventional = image_of_rootfs(root)
    conv_archive = tmp_path / "conventional.tar"
    write_output(conventional, f"archive://{conv_archive}", ["localhost/conventional:test"])

    ours = senhas_image.result.image
    ours_pkgs = _trivy_packages(trivy, senhas_image.archive, tmp_path)
    conv_pkgs = _trivy_packages(trivy, conv_archive, tmp_path)
    rows = [
        ("compressed MB", ours.compressed_size / 1e6, conventional.compressed_size / 1e6),
        ("uncompressed MB", uncompressed_size(ours) / 1e6, uncompressed_size(conventional) / 1e6),
        ("packages (Trivy)", len(ours_pkgs), len(conv_pkgs)),
    ]
    print("\n                      giropops   debootstrap+pip   ratio")
    for name, a, b in rows:
        print(f"{name:<20} {a:>10.1f} {b:>17.1f} {b / a:>7.1f}x")
    assert ours.compressed_size < conventional.compressed_size
    assert uncompressed_size(ours) < uncompressed_size(conventional)
    assert len(ours_pkgs) < len(conv_pkgs)
    # The conventional image carries what ours leaves out on purpose.
    conv_names = {n for n, _ in conv_pkgs}
    ours_names = {n for n, _ in ours_pkgs}
    for name in ("bash", "dpkg", "apt", "perl-base", "python3-pip"):
        assert name in conv_names and name not in ours_names, name
    # The goal: the whole app image under Chainguard's Python base alone (about 24 MB compressed).
    assert ours.compressed_size < 24_000_000
