from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import RedisServer, Registry

# Scans fetch missing vulnerability data from the public OSV exports (giropops.vuln.db.ensure): never
# from a test.  The tests of fetching start their own local export server and lift this for their runs.
os.environ["GIROPOPS_OFFLINE"] = "1"
os.environ.pop("GIROPOPS_OSV_URL", None)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """One anonymous registry shared by the session; tests use distinct repository names."""
    reg = Registry(tmp_path_factory.mktemp("registry"))
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()
