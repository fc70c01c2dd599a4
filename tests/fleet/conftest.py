from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from giropops.vuln.db.importer import import_paths
from tests.fleet.fleetdata import BASE_ADVISORIES, FleetImage, build_fleet, push_fleet, write_advisories
from tests.support.postgres import PostgresServer
from tests.support.services import Registry

FLEET_SIZE = 30


@dataclass(frozen=True)
class Fleet:
    host: str
    images: list[FleetImage]

    def by_digest(self) -> dict[str, FleetImage]:
        return {fi.digest: fi for fi in self.images}


@pytest.fixture(scope="session")
def fleet(registry: Registry) -> Fleet:
    images = build_fleet(FLEET_SIZE)
    push_fleet(registry.host, images)
    return Fleet(registry.host, images)


@pytest.fixture(scope="session")
def fleet_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet-db")
    path = root / "vulndb.sqlite3"
    import_paths(path, [write_advisories(root / "base.osv.jsonl.gz", BASE_ADVISORIES)])
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private layer cache (the scan must not read a layer another test catalogued)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("GIROPOPS_CACHE_DIR", str(path))
    return path
