"""Real images for the SBOM tests, built once per session from real Debian packages and real wheels
(the builders live in ``tests/support/sbom_images.py``, shared with ``bench/sbom_vs_trivy.py``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import sbom_images as im
from tests.support.sbom_images import APK_PACKAGES, SITE, BuiltImage, apk_installed_db, trivy_binary

__all__ = ["APK_PACKAGES", "SITE", "BuiltImage", "apk_installed_db", "trivy_binary"]


def pep503(name: str) -> str:
    """PEP 503 normalization, written out here independently of the code under test."""
    return re.sub(r"[-_.]+", "-", name).lower()


def trivy_cyclonedx(tar: Path, out: Path, cache: Path) -> dict[str, object]:
    env = {**os.environ, "TRIVY_CACHE_DIR": str(cache), "TRIVY_NO_PROGRESS": "true"}
    subprocess.run(
        [trivy_binary(), "image", "--input", str(tar), "--format", "cyclonedx", "-o", str(out), "--quiet"],
        check=True,
        env=env,
        capture_output=True,
    )
    doc: dict[str, object] = json.loads(out.read_text())
    return doc


def inventory_of_cyclonedx(doc: dict[str, object]) -> set[tuple[str, str, str]]:
    """(type, name, version) of every component with a package URL, read straight from the JSON."""
    kinds = {"deb": "deb", "apk": "apk", "pypi": "python"}
    out: set[tuple[str, str, str]] = set()
    stack = list(doc.get("components") or [])  # type: ignore[call-overload]
    while stack:
        c = stack.pop()
        stack.extend(c.get("components") or [])
        purl = c.get("purl")
        if not purl:
            continue
        ptype = purl[len("pkg:") :].split("/", 1)[0]
        kind = kinds.get(ptype, ptype)
        name = pep503(c["name"]) if kind == "python" else c["name"]
        out.add((kind, name, c["version"]))
    return out


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sbom-images")


@pytest.fixture(scope="session")
def debs(work: Path) -> dict[str, Path]:
    return im.download_debs(work)


@pytest.fixture(scope="session")
def distroless_layer(work: Path, debs: dict[str, Path]) -> Path:
    return im.build_distroless_layer(work, debs)


@pytest.fixture(scope="session")
def distroless_image(work: Path, distroless_layer: Path) -> BuiltImage:
    return im.image(work, "distroless", [distroless_layer])


@pytest.fixture(scope="session")
def debootstrap_root(work: Path) -> Path:
    return im.build_debootstrap_root(work)


@pytest.fixture(scope="session")
def debootstrap_layer(work: Path, debootstrap_root: Path) -> Path:
    return im.layer_from_dir(debootstrap_root, work / "minbase.tar")


@pytest.fixture(scope="session")
def debootstrap_image(work: Path, debootstrap_layer: Path) -> BuiltImage:
    return im.image(work, "debootstrap", [debootstrap_layer])


@pytest.fixture(scope="session")
def venv_layer(work: Path) -> Path:
    return im.build_venv_layer(work, im.download_wheels(work))


@pytest.fixture(scope="session")
def venv_image(work: Path, distroless_layer: Path, venv_layer: Path) -> BuiltImage:
    return im.image(work, "venv", [distroless_layer, venv_layer])


@pytest.fixture(scope="session")
def whiteout_image(work: Path, distroless_layer: Path, venv_layer: Path, debs: dict[str, Path]) -> BuiltImage:
    return im.image(work, "whiteout", [distroless_layer, venv_layer, im.build_whiteout_layer(work, debs)])


@pytest.fixture(scope="session")
def apk_image(work: Path) -> BuiltImage:
    return im.image(work, "apk", [im.build_apk_layer()])


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    d = tmp_path / "cache"
    monkeypatch.setenv("GIROPOPS_CACHE_DIR", str(d))
    yield d
