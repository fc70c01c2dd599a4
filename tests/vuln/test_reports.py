"""The ``cves``, ``quickview`` and ``compare`` commands end to end on sbom:// inputs and the test advisories."""

from __future__ import annotations

import json
import subprocess
import tarfile
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from giropops.cli.main import main
from giropops.vuln.db.store import VulnDB
from giropops.vuln.match import scan
from giropops.vuln.scan import sbom_for
from tests.support.services import require_binary
from tests.vuln.sbomfile import DEB_BASE, write

PY_OLD = [("Flask", "2.2.0"), ("Jinja2", "2.10"), ("requests", "2.19.0"), ("Werkzeug", "2.2.2")]
BASE_LAYERS = ["sha256:" + "1" * 64]
APP_LAYERS = [*BASE_LAYERS, "sha256:" + "2" * 64, "sha256:" + "3" * 64]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("sboms")
    return {
        "base": write(d / "base.json", "debian:12-slim", ("debian", "12"), DEB_BASE, digest="sha256:" + "b" * 64,
                      size=30_000_000, diff_ids=BASE_LAYERS),
        "app": write(d / "app.json", "giropops-senhas:1", ("debian", "12"), DEB_BASE, PY_OLD, size=60_000_000,
                     diff_ids=APP_LAYERS),
        "app2": write(d / "app2.json", "giropops-senhas:2", ("debian", "12"),
                      [p for p in DEB_BASE if p[0] != "tar"], [("Flask", "3.1.0"), ("Jinja2", "2.10"),
                                                                 ("gunicorn", "19.9.0")],
                      digest="sha256:" + "c" * 64, diff_ids=APP_LAYERS),
        "annotated": write(d / "annotated.json", "annotated:1", ("debian", "12"), DEB_BASE, PY_OLD,
                           annotations={"org.opencontainers.image.base.name": "debian:12-slim",
                                        "org.opencontainers.image.base.digest": "sha256:" + "b" * 64}),
        "alpine": write(d / "alpine.json", "alpine-app", ("alpine", "3.19.1"), [],
                        apks=[("libcrypto3", "3.1.4-r5", "openssl"), ("busybox", "1.36.1-r15", "busybox")]),
    }


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def cves_json(capsys: pytest.CaptureFixture[str], db: Path, image: str, *extra: str) -> dict[str, Any]:
    code, out, _ = run(capsys, "cves", image, "--db", str(db), "--format", "json", *extra)
    assert code == 0
    return dict(json.loads(out))


def schema() -> dict[str, Any]:
    text = resources.files("giropops").joinpath("data/schemas/cves-json.schema.json").read_text()
    return dict(json.loads(text))


