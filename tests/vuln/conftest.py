from __future__ import annotations

from pathlib import Path

import pytest

from giropops.vuln.db.importer import import_paths
from tests.support.paths import VULNDATA


def vulndata_files() -> list[Path]:
    files = sorted(VULNDATA.glob("*.osv.jsonl.gz"))
    assert files, f"no OSV files in {VULNDATA}"
    return files


@pytest.fixture(scope="session")
def full_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every shared advisory imported once for the whole session (the slow part of this suite)."""
    path = tmp_path_factory.mktemp("vulndb") / "full.sqlite3"
    import_paths(path, vulndata_files())
    return path
