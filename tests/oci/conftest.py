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
