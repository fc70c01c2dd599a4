"""The first scan gets its own data (issue 22), against a local stand-in for the OSV exports.

Every scan here is the real ``giropops`` command in a subprocess; the server (tests/support/osv_export.py)
serves ``<ecosystem>/all.zip`` built from the advisories of tests/data, with ETags and 304s, and logs
every request.  The expected findings come from a scan of a database imported directly from the same
zips with ``giropops db import`` (no fetching involved).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from giropops.cli import exitcodes
from giropops.errors import ConfigError
from giropops.sbom.model import SBOM, Distro, Location, Package, Subject
from giropops.vuln.db import ensure
from giropops.vuln.match import needed_ecosystems
from giropops.vuln.matchers import feed_name
from tests.support.osv_export import OSVExportServer, build_export
from tests.vuln import sbomfile

PYTHONS = [("Django", "3.2.0"), ("requests", "2.25.0"), ("urllib3", "1.26.4")]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, vulndata_files: list[Path]) -> Iterator[OSVExportServer]:
    """Debian, PyPI and Alpine exports: Alpine is there to show it is not fetched for a Debian image."""
    root = tmp_path_factory.mktemp("osv-export")
    ids = build_export(vulndata_files, root, ["Debian", "PyPI", "Alpine"])
    assert all(ids.values()), ids
    server = OSVExportServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(served: OSVExportServer) -> Iterator[OSVExportServer]:
    served.requests.clear()
    yield served
    served.fail.clear()
    served.delay = 0.0


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Debian 12 image with Python packages: it needs Debian:12 and PyPI."""
    d = tmp_path_factory.mktemp("image")
    return sbomfile.write(d / "sbom.json", "app", ("debian", "12"), sbomfile.DEB_BASE, PYTHONS)


def env_for(server: OSVExportServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in (ensure.OFFLINE_ENV, ensure.FRESHNESS_ENV, "GIROPOPS_DB")}
    return {**env, "GIROPOPS_OSV_URL": server.url, **extra}


def giropops(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "giropops", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False, stdin=subprocess.DEVNULL)


def findings(stdout: str) -> list[tuple[str, str, str]]:
    doc = json.loads(stdout)
    return sorted((f["package"]["name"], f["package"]["version"], f["vulnerability"]["id"])
                  for f in doc["findings"])


def paths(server: OSVExportServer) -> list[str]:
    return sorted(p for p, _ in server.requests)


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory, served: OSVExportServer,
             image: str) -> list[tuple[str, str, str]]:
    """The findings of the image on a database imported directly from the served Debian and PyPI zips."""
    d = tmp_path_factory.mktemp("imported")
    db = d / "db.sqlite3"
    env = {**os.environ, ensure.OFFLINE_ENV: "1"}
    zips = [str(served.root / eco / "all.zip") for eco in ("Debian", "PyPI")]
    imported = giropops("db", "import", "--db", str(db), *zips, env=env, cwd=d)
    assert imported.returncode == 0, imported.stderr
    proc = giropops("cves", image, "--db", str(db), "--format", "json", env=env, cwd=d)
    assert proc.returncode == 0, proc.stderr
    got = findings(proc.stdout)
    kinds = {name for name, _, _ in got}
    assert {"openssl", "django"} <= {k.lower() for k in kinds}, got  # both ecosystems contribute
    return got


def test_the_ecosystems_a_scan_needs_come_from_the_matchers() -> None:
    egg = "/usr/lib/python3/dist-packages/PyYAML-5.3.egg-info"
    sbom = SBOM(Subject("x"), Distro("debian", "12.5"), (
        Package("openssl", "3.0.11-1~deb12u2", "deb", source_name="openssl"),
        Package("python3-yaml", "5.3-1", "deb", files=(egg, f"{egg}/PKG-INFO")),
        Package("PyYAML", "5.3", "python", locations=(Location(f"{egg}/PKG-INFO"),)),
    ))
    # the only python package is installed by a deb: the image needs Debian's advisories alone
    assert needed_ecosystems([sbom]) == {"Debian:12"}
    alpine = SBOM(Subject("y"), Distro("alpine", "3.19.1"), (Package("musl", "1.2.4-r2", "apk", source_name="musl"),
                                                             Package("flask", "2.0.0", "python")))
    assert needed_ecosystems([sbom, alpine, None]) == {"Debian:12", "Alpine:v3.19", "PyPI"}
    assert [feed_name(e) for e in ("Debian:12", "Alpine:v3.19", "PyPI", "Wolfi")] == ["Debian", "Alpine", "PyPI",
                                                                                       "Wolfi"]


