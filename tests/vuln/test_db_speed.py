"""What makes the database fast (issue 19), proven as behaviour, never as a time.

* the importer's batched writer gives the same database as one statement per record would: the
  newest record of an id wins within one batch and across batches, the replaced record's entries go;
* an import into a database that already holds records equals one import of everything;
* the lookup indexes exist after a bulk import into an empty database, and the per-package lookup
  and the CVSS lookup are index searches (SQLite's query plan), never table scans;
* ``db update`` downloads only what changed: a second update sends conditional requests that get
  304s and imports nothing; when one ecosystem's export changes only that one is downloaded and
  re-imported (bytes counted by the local export server);
* a scan's modules do not import the OSV readers, the HTTP client or the CVSS library.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from giropops.vuln.db import store
from giropops.vuln.db.importer import import_paths
from giropops.vuln.db.osv import parse_record
from giropops.vuln.db.update import update
from tests.support.osv_export import OSVExportServer, build_export


def record(rid: str, modified: str, name: str, fixed: str = "1.5") -> dict[str, object]:
    return {"id": rid, "modified": modified, "summary": f"{rid} at {modified}",
            "affected": [{"package": {"ecosystem": "PyPI", "name": name},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": fixed}]}]}]}


def put_all(db: Path, records: list[dict[str, object]]) -> list[bool]:
    with store.rebuild(db) as writer:
        return [writer.put(parse_record(r)[0], "test") for r in records]


def rows(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every advisory, affected entry and interval, keyed by content (the primary keys left out)."""
    with sqlite3.connect(db) as conn:
        return {
            "advisory": sorted(conn.execute("SELECT id, modified, summary FROM advisory"), key=repr),
            "affected": sorted(conn.execute(
                "SELECT a.id, f.ecosystem, f.name FROM affected f JOIN advisory a ON a.pk = f.advisory"), key=repr),
            "interval": sorted(conn.execute(
                "SELECT a.id, i.introduced, i.fixed FROM interval i JOIN affected f ON f.pk = i.affected"
                " JOIN advisory a ON a.pk = f.advisory"), key=repr),
        }


def test_batched_writer_keeps_the_newest_record_within_and_across_batches(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store.Writer, "BATCH", 3)
    db = tmp_path / "db.sqlite3"
    written = put_all(db, [
        record("A-1", "2025-01-01T00:00:00Z", "alpha"),
        record("B-1", "2025-01-01T00:00:00Z", "beta"),
        record("A-1", "2025-02-01T00:00:00Z", "alpha-renamed", fixed="1.6"),  # same batch: replaces
        record("C-1", "2025-01-01T00:00:00Z", "gamma"),                      # flushes the batch
        record("A-1", "2024-12-01T00:00:00Z", "alpha-old"),                  # older: refused
        record("B-1", "2025-03-01T00:00:00Z", "beta-two", fixed="2.0"),      # stored already: replaces
        record("D-1", "2025-01-01T00:00:00Z", "delta"),
        record("B-1", "2025-03-01T00:00:00Z", "beta-three", fixed="3.0"),    # equal date: replaces again
    ])
    assert written == [True, True, True, True, False, True, True, True]
    assert rows(db) == {
        "advisory": [("A-1", "2025-02-01T00:00:00Z", "A-1 at 2025-02-01T00:00:00Z"),
                     ("B-1", "2025-03-01T00:00:00Z", "B-1 at 2025-03-01T00:00:00Z"),
                     ("C-1", "2025-01-01T00:00:00Z", "C-1 at 2025-01-01T00:00:00Z"),
                     ("D-1", "2025-01-01T00:00:00Z", "D-1 at 2025-01-01T00:00:00Z")],
        "affected": [("A-1", "PyPI", "alpha-renamed"), ("B-1", "PyPI", "beta-three"), ("C-1", "PyPI", "gamma"),
                     ("D-1", "PyPI", "delta")],
        "interval": [("A-1", "1.0", "1.6"), ("B-1", "1.0", "3.0"), ("C-1", "1.0", "1.5"), ("D-1", "1.0", "1.5")],
    }
    with store.VulnDB(db) as vdb:
        assert vdb.advisories_for("PyPI", "alpha") == ()
        assert vdb.advisories_for("PyPI", "beta-two") == ()
        assert [a.id for a in vdb.advisories_for("PyPI", "beta-three")] == ["B-1"]


