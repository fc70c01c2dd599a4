"""No false "clean": a scan against a database that cannot know is an error, never "0 vulnerabilities".

Every case runs the real ``giropops`` command in a subprocess against real SQLite files made by the
real importer, and scans a real directory (``fs://``) holding one Python package (PyPI ecosystem).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from giropops.cli import exitcodes
from giropops.vuln.db import store
from giropops.vuln.db.importer import import_paths

SCANS = ("cves", "quickview", "compare")  # policy: tests/reco/test_policy.py; recommendations: below


def giropops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "giropops", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False, stdin=subprocess.DEVNULL)


def record(osv_id: str, ecosystem: str, name: str, modified: str) -> dict[str, object]:
    return {"id": osv_id, "modified": modified, "summary": f"{name} is broken",
            "affected": [{"package": {"ecosystem": ecosystem, "name": name},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]}]}


def write_records(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    """A directory with one Python package, demo 1.0: the scan needs PyPI advisories."""
    info = tmp_path / "root" / "usr" / "lib" / "python3" / "dist-packages" / "demo-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
    (info / "RECORD").write_text("demo/__init__.py,,\n")
    return tmp_path / "root"


def now(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def args_for(command: str, spec: str, db: Path) -> list[str]:
    extra = {"compare": ["--to", spec]}.get(command, [])
    return [command, spec, *extra, "--db", str(db)]


@pytest.mark.parametrize("command", SCANS)
def test_a_missing_database_is_an_error_in_every_scanning_command(command: str, rootfs: Path,
                                                                   tmp_path: Path) -> None:
    db = tmp_path / "never.sqlite3"
    proc = giropops(*args_for(command, f"fs://{rootfs}", db), cwd=tmp_path)
    assert proc.returncode == exitcodes.DB_NOT_READY, proc.stdout + proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        f"giropops: error: no vulnerability database at {db}: fill it with 'giropops db update', "
        "or offline with 'giropops db import FILES'"]
    assert not db.exists()


def test_recommendations_without_a_database_says_how_to_fill_it(tmp_path: Path) -> None:
    proc = giropops("recommendations", "registry.invalid/none:1", "--db", str(tmp_path / "none.sqlite3"),
                    cwd=tmp_path)
    assert proc.returncode == exitcodes.DB_NOT_READY
    assert len(proc.stderr.splitlines()) == 1 and "giropops db import FILES" in proc.stderr


def test_an_empty_database_is_an_error(rootfs: Path, tmp_path: Path) -> None:
    db = tmp_path / "empty.sqlite3"
    with store.rebuild(db):
        pass  # a valid database with its schema and no advisory, as an interrupted set-up leaves it
    for command in ("cves", "quickview", "compare"):
        proc = giropops(*args_for(command, f"fs://{rootfs}", db), cwd=tmp_path)
        assert proc.returncode == exitcodes.DB_NOT_READY, (command, proc.stdout, proc.stderr)
        assert proc.stderr.splitlines() == [
            f"giropops: error: the vulnerability database {db} is empty: fill it with 'giropops db update', "
            "or offline with 'giropops db import FILES'"]


def test_a_database_without_the_images_ecosystem_names_it(rootfs: Path, tmp_path: Path) -> None:
    db = tmp_path / "alpine-only.sqlite3"
    import_paths(db, [write_records(tmp_path / "a.jsonl", [record("A-1", "Alpine:v3.19", "demo", now())])])
    for command in ("cves", "quickview", "compare"):
        proc = giropops(*args_for(command, f"fs://{rootfs}", db), cwd=tmp_path)
        assert proc.returncode == exitcodes.DB_NOT_READY, (command, proc.stdout, proc.stderr)
        (line,) = proc.stderr.splitlines()
        assert line.startswith(f"giropops: error: the vulnerability database {db} has no advisories for PyPI ")
        assert "giropops db update --ecosystem PyPI" in line and "giropops db import FILES" in line


def test_a_covering_database_scans_and_a_fresh_one_gives_no_warning(rootfs: Path, tmp_path: Path) -> None:
    db = tmp_path / "fresh.sqlite3"
    import_paths(db, [write_records(tmp_path / "p.jsonl", [record("P-1", "PyPI", "demo", now())])])
    proc = giropops("cves", f"fs://{rootfs}", "--db", str(db), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [f["vulnerability"]["id"] for f in json.loads(proc.stdout)["findings"]] == ["P-1"]
    assert proc.stderr == ""


def test_a_database_older_than_a_week_warns_on_every_scan(rootfs: Path, tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    old = now(timedelta(days=8, hours=1))
    import_paths(db, [write_records(tmp_path / "p.jsonl", [record("P-1", "PyPI", "other", old)])])
    for command in ("cves", "quickview", "compare"):
        proc = giropops(*args_for(command, f"fs://{rootfs}", db), cwd=tmp_path)
        assert proc.returncode == 0, (command, proc.stderr)
        assert proc.stderr.splitlines() == [
            f"giropops: warning: the vulnerability database {db} is 8 days old (newest advisory: {old}); "
            "refresh it with 'giropops db update'"], command
    week = tmp_path / "week.sqlite3"
    import_paths(week, [write_records(tmp_path / "w.jsonl", [record("P-1", "PyPI", "other", now(timedelta(6)))])])
    assert giropops("cves", f"fs://{rootfs}", "--db", str(week), cwd=tmp_path).stderr == ""


# --------------------------------------------------------------------------- db import / db update


def test_import_of_a_missing_path_fails_and_leaves_no_database(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    proc = giropops("db", "import", "--db", str(db), str(tmp_path / "nope.jsonl"), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"giropops: error: no such file or directory: {tmp_path / 'nope.jsonl'}"]
    assert not db.exists() and list(tmp_path.iterdir()) == []


def test_import_of_files_without_a_valid_record_fails_and_leaves_no_database(tmp_path: Path) -> None:
    db = tmp_path / "db" / "db.sqlite3"
    bad = write_records(tmp_path / "bad.jsonl", [{"id": 5}, {"not": "osv"}])
    proc = giropops("db", "import", "--db", str(db), str(bad), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"giropops: error: no valid OSV record in {bad}: 2 read, 2 skipped (first problem:")
    assert not db.exists() and list(db.parent.iterdir()) == []
    # an existing database is left exactly as it was
    good = write_records(tmp_path / "good.jsonl", [record("P-1", "PyPI", "demo", now())])
    assert giropops("db", "import", "--db", str(db), str(good), cwd=tmp_path).returncode == 0
    before = db.read_bytes()
    assert giropops("db", "import", "--db", str(db), str(bad), cwd=tmp_path).returncode == 1
    assert db.read_bytes() == before and [p.name for p in db.parent.iterdir()] == [db.name]
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    proc = giropops("db", "import", "--db", str(tmp_path / "e.sqlite3"), str(empty_dir), cwd=tmp_path)
    assert proc.returncode == 1 and "no valid OSV record" in proc.stderr
    assert not (tmp_path / "e.sqlite3").exists()


def test_update_that_cannot_reach_its_source_names_the_offline_route(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on: connection refused, at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "db.sqlite3"
    proc = giropops("db", "update", "--db", str(db), "--url", f"http://127.0.0.1:{port}", "--ecosystem", "PyPI",
                    cwd=tmp_path)
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"giropops: error: cannot reach http://127.0.0.1:{port}/PyPI/all.zip (")
    assert "'giropops db import FILES'" in line and "'--url'" in line
    assert not db.exists()
