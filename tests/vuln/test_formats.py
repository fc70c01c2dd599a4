"""Issue 16 item 4: the formats CI systems read — CycloneDX 1.6 with vulnerabilities, SPDX 2.3 with security
references, markdown listing every package, --only-vuln-packages, and ``-o FILE`` written atomically.

CycloneDX is validated with cyclonedx-python-lib's bundled 1.6 schema (strict), SPDX with spdx-tools.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from giropops.cli.main import main
from tests.vuln.sbomfile import DEB_BASE, write

PY_OLD = [("Flask", "2.2.0"), ("Jinja2", "2.10"), ("requests", "2.19.0"), ("six", "1.16.0")]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write(tmp_path_factory.mktemp("fmt") / "app.json", "app:1", ("debian", "12"), DEB_BASE, PY_OLD)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def findings(capsys: pytest.CaptureFixture[str], db: Path, image: str, *extra: str) -> list[dict[str, Any]]:
    code, out, _ = run(capsys, "cves", image, "--db", str(db), "--format", "json", *extra)
    assert code == 0
    return list(json.loads(out)["findings"])


def test_cyclonedx_with_vulnerabilities_is_valid_1_6(full_db: Path, app: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cves", app, "--db", str(full_db), "--format", "cyclonedx")
    assert code == 0
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(out) is None
    doc = json.loads(out)
    expected = findings(capsys, full_db, app)
    assert len(doc["vulnerabilities"]) == len(expected) > 0
    components = {c["bom-ref"]: c for c in doc["components"]}
    got = set()
    for v in doc["vulnerabilities"]:
        (affects,) = v["affects"]
        comp = components[affects["ref"]]
        got.add((v["id"], comp["purl"]))
    assert got == {(f["vulnerability"]["id"], f["package"]["purl"]) for f in expected}
    flask = [v for v in doc["vulnerabilities"] if v["id"] == "CVE-2023-30861"]
    assert flask and flask[0]["recommendation"].startswith("Upgrade Flask to ")

    vex = tmp_path / "vex.json"
    vex.write_text(json.dumps({
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.invalid/v", "author": "t",
        "timestamp": "2025-01-01T00:00:00Z", "version": 1,
        "statements": [{"vulnerability": {"name": "CVE-2023-30861"}, "products": [{"@id": "pkg:pypi/flask@2.2.0"}],
                        "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}]}))
    code, out, _ = run(capsys, "cves", app, "--db", str(full_db), "--format", "cyclonedx", "--vex", str(vex))
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(out) is None
    (analysed,) = [v for v in json.loads(out)["vulnerabilities"] if "analysis" in v]
    assert analysed["id"] == "CVE-2023-30861"
    assert analysed["analysis"] == {"state": "not_affected", "justification": "code_not_reachable",
                                    "detail": "vulnerable_code_not_in_execute_path"}


def test_spdx_with_security_references_is_valid_2_3(full_db: Path, app: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "report.spdx.json"
    code, _, _ = run(capsys, "cves", app, "--db", str(full_db), "--format", "spdx", "-o", str(out_file))
    assert code == 0
    messages = validate_full_spdx_document(parse_file(str(out_file)), spdx_version="SPDX-2.3")
    assert messages == [], [m.validation_message for m in messages[:5]]
    doc = json.loads(out_file.read_text())
    refs = {(p["name"], r["referenceLocator"].rsplit("/", 1)[1])
            for p in doc["packages"] for r in p.get("externalRefs", []) if r["referenceCategory"] == "SECURITY"}
    assert refs == {(f["package"]["name"], f["vulnerability"]["id"]) for f in findings(capsys, full_db, app)}


def test_markdown_lists_every_package_and_packages_format(full_db: Path, app: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, md, _ = run(capsys, "cves", app, "--db", str(full_db), "--format", "markdown")
    assert code == 0
    vulnerable = {f["package"]["name"] for f in findings(capsys, full_db, app)}
    every = [name for name, _, _ in DEB_BASE] + [name for name, _ in PY_OLD]
    assert set(every) - vulnerable  # some packages have no vulnerability, and are listed all the same
    assert f"All {len(every)} packages" in md
    for name in every:
        assert f"| {name} | " in md
    code, out, _ = run(capsys, "cves", app, "--db", str(full_db), "--format", "packages", "--only-vuln-packages")
    listed = {line.split()[0] for line in out.splitlines()[2:]}
    assert listed == vulnerable


def test_output_file_is_written_whole_or_not_at_all(full_db: Path, app: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out" / "report.json"
    target.parent.mkdir()
    target.write_text("old")
    for fmt in ("text", "json", "sarif", "markdown", "packages", "cyclonedx", "spdx", "gitlab"):
        code, out, _ = run(capsys, "cves", app, "--db", str(full_db), "--format", fmt, "-o", str(target))
        assert code == 0 and out == "" and target.read_text() != "old"
        assert os.listdir(target.parent) == ["report.json"]  # no temporary file left beside it
    missing = tmp_path / "no-such-dir" / "r.json"
    code, _, err = run(capsys, "cves", app, "--db", str(full_db), "-o", str(missing))
    assert code == 64 and err.startswith("giropops: error: cannot write") and len(err.splitlines()) == 1
    assert not missing.parent.exists()


def test_gitlab_container_scanning_report(full_db: Path, app: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Validated against tests/data/gitlab's schema: written from GitLab's documentation (GitLab's published
    schema file is not reachable from here; see tests/data/PROVENANCE.md)."""
    import jsonschema

    from tests.support.paths import DATA

    schema = json.loads((DATA / "gitlab" / "container-scanning-report-format.schema.json").read_text())
    code, out, _ = run(capsys, "cves", app, "--db", str(full_db), "--format", "gitlab")
    assert code == 0
    doc = json.loads(out)
    jsonschema.Draft7Validator(schema).validate(doc)
    expected = findings(capsys, full_db, app)
    got = {(v["identifiers"][0]["value"], v["location"]["dependency"]["package"]["name"],
            v["location"]["dependency"]["version"]) for v in doc["vulnerabilities"]}
    assert got == {(f["vulnerability"]["id"], f["package"]["name"], f["package"]["version"]) for f in expected}
    assert {v["location"]["operating_system"] for v in doc["vulnerabilities"]} == {"debian:12"}
    assert len({v["id"] for v in doc["vulnerabilities"]}) == len(doc["vulnerabilities"])
    levels = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low", "negligible": "Info",
              "unspecified": "Unknown"}
    by_id = {(v["identifiers"][0]["value"], v["location"]["dependency"]["package"]["name"]): v["severity"]
             for v in doc["vulnerabilities"]}
    for f in expected:
        assert by_id[(f["vulnerability"]["id"], f["package"]["name"])] == levels[f["vulnerability"]["severity"]]
    broken = dict(doc, scan=dict(doc["scan"], type="sast"))
    with pytest.raises(jsonschema.ValidationError):  # the stand-in schema does reject what is wrong
        jsonschema.Draft7Validator(schema).validate(broken)


