"""``policy`` and ``recommendations`` get their own data on a first scan too (issue 22).

The world's images (a local registry) are scanned against a database that was never filled, with a local
stand-in for the OSV exports serving the world's advisories; the answers must be those of the same command
on the world's database, imported directly from the same advisories.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from giropops.cli import exitcodes
from giropops.cli.main import main
from tests.reco.conftest import World
from tests.support.osv_export import OSVExportServer, build_export


@pytest.fixture(scope="module")
def exports(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OSVExportServer]:
    root = tmp_path_factory.mktemp("reco-osv-export")
    build_export(world.advisory_files, root, ["Debian", "PyPI", "Alpine"])
    server = OSVExportServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def online(exports: OSVExportServer, monkeypatch: pytest.MonkeyPatch) -> OSVExportServer:
    monkeypatch.delenv("GIROPOPS_OFFLINE", raising=False)
    monkeypatch.setenv("GIROPOPS_OSV_URL", exports.url)
    exports.requests.clear()
    return exports


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main([*args, "--format", "json"])
    out = capsys.readouterr()
    return code, json.loads(out.out) if out.out else {}, out.err


def test_policy_fetches_what_the_image_needs_and_answers_as_on_an_imported_database(
        world: World, online: OSVExportServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = f"{world.apps}:current"
    common = ("--catalog", str(world.catalog))
    want_code, want, _ = run(capsys, "policy", image, "--db", str(world.db), *common)
    assert online.requests == []  # the imported database covers the image: nothing fetched
    code, got, err = run(capsys, "policy", image, "--db", str(tmp_path / "fresh.sqlite3"), *common)
    assert (code, got) == (want_code, want)
    assert sorted(p for p, _ in online.requests) == ["/Debian/all.zip", "/PyPI/all.zip"]
    assert "fetched vulnerability data for Debian (" in err


def test_recommendations_fetch_what_the_image_needs(
        world: World, online: OSVExportServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = f"{world.apps}:annotated"
    common = ("--catalog", str(world.catalog), "--no-cache")
    want_code, want, _ = run(capsys, "recommendations", image, "--db", str(world.db), *common)
    code, got, err = run(capsys, "recommendations", image, "--db", str(tmp_path / "fresh.sqlite3"), *common)
    assert (code, got) == (want_code, want) and code == exitcodes.OK
    assert sorted(p for p, _ in online.requests) == ["/Debian/all.zip", "/PyPI/all.zip"]
    assert "fetched vulnerability data for Debian (" in err
    # offline, the same fresh start is the exit-3 error, before the image is even read
    code, got, err = run(capsys, "recommendations", image, "--db", str(tmp_path / "other.sqlite3"), "--offline",
                         *common)
    assert code == exitcodes.DB_NOT_READY and got == {}
    assert "giropops db import FILES" in err and len(err.splitlines()) == 1
