"""Proof for the language ecosystems and AlmaLinux: our findings equal the oracle's over the same records.

The advisories are the cut-down real records of ``tests/data/vulndata/lang-*``
(PROVENANCE-lang.md).  Each SBOM holds real packages of the records at the
versions the records themselves name (every introduced / fixed / last_affected
event and some listed versions), plus the version just below each of them, so
every boundary is checked from both sides.  The oracle (``oracle.py``) orders
versions with the reference tools (Maven's ComparableVersion, Gem::Version,
rpm.vercmp, node-semver) and evaluates OSV's event algorithm itself.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

from giropops.cli.main import main
from giropops.sbom.formats import encode
from giropops.sbom.model import SBOM, Distro, Location, Package, Subject
from giropops.vuln.db.importer import import_paths
from giropops.vuln.db.store import VulnDB
from giropops.vuln.db.update import DEFAULT_ECOSYSTEMS, update
from giropops.vuln.match import MALICIOUS, scan
from tests.support.osv_export import OSVExportServer, build_export
from tests.vuln.oracle import Expected, Oracle

LANG_DATA = Path(__file__).resolve().parents[1] / "data" / "vulndata"
LANG_FILES = sorted(LANG_DATA.glob("lang-*.osv.jsonl.gz"))

# package type -> (fixture file stem, OSV ecosystem prefix)
TYPES = {"npm": "npm", "golang": "go", "maven": "maven", "gem": "rubygems", "cargo": "crates-io", "nuget": "nuget",
         "rpm": "almalinux"}


def records(stem: str) -> list[dict[str, Any]]:
    with gzip.open(LANG_DATA / f"lang-{stem}.osv.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def lang_db(tmp_path_factory: pytest.TempPathFactory) -> VulnDB:
    path = tmp_path_factory.mktemp("langdb") / "lang.sqlite3"
    report = import_paths(path, LANG_FILES)
    assert report.imported > 400 and report.skipped == 0, report.problems[:5]
    return VulnDB(path)


@pytest.fixture(scope="module")
def oracle() -> Oracle:
    return Oracle(LANG_FILES)


def _below(version: str) -> str | None:
    """The version just below one ending in a positive number (1.2.3 -> 1.2.2), else None."""
    m = re.match(r"^(.*?)(\d+)$", version)
    if m is None or int(m.group(2)) == 0:
        return None
    return f"{m.group(1)}{int(m.group(2)) - 1}"


def versions_of(recs: list[dict[str, Any]], ecosystem_prefix: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rec in recs:
        for aff in rec["affected"]:
            if not aff["package"]["ecosystem"].startswith(ecosystem_prefix):
                continue
            seen = out.setdefault(aff["package"]["name"], set())
            events = [v for r in aff.get("ranges", []) for ev in r["events"] for v in ev.values() if v != "0"]
            for v in events + aff.get("versions", [])[:3]:
                seen.add(v)
                below = _below(v)
                if below:
                    seen.add(below)
    return out


def sbom_for(ptype: str, distro: Distro | None = None, ecosystem_prefix: str = "") -> SBOM:
    pkgs = []
    for name, versions in sorted(versions_of(records(TYPES[ptype]), ecosystem_prefix).items()):
        for v in sorted(versions):
            if ptype == "golang" and name != "stdlib":
                v = "v" + v  # module versions keep their "v" in build info
            pkgs.append(Package(name, v, ptype, purl=f"pkg:{ptype}/{name}@{v}"))
    assert len(pkgs) > 10
    return SBOM(Subject(f"{ptype}-proof"), distro, tuple(pkgs))


def ours(sbom: SBOM, db: VulnDB) -> set[Expected]:
    return {Expected(f.package.name, f.package.version, f.vuln_id, frozenset(f.advisory_ids), f.fixed_version)
            for f in scan(sbom, db).findings}


def check(sbom: SBOM, db: VulnDB, oracle: Oracle, min_affected: int = 5) -> set[Expected]:
    got, want = ours(sbom, db), oracle.expect(sbom)
    assert got - want == set(), "false positives"
    assert want - got == set(), "misses"
    # both sides of the boundaries: some packages are affected, some are not
    affected = {(e.package, e.version) for e in got}
    assert min_affected <= len(affected) < len({(p.name, p.version) for p in sbom.packages})
    return got


@pytest.mark.parametrize("ptype", ["npm", "golang", "maven", "gem", "cargo", "nuget"])
def test_language_findings_equal_the_oracle(ptype: str, lang_db: VulnDB, oracle: Oracle) -> None:
    check(sbom_for(ptype), lang_db, oracle)


@pytest.mark.parametrize("release", ["8", "9"])
def test_almalinux_findings_equal_the_oracle(release: str, lang_db: VulnDB, oracle: Oracle) -> None:
    sbom = sbom_for("rpm", Distro("almalinux", f"{release}.4"), f"AlmaLinux:{release}")
    got = check(sbom, lang_db, oracle)
    assert all(e.vuln_id.startswith(("CVE-", "ALSA-", "ALBA-", "ALEA-")) for e in got)
    # another rpm distribution has no AlmaLinux data: nothing matches
    assert scan(SBOM(sbom.subject, Distro("fedora", "40"), sbom.packages), lang_db).findings == ()


def test_go_stdlib_advisories_match_the_toolchain(lang_db: VulnDB, oracle: Oracle) -> None:
    sbom = SBOM(Subject("go-binary"), None, (
        Package("stdlib", "1.20.1", "golang"), Package("stdlib", "1.23.6", "golang"),
        Package("golang.org/x/net", "v0.17.0", "golang"), Package("github.com/docker/docker", "v20.10.7+incompatible",
                                                                   "golang"),
    ))
    got = check(sbom, lang_db, oracle, min_affected=3)
    old = {e.vuln_id for e in got if e.package == "stdlib" and e.version == "1.20.1"}
    new = {e.vuln_id for e in got if e.package == "stdlib" and e.version == "1.23.6"}
    assert len(old) > 20 and len(new) < len(old)
    assert any(e.package == "github.com/docker/docker" for e in got)


def test_go_and_ghsa_twins_are_one_finding(lang_db: VulnDB) -> None:
    recs = {r["id"]: r for r in records("go")}
    twins = [(go, ghsa) for go, r in recs.items() if go.startswith("GO-") for ghsa in r.get("aliases", [])
             if ghsa in recs and go in recs[ghsa].get("aliases", [])
             and any(a["package"]["name"] == "golang.org/x/net" for a in recs[ghsa]["affected"])
             and any(a["package"]["name"] == "golang.org/x/net" for a in r["affected"])]
    assert len(twins) > 5
    sbom = SBOM(Subject("x-net"), None, (Package("golang.org/x/net", "v0.0.0-20180101000000-abcdefabcdef", "golang"),))
    findings = scan(sbom, lang_db).findings
    for go, ghsa in twins:
        holding = [f for f in findings if go in f.advisory_ids or ghsa in f.advisory_ids]
        if holding:
            assert len(holding) == 1 and {go, ghsa} <= set(holding[0].advisory_ids), (go, ghsa)
    ids = [a for f in findings for a in f.advisory_ids]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(("origin", "ecosystem", "name", "ptype", "version", "origin_lists_twin"), [
    ("GO-2099-0001", "Go", "example.com/m", "golang", "v1.1.0", True),
    ("RUSTSEC-2099-0001", "crates.io", "demo", "cargo", "1.1.0", False),  # only the GHSA names its twin
])
def test_twins_without_a_common_cve_are_merged_under_the_origin_id(
        tmp_path: Path, oracle: Oracle, origin: str, ecosystem: str, name: str, ptype: str, version: str,
        origin_lists_twin: bool) -> None:
    def rec(rid: str, aliases: list[str], fixed: str) -> dict[str, Any]:
        return {"id": rid, "modified": "2025-01-01T00:00:00Z", "aliases": aliases,
                "affected": [{"package": {"ecosystem": ecosystem, "name": name},
                              "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]}

    recs = [rec(origin, ["GHSA-aaaa-bbbb-cccc"] if origin_lists_twin else [], "1.2.0"),
            rec("GHSA-aaaa-bbbb-cccc", ["CVE-2099-10001", "CVE-2099-10002", origin], "1.2.1"),
            rec("GHSA-dddd-eeee-ffff", ["CVE-2099-10003"], "1.2.1")]
    src = tmp_path / "twins.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    import_paths(tmp_path / "db.sqlite3", [src])
    sbom = SBOM(Subject("m"), None, (Package(name, version, ptype),))
    findings = scan(sbom, VulnDB(tmp_path / "db.sqlite3")).findings
    assert sorted((f.vuln_id, f.advisory_ids, f.fixed_version) for f in findings) == [
        ("CVE-2099-10003", ("GHSA-dddd-eeee-ffff",), "1.2.1"),
        (origin, tuple(sorted(["GHSA-aaaa-bbbb-cccc", origin])), "1.2.1"),
    ]
    assert Oracle([_gz(tmp_path / "twins.osv.jsonl.gz", recs)]).expect(sbom) == {
        Expected(name, version, "CVE-2099-10003", frozenset({"GHSA-dddd-eeee-ffff"}), "1.2.1"),
        Expected(name, version, origin, frozenset({origin, "GHSA-aaaa-bbbb-cccc"}), "1.2.1")}


def _gz(path: Path, recs: list[dict[str, Any]]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in recs)
    return path


def test_withdrawn_records_never_match(tmp_path: Path, oracle: Oracle) -> None:
    live = next(r for r in records("npm") if any(a["package"]["name"] == "minimist" for a in r["affected"]))
    withdrawn = {**live, "withdrawn": "2024-01-01T00:00:00Z", "modified": "2099-01-01T00:00:00Z"}
    src = tmp_path / "w.jsonl"
    src.write_text(json.dumps(withdrawn) + "\n")
    import_paths(tmp_path / "db.sqlite3", [src])
    pkg = Package("minimist", "0.0.1", "npm")
    before = scan(SBOM(Subject("m"), None, (pkg,)), VulnDB(tmp_path / "db.sqlite3")).findings
    live_db = tmp_path / "live.sqlite3"
    src.write_text(json.dumps(live) + "\n")
    import_paths(live_db, [src])
    after = scan(SBOM(Subject("m"), None, (pkg,)), VulnDB(live_db)).findings
    assert before == () and [f.advisory_ids for f in after] == [(live["id"],)]


def test_malicious_packages_are_critical_and_marked(lang_db: VulnDB) -> None:
    sbom = SBOM(Subject("mal"), None, (
        Package("cxp-jquery", "9.9.9", "npm"), Package("tzinfo-i18n", "0.1.0", "gem"),
        Package("tzinfo-i18n", "0.2.0", "gem"), Package("rustdecimal", "1.0.0", "cargo"),
    ))
    findings = scan(sbom, lang_db).findings
    assert sorted((f.package.name, f.package.version) for f in findings) == [
        ("cxp-jquery", "9.9.9"), ("rustdecimal", "1.0.0"), ("tzinfo-i18n", "0.1.0")]
    for f in findings:
        assert f.vuln_id.startswith("MAL-")
        assert f.severity.level == "critical" and f.severity.source == MALICIOUS


def test_nuget_ids_are_case_insensitive(lang_db: VulnDB) -> None:
    upper = scan(SBOM(Subject("n"), None, (Package("Newtonsoft.Json", "12.0.1", "nuget"),)), lang_db).findings
    lower = scan(SBOM(Subject("n"), None, (Package("newtonsoft.json", "12.0.1", "nuget"),)), lang_db).findings
    assert [f.vuln_id for f in upper] == [f.vuln_id for f in lower] != []


def test_maven_needs_a_group_and_composer_is_inventory_only(lang_db: VulnDB) -> None:
    sbom = SBOM(Subject("j"), None, (
        Package("org.apache.logging.log4j:log4j-core", "2.14.1", "maven"), Package("log4j-core", "2.14.1", "maven"),
        Package("laravel/framework", "5.0.0", "composer"),
    ))
    result = scan(sbom, lang_db)
    assert {f.package.name for f in result.findings} == {"org.apache.logging.log4j:log4j-core"}
    assert "CVE-2021-44228" in {f.vuln_id for f in result.findings}


def test_update_fetches_the_new_ecosystems_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = ["npm", "Go", "Maven", "RubyGems", "crates.io", "NuGet", "AlmaLinux"]
    ids = build_export(LANG_FILES, tmp_path / "export", names)
    server = OSVExportServer(tmp_path / "export")
    server.start()
    try:
        db = tmp_path / "db.sqlite3"
        result = update(db, ["NPM", "go", "maven", "rubygems", "CRATES.IO", "nuget", "almalinux"], url=server.url)
        assert result.fetched == names and result.report.skipped == 0
        with VulnDB(db) as vdb:
            stored = {e.ecosystem for e in vdb.status().ecosystems}
        assert stored == {"npm", "Go", "Maven", "RubyGems", "crates.io", "NuGet", "AlmaLinux:8", "AlmaLinux:9"}
        assert sum(map(len, ids.values())) > 400
        assert main(["db", "update", "--db", str(db), "--url", server.url, "--ecosystem", "Packagist"]) == 1
        err = capsys.readouterr().err
        assert "Packagist" in err and "Composer" in err and "Traceback" not in err
    finally:
        server.stop()
    assert DEFAULT_ECOSYSTEMS == ("Alpine", "Chainguard", "Debian", "PyPI", "Wolfi")


def test_language_packages_an_os_package_installed_are_left_to_the_distribution(lang_db: VulnDB,
                                                                               oracle: Oracle) -> None:
    jar = Package("org.yaml:snakeyaml", "1.30", "maven", locations=(Location("usr/share/java/snakeyaml-1.30.jar"),))
    gem = Package("rack", "2.2.2", "gem",
                  locations=(Location("/usr/share/rubygems-integration/all/specifications/rack-2.2.2.gemspec"),))
    debs = (Package("libyaml-snake-java", "1.33-2", "deb", files=("/usr/share/java/snakeyaml-1.30.jar",)),
            Package("ruby-rack", "2.2.2-1", "deb",
                    files=("/usr/share/rubygems-integration/all/specifications/rack-2.2.2.gemspec",)))
    alone = SBOM(Subject("a"), None, (jar, gem))
    owned = SBOM(Subject("b"), None, (jar, gem, *debs))
    assert {f.package.name for f in scan(alone, lang_db).findings} == {"org.yaml:snakeyaml", "rack"}
    result = scan(owned, lang_db)
    assert result.findings == () and oracle.expect(owned) == set()
    assert len([n for n in result.notes if "installed by an OS package" in n]) == 2


def test_cves_cli_on_a_polyglot_sbom_file(tmp_path: Path, lang_db: VulnDB, oracle: Oracle,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    pkgs = (Package("lodash", "4.17.15", "npm", purl="pkg:npm/lodash@4.17.15"),
            Package("stdlib", "1.21.0", "golang", purl="pkg:golang/stdlib@1.21.0"),
            Package("golang.org/x/net", "v0.7.0", "golang", purl="pkg:golang/golang.org/x/net@v0.7.0"),
            Package("org.apache.logging.log4j:log4j-core", "2.14.1", "maven",
                    purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"),
            Package("nokogiri", "1.13.0", "gem", purl="pkg:gem/nokogiri@1.13.0"),
            Package("tokio", "1.18.0", "cargo", purl="pkg:cargo/tokio@1.18.0"),
            Package("System.Text.Encodings.Web", "4.5.0", "nuget", purl="pkg:nuget/System.Text.Encodings.Web@4.5.0"),
            Package("openssl-libs", "1:3.0.7-16.el9", "rpm",
                    purl="pkg:rpm/almalinux/openssl-libs@3.0.7-16.el9?epoch=1"))
    sbom = SBOM(Subject("polyglot"), Distro("almalinux", "9.2"), pkgs)
    path = tmp_path / "sbom.json"
    path.write_bytes(encode(sbom, "json"))
    capsys.readouterr()
    assert main(["cves", f"sbom://{path}", "--db", str(lang_db.path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    got = {Expected(f["package"]["name"], f["package"]["version"], f["vulnerability"]["id"],
                    frozenset(m["advisory"] for m in f["matches"]), f["fixed_version"]) for f in doc["findings"]}
    assert got == oracle.expect(sbom)
    assert {e.package for e in got} == {p.name for p in pkgs}  # every ecosystem contributes
