"""The SPDX license tables are parsed from license-expression's 1 MB index once per installed copy and then
read from the cache directory, only while the index file is the one they came from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from giropops.sbom import licenses


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("GIROPOPS_CACHE_DIR", str(tmp_path))
    licenses._spdx_keys.cache_clear()
    yield tmp_path / "spdx-license-keys.json"
    licenses._spdx_keys.cache_clear()


def test_the_tables_are_kept_and_read_back(cache: Path) -> None:
    first = licenses._spdx_keys()
    assert first[0]["apache-2.0"] == "Apache-2.0" and "classpath-exception-2.0" in first[1]
    doc = json.loads(cache.read_text())
    assert doc["licenses"] == first[0] and doc["exceptions"] == first[1]
    doc["licenses"]["giropops-test-license"] = "Giropops-Test"  # proves the next call reads the file
    cache.write_text(json.dumps(doc))
    licenses._spdx_keys.cache_clear()
    assert licenses._spdx_keys()[0]["giropops-test-license"] == "Giropops-Test"


def test_tables_of_another_index_or_unreadable_ones_are_misses(cache: Path) -> None:
    first = licenses._spdx_keys()
    doc = json.loads(cache.read_text())
    doc["source"][-1] += 1  # the index's ctime: another copy, or edited since
    doc["licenses"]["giropops-test-license"] = "Giropops-Test"
    cache.write_text(json.dumps(doc))
    licenses._spdx_keys.cache_clear()
    assert licenses._spdx_keys() == first
    cache.write_text('{"source": [], "licenses": [1]}')
    licenses._spdx_keys.cache_clear()
    assert licenses._spdx_keys() == first
    assert licenses.spdx_expression("gpl-2.0+") == "GPL-2.0-or-later"
