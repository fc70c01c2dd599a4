"""The SPDX license tables of the license-expression index giropops ships them for are read from
``giropops/data/spdx`` (named by the index's SHA-256); any other index is parsed once per installed copy
(1 MB) and then read from the cache directory, only while the index file is the one they came from."""

from __future__ import annotations

import hashlib
import json
import sys
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


@pytest.fixture
def other_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Another copy of the index, first on sys.path: the same entries, other bytes (a trailing newline), so
    not the index the shipped tables were made from."""
    index = tmp_path / "site" / licenses._LICENSE_INDEX
    index.parent.mkdir(parents=True)
    index.write_bytes(_installed_index() + b"\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return index


def test_the_installed_index_gets_the_shipped_tables_and_nothing_is_kept(cache: Path) -> None:
    data = _installed_index()
    shipped = json.loads(Path(licenses.SHIPPED_TABLES).read_text())
    assert shipped["index_sha256"] == hashlib.sha256(data).hexdigest(), (
        "the shipped SPDX tables were made from another license-expression: run scripts/spdx_keys_table.py")
    assert licenses._spdx_keys() == licenses._parse_index(data)
    assert not cache.exists()  # nothing parsed, nothing kept


def test_the_shipped_tables_are_not_used_for_another_index(cache: Path, other_index: Path) -> None:
    assert licenses._shipped_keys(other_index.read_bytes()) is None
    assert licenses._spdx_keys() == licenses._parse_index(other_index.read_bytes())
    assert json.loads(cache.read_text())["source"][0] == str(other_index)  # scanned, then kept


def test_the_tables_are_kept_and_read_back(cache: Path, other_index: Path) -> None:
    first = licenses._spdx_keys()
    assert first[0]["apache-2.0"] == "Apache-2.0" and "classpath-exception-2.0" in first[1]
    doc = json.loads(cache.read_text())
    assert doc["licenses"] == first[0] and doc["exceptions"] == first[1]
    doc["licenses"]["giropops-test-license"] = "Giropops-Test"  # proves the next call reads the file
    cache.write_text(json.dumps(doc))
    licenses._spdx_keys.cache_clear()
    assert licenses._spdx_keys()[0]["giropops-test-license"] == "Giropops-Test"


def test_tables_of_another_index_or_unreadable_ones_are_misses(cache: Path, other_index: Path) -> None:
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


def _installed_index() -> bytes:
    return next(p for p in (Path(e or ".") / licenses._LICENSE_INDEX for e in sys.path) if p.is_file()).read_bytes()


def test_the_index_is_read_without_decoding_it_to_the_same_tables() -> None:
    data = _installed_index()
    scanned = licenses._scan_index(data)
    assert scanned is not None  # the installed index has the layout the pattern reads
    entries = json.loads(data)
    spdx = {e["spdx_license_key"] for e in entries if e.get("spdx_license_key")}
    assert scanned == licenses._parse_index(data)
    assert scanned[0]["gpl-2.0+"] == "GPL-2.0-or-later" and "LicenseRef-scancode-3com-microcode" in spdx
    assert not any(v.startswith("LicenseRef-") for table in scanned for v in table.values())


def test_an_index_of_another_layout_is_decoded_as_json_not_guessed_at() -> None:
    entries = json.loads(_installed_index())
    expected = licenses._parse_index(_installed_index())
    for changed in (
        json.dumps(entries, separators=(",", ":")).encode(),  # no spaces: the pattern finds nothing
        json.dumps([{k: e[k] for k in reversed(list(e))} for e in entries], indent=2).encode(),  # field order
        json.dumps([*entries[:5], {"license_key": "x", "spdx_license_key": "X\\u0031"}, *entries[5:]]).encode(),
        json.dumps([*entries, {"license_key": "y", "spdx_license_key": "Y", "is_exception": False}], indent=2).encode(),
    ):
        assert licenses._scan_index(changed) is None
    extra = {"license_key": "x", "spdx_license_key": "X\u00e9", "other_spdx_license_keys": [], "is_exception": False}
    escaped = [*entries, extra]
    data = json.dumps(escaped, indent=2, ensure_ascii=False).encode()
    assert licenses._scan_index(data) is None
    assert licenses._parse_index(data)[0] == {**expected[0], "x\u00e9": "X\u00e9"}


def test_prepare_loads_the_license_list_for_the_formats_that_read_it(cache: Path, other_index: Path) -> None:
    from giropops.sbom.formats import prepare

    for fmt in ("list", "json"):
        prepare(fmt)
        assert not cache.exists() and licenses._spdx_keys.cache_info().currsize == 0
    prepare("cyclonedx-json")
    assert licenses._spdx_keys.cache_info().currsize == 1
    assert json.loads(cache.read_text())["licenses"]["mit"] == "MIT"  # loaded, then kept, as encode would
