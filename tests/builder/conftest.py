from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from giropops.builder.builder import Builder, BuildResult
from giropops.builder.cache import Cache
from giropops.builder.output import write_output
from giropops.builder.spec import load_spec
from tests.support.paths import REPO_ROOT
from tests.support.podman import Podman
from tests.support.sbom_images import trivy_binary


@pytest.fixture(scope="session")
def build_cache(tmp_path_factory: pytest.TempPathFactory) -> Cache:
    """Downloads shared by the session (each test that needs a cold path makes its own)."""
    return Cache(tmp_path_factory.mktemp("giropops-cache"))


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    pm = Podman(tmp_path_factory.mktemp("podman"))
    try:
        yield pm
    finally:
        pm.cleanup()


@pytest.fixture(scope="session")
def trivy() -> str:
    return trivy_binary()


@dataclass
class BuiltSenhas:
    result: BuildResult
    archive: Path
    tag: str


def app_copy(dest: Path) -> Path:
    """The app project as the repository has it (pyproject + its package), to edit without touching the repo."""
    dest.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "pyproject.toml", dest / "pyproject.toml")
    shutil.copytree(REPO_ROOT / "src" / "giropops_senhas", dest / "src" / "giropops_senhas",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # The base spec it includes comes along: a spec reads files of its own directory tree only (build context).
    shutil.copytree(REPO_ROOT / "specs", dest / "specs")
    shutil.copy(REPO_ROOT / "giropops.yaml", dest / "giropops.yaml")
    return dest / "giropops.yaml"


@pytest.fixture(scope="session")
def senhas_image(build_cache: Cache, tmp_path_factory: pytest.TempPathFactory) -> BuiltSenhas:
    """giropops-senhas built from the repository's own giropops.yaml, from real Debian packages."""
    out = tmp_path_factory.mktemp("senhas")
    tag = "localhost/giropops-senhas:test"
    result = Builder(build_cache).build(load_spec(REPO_ROOT / "giropops.yaml"))
    archive = out / "senhas.tar"
    write_output(result.image, f"archive://{archive}", [tag])
    return BuiltSenhas(result, archive, tag)


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{args[0]} failed: {proc.stderr[-2000:]}"
    return proc
