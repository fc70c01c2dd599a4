from __future__ import annotations

from pathlib import Path

import pytest

from giropops.vuln.db.importer import import_paths
from tests.support.paths import VULNDATA
from tests.vuln.apkdata import write_apk_advisories


def fixture_files() -> list[Path]:
    """The cut-down Debian 12 and PyPI advisories of tests/data (see tests/data/PROVENANCE.md)."""
    files = sorted(VULNDATA.glob("*.osv.jsonl.gz"))
    assert files, f"no OSV files in {VULNDATA}"
    return files


@pytest.fixture(scope="session")
def vulndata_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every advisory file of the suite: tests/data's plus the synthetic apk ones (tests/vuln/apkdata.py)."""
    return fixture_files() + write_apk_advisories(tmp_path_factory.mktemp("apk-advisories"))


@pytest.fixture(scope="session")
def full_db(tmp_path_factory: pytest.TempPathFactory, vulndata_files: list[Path]) -> Path:
    """Every advisory of the suite imported once for the whole session (the slow part of this suite)."""
    path = tmp_path_factory.mktemp("vulndb") / "full.sqlite3"
    import_paths(path, vulndata_files)
    return path
