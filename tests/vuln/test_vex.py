"""Issue 16 item 6: VEX beyond OpenVEX not_affected — every OpenVEX status, CSAF 2.0 VEX, CycloneDX VEX,
``--vex-location DIR`` and ``--show-suppressed``.  Each document suppresses exactly what it says."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from giropops.cli.main import main
from tests.vuln.sbomfile import DEB_BASE, write

PY_OLD = [("Flask", "2.2.0"), ("Jinja2", "2.10"), ("requests", "2.19.0")]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write(tmp_path_factory.mktemp("vex") / "app.json", "app:1", ("debian", "12"), DEB_BASE, PY_OLD)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def report(capsys: pytest.CaptureFixture[str], db: Path, app: str, *extra: str) -> dict[str, Any]:
    code, out, err = run(capsys, "cves", app, "--db", str(db), "--format", "json", *extra)
    assert code == 0, err
    return dict(json.loads(out))


def key(f: dict[str, Any]) -> tuple[str, str]:
    return (f["vulnerability"]["id"], f["package"]["purl"])


@pytest.fixture(scope="module")
def picks(full_db: Path, app: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """One finding of each Python package, to make statements about (taken from the unfiltered report)."""
    code = main(["cves", app, "--db", str(full_db), "--format", "json",
                 "-o", str(tmp_path_factory.mktemp("r") / "r.json")])
    assert code == 0
    doc = json.loads(next(tmp_path_factory.getbasetemp().glob("r*/r.json")).read_text())
    out: dict[str, dict[str, Any]] = {}
    for f in doc["findings"]:
        name = f["package"]["name"]
        if f["package"]["type"] == "python" and f["vulnerability"]["id"].startswith("CVE-"):
            out.setdefault(name, f)
    jinja = [f for f in doc["findings"]
             if f["package"]["name"] == "Jinja2" and f["vulnerability"]["id"].startswith("CVE-")]
    assert {"Flask", "Jinja2", "requests"} <= set(out) and len(jinja) >= 2
    out["Jinja2#2"] = jinja[1]
    return out


def openvex(picks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    def st(name: str, status: str, **extra: str) -> dict[str, Any]:
        f = picks[name]
        return {"vulnerability": {"name": f["vulnerability"]["id"]}, "products": [{"@id": f["package"]["purl"]}],
                "status": status, **extra}

    return {"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.invalid/vex", "author": "t",
            "timestamp": "2025-01-01T00:00:00Z", "version": 1,
            "statements": [st("Flask", "not_affected", justification="vulnerable_code_not_in_execute_path"),
                           st("Jinja2", "fixed"),
                           st("requests", "affected", action_statement="upgrade"),
                           st("Jinja2#2", "under_investigation", impact_statement="being checked")]}


def test_every_openvex_status(full_db: Path, app: str, picks: dict[str, dict[str, Any]], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    vex = tmp_path / "doc.openvex.json"
    vex.write_text(json.dumps(openvex(picks)))
    before = report(capsys, full_db, app)
    after = report(capsys, full_db, app, "--vex", str(vex))
    assert {key(s) for s in after["suppressed"]} == {key(picks["Flask"]), key(picks["Jinja2"])}
    assert {s["vex"]["status"] for s in after["suppressed"]} == {"not_affected", "fixed"}
    assert after["summary"]["total"] == before["summary"]["total"] - 2
    kept = {key(f): f for f in after["findings"]}
    assert kept[key(picks["requests"])]["vex"]["status"] == "affected"
    investigating = kept[key(picks["Jinja2#2"])]["vex"]
    assert investigating["status"] == "under_investigation" and investigating["impact_statement"] == "being checked"
    assert sum(1 for f in after["findings"] if f["vex"] is not None) == 2

    _, text, _ = run(capsys, "cves", app, "--db", str(full_db), "--vex", str(vex))
    assert "2 vulnerabilities suppressed by VEX (list them with --show-suppressed)" in text
    assert "VEX            : under_investigation — being checked (doc.openvex.json)" in text
    _, text, _ = run(capsys, "cves", app, "--db", str(full_db), "--vex", str(vex), "--show-suppressed")
    flask = picks["Flask"]["vulnerability"]["id"]
    assert f"{flask} in Flask 2.2.0: not_affected: vulnerable_code_not_in_execute_path (doc.openvex.json)" in text


def csaf(picks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    f, j = picks["Flask"], picks["Jinja2"]
    return {
        "document": {"category": "csaf_vex", "csaf_version": "2.0", "title": "t",
                     "publisher": {"category": "vendor", "name": "t", "namespace": "https://example.invalid"},
                     "tracking": {"id": "t-1", "status": "final", "version": "1", "initial_release_date": "2025-01-01",
                                  "current_release_date": "2025-01-01",
                                  "revision_history": [{"date": "2025-01-01", "number": "1", "summary": "x"}]}},
        "product_tree": {
            "branches": [{"category": "vendor", "name": "pallets", "branches": [
                {"category": "product_version", "name": "flask 2.2.0",
                 "product": {"product_id": "FLASK", "name": "flask 2.2.0",
                             "product_identification_helper": {"purl": f["package"]["purl"]}}}]}],
            "full_product_names": [{"product_id": "JINJA", "name": "jinja2 2.10",
                                    "product_identification_helper": {"purl": j["package"]["purl"]}},
                                   {"product_id": "APP", "name": "app"}],
            "relationships": [{"category": "default_component_of", "product_reference": "JINJA",
                               "relates_to_product_reference": "APP",
                               "full_product_name": {"product_id": "APP:JINJA", "name": "jinja2 in app"}}],
        },
        "vulnerabilities": [
            {"cve": f["vulnerability"]["id"], "product_status": {"known_not_affected": ["FLASK"]},
             "flags": [{"label": "vulnerable_code_not_in_execute_path", "product_ids": ["FLASK"]}],
             "threats": [{"category": "impact", "details": "not called", "product_ids": ["FLASK"]}]},
            {"cve": j["vulnerability"]["id"], "product_status": {"fixed": ["APP:JINJA"]}},
            {"cve": picks["requests"]["vulnerability"]["id"], "product_status": {"known_affected": ["APP"]}},
        ],
    }


def cyclonedx(picks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    f, r = picks["Flask"], picks["requests"]
    return {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
            "components": [{"bom-ref": "flask-ref", "type": "library", "name": "flask", "version": "2.2.0",
                            "purl": f["package"]["purl"]}],
            "vulnerabilities": [
                {"id": f["vulnerability"]["id"], "affects": [{"ref": "flask-ref"}],
                 "analysis": {"state": "false_positive", "justification": "code_not_reachable", "detail": "dead code"}},
                {"id": r["vulnerability"]["id"], "affects": [{"ref": r["package"]["purl"]}],
                 "analysis": {"state": "in_triage"}},
                {"id": "CVE-2000-0001", "affects": [{"ref": "flask-ref"}]},  # no analysis: not a statement
            ]}


def test_csaf_vex(full_db: Path, app: str, picks: dict[str, dict[str, Any]], tmp_path: Path,
                  capsys: pytest.CaptureFixture[str]) -> None:
    vex = tmp_path / "doc.csaf.json"
    vex.write_text(json.dumps(csaf(picks)))
    after = report(capsys, full_db, app, "--vex", str(vex))
    sup = {key(s): s["vex"] for s in after["suppressed"]}
    assert set(sup) == {key(picks["Flask"]), key(picks["Jinja2"])}  # through a branch and a relationship
    assert sup[key(picks["Flask"])] == {"status": "not_affected", "impact_statement": "not called",
                                        "justification": "vulnerable_code_not_in_execute_path", "document": str(vex)}
    assert sup[key(picks["Jinja2"])]["status"] == "fixed"
    # known_affected names the product "app", which is not the package's purl: nothing to say about requests
    assert all(f["vex"] is None for f in after["findings"])


def test_cyclonedx_vex(full_db: Path, app: str, picks: dict[str, dict[str, Any]], tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    vex = tmp_path / "doc.cdx.json"
    vex.write_text(json.dumps(cyclonedx(picks)))
    before = report(capsys, full_db, app)
    after = report(capsys, full_db, app, "--vex", str(vex))
    assert [key(s) for s in after["suppressed"]] == [key(picks["Flask"])]
    assert after["suppressed"][0]["vex"]["justification"] == "code_not_reachable"
    assert after["summary"]["total"] == before["summary"]["total"] - 1
    kept = {key(f): f for f in after["findings"]}
    assert kept[key(picks["requests"])]["vex"]["status"] == "under_investigation"


def test_vex_location_reads_every_document(full_db: Path, app: str, picks: dict[str, dict[str, Any]],
                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "vex.d"
    (d / "sub").mkdir(parents=True)
    (d / "a.openvex.json").write_text(json.dumps(openvex(picks)))
    (d / "sub" / "b.csaf.json").write_text(json.dumps(csaf(picks)))
    (d / "c.cdx.json").write_text(json.dumps(cyclonedx(picks)))
    (d / "notes.json").write_text('{"hello": "world"}')
    code, out, err = run(capsys, "cves", app, "--db", str(full_db), "--format", "json", "--vex-location", str(d))
    assert code == 0 and "notes.json: not a VEX document, passed over" in err
    doc = json.loads(out)
    assert {key(s) for s in doc["suppressed"]} == {key(picks["Flask"]), key(picks["Jinja2"])}
    files = [str(p) for p in sorted(d.rglob("*.json")) if p.name != "notes.json"]
    one_by_one = report(capsys, full_db, app, *[a for f in files for a in ("--vex", f)])
    assert doc["summary"] == one_by_one["summary"]

    bad = tmp_path / "bad"
    shutil.copytree(d, bad)
    (bad / "broken.json").write_text("{")
    code, _, err = run(capsys, "cves", app, "--db", str(full_db), "--vex-location", str(bad))
    assert code == 1 and "broken.json is not valid JSON" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "cves", app, "--db", str(full_db), "--vex", str(d / "notes.json"))
    assert code == 1 and "is not a VEX document" in err
