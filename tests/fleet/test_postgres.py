"""Scanners as separate processes into one real PostgreSQL index (Debian's server, started by the fixture).

* two ``scan --shard K/2`` processes at once give exactly the index one unsharded scan gives;
* two unsharded scanners at once, meeting every digest, neither lose nor duplicate a row;
* a scanner killed (SIGKILL) mid-run and started again ends with that same index.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fleet.conftest import Fleet
from tests.support.postgres import PostgresServer

TABLES = {
    "fleet_image": "digest, platform, base_name, base_digest, distro, sbom",
    "fleet_ref": "digest, repository, tag",
    "fleet_package": "digest, idx, type, name, version, purl, locations",
    "fleet_lookup": "digest, ecosystem, name",
    "fleet_finding": "digest, vuln_id, package, aliases, severity, fixed",
}


def dump(pg: PostgresServer, database: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table (scan times aside), sorted: duplicates would show as repeated rows."""
    return {t: sorted(pg.execute(database, f"SELECT {cols} FROM {t}")) for t, cols in TABLES.items()}  # noqa: S608


def scan_cmd(fleet: Fleet, index: str, db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "giropops", "scan", fleet.host, "--repository", "^fleet/", "--index", index,
            "--db", str(db), "--format", "jsonl", *extra]


def env_with_cache(path: Path) -> dict[str, str]:
    return {**os.environ, "GIROPOPS_CACHE_DIR": str(path)}


def run_all(cmds: list[tuple[list[str], dict[str, str]]]) -> list[list[dict[str, Any]]]:
    procs = [subprocess.Popen(c, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c, e in cmds]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append([json.loads(line) for line in out.splitlines()])
    return outs


@pytest.fixture(scope="module")
def reference(fleet: Fleet, fleet_db: Path, postgres: PostgresServer,
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[object, ...]]]:
    """One unsharded scan into its own database: what every other way of scanning must reproduce."""
    url = postgres.create_database("fleet_reference")
    (rows,) = run_all([(scan_cmd(fleet, url, fleet_db), env_with_cache(tmp_path_factory.mktemp("cache")))])
    assert {r["digest"] for r in rows} == {fi.digest for fi in fleet.images}
    content = dump(postgres, "fleet_reference")
    assert len(content["fleet_image"]) == len(fleet.images)
    assert len(content["fleet_ref"]) == sum(len(fi.tags) for fi in fleet.images)
    return content


def test_two_shards_give_the_union_of_one_scan(fleet: Fleet, fleet_db: Path, postgres: PostgresServer,
                                               reference: dict[str, Any], tmp_path: Path) -> None:
    url = postgres.create_database("fleet_shards")
    a, b = run_all([(scan_cmd(fleet, url, fleet_db, "--shard", f"{k}/2"), env_with_cache(tmp_path / f"c{k}"))
                    for k in (0, 1)])
    mine, theirs = {r["digest"] for r in a}, {r["digest"] for r in b}
    assert mine and theirs and not (mine & theirs)
    assert mine | theirs == {fi.digest for fi in fleet.images}
    assert dump(postgres, "fleet_shards") == reference


def test_two_scanners_meeting_every_digest(fleet: Fleet, fleet_db: Path, postgres: PostgresServer,
                                           reference: dict[str, Any], tmp_path: Path) -> None:
    url = postgres.create_database("fleet_race")
    run_all([(scan_cmd(fleet, url, fleet_db, "--rescan", "--workers", "8"), env_with_cache(tmp_path / f"c{k}"))
             for k in (0, 1)])
    assert dump(postgres, "fleet_race") == reference


def test_killed_scanner_restarted_loses_and_duplicates_nothing(
    fleet: Fleet, fleet_db: Path, postgres: PostgresServer, reference: dict[str, Any], tmp_path: Path
) -> None:
    url = postgres.create_database("fleet_killed")
    env = env_with_cache(tmp_path / "cache")
    proc = subprocess.Popen(scan_cmd(fleet, url, fleet_db, "--workers", "1"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            try:
                done = int(postgres.execute("fleet_killed", "SELECT COUNT(*) FROM fleet_image")[0][0])  # type: ignore[call-overload]
            except psycopg.Error:  # the scanner has not created its tables yet
                done = 0
            if done >= 3:
                break
            time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    partial = dump(postgres, "fleet_killed")
    assert 3 <= len(partial["fleet_image"]) < len(fleet.images), "the scanner was not stopped mid-run"
    (rows,) = run_all([(scan_cmd(fleet, url, fleet_db), env)])
    statuses = [r["status"] for r in rows]
    assert statuses.count("indexed") == len(partial["fleet_image"])
    assert statuses.count("scanned") == len(fleet.images) - len(partial["fleet_image"])
    assert dump(postgres, "fleet_killed") == reference
