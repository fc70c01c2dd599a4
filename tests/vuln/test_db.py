"""The advisory store: OSV import (files, directories, all.zip, JSON lines), hostile input, update, status."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from giropops.cli import exitcodes
from giropops.cli.main import main
from giropops.vuln.db import store
from giropops.vuln.db.importer import MAX_RECORD_BYTES, AdvisoryImportError, import_paths
from giropops.vuln.db.update import UpdateError, update
from tests.support.osv_export import OSVExportServer, build_export

GOOD = {
    "id": "TEST-0001",
    "aliases": ["CVE-2099-0001"],
    "modified": "2025-01-01T00:00:00Z",
    "summary": "a good record",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    "affected": [{"package": {"ecosystem": "PyPI", "name": "Some_Pkg"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.5"}]}]}],
}


def rec(**changes: object) -> dict[str, object]:
    out = json.loads(json.dumps(GOOD))
    out.update(changes)
    return out


def ids_in(db_path: Path) -> set[str]:
    with sqlite3.connect(db_path) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM advisory")}


HOSTILE = [
    ("not an object", ["a", "list"]),
    ("id wrong type", rec(id=42)),
    ("affected wrong type", rec(id="H-1", affected="everything")),
    ("unknown ecosystem only", rec(id="H-2", affected=[{"package": {"ecosystem": "Nope", "name": "x"}}])),
    ("event with two keys", rec(id="H-3", affected=[{"package": {"ecosystem": "PyPI", "name": "x"}, "ranges": [
        {"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1.0"}]}]}])),
    ("unparseable version", rec(id="H-4", affected=[{"package": {"ecosystem": "Debian:12", "name": "x"}, "ranges": [
        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "not a version!"}]}]}])),
    ("no introduced", rec(id="H-5", affected=[{"package": {"ecosystem": "PyPI", "name": "x"}, "ranges": [
        {"type": "ECOSYSTEM", "events": [{"fixed": "1.0"}]}]}])),
    ("events not a list", rec(id="H-6", affected=[{"package": {"ecosystem": "PyPI", "name": "x"}, "ranges": [
        {"type": "ECOSYSTEM", "events": {"introduced": "0"}}]}])),
    ("version number not string", rec(id="H-7", affected=[{"package": {"ecosystem": "PyPI", "name": "x"}, "ranges": [
        {"type": "ECOSYSTEM", "events": [{"introduced": 0}]}]}])),
    ("package name missing", rec(id="H-8", affected=[{"package": {"ecosystem": "PyPI"}}])),
]


def write_jsonl(path: Path, records: list[object], gz: bool = False) -> Path:
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_hostile_records_are_reported_and_skipped(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "hostile.jsonl", [r for _, r in HOSTILE] + [GOOD])
    # a huge line and a line that is not JSON, in the middle of the file
    with src.open("ab") as fh:
        fh.write(b'{"id": "HUGE", "summary": "' + b"x" * (MAX_RECORD_BYTES + 10) + b'"}\n')
        fh.write(b"{not json\n")
        fh.write(json.dumps(rec(id="TEST-0002")).encode() + b"\n")
    db = tmp_path / "db.sqlite3"
    report = import_paths(db, [src])
    assert ids_in(db) == {"TEST-0001", "TEST-0002"}
    assert report.imported == 2
    assert report.skipped == len(HOSTILE) + 2
    reasons = " | ".join(p.reason for p in report.problems)
    for needle in ("exactly one key", "known ecosystem", "longer than", "not valid JSON", "introduced"):
        assert needle in reasons


def test_partly_unusable_record_keeps_its_good_entries(tmp_path: Path) -> None:
    mixed = rec(id="MIX-1", affected=[
        {"package": {"ecosystem": "Alpine:v3.19", "name": "a"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2021-03-27-r5"}]}]},
        {"package": {"ecosystem": "Alpine:v3.19", "name": "b"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2-r0"}]}]},
        {"package": {"ecosystem": "Ubuntu:22.04", "name": "c"}},
    ])
    db = tmp_path / "db.sqlite3"
    report = import_paths(db, [write_jsonl(tmp_path / "m.jsonl", [mixed])])
    assert report.imported == 1 and report.notes == 2
    with store.VulnDB(db) as vdb:
        assert vdb.advisories_for("Alpine:v3.19", "a") == ()
        (adv,) = vdb.advisories_for("Alpine:v3.19", "b")
        assert adv.affected[0].intervals[0].fixed == "1.2-r0"


def test_corrupt_source_aborts_the_whole_import(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    import_paths(db, [write_jsonl(tmp_path / "first.jsonl", [GOOD])])
    before = db.read_bytes()
    good = write_jsonl(tmp_path / "more.jsonl", [rec(id="TEST-0003")])
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"id": "X"}\n' * 1000)[:-20])  # truncated gzip stream
    with pytest.raises(AdvisoryImportError):
        import_paths(db, [good, broken])
    assert db.read_bytes() == before  # TEST-0003 was not half-imported
    assert ids_in(db) == {"TEST-0001"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".db")] == []


def test_import_formats_json_list_dir_zip_and_gzip(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    (d / "one.json").write_text(json.dumps(rec(id="J-1")))
    (d / "many.json").write_text(json.dumps([rec(id="J-2"), rec(id="J-3")]))
    write_jsonl(d / "lines.jsonl.gz", [rec(id="J-4")], gz=True)
    (d / "PyPI").mkdir()
    with zipfile.ZipFile(d / "PyPI" / "all.zip", "w") as zf:
        zf.writestr("J-5.json", json.dumps(rec(id="J-5")))
        zf.writestr("J-6.json", json.dumps(rec(id="J-6", withdrawn="2025-01-02T00:00:00Z")))
    (d / "README.txt").write_text("ignored")
    db = tmp_path / "db.sqlite3"
    report = import_paths(db, [d])
    assert report.skipped == 0
    assert ids_in(db) == {f"J-{i}" for i in range(1, 7)}
    with store.VulnDB(db) as vdb:
        advs = vdb.advisories_for("PyPI", "some-pkg")  # stored under the PEP 503 name
        assert {a.id for a in advs} == {f"J-{i}" for i in range(1, 7)}
        assert vdb.status().withdrawn == 1


def test_newer_record_wins_regardless_of_import_order(tmp_path: Path) -> None:
    old = rec(id="V-1", summary="old", modified="2024-01-01T00:00:00Z")
    new = rec(id="V-1", summary="new", modified="2025-01-01T00:00:00Z")
    db = tmp_path / "db.sqlite3"
    import_paths(db, [write_jsonl(tmp_path / "a.jsonl", [new, old])])
    with store.VulnDB(db) as vdb:
        assert [a.summary for a in vdb.advisories_for("PyPI", "some-pkg")] == ["new"]


def test_zip_member_bomb_is_skipped(tmp_path: Path) -> None:
    z = tmp_path / "all.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("BIG.json", b" " * (MAX_RECORD_BYTES + 1))
        zf.writestr("J-1.json", json.dumps(rec(id="J-1")))
    db = tmp_path / "db.sqlite3"
    report = import_paths(db, [z])
    assert ids_in(db) == {"J-1"} and report.skipped == 1


def test_real_data_import_and_status(full_db: Path, vulndata_files: list[Path]) -> None:
    with store.VulnDB(full_db) as vdb:
        st = vdb.status()
    ecosystems = {e.ecosystem for e in st.ecosystems}
    assert {"Debian:12", "Alpine:v3.19", "Wolfi", "Chainguard", "PyPI"} <= ecosystems
    # every record id of the advisory files, counted here from the raw JSON, is in the database
    # unless the importer said why it skipped it (checked per file in test_hostile_*).
    raw_ids: set[str] = set()
    newest = ""
    for f in vulndata_files:
        with gzip.open(f, "rt") as fh:
            for line in fh:
                doc = json.loads(line)
                raw_ids.add(doc["id"])
                newest = max(newest, doc.get("modified", ""))
    stored = ids_in(full_db)
    assert stored <= raw_ids
    assert len(raw_ids - stored) < 20  # the few records whose only versions do not parse
    assert st.newest_modified is not None and st.newest_modified[:19] == newest[:19]


def test_db_cli_status_and_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.sqlite3"
    src = write_jsonl(tmp_path / "x.jsonl", [GOOD, rec(id=5)])
    assert main(["db", "import", "--db", str(db), str(src)]) == 0
    out = capsys.readouterr()
    assert "imported: 1" in out.out and "skipped: 1" in out.out and "id must be a string" in out.err
    assert main(["db", "status", "--db", str(db)]) == 0
    out = capsys.readouterr()
    assert "PyPI" in out.out and "advisories: 1" in out.out
    assert "warning: the newest advisory is" in out.err  # modified 2025-01-01: old
    assert main(["db", "status", "--db", str(tmp_path / "missing.sqlite3")]) == exitcodes.DB_NOT_READY
    assert "no vulnerability database" in capsys.readouterr().err


def test_env_var_moves_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIROPOPS_DB", str(tmp_path / "env.sqlite3"))
    assert store.default_path() == tmp_path / "env.sqlite3"
    monkeypatch.delenv("GIROPOPS_DB")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert store.default_path() == tmp_path / "cache" / "giropops" / "vulndb.sqlite3"


# --- update against a local OSV export server -----------------------------------------------

@pytest.fixture(scope="module")
def export_server(tmp_path_factory: pytest.TempPathFactory,
                  vulndata_files: list[Path]) -> Iterator[tuple[OSVExportServer, dict[str, set[str]]]]:
    root = tmp_path_factory.mktemp("osv-export")
    ids = build_export(vulndata_files, root, ["Alpine", "PyPI"])
    server = OSVExportServer(root)
    server.start()
    try:
        yield server, ids
    finally:
        server.stop()


Served = tuple[OSVExportServer, dict[str, set[str]]]


def test_update_conditional_and_atomic(tmp_path: Path, export_server: Served) -> None:
    server, ids = export_server
    db = tmp_path / "db.sqlite3"
    result = update(db, ["Alpine", "PyPI"], url=server.url)
    assert result.swapped and sorted(result.fetched) == ["Alpine", "PyPI"]
    skipped = {p.record_id for p in result.report.problems if p.record_id and "no usable" in p.reason}
    assert ids_in(db) == (ids["Alpine"] | ids["PyPI"]) - skipped
    with store.VulnDB(db) as vdb:
        feeds = vdb.feed_states()
        assert set(feeds) == {"Alpine", "PyPI"} and all(f.etag for f in feeds.values())

    # Second run: conditional requests, 304, database file untouched.
    stat_before = db.stat()
    server.requests.clear()
    result = update(db, url=server.url)  # the ecosystems already in the database
    assert result.fetched == [] and sorted(result.not_modified) == ["Alpine", "PyPI"]
    assert all("If-None-Match" in headers for _, headers in server.requests)
    assert db.stat().st_ino == stat_before.st_ino and db.stat().st_mtime_ns == stat_before.st_mtime_ns

    # The feed changes, and the download of it fails half-way: the old database keeps working.
    zpath = server.root / "PyPI" / "all.zip"
    original = zpath.read_bytes()
    try:
        with zipfile.ZipFile(zpath, "a") as zf:
            zf.writestr("EXTRA-1.json", json.dumps(rec(id="EXTRA-1")))
        server.truncate.add("/PyPI/all.zip")
        before = db.read_bytes()
        with pytest.raises(UpdateError, match="interrupted"):
            update(db, ["PyPI"], url=server.url)
        assert db.read_bytes() == before
        assert not [p for p in tmp_path.iterdir() if p.name != "db.sqlite3"]  # no temp files left
        with store.VulnDB(db) as vdb:
            assert vdb.advisories_for("PyPI", "some-pkg") == ()

        server.truncate.clear()
        server.fail["/PyPI/all.zip"] = 503
        with pytest.raises(UpdateError, match="503"):
            update(db, ["PyPI"], url=server.url)
        assert db.read_bytes() == before
        server.fail.clear()

        # and once the server is healthy, the new record arrives
        result = update(db, ["PyPI"], url=server.url)
        assert result.fetched == ["PyPI"] and result.not_modified == []
        assert "EXTRA-1" in ids_in(db) and ids["Alpine"] - skipped <= ids_in(db)
    finally:
        zpath.write_bytes(original)


def test_update_cli_with_env_url(tmp_path: Path, export_server: tuple[OSVExportServer, dict[str, set[str]]],
                                 monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    server, _ = export_server
    monkeypatch.setenv("GIROPOPS_OSV_URL", server.url)
    db = tmp_path / "db.sqlite3"
    assert main(["db", "update", "--db", str(db), "--ecosystem", "Alpine"]) == 0
    assert "Alpine: downloaded" in capsys.readouterr().out
    assert main(["db", "update", "--db", str(db)]) == 0
    assert "Alpine: not modified" in capsys.readouterr().out
    assert main(["db", "update", "--db", str(db), "--ecosystem", "Nope"]) == 1
    assert "HTTP 404" in capsys.readouterr().err
    assert os.path.exists(db)


class RecordingProgress:
    def __init__(self) -> None:
        self.started: dict[str, int | None] = {}
        self.done: dict[str, int] = {}
        self.finished: list[str] = []

    def start(self, key: str, label: str, total: int | None = None, unit: str = "B") -> None:
        self.started[key] = total

    def advance(self, key: str, amount: int) -> None:
        self.done[key] = self.done.get(key, 0) + amount

    def finish(self, key: str, message: str | None = None) -> None:
        self.finished.append(key)

    def note(self, message: str) -> None:
        pass


def test_update_reports_download_progress(tmp_path: Path, export_server: Served) -> None:
    server, _ = export_server
    progress = RecordingProgress()
    update(tmp_path / "db.sqlite3", ["Alpine"], url=server.url, progress=progress)
    key = f"download:{server.url}/Alpine/all.zip"
    size = (server.root / "Alpine" / "all.zip").stat().st_size
    assert progress.started[key] == size and progress.done[key] == size and key in progress.finished


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "bogus.sqlite3"
    bogus.write_bytes(b"this is not sqlite" * 100)
    assert main(["db", "status", "--db", str(bogus)]) == 1
    assert "not a giropops vulnerability database" in capsys.readouterr().err
    src = write_jsonl(tmp_path / "x.jsonl", [GOOD])
    assert main(["db", "import", "--db", str(bogus), str(src)]) == 1
    assert "not a giropops vulnerability database" in capsys.readouterr().err
    assert bogus.read_bytes() == b"this is not sqlite" * 100