def test_scout_filters(full_db: Path, app: str, capsys: pytest.CaptureFixture[str]) -> None:
    every = findings(capsys, full_db, app)
    libs = findings(capsys, full_db, app, "--only-package", "lib.*")
    assert {f["package"]["name"] for f in libs} == {f["package"]["name"] for f in every
                                                    if f["package"]["name"].startswith("lib")}
    assert findings(capsys, full_db, app, "--only-package", "Flask") == [f for f in every
                                                                          if f["package"]["name"] == "Flask"]
    code, _, err = run(capsys, "cves", app, "--db", str(full_db), "--only-package", "lib[")
    assert code == 1 and "--only-package 'lib[' is not a regular expression" in err

    def parts(f: dict[str, Any]) -> set[str]:
        vector = f["vulnerability"]["cvss_vector"] or ""
        return {p for p in vector.split("/") if ":" in p and not p.startswith("CVSS:")}

    network = findings(capsys, full_db, app, "--only-metric", "AV:N")
    both = findings(capsys, full_db, app, "--only-metric", "av:n,PR:N")
    assert [f["vulnerability"]["id"] for f in network] == [f["vulnerability"]["id"] for f in every
                                                           if "AV:N" in parts(f)]
    assert [f["vulnerability"]["id"] for f in both] == [f["vulnerability"]["id"] for f in every
                                                        if {"AV:N", "PR:N"} <= parts(f)]
    assert 0 < len(both) < len(network) < len(every)
    code, _, err = run(capsys, "cves", app, "--db", str(full_db), "--only-metric", "network")
    assert code == 1 and "expected a CVSS vector part such as AV:N" in err


def test_compare_exit_on_package(full_db: Path, app: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    same = write(tmp_path / "same.json", "same:1", ("debian", "12"), DEB_BASE, PY_OLD, digest="sha256:" + "d" * 64)
    fewer = write(tmp_path / "fewer.json", "fewer:1", ("debian", "12"), DEB_BASE, PY_OLD[:-1])
    base = ["compare", app, "--db", str(full_db)]
    assert main([*base, "--to", same, "--exit-on", "vulnerability,package"]) == 0
    assert main([*base, "--to", fewer, "--exit-on", "vulnerability"]) == 0  # six has no vulnerability
    assert main([*base, "--to", fewer, "--exit-on", "package"]) == 2
    assert main([*base, "--to", fewer, "--exit-on", "vulnerability,package"]) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([*base, "--to", fewer, "--exit-on", "packages"])
    assert exc.value.code == 64 and "expected vulnerability or package" in capsys.readouterr().err


def test_only_package_takes_a_plain_name_with_regex_characters(full_db: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # libstdc++6 is no valid regular expression ("multiple repeat"): the name is taken literally
    image = write(tmp_path / "cxx.json", "cxx:1", ("debian", "12"), [("libstdc++6", "12.2.0-14", "gcc-12")])
    every = findings(capsys, full_db, image)
    assert every and findings(capsys, full_db, image, "--only-package", "libstdc++6") == every
