"""``giropops scan`` over a real registry into a SQLite index: enumeration, dedup, cache, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from giropops.cli.main import main
from tests.fleet.conftest import Fleet


def run_jsonl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, object]]]:
    capsys.readouterr()
    code = main(["scan", *argv, "--format", "jsonl"])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines()]


def test_whole_registry_each_digest_once_with_every_reference(
    fleet: Fleet, fleet_db: Path, tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index.sqlite3"
    # a page size of 2 makes both the catalog and the tags lists take several pages
    code, rows = run_jsonl(capsys, fleet.host, "--repository", "^fleet/", "--page-size", "2", "--workers", "4",
                           "--index", str(index), "--db", str(fleet_db))
    assert code == 0
    expected = {fi.digest: sorted(f"{fleet.host}/{fi.repository}:{t}" for t in fi.tags) for fi in fleet.images}
    assert {r["digest"]: r["references"] for r in rows} == expected
    assert len(rows) == len(fleet.images)
    assert all(r["status"] == "scanned" for r in rows)
    # layers are read once each: the two bases plus one application layer per image
    unique_layers = {d for fi in fleet.images for d in fi.diff_ids}
    assert sum(int(r["layers_read"]) for r in rows) == len(unique_layers) == len(fleet.images) + 2  # type: ignore[call-overload]
    by_digest = fleet.by_digest()
    for r in rows:
        fi = by_digest[str(r["digest"])]
        assert r["packages"] == 3  # two debs + flask, or one deb + requests + flask
        assert r["base"] == f"example.org/base/{fi.base}:1"


def test_second_scan_reads_nothing_and_keeps_the_index(
    fleet: Fleet, fleet_db: Path, tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index.sqlite3"
    one = fleet.images[3]
    target = f"{fleet.host}/{one.repository}:{one.tags[0]}"
    code, first = run_jsonl(capsys, target, "--index", str(index), "--db", str(fleet_db))
    assert code == 0 and [r["status"] for r in first] == ["scanned"] and first[0]["layers_read"] == 2
    code, again = run_jsonl(capsys, target, "--index", str(index), "--db", str(fleet_db))
    assert code == 0 and [r["status"] for r in again] == ["indexed"] and again[0]["layers_read"] == 0
    assert again[0]["findings"] == first[0]["findings"]


def test_filters_file_and_exit_code(
    fleet: Fleet, fleet_db: Path, tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "images.txt"
    chosen = [fi for fi in fleet.images if fi.repository.endswith("app-1")]
    listing.write_text("# the app-1 repository, by tag\n" + "".join(
        f"{fleet.host}/{fi.repository}:{fi.tags[0]}  # {fi.flask}\n" for fi in chosen) + "\n")
    index = str(tmp_path / "index.sqlite3")
    code, rows = run_jsonl(capsys, "--from-file", str(listing), "--index", index, "--db", str(fleet_db),
                           "--exit-code", "--only-severity", "high")
    hit = {fi.digest for fi in chosen if tuple(map(int, fi.flask.split("."))) < (2, 3, 0)}
    assert {r["digest"] for r in rows} == {fi.digest for fi in chosen}
    assert {r["digest"] for r in rows if r["failed"]} == hit
    assert hit and code == 2
    # a threshold nothing reaches: exit 0
    code, _ = run_jsonl(capsys, "--from-file", str(listing), "--index", index, "--db", str(fleet_db),
                        "--exit-code", "--only-severity", "critical")
    assert code == 0
    # --tag filters the tags of a repository
    code, rows = run_jsonl(capsys, f"{fleet.host}/{chosen[0].repository}", "--tag", r"^v(1|5)$",
                           "--index", index, "--db", str(fleet_db))
    assert code == 0 and {r["digest"] for r in rows} == {fi.digest for fi in chosen if fi.tags[0] in ("v1", "v5")}


def test_table_summary(
    fleet: Fleet, fleet_db: Path, tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = fleet.images[0]
    code = main(["scan", f"{fleet.host}/{one.repository}:stable", f"{fleet.host}/{one.repository}:v0",
                 "--index", str(tmp_path / "i.sqlite3"), "--db", str(fleet_db)])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["IMAGE", "DIGEST", "PKGS"]
    assert len(lines) == 3 and "(+1)" in lines[1]
    assert lines[2].startswith("1 images: 1 catalogued (2 layers read)")


@pytest.mark.parametrize("argv, message", [
    ([], "nothing to scan"),
    (["not a host"], "invalid scan target"),
    (["--shard", "2/2", "127.0.0.1:1"], "invalid shard"),
    (["--workers", "0", "127.0.0.1:1"], "--workers"),
])
def test_bad_input_is_one_line(argv: list[str], message: str, tmp_path: Path, fleet_db: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(["scan", *argv, "--index", str(tmp_path / "i.sqlite3"), "--db", str(fleet_db)])
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code in (1, 64)
    assert message in err and "Traceback" not in err


def test_progress_on_a_terminal_only(fleet: Fleet, fleet_db: Path, tmp_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    chosen = [fi for fi in fleet.images if fi.repository.endswith("app-2")]
    argv = [sys.executable, "-m", "giropops", "scan", f"{fleet.host}/{chosen[0].repository}",
            "--index", str(tmp_path / "i.sqlite3"), "--db", str(fleet_db)]
    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(tmp_path / "cache")}
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=terminal, timeout=120)
        os.close(terminal)
        chunks = []
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: the terminal side is closed and drained
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(controller)
    assert proc.returncode == 0
    shown = b"".join(chunks).decode()
    for fi in chosen:
        assert f"{fleet.host}/{fi.repository}:{fi.tags[0]}: 3 packages" in shown
    assert f"[{len(chosen)}/{len(chosen)}]" in shown
    # not a terminal: nothing but the summary on stdout, nothing on stderr
    quiet = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout.splitlines()[-1].startswith(f"{len(chosen)} images: 0 catalogued")
