"""Issue 20 on small hand-written records: vendor ratings, disputed entries, fix status, filters, old databases.

The records copy the shape of real ones (Debian urgency per entry, GHSA ``database_specific``, AlmaLinux's
``Important: ...`` summaries, Wolfi's ``wolfi_event``, Alpine's not-affected statements); the proof on real
data is in test_e2e_images.py.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from giropops.cli.main import main
from giropops.sbom.model import SBOM, Distro, Package, Subject
from giropops.vuln import severity
from giropops.vuln.db.importer import import_paths
from giropops.vuln.db.store import VulnDB
from giropops.vuln.match import scan
from giropops.vuln.report import Format, render
from giropops.vuln.report.filters import Filters
from giropops.vuln.scan import view_for
from tests.support.paths import REPO_ROOT

V31_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8 as NVD publishes it
OPEN = {"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}


def _rec(rid: str, eco: str, name: str, *ranges: dict[str, Any], entry: dict[str, Any] | None = None,
         **extra: Any) -> dict[str, Any]:
    return {"id": rid, "modified": "2025-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": eco, "name": name}, "ranges": list(ranges), **(entry or {})}],
            **extra}


def _db(tmp_path: Path, records: list[dict[str, Any]]) -> Path:
    src = tmp_path / "r.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    path = tmp_path / "db.sqlite3"
    import_paths(path, [src])
    return path


def _fixed(v: str) -> dict[str, Any]:
    return {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": v}]}


@pytest.mark.parametrize(("urgency", "level"), [("unimportant", "negligible"), ("low", "low"), ("medium", "medium"),
                                                ("high", "high"), ("not yet assigned", None), ("end-of-life", None)])
def test_debian_urgency_as_vendor_rating(urgency: str, level: str | None) -> None:
    sev = severity.debian_vendor(urgency)
    assert (sev.level if sev else None) == level
    if sev:
        assert sev.source == f"Debian urgency: {urgency}"


@pytest.mark.parametrize(("record", "level", "source"), [
    ({"id": "ALSA-2024:0001", "summary": "Important: kernel security update"}, "high", "AlmaLinux: Important"),
    ({"id": "ALSA-2024:0002", "summary": "Critical: firefox security update"}, "critical", "AlmaLinux: Critical"),
    ({"id": "ALSA-2024:0003", "summary": "Moderate: curl security update"}, "medium", "AlmaLinux: Moderate"),
    ({"id": "ALSA-2024:0004", "summary": "Low: vim security update"}, "low", "AlmaLinux: Low"),
    ({"id": "ALBA-2019:0973", "summary": "container-tools bug fix update"}, None, None),
    ({"id": "GHSA-xxxx", "database_specific": {"severity": "MODERATE"}}, "medium", "GHSA: MODERATE"),
    ({"id": "PYSEC-1", "summary": "Important: not an AlmaLinux record"}, None, None),
])
def test_record_level_vendor_ratings(record: dict[str, Any], level: str | None, source: str | None) -> None:
    sev = severity.vendor_from_record(record)
    assert (sev.level if sev else None, sev.source if sev else None) == (level, source)


def test_debian_vendor_view_and_cvss_view(tmp_path: Path) -> None:
    db = _db(tmp_path, [
        _rec("CVE-2099-0001", "Debian:12", "glibc", OPEN, entry={"ecosystem_specific": {"urgency": "unimportant"}},
             severity=[{"type": "CVSS_V3", "score": V31_CRITICAL}]),
        _rec("CVE-2099-0002", "Debian:12", "glibc", OPEN, entry={"ecosystem_specific": {"urgency": "not yet assigned"}},
             severity=[{"type": "CVSS_V3", "score": V31_CRITICAL}]),
        _rec("CVE-2099-0003", "Debian:12", "glibc", _fixed("3.0-1"), entry={"ecosystem_specific": {"urgency": "low"}}),
    ])
    sbom = SBOM(Subject("x"), Distro("debian", "12"), (Package("libc6", "2.36-9", "deb", source_name="glibc",
                                                               source_version="2.36-9"),))
    with VulnDB(db) as vdb:
        vendor = {f.vuln_id: f for f in scan(sbom, vdb).findings}
        cvss = {f.vuln_id: f for f in scan(sbom, vdb, severity_source="cvss").findings}
    assert {k: (f.severity.level, f.severity.source) for k, f in vendor.items()} == {
        "CVE-2099-0001": ("negligible", "Debian urgency: unimportant"),
        "CVE-2099-0002": ("critical", "CVSS_V3"),  # not yet assigned: the CVSS view
        "CVE-2099-0003": ("low", "Debian urgency: low"),
    }
    assert {k: f.severity.level for k, f in cvss.items()} == {
        "CVE-2099-0001": "critical", "CVE-2099-0002": "critical", "CVE-2099-0003": "low"}
    assert vendor["CVE-2099-0001"].cvss_severity.score == 9.8
    assert {k: f.status for k, f in vendor.items()} == {
        "CVE-2099-0001": "affected", "CVE-2099-0002": "affected", "CVE-2099-0003": "fixed"}
    result = scan(sbom, VulnDB(db))
    view = view_for(result)
    assert view.counts() == {"critical": 1, "high": 0, "medium": 0, "low": 1, "negligible": 1, "unspecified": 0}
    text = render(view, Format.TEXT)
    assert "Severity       : NEGLIGIBLE from Debian urgency: unimportant; CVSS view: critical 9.8" in text
    assert "  NEGLIGIBLE  1" in text
    sarif = json.loads(render(view, Format.SARIF))
    levels = {r["ruleId"]: r["level"] for r in sarif["runs"][0]["results"]}
    assert levels == {"CVE-2099-0001": "note", "CVE-2099-0002": "error", "CVE-2099-0003": "note"}
    schema = json.loads((REPO_ROOT / "src/giropops/data/schemas/cves-json.schema.json").read_text())
    doc = json.loads(render(view, Format.JSON))
    jsonschema.validate(doc, schema)
    assert doc["summary"]["negligible"] == 1
    assert doc["findings"][0]["vulnerability"]["cvss_severity"]["level"] in ("critical", "low")


def test_disputed_entry_needs_open_range_and_no_github_review(tmp_path: Path) -> None:
    git = {"type": "GIT", "repo": "https://github.com/example/server", "events": [{"introduced": "0"},
                                                                                  {"fixed": "abc123"}]}
    reviewed = {"database_specific": {"github_reviewed": True, "severity": "LOW"}}
    db = _db(tmp_path, [
        _rec("PYSEC-9-1", "PyPI", "client", git, OPEN),  # the redis case: disputed
        _rec("PYSEC-9-2", "PyPI", "client", OPEN),  # no evidence at all: disputed
        _rec("GHSA-9-3", "PyPI", "client", OPEN, **reviewed),  # reviewed: counted
        _rec("PYSEC-9-4", "PyPI", "client", _fixed("9.0")),  # a real range: counted
        _rec("PYSEC-9-5", "PyPI", "client", OPEN, aliases=["CVE-2099-9999"]),  # confirmed by its reviewed twin below
        _rec("GHSA-9-6", "PyPI", "client", _fixed("5.0"), aliases=["CVE-2099-9999"], **reviewed),
        _rec("PYSEC-9-7", "PyPI", "client", OPEN, aliases=["CVE-2099-7777"]),  # its reviewed twin says 1.0 is not hit
        _rec("GHSA-9-8", "PyPI", "client", {"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}]},
             aliases=["CVE-2099-7777"], **reviewed),
    ])
    sbom = SBOM(Subject("x"), None, (Package("client", "1.0", "python"),))
    with VulnDB(db) as vdb:
        findings = {f.vuln_id: f for f in scan(sbom, vdb).findings}
    disputed = {k for k, f in findings.items() if f.disputed}
    assert disputed == {"PYSEC-9-1", "PYSEC-9-2", "CVE-2099-7777"}
    assert "a commit in https://github.com/example/server" in (findings["PYSEC-9-1"].disputed or "")
    assert "no version or commit evidence" in (findings["PYSEC-9-2"].disputed or "")
    assert findings["CVE-2099-9999"].disputed is None and findings["CVE-2099-9999"].fixed_version == "5.0"
    view = view_for(scan(sbom, VulnDB(db)))
    assert {f.vuln_id for f in view.findings} == {"GHSA-9-3", "PYSEC-9-4", "CVE-2099-9999"}
    assert {f.vuln_id for f in view.disputed} == disputed
    shown = view_for(scan(sbom, VulnDB(db)), show_disputed=True)
    assert len(shown.findings) == 6


def test_disputed_rule_only_for_language_ecosystems(tmp_path: Path) -> None:
    db = _db(tmp_path, [_rec("CVE-2099-5", "Debian:12", "zlib", OPEN)])
    sbom = SBOM(Subject("x"), Distro("debian", "12"), (Package("zlib1g", "1.2", "deb", source_name="zlib",
                                                               source_version="1.2"),))
    with VulnDB(db) as vdb:
        (f,) = scan(sbom, vdb).findings
    assert f.disputed is None


def test_wolfi_status_alpine_not_affected_and_ignore_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    def wolfi(rid: str, event: str) -> dict[str, Any]:
        return _rec(rid, "Wolfi", "curl", OPEN, database_specific={"status": "affected_no_fix", "wolfi_event": event})

    db = _db(tmp_path, [
        wolfi("CGA-1", "fix-not-planned"), wolfi("CGA-2", "pending-upstream-fix"), wolfi("CGA-3", "detection"),
        wolfi("CGA-4", "true-positive-determination"),
        _rec("CGA-5", "Wolfi", "curl", _fixed("9.0-r0")),
        {"id": "CGA-6", "modified": "2025-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "Wolfi",
                                                                                       "name": "curl"}}],
         "database_specific": {"status": "not_affected", "wolfi_event": "false-positive-determination"}},
    ])
    sbom = SBOM(Subject("x"), Distro("wolfi", "20230201"), (Package("curl", "8.0-r0", "apk", source_name="curl"),))
    with VulnDB(db) as vdb:
        result = scan(sbom, vdb)
    assert {f.vuln_id: f.status for f in result.findings + result.not_affected} == {
        "CGA-1": "will_not_fix", "CGA-2": "fix_deferred", "CGA-3": "under_investigation", "CGA-4": "affected",
        "CGA-5": "fixed", "CGA-6": "not_affected"}
    assert [f.vuln_id for f in result.not_affected] == ["CGA-6"]
    view = view_for(result)
    assert len(view.findings) == 5 and [f.vuln_id for f in view.not_affected] == ["CGA-6"]
    assert "not_affected" not in {f.status for f in view.findings}
    ignored = view_for(result, Filters(ignore_status=frozenset({"will_not_fix", "fix_deferred"})))
    assert {f.vuln_id for f in ignored.findings} == {"CGA-3", "CGA-4", "CGA-5"}
    assert {f.vuln_id for f in view_for(result, Filters(fixed=False)).findings} == {"CGA-1", "CGA-2", "CGA-3",
                                                                                    "CGA-4"}
    assert {f.vuln_id for f in view_for(result, Filters(fixed=True)).findings} == {"CGA-5"}

    text = render(view, Format.TEXT)
    assert "Status         : will_not_fix" in text
    assert "1 vulnerabilities the distribution marks not affected (not counted)" in text
    rootfs = tmp_path / "rootfs"
    (rootfs / "lib" / "apk" / "db").mkdir(parents=True)
    (rootfs / "etc").mkdir()
    (rootfs / "etc" / "os-release").write_text('ID=wolfi\nVERSION_ID=20230201\n')
    (rootfs / "lib" / "apk" / "db" / "installed").write_text("P:curl\nV:8.0-r0\nA:x86_64\no:curl\n\n")
    capsys.readouterr()
    assert main(["cves", f"fs://{rootfs}", "--db", str(db), "--format", "json", "--ignore-status",
                 "will_not_fix,fix_deferred", "--only-unfixed"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {f["vulnerability"]["id"]: f["status"] for f in doc["findings"]} == {
        "CGA-3": "under_investigation", "CGA-4": "affected"}
    assert main(["cves", f"fs://{rootfs}", "--db", str(db), "--ignore-status", "wontfix"]) != 0
    err = capsys.readouterr().err
    assert "unknown status 'wontfix'" in err and "Traceback" not in err


def test_a_schema_1_database_is_a_clear_error_and_db_import_rebuilds_it(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    db = _db(tmp_path, [_rec("PYSEC-1", "PyPI", "demo", _fixed("2.0"))])
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    (tmp_path / "empty").mkdir()
    capsys.readouterr()
    assert main(["cves", f"fs://{tmp_path / 'empty'}", "--db", str(db)]) != 0
    err = capsys.readouterr().err
    assert "has schema 1, this giropops needs 2" in err and "giropops db update" in err
    assert "giropops db import" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    src = tmp_path / "again.jsonl"
    src.write_text(json.dumps(_rec("PYSEC-2", "PyPI", "demo", _fixed("3.0"))) + "\n")
    assert main(["db", "import", "--db", str(db), str(src)]) == 0
    with VulnDB(db) as vdb:
        assert vdb.status().schema_version == "2"
        assert [a.id for a in vdb.advisories_for("PyPI", "demo")] == ["PYSEC-2"]  # rebuilt, not copied
