from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.oci_images import build_static_hello
from tests.support.podman import Podman


@pytest.fixture(scope="session")
def hello_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_static_hello(tmp_path_factory.mktemp("hello"))


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    pod = Podman(tmp_path_factory.mktemp("podman"))
    try:
        yield pod
    finally:
        pod.cleanup()


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pushes record what they pushed in the blob-info cache: each test gets its own, never the user's."""
    monkeypatch.setenv("GIROPOPS_CACHE_DIR", str(tmp_path_factory.mktemp("giropops-cache")))