def test_cves_text_layout(full_db: Path, images: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cves", images["app"], "--db", str(full_db))
    assert code == 0
    doc = cves_json(capsys, full_db, images["app"])
    s = doc["summary"]
    assert "## Overview" in out and "## Packages and Vulnerabilities" in out
    assert "giropops-senhas:1" in out and "sha256:" + "a" * 64 in out and "linux/amd64" in out
    assert f"{s['critical']}C {s['high']}H {s['medium']}M {s['low']}L" in out
    assert "60.0 MB" in out and f"packages         │  {len(DEB_BASE) + len(PY_OLD)}" in out
    assert "pkg:pypi/flask@2.2.0" in out and "Fixed version  : 2.2.5" in out
    assert "not fixed" in out  # bookworm carries unfixed CVEs
    assert f"{s['total']} vulnerabilities found in {s['vulnerable_packages']} packages" in out


def test_cves_json_matches_schema_and_scan(full_db: Path, images: dict[str, str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    doc = cves_json(capsys, full_db, images["app"])
    jsonschema.Draft202012Validator(schema()).validate(doc)
    with VulnDB(full_db) as db:
        result = scan(sbom_for(images["app"]), db)
    assert {(f["package"]["name"], f["vulnerability"]["id"], f["fixed_version"]) for f in doc["findings"]} == {
        (f.package.name, f.vuln_id, f.fixed_version) for f in result.findings}
    flask = [f for f in doc["findings"] if f["vulnerability"]["id"] == "CVE-2023-30861"]
    assert flask and flask[0]["fixed_version"] == "2.2.5" and flask[0]["package"]["type"] == "python"
    assert flask[0]["matches"][0]["matcher"] == "python" and flask[0]["matches"][0]["ecosystem"] == "PyPI"
    deb = [f for f in doc["findings"] if f["package"]["type"] == "deb"]
    assert deb and all(m["searched_name"] == f["package"]["source_name"] for f in deb for m in f["matches"])


@pytest.fixture(scope="session")
def sarif_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The official SARIF 2.1.0 JSON schema, as Microsoft ships it in the npm package @microsoft/jest-sarif."""
    npm = require_binary("npm")
    d = tmp_path_factory.mktemp("sarif-schema")
    subprocess.run([npm, "pack", "--silent", "@microsoft/jest-sarif@1.0.0-beta.0"], cwd=d, check=True,
                   capture_output=True, timeout=300)
    (tgz,) = d.glob("*.tgz")
    with tarfile.open(tgz) as tf:
        member = tf.extractfile("package/lib/schemas/sarif-2.1.0-rtm.5.json")
        assert member is not None
        return dict(json.loads(member.read()))


def test_cves_sarif_is_valid(full_db: Path, images: dict[str, str], capsys: pytest.CaptureFixture[str],
                             sarif_schema: dict[str, Any], tmp_path: Path) -> None:
    out_file = tmp_path / "report.sarif"
    code, out, _ = run(capsys, "cves", images["app"], "--db", str(full_db), "--format", "sarif", "--output",
                       str(out_file))
    assert code == 0 and out == ""
    doc = json.loads(out_file.read_text())
    jsonschema.Draft4Validator(sarif_schema).validate(doc)
    assert doc["version"] == "2.1.0"
    results = doc["runs"][0]["results"]
    assert len(results) == cves_json(capsys, full_db, images["app"])["summary"]["total"]
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)


def test_markdown_and_packages_formats(full_db: Path, images: dict[str, str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    _, md, _ = run(capsys, "cves", images["app"], "--db", str(full_db), "--format", "markdown")
    assert "| Target | `giropops-senhas:1` |" in md and "| HIGH | CVE-2023-30861 | <2.2.5 | 2.2.5 |" in md
    _, pk, _ = run(capsys, "cves", images["app"], "--db", str(full_db), "--format", "packages")
    lines = [ln for ln in pk.splitlines() if ln.strip()]
    assert len(lines) == 2 + len(DEB_BASE) + len(PY_OLD)
    assert any(ln.split()[:3] == ["Flask", "2.2.0", "python"] for ln in lines)


def test_filters_partition_the_findings(full_db: Path, images: dict[str, str],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    everything = cves_json(capsys, full_db, images["app"])["findings"]
    fixed = cves_json(capsys, full_db, images["app"], "--only-fixed")["findings"]
    unfixed = cves_json(capsys, full_db, images["app"], "--only-unfixed")["findings"]
    assert fixed and unfixed and len(fixed) + len(unfixed) == len(everything)
    assert all(f["fixed_version"] for f in fixed) and not any(f["fixed_version"] for f in unfixed)
    high = cves_json(capsys, full_db, images["app"], "--only-severity", "critical,high")["findings"]
    assert high and {f["vulnerability"]["severity"] for f in high} <= {"critical", "high"}
    assert len(high) == sum(f["vulnerability"]["severity"] in ("critical", "high") for f in everything)
    py = cves_json(capsys, full_db, images["app"], "--only-package-type", "python")["findings"]
    assert py and {f["package"]["type"] for f in py} == {"python"}
    assert cves_json(capsys, full_db, images["app"], "--only-package-type", "pypi")["findings"] == py  # purl type
    jinja = cves_json(capsys, full_db, images["app"], "--only-package", "Jinja2")["findings"]
    assert jinja and {f["package"]["name"] for f in jinja} == {"Jinja2"}
    one = cves_json(capsys, full_db, images["app"], "--only-cve-id", "CVE-2023-30861")["findings"]
    assert [f["vulnerability"]["id"] for f in one] == ["CVE-2023-30861"]


def test_exit_codes(full_db: Path, images: dict[str, str], capsys: pytest.CaptureFixture[str],
                    tmp_path: Path) -> None:
    assert run(capsys, "cves", images["app"], "--db", str(full_db), "--exit-code")[0] == 2
    none_left = ("--exit-code", "--only-cve-id", "CVE-1999-0")
    assert run(capsys, "cves", images["app"], "--db", str(full_db), *none_left)[0] == 0
    assert run(capsys, "cves", images["app"], "--db", str(full_db))[0] == 0
    code, _, err = run(capsys, "cves", images["app"], "--db", str(tmp_path / "none.db"), "--exit-code")
    assert code == 3 and "giropops: error: no vulnerability database" in err and "giropops db import FILES" in err
    code, _, err = run(capsys, "cves", images["app"], "--db", str(full_db), "--only-severity", "severe")
    assert code == 1 and "unknown severity" in err
    code, _, err = run(capsys, "cves", f"archive://{tmp_path / 'missing.tar'}", "--db", str(full_db))
    assert code == 1 and err.startswith("giropops: error:") and "missing.tar" in err


def test_vex_not_affected_suppresses(full_db: Path, images: dict[str, str], capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    vex = tmp_path / "app.openvex.json"
    vex.write_text(json.dumps({
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.invalid/vex-1", "author": "test",
        "timestamp": "2025-01-01T00:00:00Z", "version": 1,
        "statements": [
            {"vulnerability": {"name": "CVE-2023-30861"}, "products": [{"@id": "pkg:pypi/flask@2.2.0"}],
             "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"},
            {"vulnerability": {"name": "CVE-2024-34064"}, "products": [{"@id": "pkg:pypi/jinja2@2.10"}],
             "status": "affected"},
        ],
    }))
    before = cves_json(capsys, full_db, images["app"])
    after = cves_json(capsys, full_db, images["app"], "--vex", str(vex))
    jsonschema.Draft202012Validator(schema()).validate(after)
    assert after["summary"]["total"] == before["summary"]["total"] - 1
    (sup,) = after["suppressed"]
    assert sup["vulnerability"]["id"] == "CVE-2023-30861"
    assert sup["vex"]["justification"] == "vulnerable_code_not_in_execute_path"
    _, text, _ = run(capsys, "cves", images["app"], "--db", str(full_db), "--vex", str(vex))
    assert "1 vulnerabilities suppressed by VEX" in text
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    code, _, err = run(capsys, "cves", images["app"], "--db", str(full_db), "--vex", str(bad))
    assert code == 1 and "not an OpenVEX document" in err


def test_quickview_base_by_layers_and_annotation(full_db: Path, images: dict[str, str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    base = cves_json(capsys, full_db, images["base"])["summary"]
    app = cves_json(capsys, full_db, images["app"])["summary"]
    code, out, _ = run(capsys, "quickview", images["app"], "--db", str(full_db), "--base", images["alpine"],
                       "--base", images["base"])
    assert code == 0
    assert "debian:12-slim (from layers)" in out
    for counts in (app, base):
        assert f"{counts['critical']}C {counts['high']}H {counts['medium']}M {counts['low']}L" in out
    assert "What's next:" in out and f"giropops cves {images['app']}" in out
    code, out, _ = run(capsys, "quickview", images["annotated"], "--db", str(full_db), "--base", images["base"])
    assert code == 0 and "debian:12-slim (from annotation)" in out
    code, out, _ = run(capsys, "quickview", images["annotated"], "--db", str(full_db))
    assert code == 0 and "debian:12-slim (not scanned:" in out
    code, out, _ = run(capsys, "quickview", images["alpine"], "--db", str(full_db))
    assert code == 0 and "Base image" in out and "unknown" in out and "--base CANDIDATE_IMAGE" in out


def test_compare(full_db: Path, images: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "compare", images["app2"], "--to", images["app"], "--db", str(full_db),
                       "--format", "json")
    assert code == 0
    doc = json.loads(out)
    new = cves_json(capsys, full_db, images["app2"])
    old = cves_json(capsys, full_db, images["app"])
    assert doc["image"]["vulnerabilities"] == {k: new["summary"][k] for k in doc["delta"]}
    assert doc["delta"] == {k: new["summary"][k] - old["summary"][k] for k in doc["delta"]}
    status = {p["name"]: p["status"] for p in doc["packages"]}
    assert status["tar"] == "removed" and status["gunicorn"] == "added" and status["Flask"] == "changed"
    assert status["requests"] == "removed" and status["libc6"] == "unchanged"
    new_keys = {(f["vulnerability"]["id"], f["package"]["name"]) for f in new["findings"]}
    old_keys = {(f["vulnerability"]["id"], f["package"]["name"]) for f in old["findings"]}
    assert {(f["vulnerability"]["id"], f["package"]["name"]) for f in doc["introduced"]} == new_keys - old_keys
    assert {(f["vulnerability"]["id"], f["package"]["name"]) for f in doc["fixed"]} == old_keys - new_keys
    assert doc["env"] is None and doc["labels"] is None  # SBOMs do not record them; images do (e2e tests)

    code, text, _ = run(capsys, "compare", images["app2"], "--to", images["app"], "--db", str(full_db),
                        "--ignore-unchanged")
    assert code == 0 and "## Overview" in text and "Comparison Image" in text
    assert "- deb/tar" in text and "+ python/gunicorn" in text and "libc6" not in text
    assert "unknown: an SBOM does not record them" in text
    code, md, _ = run(capsys, "compare", images["app2"], "--to", images["app"], "--db", str(full_db),
                      "--format", "markdown")
    assert code == 0 and "| Analyzed Image | Comparison Image | Delta |" in md

    increased = doc["vulnerabilities_increased"]
    assert increased == any(doc["delta"][k] > 0 for k in doc["delta"])
    code, _, _ = run(capsys, "compare", images["app2"], "--to", images["app"], "--db", str(full_db),
                     "--exit-on", "vulnerability")
    assert code == (2 if increased else 0)
    # against the bare base, the app certainly adds vulnerabilities (its Python packages)
    code, _, _ = run(capsys, "compare", images["app"], "--to", images["base"], "--db", str(full_db),
                     "--exit-on", "vulnerability")
    assert code == 2


def test_alpine_sbom(full_db: Path, images: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    doc = cves_json(capsys, full_db, images["alpine"])
    assert doc["target"]["distro"] == {"id": "alpine", "version_id": "3.19.1"}
    assert {m["ecosystem"] for f in doc["findings"] for m in f["matches"]} == {"Alpine:v3.19"}
    assert "openssl" in {m["searched_name"] for f in doc["findings"] for m in f["matches"]}




def test_vex_product_purl_spelling_does_not_matter(full_db: Path, images: dict[str, str],
                                                   capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    libc = [f for f in cves_json(capsys, full_db, images["app"])["findings"] if f["package"]["name"] == "libc6"]
    assert libc
    target = libc[0]["vulnerability"]["id"]
    vex = tmp_path / "libc.openvex.json"
    vex.write_text(json.dumps({
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.invalid/vex-2", "author": "test",
        "timestamp": "2025-01-01T00:00:00Z", "version": 1,
        "statements": [{"vulnerability": {"name": target},
                        # '+' percent-encoded here, literal in the SBOM; qualifiers differ too
                        "products": [{"@id": "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=arm64"}],
                        "status": "not_affected", "justification": "inline_mitigations_already_exist"}],
    }))
    after = cves_json(capsys, full_db, images["app"], "--vex", str(vex))
    assert [(s["package"]["name"], s["vulnerability"]["id"]) for s in after["suppressed"]] == [("libc6", target)]


def test_database_path_with_uri_characters(full_db: Path, images: dict[str, str], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    odd = tmp_path / "we?ird#dir" / "db.sqlite3"
    odd.parent.mkdir()
    odd.write_bytes(full_db.read_bytes())
    assert cves_json(capsys, odd, images["app"])["summary"] == cves_json(capsys, full_db, images["app"])["summary"]
