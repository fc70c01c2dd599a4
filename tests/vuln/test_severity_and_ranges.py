"""Severity levels (Scout's bands over CVSS base scores) and range evaluation corner cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from giropops.sbom.model import SBOM, Distro, Package, Subject
from giropops.vuln import severity
from giropops.vuln.db import importer
from giropops.vuln.db.importer import import_paths
from giropops.vuln.db.store import VulnDB
from giropops.vuln.match import scan

# Base scores as NVD publishes them for these vectors (not computed by the code under test).
V31_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
V31_MEDIUM = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"  # 6.1 (typical XSS)
V30_HIGH = "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"  # 7.5
V2_HIGH = "AV:N/AC:L/Au:N/C:P/I:P/A:P"  # 7.5
V40_CRITICAL = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"  # 9.3


@pytest.mark.parametrize(
    ("entries", "db_specific", "level", "score", "source"),
    [
        ([{"type": "CVSS_V3", "score": V31_CRITICAL}], None, "critical", 9.8, "CVSS_V3"),
        ([{"type": "CVSS_V3", "score": V31_MEDIUM}], {"severity": "HIGH"}, "medium", 6.1, "CVSS_V3"),
        ([{"type": "CVSS_V3", "score": V30_HIGH}], None, "high", 7.5, "CVSS_V3"),
        ([{"type": "CVSS_V2", "score": V2_HIGH}], None, "high", 7.5, "CVSS_V2"),
        ([{"type": "CVSS_V2", "score": V2_HIGH}, {"type": "CVSS_V4", "score": V40_CRITICAL}], None, "critical", 9.3,
         "CVSS_V4"),
        ([{"type": "CVSS_V3", "score": "CVSS:3.1/garbage"}], {"severity": "MODERATE"}, "medium", None, "GHSA"),
        ([], {"severity": "LOW"}, "low", None, "GHSA"),
        (None, None, "unspecified", None, None),
    ],
)
def test_record_severity(entries: object, db_specific: object, level: str, score: float | None,
                         source: str | None) -> None:
    record: dict[str, object] = {"severity": entries}
    if db_specific is not None:
        record["database_specific"] = db_specific
    sev = severity.from_record(record)
    assert (sev.level, sev.score, sev.source) == (level, score, source)


@pytest.mark.parametrize(("urgency", "level"), [("high", "high"), ("medium", "medium"), ("low", "low"),
                                                ("unimportant", "low"), ("low**", "low"),
                                                ("not yet assigned", None), ("end-of-life", None)])
def test_debian_urgency(urgency: str, level: str | None) -> None:
    sev = severity.from_debian_urgency(urgency)
    assert (sev.level if sev else None) == level


def _db(tmp_path: Path, records: list[dict[str, object]]) -> VulnDB:
    src = tmp_path / "r.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    import_paths(tmp_path / "db.sqlite3", [src])
    return VulnDB(tmp_path / "db.sqlite3")


def _rec(rid: str, eco: str, name: str, *ranges: dict[str, object], **extra: object) -> dict[str, object]:
    return {"id": rid, "modified": "2025-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": eco, "name": name}, "ranges": list(ranges), **extra}]}


def test_ranges_unsorted_events_multiple_intervals_and_versions(tmp_path: Path) -> None:
    eco = {"type": "ECOSYSTEM"}
    db = _db(tmp_path, [
        # events deliberately out of order: OSV says to sort them
        _rec("R-1", "PyPI", "demo", {**eco, "events": [{"fixed": "2.5"}, {"introduced": "2.0"}, {"fixed": "1.5"},
                                                       {"introduced": "0"}]}),
        _rec("R-2", "PyPI", "demo", {"type": "SEMVER", "events": [{"introduced": "3.0.0"}, {"fixed": "3.1.0"}]}),
        _rec("R-3", "PyPI", "Demo", {**eco, "events": [{"introduced": "9.0"}]}, versions=["1.7", "4.0.0"]),
        _rec("R-4", "Debian:12", "demo-src", {**eco, "events": [{"introduced": "0"}, {"fixed": "1.0-2"}]},
             ecosystem_specific={"urgency": "high"}),
        # Debian 11 is in the database (a scan of a bullseye image needs it), just not for demo-src
        _rec("R-5", "Debian:11", "other-src", {**eco, "events": [{"introduced": "0"}]}),
    ])

    def found(pkg: Package, distro: Distro | None = None) -> set[tuple[str, str | None, str]]:
        result = scan(SBOM(Subject("t"), distro, (pkg,)), db)
        return {(f.vuln_id, f.fixed_version, f.severity.level) for f in result.findings}

    py = lambda v: Package("DEMO", v, "python")  # noqa: E731
    assert found(py("1.0")) == {("R-1", "1.5", "unspecified")}
    assert found(py("1.5")) == set()
    assert found(py("1.7")) == {("R-3", None, "unspecified")}
    assert found(py("2.4.9")) == {("R-1", "2.5", "unspecified")}
    assert found(py("3.0.5")) == {("R-2", "3.1.0", "unspecified")}
    assert found(py("4.0")) == {("R-3", None, "unspecified")}  # "4.0" == "4.0.0" in PEP 440
    assert found(py("9.1")) == {("R-3", None, "unspecified")}
    bookworm = Distro("debian", "12")
    deb = Package("libdemo1", "1.0-1+b1", "deb", source_name="demo-src", source_version="1.0-1")
    assert found(deb, bookworm) == {("R-4", "1.0-2", "high")}  # severity from Debian urgency
    assert found(deb, Distro("debian", "11")) == set()  # another release
    assert found(deb, None) == set()  # no distro: Debian advisories cannot apply


def test_uncomparable_installed_version_is_a_note_not_a_crash(tmp_path: Path) -> None:
    db = _db(tmp_path, [_rec("R-1", "PyPI", "demo", {"type": "ECOSYSTEM", "events": [{"introduced": "0"}]})])
    result = scan(SBOM(Subject("t"), None, (Package("demo", "not-a-version!", "python"),)), db)
    assert result.findings == () and "not compared" in result.notes[0]


def test_huge_json_file_is_reported_and_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "MAX_JSON_FILE_BYTES", 1000)
    big = tmp_path / "big.json"
    big.write_text(json.dumps([_rec(f"B-{i}", "PyPI", "x", {"type": "ECOSYSTEM", "events": [{"introduced": "0"}]})
                               for i in range(50)]))
    small = tmp_path / "small.json"
    small.write_text(json.dumps(_rec("S-1", "PyPI", "x", {"type": "ECOSYSTEM", "events": [{"introduced": "0"}]})))
    report = import_paths(tmp_path / "db.sqlite3", [big, small])
    assert report.imported == 1 and report.skipped == 1 and "larger than" in report.problems[0].reason


def test_severity_borrowed_from_another_record_of_the_same_cve(tmp_path: Path) -> None:
    ev = {"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}
    alpine = _rec("ALPINE-CVE-2099-0001", "Alpine:v3.19", "openssl", ev)
    alpine["upstream"] = ["CVE-2099-0001"]
    ghsa = _rec("GHSA-aaaa-bbbb-cccc", "PyPI", "other", ev)
    ghsa.update(aliases=["CVE-2099-0001"], severity=[{"type": "CVSS_V3", "score": V31_CRITICAL}])
    withdrawn = _rec("GHSA-dddd-eeee-ffff", "PyPI", "other2", ev)
    withdrawn.update(aliases=["CVE-2099-0002"], withdrawn="2025-01-02T00:00:00Z",
                     severity=[{"type": "CVSS_V3", "score": V31_CRITICAL}])
    alpine2 = _rec("ALPINE-CVE-2099-0002", "Alpine:v3.19", "openssl", ev)
    alpine2["upstream"] = ["CVE-2099-0002"]
    ghsa_level_only = _rec("GHSA-1111-2222-3333", "Alpine:v3.19", "openssl", ev)
    ghsa_level_only.update(aliases=["CVE-2099-0003"], database_specific={"severity": "LOW"})
    db = _db(tmp_path, [alpine, ghsa, withdrawn, alpine2, ghsa_level_only])
    sbom = SBOM(Subject("t"), Distro("alpine", "3.19.1"), (Package("libcrypto3", "3.1.4-r5", "apk",
                                                                    source_name="openssl"),))
    sev = {f.vuln_id: (f.severity.level, f.severity.score, f.severity.source) for f in scan(sbom, db).findings}
    assert sev["CVE-2099-0001"] == ("critical", 9.8, "CVSS_V3 via GHSA-aaaa-bbbb-cccc")
    assert sev["CVE-2099-0002"] == ("unspecified", None, None)  # the only scored record is withdrawn
    assert sev["CVE-2099-0003"] == ("low", None, "GHSA: LOW")  # the vendor view (default): GitHub's rating
    cvss = {f.vuln_id: (f.severity.level, f.severity.source) for f in scan(sbom, db, severity_source="cvss").findings}
    assert cvss["CVE-2099-0003"] == ("low", "GHSA")  # the CVSS view falls back to it too
    assert cvss["CVE-2099-0001"] == ("critical", "CVSS_V3 via GHSA-aaaa-bbbb-cccc")
