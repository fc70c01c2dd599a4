"""Hostile use of the advisory database: concurrent writers, damaged files, odd paths, huge ids.

Each test runs the real ``giropops`` command and checks one error line (no traceback),
the exit code, and that nothing was lost or left behind.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from giropops import locking
from giropops.vuln.db import store
from tests.vuln.sbomfile import write as write_sbom


def giropops(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "giropops", *args], capture_output=True, text=True,
                          timeout=timeout)


def record(osv_id: str, package: str = "somepkg") -> dict[str, object]:
    return {
        "id": osv_id,
        "modified": "2025-01-01T00:00:00Z",
        "summary": f"record {osv_id}",
        "affected": [{"package": {"ecosystem": "PyPI", "name": package},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9.0"}]}]}],
    }


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def ids_in(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM advisory")}
    finally:
        conn.close()


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("giropops: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def leftovers(directory: Path) -> list[str]:
    """Files a writer might leave behind: its private copy, a download directory, the lock file."""
    return sorted(p.name for p in directory.iterdir()
                  if p.name.endswith((".new", ".lock")) or p.name.startswith(".giropops-"))


# --- item 4: two imports into one database -------------------------------------------------------------------


def test_two_concurrent_imports_keep_both_sets(tmp_path: Path) -> None:
    first = {f"FIRST-{i:05d}" for i in range(3000)}
    second = {f"SECOND-{i:05d}" for i in range(3000)}
    a = write_jsonl(tmp_path / "a.jsonl", [record(i) for i in sorted(first)])
    b = write_jsonl(tmp_path / "b.jsonl", [record(i, "otherpkg") for i in sorted(second)])
    db = tmp_path / "db" / "vuln.sqlite3"
    db.parent.mkdir()
    write_jsonl(tmp_path / "seed.jsonl", [record("SEED-1")])
    assert giropops("db", "import", "--db", str(db), str(tmp_path / "seed.jsonl")).returncode == 0
    cmd = [sys.executable, "-m", "giropops", "db", "import", "--db", str(db)]
    # Hold the database's lock while both start, so that both are certainly running at once and
    # both read the old file if nothing serialised them; then let them go together.
    with locking.exclusive(db, timeout=5, what="test"):
        procs = [subprocess.Popen([*cmd, str(src)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for src in (a, b)]
        # Each must say it waits (a process that did not wait runs to its end and its stderr closes).
        first_lines = [p.stderr.readline() if p.stderr is not None else "" for p in procs]
        running = [p.poll() is None for p in procs]
    outs = [p.communicate(timeout=120) for p in procs]
    assert running == [True, True], f"an import did not wait for the lock: {outs}"
    assert all("waiting for another giropops process" in ln for ln in first_lines), first_lines
    assert [p.returncode for p in procs] == [0, 0], outs
    assert ids_in(db) == {"SEED-1"} | first | second
    assert leftovers(db.parent) == []


def test_import_gives_up_on_a_held_lock_with_one_line(tmp_path: Path) -> None:
    db = tmp_path / "vuln.sqlite3"
    src = write_jsonl(tmp_path / "a.jsonl", [record("A-1")])
    assert giropops("db", "import", "--db", str(db), str(src)).returncode == 0
    before = db.read_bytes()
    other = write_jsonl(tmp_path / "b.jsonl", [record("B-1")])
    with locking.exclusive(db, timeout=5, what="test"):
        proc = giropops("db", "import", "--db", str(db), "--lock-timeout", "0.5", str(other))
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "locked by another process" in line and str(db) in line
    assert "waiting for another giropops process" in proc.stderr
    assert db.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_update_takes_the_same_lock(tmp_path: Path) -> None:
    db = tmp_path / "vuln.sqlite3"
    with locking.exclusive(db, timeout=5, what="test"):
        # the URL is never reached: the lock comes first
        proc = giropops("db", "update", "--db", str(db), "--lock-timeout", "0.2", "--url", "http://127.0.0.1:9/")
    assert proc.returncode == 1
    assert "locked by another process" in one_error_line(proc)
    assert not db.exists()
    assert leftovers(tmp_path) == []


def test_lock_is_reentrant_in_one_thread_and_exclusive_across_processes(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite3"
    with store.lock(db, timeout=1), store.lock(db, timeout=1):  # nested: no self-deadlock
        probe = subprocess.run(
            [sys.executable, "-c",
             "import sys, fcntl, os; fd = os.open(sys.argv[1], os.O_RDWR)\n"
             "try:\n fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')\n"
             "except BlockingIOError:\n print('held')",
             str(locking.lock_path_for(db))],
            capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "held"


# --- item 10: a damaged database file, a --db under a file ---------------------------------------------------


def damaged_db(tmp_path: Path) -> Path:
    """A real database whose advisory tables and indexes are overwritten with garbage (the meta table is intact)."""
    db = tmp_path / "vuln.sqlite3"
    src = write_jsonl(tmp_path / "recs.jsonl", [record(f"R-{i:05d}", "somepkg") for i in range(2000)])
    assert giropops("db", "import", "--db", str(db), str(src)).returncode == 0
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    meta_page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'meta'").fetchone()[0]
    pages = [r[0] for r in conn.execute("SELECT rootpage FROM sqlite_master WHERE rootpage > 1 AND tbl_name IN"
                                        " ('advisory', 'affected', 'interval', 'feed')")]
    conn.close()
    data = bytearray(db.read_bytes())
    assert len(data) > 10 * page_size and meta_page not in pages and pages
    for page in pages:
        start = (page - 1) * page_size
        data[start : start + page_size] = b"\xa5" * page_size
    db.write_bytes(bytes(data))
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)  # the meta table still reads
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (store.SCHEMA_VERSION,)
    conn.close()
    return db


def test_damaged_database_in_status_cves_and_import(tmp_path: Path) -> None:
    db = damaged_db(tmp_path)
    status = giropops("db", "status", "--db", str(db))
    assert status.returncode == 1
    line = one_error_line(status)
    assert str(db) in line and "giropops db update" in line and "delete it" in line

    spec = write_sbom(tmp_path / "app.json", "app", None, [], pythons=[("somepkg", "1.0")])
    cves = giropops("cves", "--db", str(db), spec)
    assert cves.returncode == 1
    line = one_error_line(cves)
    assert str(db) in line and "giropops db update" in line

    more = write_jsonl(tmp_path / "more.jsonl", [record("NEW-1", "somepkg")])
    before = db.read_bytes()
    imp = giropops("db", "import", "--db", str(db), str(more))
    assert imp.returncode == 1
    assert str(db) in one_error_line(imp)
    assert db.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_db_path_under_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    db = blocker / "vuln.sqlite3"
    src = write_jsonl(tmp_path / "a.jsonl", [record("A-1")])
    for args in (("db", "import", "--db", str(db), str(src)),
                 ("db", "update", "--db", str(db), "--url", "http://127.0.0.1:9/"),
                 ("db", "status", "--db", str(db))):
        proc = giropops(*args)
        assert proc.returncode == 1, args
        assert f"{blocker} is not a directory" in one_error_line(proc)
    assert blocker.read_text() == "not a directory"
    assert sorted(os.listdir(tmp_path)) == ["a.jsonl", "afile"]


# --- item 15: oversized ids are cut in what errors quote -----------------------------------------------------


def test_megabyte_advisory_id_is_not_echoed(tmp_path: Path) -> None:
    huge = "GHSA-" + "x" * 1_000_000
    src = write_jsonl(tmp_path / "big.jsonl", [record(huge), record("OK-1")])
    db = tmp_path / "vuln.sqlite3"
    proc = giropops("db", "import", "--db", str(db), str(src))
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr) + len(proc.stdout) < 2000, (len(proc.stderr), len(proc.stdout))
    assert "GHSA-xxxx" in proc.stderr  # still says which record it was
    assert ids_in(db) == {"OK-1"}


def test_oversized_reference_is_cut_in_the_error(tmp_path: Path) -> None:
    db = tmp_path / "vuln.sqlite3"
    assert giropops("db", "import", "--db", str(db),
                    str(write_jsonl(tmp_path / "a.jsonl", [record("A-1")]))).returncode == 0
    reference = "registry://127.0.0.1:9/" + "a" * 100_000 + ":latest"  # one argv string may hold 128 KiB
    proc = giropops("cves", "--db", str(db), reference)
    assert proc.returncode != 0
    line = one_error_line(proc)
    assert len(line) < 1000 and "aaaa" in line and "characters)" in line