def test_freshness_is_a_duration() -> None:
    assert [ensure.parse_duration(t) for t in ("0", "90", "90s", "30m", "12h", "1d", "1.5d")] == [
        timedelta(0), timedelta(seconds=90), timedelta(seconds=90), timedelta(minutes=30), timedelta(hours=12),
        timedelta(days=1), timedelta(hours=36)]
    for bad in ("", "soon", "-1d", "1w", "1 d x"):
        with pytest.raises(ConfigError, match="must be a duration like 30m, 12h, 1d or a number of seconds"):
            ensure.parse_duration(bad)


def test_a_bad_freshness_is_one_error_line(tmp_path: Path, server: OSVExportServer, image: str) -> None:
    for args, env in ((["--db-freshness", "soon"], env_for(server)),
                      ([], env_for(server, GIROPOPS_DB_FRESHNESS="a week"))):
        proc = giropops("cves", image, "--db", str(tmp_path / "db.sqlite3"), *args, env=env, cwd=tmp_path)
        assert proc.returncode == 1, proc.stderr
        (line,) = proc.stderr.splitlines()
        assert line.startswith("giropops: error: ") and "must be a duration like 30m" in line
    assert server.requests == []


def test_a_first_scan_fetches_exactly_the_images_ecosystems_then_stays_quiet_within_the_window(
        tmp_path: Path, server: OSVExportServer, image: str, expected: list[tuple[str, str, str]]) -> None:
    db = tmp_path / "cache" / "vulndb.sqlite3"
    env = env_for(server)
    first = giropops("cves", image, "--db", str(db), "--format", "json", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert paths(server) == ["/Debian/all.zip", "/PyPI/all.zip"]  # not Alpine, which the server also has
    assert findings(first.stdout) == expected
    sizes = {eco: (server.root / eco / "all.zip").stat().st_size for eco in ("Debian", "PyPI")}
    (note,) = [line for line in first.stderr.splitlines() if "fetched" in line]
    assert note.startswith("giropops: fetched vulnerability data for Debian (")
    assert f"PyPI ({sizes['PyPI'] / 1e3:.0f} kB)" in note or f"PyPI ({sizes['PyPI'] / 1e6:.1f} MB)" in note
    assert f"from {server.url}" in note

    # within the freshness window: no request at all, same answer
    server.requests.clear()
    again = giropops("cves", image, "--db", str(db), "--format", "json", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert server.requests == []
    assert findings(again.stdout) == expected and "fetched" not in again.stderr

    # the recorded check is two days old: one conditional request per ecosystem, both 304, file untouched
    checks = json.loads(ensure.checks_path(db).read_text())
    assert sorted(checks) == ["Debian", "PyPI"]
    old = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ensure.checks_path(db).write_text(json.dumps(dict.fromkeys(checks, old)))
    before = db.stat()
    refreshed = giropops("cves", image, "--db", str(db), "--format", "json", env=env, cwd=tmp_path)
    assert refreshed.returncode == 0, refreshed.stderr
    assert paths(server) == ["/Debian/all.zip", "/PyPI/all.zip"]
    assert all("If-None-Match" in headers for _, headers in server.requests)
    assert (db.stat().st_ino, db.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # 304: no rebuild
    assert findings(refreshed.stdout) == expected and "fetched" not in refreshed.stderr
    assert all(v != old for v in json.loads(ensure.checks_path(db).read_text()).values())

    # and now within the window again
    server.requests.clear()
    assert giropops("cves", image, "--db", str(db), env=env, cwd=tmp_path).returncode == 0
    assert server.requests == []

    # a window of 0 (flag or environment) checks on every scan; --skip-db-update never does
    assert giropops("cves", image, "--db", str(db), "--db-freshness", "0", env=env, cwd=tmp_path).returncode == 0
    assert paths(server) == ["/Debian/all.zip", "/PyPI/all.zip"]
    server.requests.clear()
    env0 = {**env, ensure.FRESHNESS_ENV: "0"}
    assert giropops("cves", image, "--db", str(db), env=env0, cwd=tmp_path).returncode == 0
    assert len(server.requests) == 2
    server.requests.clear()
    assert giropops("cves", image, "--db", str(db), "--skip-db-update", env=env0, cwd=tmp_path).returncode == 0
    assert server.requests == []


def test_a_failed_refresh_warns_and_scans_with_what_is_there(
        tmp_path: Path, server: OSVExportServer, image: str, expected: list[tuple[str, str, str]]) -> None:
    db = tmp_path / "vulndb.sqlite3"
    env = env_for(server)
    assert giropops("cves", image, "--db", str(db), env=env, cwd=tmp_path).returncode == 0
    server.fail = {"/Debian/all.zip": 503, "/PyPI/all.zip": 503}
    proc = giropops("cves", image, "--db", str(db), "--format", "json", "--db-freshness", "0s", env=env,
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert findings(proc.stdout) == expected
    (warning,) = [line for line in proc.stderr.splitlines() if "could not refresh" in line]
    assert warning.startswith(f"giropops: warning: could not refresh Debian, PyPI from {server.url}: ")
    assert "503" in warning and warning.endswith("scanning with the data already there")


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_offline_on_an_empty_database_fails_clearly_and_fetches_nothing(
        tmp_path: Path, server: OSVExportServer, image: str, how: str) -> None:
    db = tmp_path / "vulndb.sqlite3"
    env = env_for(server, **({ensure.OFFLINE_ENV: "1"} if how == "environment" else {}))
    extra = ["--offline"] if how == "flag" else []
    for command in ("cves", "quickview", "compare"):
        more = ["--to", image] if command == "compare" else []
        proc = giropops(command, image, *more, "--db", str(db), *extra, env=env, cwd=tmp_path)
        assert proc.returncode == exitcodes.DB_NOT_READY, (command, proc.stderr)
        assert proc.stdout == "" and "Traceback" not in proc.stderr
        assert proc.stderr.splitlines() == [
            f"giropops: error: no vulnerability database at {db}: fill it with 'giropops db update', "
            "or offline with 'giropops db import FILES'"]
    assert server.requests == [] and not db.exists()


def test_a_fetch_that_fails_stops_the_scan_naming_the_offline_route(
        tmp_path: Path, server: OSVExportServer, image: str) -> None:
    db = tmp_path / "vulndb.sqlite3"
    server.fail = {"/PyPI/all.zip": 503}
    proc = giropops("cves", image, "--db", str(db), env=env_for(server), cwd=tmp_path)
    assert proc.returncode == exitcodes.DB_NOT_READY, proc.stderr
    assert proc.stdout == "" and "0 vulnerabilities" not in proc.stderr and "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("giropops: error:")]
    assert line.startswith(f"giropops: error: the vulnerability database {db} has no advisories for Debian, PyPI "
                           "and fetching them failed: ")
    assert "503" in line and "giropops db import FILES" in line
    assert not db.exists()  # nothing half-made

    # a source that does not answer at all
    dead = env_for(server, GIROPOPS_OSV_URL="http://127.0.0.1:9")
    proc = giropops("cves", image, "--db", str(db), env=dead, cwd=tmp_path)
    assert proc.returncode == exitcodes.DB_NOT_READY, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"giropops: error: the vulnerability database {db} has no advisories for Debian, "
                           "PyPI and fetching them failed: cannot reach http://127.0.0.1:9 (")
    assert line.endswith("fill the database offline with 'giropops db import FILES', or point --db-url "
                         "($GIROPOPS_OSV_URL) at a mirror of the OSV exports")
    assert not db.exists()


def test_a_database_lacking_one_ecosystem_gets_that_one_only(
        tmp_path: Path, server: OSVExportServer, image: str, expected: list[tuple[str, str, str]]) -> None:
    """Debian imported by hand (no feed): the scan fetches PyPI and leaves the imported Debian data alone."""
    db = tmp_path / "vulndb.sqlite3"
    offline = {**os.environ, ensure.OFFLINE_ENV: "1"}
    imported = giropops("db", "import", "--db", str(db), str(server.root / "Debian" / "all.zip"), env=offline,
                        cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    proc = giropops("compare", image, "--to", image, "--db", str(db), "--format", "json", env=env_for(server),
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert paths(server) == ["/PyPI/all.zip"]
    assert "fetched vulnerability data for PyPI (" in proc.stderr
    # an image of another distribution adds its own ecosystem to the same database
    server.requests.clear()
    alpine = sbomfile.write(tmp_path / "alpine.json", "alpine", ("alpine", "3.19.1"), [],
                            apks=[("busybox", "1.36.1-r2", "busybox")])
    proc = giropops("quickview", alpine, "--db", str(db), env=env_for(server), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert paths(server) == ["/Alpine/all.zip"]
    proc = giropops("cves", image, "--db", str(db), "--format", "json", "--offline", env=env_for(server),
                    cwd=tmp_path)
    assert findings(proc.stdout) == expected


def test_two_first_scans_at_once_fetch_once(tmp_path: Path, server: OSVExportServer, image: str,
                                           expected: list[tuple[str, str, str]]) -> None:
    db = tmp_path / "vulndb.sqlite3"
    server.delay = 1.0  # the first download is still running when the second process wants it
    env = env_for(server)
    procs = [subprocess.Popen([sys.executable, "-m", "giropops", "cves", image, "--db", str(db), "--format", "json"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert findings(out) == expected
    assert paths(server) == ["/Debian/all.zip", "/PyPI/all.zip"]  # one fetch per ecosystem in all
    notes = [err for _, err in outs if "fetched vulnerability data" in err]
    assert len(notes) == 1
    assert any("waiting for another giropops process" in err for _, err in outs)