def test_import_on_top_of_a_database_equals_one_import(tmp_path: Path, vulndata_files: list[Path]) -> None:
    first, rest = vulndata_files[:1], vulndata_files[1:]
    assert rest
    together, apart = tmp_path / "together.sqlite3", tmp_path / "apart.sqlite3"
    import_paths(together, vulndata_files)
    import_paths(apart, first)
    import_paths(apart, rest)
    assert rows(apart) == rows(together)
    assert len(rows(together)["advisory"]) > 100


def plan(db: Path, sql: str, params: tuple[str, ...]) -> str:
    with sqlite3.connect(db) as conn:
        return "; ".join(str(r[3]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


def test_lookups_are_index_searches_after_a_bulk_import(full_db: Path) -> None:
    with sqlite3.connect(full_db) as conn:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"affected_by_package", "advisory_by_vuln", "affected_by_advisory", "interval_by_affected"} <= indexes
    per_package = plan(full_db, store.ADVISORIES_FOR, ("Debian:12", "openssl"))
    assert "SEARCH f USING INDEX affected_by_package (ecosystem=? AND name=?)" in per_package
    assert "SCAN" not in per_package
    cvss = plan(full_db, store.CVSS_OF, ("CVE-2024-0001",))
    assert "USING INDEX advisory_by_vuln (vuln_id=?)" in cvss and "SCAN" not in cvss


def test_prefetch_finds_what_one_lookup_at_a_time_finds(full_db: Path) -> None:
    with sqlite3.connect(full_db) as conn:
        keys = sorted(conn.execute("SELECT DISTINCT ecosystem, name FROM affected"))
    assert len(keys) > 600  # more than one chunk of names in some ecosystem
    keys.append(("PyPI", "no-such-package"))
    with store.VulnDB(full_db) as batched, store.VulnDB(full_db) as single:
        batched.prefetch(keys)
        assert batched._cache  # the batch filled the cache: the lookups below read it
        vuln_ids = set()
        for eco, name in keys:
            found = batched.advisories_for(eco, name)
            assert found == single.advisories_for(eco, name)
            vuln_ids.update(a.vuln_id for a in found)
        assert batched.advisories_for("PyPI", "no-such-package") == ()
        borrowed = [v for v in sorted(vuln_ids) if v in batched._cvss]
        assert borrowed and any(batched._cvss[v] is not None for v in borrowed)
        assert [batched.cvss_severity(v) for v in borrowed] == [single.cvss_severity(v) for v in borrowed]
    batch_plan = plan(full_db, store.advisories_for_names(3), ("PyPI", "a", "b", "c"))
    assert "USING INDEX affected_by_package (ecosystem=? AND name=?)" in batch_plan and "SCAN" not in batch_plan
    assert "USING INDEX advisory_by_vuln (vuln_id=?)" in plan(full_db, store.cvss_of_many(2), ("a", "b"))


def test_scans_read_feed_states_and_newest_date_without_counting(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    put_all(db, [record("A-1", "2025-01-01T00:00:00Z", "alpha"), record("B-1", "2025-03-04T05:06:07Z", "beta")])
    with store.VulnDB(db) as vdb:
        assert vdb.newest_modified() == "2025-03-04T05:06:07Z"
        assert vdb.feed_states() == {}
    # a file built before the date was noted in meta: the date is computed
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM meta WHERE key = 'newest_modified'")
    with store.VulnDB(db) as vdb:
        assert vdb.newest_modified() == "2025-03-04T05:06:07Z"


# --- db update: only what changed --------------------------------------------------------------


@pytest.fixture()
def export(tmp_path: Path, vulndata_files: list[Path]) -> Iterator[tuple[OSVExportServer, dict[str, set[str]]]]:
    root = tmp_path / "export"
    ids = build_export(vulndata_files, root, ["Alpine", "PyPI"])
    server = OSVExportServer(root)
    server.start()
    try:
        yield server, ids
    finally:
        server.stop()


def test_update_fetches_and_imports_only_the_ecosystem_that_changed(
        tmp_path: Path, export: tuple[OSVExportServer, dict[str, set[str]]]) -> None:
    server, ids = export
    db = tmp_path / "db.sqlite3"
    sizes = {f"/{eco}/all.zip": (server.root / eco / "all.zip").stat().st_size for eco in ("Alpine", "PyPI")}

    first = update(db, ["Alpine", "PyPI"], url=server.url)
    assert sorted(first.fetched) == ["Alpine", "PyPI"]
    assert server.sent == sizes
    assert first.report.records == len(ids["Alpine"]) + len(ids["PyPI"])
    alpine = [r for r in rows(db)["affected"] if str(r[1]).startswith("Alpine")]
    assert alpine

    server.requests.clear()
    server.sent.clear()
    before = db.stat()
    second = update(db, url=server.url)
    assert second.fetched == [] and sorted(second.not_modified) == ["Alpine", "PyPI"]
    assert not second.swapped and second.report.records == 0
    assert server.sent == {}  # nothing downloaded
    assert sorted(path for path, _ in server.requests) == ["/Alpine/all.zip", "/PyPI/all.zip"]
    assert (db.stat().st_ino, db.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    with zipfile.ZipFile(server.root / "PyPI" / "all.zip", "a") as zf:
        zf.writestr("NEW-1.json", json.dumps(record("NEW-1", "2025-05-01T00:00:00Z", "brand-new")))
    server.requests.clear()
    server.sent.clear()
    third = update(db, url=server.url)
    assert third.fetched == ["PyPI"] and third.not_modified == ["Alpine"]
    assert server.sent == {"/PyPI/all.zip": (server.root / "PyPI" / "all.zip").stat().st_size}
    assert third.report.records == len(ids["PyPI"]) + 1  # PyPI's records alone were read again
    with store.VulnDB(db) as vdb:
        assert [a.id for a in vdb.advisories_for("PyPI", "brand-new")] == ["NEW-1"]
        feeds = vdb.feed_states()
    assert {eco: f.etag is not None for eco, f in feeds.items()} == {"Alpine": True, "PyPI": True}
    assert [r for r in rows(db)["affected"] if str(r[1]).startswith("Alpine")] == alpine  # Alpine as it was


def test_pep440_normal_form_is_packagings(vulndata_files: list[Path]) -> None:
    from packaging.utils import canonicalize_version

    from giropops.vuln.versions import PEP440

    spellings = {"1.0.0", "0.0", "0", "1!2.0.0", "1.0-RC1", "1.0.post0", "1.0.0.dev0", "2.0.0+local.7",
                 "1.0a1.post2.dev3+ubuntu-1", "v1.2", "01.02.00", "1.0.0-1", "2024.1.0rc2"}
    for path in vulndata_files:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                for entry in json.loads(line).get("affected", []):
                    if entry["package"]["ecosystem"] == "PyPI":
                        spellings.update(entry.get("versions", []))
    assert len(spellings) > 1000
    checked = 0
    for v in sorted(spellings):
        if PEP440.valid(v):
            assert PEP440.normalize(v) == canonicalize_version(v), v
            checked += 1
    assert checked > 1000


def test_update_does_not_import_again_a_download_identical_to_the_imported_file(
        tmp_path: Path, export: tuple[OSVExportServer, dict[str, set[str]]]) -> None:
    server, _ = export
    db = tmp_path / "db.sqlite3"
    sizes = {f"/{eco}/all.zip": (server.root / eco / "all.zip").stat().st_size for eco in ("Alpine", "PyPI")}
    assert sorted(update(db, ["Alpine", "PyPI"], url=server.url).fetched) == ["Alpine", "PyPI"]

    server.ignore_conditional = True  # a server (or proxy) that always answers 200
    server.sent.clear()
    before = db.stat()
    again = update(db, url=server.url)
    assert server.sent == sizes  # downloaded...
    assert again.fetched == [] and sorted(again.unchanged) == ["Alpine", "PyPI"]  # ...but recognised
    assert not again.swapped and again.report.records == 0
    assert (db.stat().st_ino, db.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    with zipfile.ZipFile(server.root / "PyPI" / "all.zip", "a") as zf:
        zf.writestr("NEW-2.json", json.dumps(record("NEW-2", "2025-05-01T00:00:00Z", "another-new")))
    changed = update(db, url=server.url)
    assert changed.fetched == ["PyPI"] and changed.unchanged == ["Alpine"]
    with store.VulnDB(db) as vdb:
        assert [a.id for a in vdb.advisories_for("PyPI", "another-new")] == ["NEW-2"]


# --- start-up of a scan ----------------------------------------------------------------------------


def test_a_scan_does_not_import_the_readers_or_the_http_client(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    listed = record("A-1", "2025-01-01T00:00:00Z", "Alpha_Pkg")
    listed["affected"][0]["versions"] = ["2.0.0"]  # type: ignore[index]  # matched through PEP 440's normal form
    put_all(db, [listed])
    code = ("import sys\n"
            "from pathlib import Path\n"
            "from giropops.sbom.model import SBOM, Package, Subject\n"
            "from giropops.vuln.db.store import VulnDB\n"
            "from giropops.vuln.match import scan\n"
            "import giropops.vuln.db.ensure, giropops.vuln.db.update\n"
            "sbom = SBOM(Subject('x'), None, (Package('alpha.pkg', '2.0', 'python'),))\n"
            "with VulnDB(Path(sys.argv[1])) as db:\n"
            "    found = [f.vuln_id for f in scan(sbom, db).findings]\n"
            "print(found, ' '.join(sorted(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, check=True).stdout
    found, _, modules = out.partition("] ")
    assert found == "['A-1'"  # the scan ran and matched through the versions list
    unwanted = {"giropops.vuln.db.importer", "giropops.vuln.db.osv", "giropops.vuln.db.exploits", "cvss",
                "urllib.request", "http.client", "zipfile", "packaging.utils", "packaging.tags"}
    assert set(modules.split()) & unwanted == set()


def test_gzip_jsonl_import_reads_kev_beside_advisories(tmp_path: Path) -> None:
    """The bench imports the KEV catalog with the advisories in one run: both land in one database."""
    advisories = tmp_path / "a.osv.jsonl.gz"
    advisories.write_bytes(gzip.compress(json.dumps(record("A-1", "2025-01-01T00:00:00Z", "alpha")).encode()
                                         + b"\n"))
    kev = tmp_path / "known_exploited_vulnerabilities.json"
    kev.write_text(json.dumps({"title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "1",
                               "dateReleased": "2025-01-01T00:00:00.000Z", "count": 1, "vulnerabilities": [
                                   {"cveID": "CVE-2024-0001", "dateAdded": "2025-01-01", "dueDate": "2025-01-21",
                                    "knownRansomwareCampaignUse": "Unknown", "vulnerabilityName": "x"}]}))
    report = import_paths(tmp_path / "db.sqlite3", [advisories, kev])
    assert report.imported == 1 and report.kev == "catalog 1, 1 CVEs"
    with store.VulnDB(tmp_path / "db.sqlite3") as vdb:
        assert set(vdb.kev()) == {"CVE-2024-0001"}
