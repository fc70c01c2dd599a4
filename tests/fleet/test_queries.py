"""``where``, ``affected`` and ``index rematch`` over an index filled by ``scan`` from a real registry.

``affected`` must give, image by image, what ``giropops cves IMAGE --only-cve-id ID`` gives; ``rematch``
after importing more advisories must report exactly the findings ``cves`` gains with the new database.
Expected sets are also derived from the fleet's own parameters (``fleetdata``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from giropops.cli.main import main
from giropops.vuln.db.importer import import_paths
from tests.fleet.conftest import Fleet
from tests.fleet.fleetdata import EXTRA_ADVISORIES, SITE, write_advisories


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


@pytest.fixture
def indexed(fleet: Fleet, fleet_db: Path, tmp_path: Path, cache_dir: Path,
            capsys: pytest.CaptureFixture[str]) -> Path:
    index = tmp_path / "index.sqlite3"
    assert main(["scan", fleet.host, "--repository", "^fleet/", "--index", str(index), "--db", str(fleet_db),
                 "--format", "jsonl"]) == 0
    capsys.readouterr()
    return index


def _cves(capsys: pytest.CaptureFixture[str], fleet: Fleet, db: Path, digest: str, vuln: str | None = None
          ) -> set[tuple[str, str, str, str | None]]:
    fi = fleet.by_digest()[digest]
    argv = ["cves", f"registry://{fleet.host}/{fi.repository}@{digest}", "--db", str(db), "--format", "json"]
    if vuln:
        argv += ["--only-cve-id", vuln]
    doc = _json(capsys, *argv)
    assert isinstance(doc, dict)
    return {(f["vulnerability"]["id"], f["package"]["name"], f["package"]["version"], f["fixed_version"])
            for f in doc["findings"]}


def test_where_versions_ranges_and_locations(fleet: Fleet, indexed: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    hits = _json(capsys, "where", "flask@>=2.0,<2.3", "--index", str(indexed), "--format", "json")
    assert isinstance(hits, list)
    expected = {fi.digest for fi in fleet.images if (2, 0) <= _version(fi.flask) < (2, 3)}
    assert {h["digest"] for h in hits} == expected and expected
    for h in hits:
        fi = fleet.by_digest()[h["digest"]]
        assert h["version"] == fi.flask
        assert h["locations"] == [f"/{SITE}/flask-{fi.flask}.dist-info/METADATA (layer {fi.diff_ids[1]})"]
        assert h["purl"] == f"pkg:pypi/flask@{fi.flask}"
    exact = _json(capsys, "where", "Flask@3.0.0", "--index", str(indexed), "--format", "json")
    assert isinstance(exact, list)
    assert {h["digest"] for h in exact} == {fi.digest for fi in fleet.images if fi.flask == "3.0.0"}
    zlib = _json(capsys, "where", "zlib1g", "--index", str(indexed), "--format", "json")
    assert isinstance(zlib, list)
    assert {h["digest"] for h in zlib} == {fi.digest for fi in fleet.images if fi.base == "c"}
    tagged = next(h for h in zlib if h["digest"] == fleet.images[0].digest)
    assert tagged["references"] == sorted(f"{fleet.host}/{fleet.images[0].repository}:{t}"
                                          for t in fleet.images[0].tags)


@pytest.mark.parametrize("vuln", ["CVE-2099-1002", "GHSA-fl4s-k000-0001", "CVE-2099-1001", "CVE-2099-1009"])
def test_affected_equals_cves_per_image(vuln: str, fleet: Fleet, fleet_db: Path, indexed: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    hits = _json(capsys, "affected", vuln, "--index", str(indexed), "--db", str(fleet_db), "--format", "json")
    assert isinstance(hits, list)
    got: dict[str, set[tuple[str, str, str, str | None]]] = {}
    for h in hits:
        got.setdefault(h["digest"], set()).add((h["id"], h["package"], h["version"], h["fixed_version"]))
    expected = {}
    for fi in fleet.images:
        per_image = _cves(capsys, fleet, fleet_db, fi.digest, vuln)
        if per_image:
            expected[fi.digest] = per_image
    assert got == expected
    # and from the fleet's parameters, independently of cves
    if vuln in ("CVE-2099-1002", "GHSA-fl4s-k000-0001"):
        assert set(got) == {fi.digest for fi in fleet.images if _version(fi.flask) < (2, 3, 0)}
        assert {f for fs in got.values() for f in fs} >= {("CVE-2099-1002", "flask", "1.1.4", "2.3.0")}
    elif vuln == "CVE-2099-1001":
        assert set(got) == {fi.digest for fi in fleet.images if fi.base == "c"}
    else:
        assert got == {}


def test_rematch_reports_exactly_the_new_findings(fleet: Fleet, fleet_db: Path, indexed: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    nothing = _json(capsys, "index", "rematch", "--index", str(indexed), "--db", str(fleet_db), "--format", "json")
    assert nothing == []
    newer = tmp_path / "newer.sqlite3"
    shutil.copy(fleet_db, newer)
    import_paths(newer, [write_advisories(tmp_path / "extra.osv.jsonl.gz", EXTRA_ADVISORIES)])
    changes = _json(capsys, "index", "rematch", "--index", str(indexed), "--db", str(newer), "--format", "json")
    assert isinstance(changes, list)
    got = {c["digest"]: {(f["id"], f["package"], f["fixed_version"]) for f in c["new"]} for c in changes}
    assert all(c["gone"] == [] for c in changes)
    expected = {}
    for fi in fleet.images:
        before = _cves(capsys, fleet, fleet_db, fi.digest)
        after = _cves(capsys, fleet, newer, fi.digest)
        new = {(v, f"{'deb' if p in ('zlib1g', 'libssl3', 'libexpat1') else 'python'}/{p}@{ver}", fix)
               for v, p, ver, fix in after - before}
        if new:
            expected[fi.digest] = new
    assert got == expected
    # from the parameters: requests on every "py" image, openssl on every "c" image, Flask 3.0.0
    for fi in fleet.images:
        ids = {v for v, _, _ in got.get(fi.digest, set())}
        want = {"CVE-2099-1003"} if fi.base == "py" else {"CVE-2099-1005"}
        if fi.flask == "3.0.0":
            want.add("CVE-2099-1004")
        assert ids == want, fi
    again = _json(capsys, "index", "rematch", "--index", str(indexed), "--db", str(newer), "--format", "json")
    assert again == []  # the new findings were stored
    back = _json(capsys, "index", "rematch", "--index", str(indexed), "--db", str(fleet_db), "--format", "json")
    assert isinstance(back, list)
    assert {c["digest"]: {(f["id"], f["package"]) for f in c["gone"]} for c in back} == {
        d: {(v, p) for v, p, _ in fs} for d, fs in got.items()}


def test_unchanged_images_are_recognised_by_fingerprint(fleet: Fleet, fleet_db: Path, indexed: Path) -> None:
    """rematch skips an image when the fingerprint of its new findings equals the stored one: both sides
    must compute it the same way, or every image would be read and compared again."""
    from giropops.fleet.index import open_index
    from giropops.fleet.matching import FleetMatcher
    from giropops.vuln.db.store import VulnDB

    index = open_index(str(indexed))
    try:
        stored = index.fingerprints()
        distros = index.distros()
        packages: dict[str, list[object]] = {}
        for sp in index.all_packages():
            if not sp.owned:
                packages.setdefault(sp.digest, []).append(sp.package)
        with VulnDB(fleet_db) as db:
            matcher = FleetMatcher(db)
            computed = {d: matcher.fingerprint(distros[d], packages.get(d, [])) for d in stored}  # type: ignore[arg-type]
    finally:
        index.close()
    assert len(stored) == len(fleet.images) and all(stored.values())
    assert computed == stored


@pytest.mark.parametrize("argv, message", [
    (["where", "flask@<<2"], "invalid version or range"),
    (["where", "@1.0"], "invalid package"),
    (["where", "flask", "--index", "postgresql://giropops@127.0.0.1:1/none"], "cannot connect to the index"),
    (["where", "flask", "--index", "mysql://x"], "unsupported index mysql://"),
    (["affected", "CVE-1", "--db", "/nonexistent/db.sqlite3"], "no vulnerability database"),
    (["index", "rematch", "--db", "/nonexistent/db.sqlite3"], "no vulnerability database"),
])
def test_bad_input_is_one_line(argv: list[str], message: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    if "--index" not in argv:
        argv = [*argv, "--index", str(tmp_path / "index.sqlite3")]
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_index_in_the_way_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = main(["index", "list", "--index", str(blocker / "index.sqlite3")])
    err = capsys.readouterr().err
    assert code != 0 and "cannot open the index" in err and err.count("\n") == 1
