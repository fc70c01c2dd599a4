"""``giropops policy``: every built-in policy seen failing and passing, against a real registry and real advisories."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from giropops.cli import exitcodes
from giropops.cli.main import main
from giropops.oci.reference import Reference
from giropops.oci.transport import write_image
from giropops.reco.base import BASE_DIGEST, BASE_NAME
from tests.reco.conftest import World
from tests.reco.scans import separate_scan
from tests.reco.world import BASES, Deb, build_app

SPDX = "https://spdx.dev/Document"


@dataclass
class Keys:
    good: Path
    other: Path


@pytest.fixture(scope="module")
def keys(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    """``app:signed``: built on the current 3.11-slim as user 65532, signed and given an SPDX attestation."""
    from giropops.oci.registry import RegistryClient
    from giropops.sign.image import attest_image, sign_image
    from giropops.sign.keys import SigningKey
    from giropops.sign.storage import RegistryStore

    new = world.images["3.11-slim"]
    app = build_app(new, annotations={BASE_NAME: f"{world.python}:3.11-slim", BASE_DIGEST: str(new.digest)},
                    user="65532", created_days=310)
    write_image(app, f"registry://{world.apps}:signed")
    signer, stranger = SigningKey.generate(), SigningKey.generate()
    ref = Reference.parse(f"{world.apps}:signed")
    store = RegistryStore(RegistryClient(ref.registry_host), ref)
    sign_image(store, signer)
    predicate = json.dumps({"spdxVersion": "SPDX-2.3", "name": "app", "packages": []}).encode()
    attest_image(store, signer, SPDX, predicate)
    d = tmp_path_factory.mktemp("keys")
    (d / "cosign.pub").write_bytes(signer.public().pem())
    (d / "other.pub").write_bytes(stranger.public().pem())
    yield Keys(d / "cosign.pub", d / "other.pub")


def policy(world: World, capsys: pytest.CaptureFixture[str], tag: str, *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["policy", f"{world.apps}:{tag}", "--db", str(world.db), "--catalog", str(world.catalog),
                 "--format", "json", *args])
    out = capsys.readouterr()
    assert code in (exitcodes.OK, exitcodes.FINDINGS), out.err
    doc: dict[str, Any] = json.loads(out.out)
    return code, doc


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["status"] for p in doc["policies"]}


def by_name(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in doc["policies"] if p["name"] == name)


def test_everything_fails_on_the_old_root_unsigned_image(world: World, keys: Keys, capsys) -> None:
    code, doc = policy(world, capsys, "annotated", "--key", str(keys.good))
    assert code == exitcodes.FINDINGS and doc["passed"] is False
    assert statuses(doc) == {
        "fixable-vulnerabilities": "fail", "non-root": "fail", "base-up-to-date": "fail", "signed": "fail",
        "sbom-attestation": "fail", "no-copyleft": "pass",
    }
    scan = separate_scan(world.app_images["annotated"], BASES["3.11-slim@old"], world.db, world.advisory_files)
    fixable = scan.fixable["critical"] + scan.fixable["high"]
    assert fixable > 0
    fv = by_name(doc, "fixable-vulnerabilities")
    assert fv["reason"] == f"{fixable} critical/high vulnerabilities with a fix available"
    assert len(fv["details"]) == fixable
    assert by_name(doc, "non-root")["reason"] == "no USER is set: the image runs as root"
    stale = by_name(doc, "base-up-to-date")["reason"]
    assert "refresh pending" in stale and str(world.images["3.11-slim"].digest) in stale
    assert "no signatures found" in by_name(doc, "signed")["reason"]


def test_everything_passes_on_the_signed_current_image(world: World, keys: Keys, capsys) -> None:
    code, doc = policy(world, capsys, "signed", "--key", str(keys.good))
    assert statuses(doc) == dict.fromkeys(
        ("fixable-vulnerabilities", "non-root", "base-up-to-date", "signed", "sbom-attestation", "no-copyleft"),
        "pass")
    assert code == exitcodes.OK and doc["passed"] is True
    scan = separate_scan(world.images["3.11-slim"], BASES["3.11-slim"], world.db, world.advisory_files)
    assert scan.fixable["critical"] + scan.fixable["high"] == 0 and scan.total > 0
    assert by_name(doc, "fixable-vulnerabilities")["reason"] == (
        f"0 critical/high vulnerabilities with a fix available (of {scan.total} vulnerabilities in total)")
    assert by_name(doc, "non-root")["reason"] == "runs as user '65532'"
    assert by_name(doc, "sbom-attestation")["reason"] == f"an SBOM attestation ({SPDX}) verifies with cosign.pub"


def test_signature_with_another_key_fails(world: World, keys: Keys, capsys) -> None:
    code, doc = policy(world, capsys, "signed", "--key", str(keys.other))
    assert code == exitcodes.FINDINGS
    assert statuses(doc)["signed"] == "fail"
    assert statuses(doc)["sbom-attestation"] == "fail"


def test_without_a_key(world: World, keys: Keys, capsys) -> None:
    code, doc = policy(world, capsys, "signed")
    assert by_name(doc, "signed") == {"name": "signed", "title": "Signed with the given key", "status": "nodata",
                                      "reason": "no key given (--key)", "details": []}
    assert by_name(doc, "sbom-attestation")["status"] == "pass"
    assert "not checked" in by_name(doc, "sbom-attestation")["reason"]
    assert code == exitcodes.OK  # "no data" passes unless the policy file says otherwise
    _, doc = policy(world, capsys, "current")
    assert by_name(doc, "sbom-attestation")["reason"] == "no SBOM attestation is attached to the image"


def test_copyleft(world: World, capsys) -> None:
    code, doc = policy(world, capsys, "gpl")
    cl = by_name(doc, "no-copyleft")
    assert cl["status"] == "fail" and cl["details"] == ["deb/libreadline8 8.2-1.3: GPL-3+"]
    assert code == exitcodes.FINDINGS


def test_base_unknown_is_no_data(world: World, capsys) -> None:
    _, doc = policy(world, capsys, "bare")
    assert by_name(doc, "base-up-to-date")["status"] == "nodata"
    assert "could not be determined" in by_name(doc, "base-up-to-date")["reason"]


def test_no_database_is_an_error_not_no_data(world: World, capsys, tmp_path: Path) -> None:
    """A missing database used to make fixable-vulnerabilities "no data" (a pass for CI): it is an error now."""
    code = main(["policy", f"{world.apps}:current", "--db", str(tmp_path / "missing.sqlite3"),
                 "--catalog", str(world.catalog), "--format", "json"])
    out = capsys.readouterr()
    assert code == exitcodes.DB_NOT_READY and out.out == ""
    assert out.err.startswith("giropops: error: no vulnerability database") and "giropops db update" in out.err
    assert len(out.err.splitlines()) == 1
    # with the policy disabled, no database is needed
    policy = tmp_path / "policy.yaml"
    policy.write_text("policies:\n  fixable-vulnerabilities: false\n")
    code = main(["policy", f"{world.apps}:current", "--db", str(tmp_path / "missing.sqlite3"),
                 "--catalog", str(world.catalog), "--format", "json", "--policy", str(policy)])
    doc = json.loads(capsys.readouterr().out)
    assert "fixable-vulnerabilities" not in [p["name"] for p in doc["policies"]]
    assert [p["name"] for p in doc["policies"] if p["status"] == "fail"] == ["sbom-attestation"]
    assert code == exitcodes.FINDINGS


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    return p


def test_policy_file_disables_and_tunes(world: World, capsys, tmp_path: Path) -> None:
    scan = separate_scan(world.app_images["annotated"], BASES["3.11-slim@old"], world.db, world.advisory_files)
    crit = scan.fixable["critical"]
    fixable = crit + scan.fixable["high"]
    cfg = write(tmp_path, (
        "policies:\n"
        f"  fixable-vulnerabilities: {{severities: [critical], max: {crit}}}\n"
        "  non-root: false\n  base-up-to-date: {enabled: false}\n  sbom-attestation: {enabled: false}\n"
        "  signed: {enabled: false}\n"
    ))
    code, doc = policy(world, capsys, "annotated", "--policy", str(cfg))
    assert statuses(doc) == {"fixable-vulnerabilities": "pass", "no-copyleft": "pass"}
    assert code == exitcodes.OK
    cfg = write(tmp_path, (
        f"policies:\n  fixable-vulnerabilities: {{max: {fixable - 1}}}\n"
        "  no-copyleft: {licenses: [Apache-2.0]}\n"
    ))
    code, doc = policy(world, capsys, "annotated", "--policy", str(cfg))
    assert by_name(doc, "fixable-vulnerabilities")["reason"] == (
        f"{fixable} critical/high vulnerabilities with a fix available (at most {fixable - 1} allowed)")
    assert by_name(doc, "no-copyleft")["details"] == ["deb/libssl3 3.0.9-1: Apache-2.0"]
    assert code == exitcodes.FINDINGS


def test_negligible_threshold_and_severity_source(world: World, capsys, tmp_path: Path) -> None:
    """``severities: [negligible]`` counts Debian's "unimportant" findings with a fix; the CVSS view has none."""
    scan = separate_scan(world.app_images["annotated"], BASES["3.11-slim@old"], world.db, world.advisory_files)
    cfg = write(tmp_path, (
        "policies:\n  fixable-vulnerabilities: {severities: [negligible, low]}\n"
        "  non-root: false\n  base-up-to-date: {enabled: false}\n  sbom-attestation: {enabled: false}\n"
        "  signed: {enabled: false}\n  no-copyleft: {enabled: false}\n"
    ))
    _, doc = policy(world, capsys, "annotated", "--policy", str(cfg))
    vendor = by_name(doc, "fixable-vulnerabilities")
    n = scan.fixable["negligible"] + scan.fixable["low"]
    assert vendor["reason"].startswith(f"{n} negligible/low vulnerabilit")
    assert {d.split("(", 1)[1].split(")", 1)[0] for d in vendor["details"]} <= {"negligible", "low"}
    _, doc = policy(world, capsys, "annotated", "--policy", str(cfg), "--severity-source", "cvss")
    cvss = by_name(doc, "fixable-vulnerabilities")
    assert "(negligible)" not in " ".join(cvss["details"])


def test_no_data_can_fail(world: World, capsys, tmp_path: Path) -> None:
    cfg = write(tmp_path, "no_data: fail\npolicies:\n  base-up-to-date: false\n")
    code, doc = policy(world, capsys, "current", "--policy", str(cfg))
    assert statuses(doc)["signed"] == "nodata"
    assert code == exitcodes.FINDINGS


@pytest.mark.parametrize(("text", "message"), [
    ("policies:\n  no-such-policy: true\n", "policies.no-such-policy: unknown policy"),
    ("policies:\n  non-root: {enabled: 'yes'}\n", "policies.non-root.enabled must be true or false"),
    ("policies:\n  fixable-vulnerabilities: {severities: [urgent]}\n", "severities must be a non-empty list"),
    ("policies:\n  fixable-vulnerabilities: {max: -1}\n", "max must be a non-negative integer"),
    ("policies: [\n", "not valid YAML"),
    ("- just a list\n", "a policy file is a mapping"),
    ("policies:\n  non-root: {threshold: 3}\n", "unknown key(s) threshold"),
    ("no_data: maybe\n", "no_data must be 'pass' or 'fail'"),
])
def test_bad_policy_files(world: World, capsys, tmp_path: Path, text: str, message: str) -> None:
    code = main(["policy", f"{world.apps}:current", "--db", str(world.db), "--policy", str(write(tmp_path, text))])
    out = capsys.readouterr()
    assert code == exitcodes.ERROR
    assert out.out == ""
    assert out.err.startswith("giropops: error: ") and message in out.err
    assert "Traceback" not in out.err


def test_text_and_markdown(world: World, capsys) -> None:
    code = main(["policy", f"{world.apps}:gpl", "--db", str(world.db), "--catalog", str(world.catalog)])
    out = capsys.readouterr().out
    assert code == exitcodes.FINDINGS
    assert "  ✗ FAILED   No copyleft licences [no-copyleft]" in out.splitlines()
    assert "        - deb/libreadline8 8.2-1.3: GPL-3+" in out.splitlines()
    assert out.rstrip().endswith("0 passed, 5 failed, 1 without data")
    code = main(["policy", f"{world.apps}:gpl", "--db", str(world.db), "--catalog", str(world.catalog),
                 "--format", "markdown"])
    out = capsys.readouterr().out
    assert "| No copyleft licences (`no-copyleft`) | ✗ FAILED | 1 package under a listed copyleft licence |" in out


def test_extra_debs_counted(world: World) -> None:
    """The GPL app's extra package is cataloged and scanned like the rest (the oracle agrees)."""
    scan = separate_scan(world.app_images["gpl"], BASES["3.11-slim@old"], world.db, world.advisory_files,
                         (Deb("libreadline8", "readline", "8.2-1.3", "GPL-3+"),))
    assert scan.packages == len(BASES["3.11-slim@old"].debs) + len(BASES["3.11-slim@old"].pips) + 1


def test_exit_codes_of_the_real_command(world: World, keys: Keys, tmp_path: Path) -> None:
    """What a CI job sees: the ``giropops`` process's exit status."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(tmp_path / "cache")}
    common = ["--db", str(world.db), "--catalog", str(world.catalog), "--key", str(keys.good)]
    bad = subprocess.run([sys.executable, "-m", "giropops", "policy", f"{world.apps}:annotated", *common],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == exitcodes.FINDINGS, bad.stderr
    assert "1 passed, 5 failed, 0 without data" in bad.stdout
    good = subprocess.run([sys.executable, "-m", "giropops", "policy", f"{world.apps}:signed", *common],
                          capture_output=True, text=True, env=env, timeout=300)
    assert good.returncode == exitcodes.OK, good.stdout + good.stderr
    assert "6 passed, 0 failed, 0 without data" in good.stdout
    broken = subprocess.run([sys.executable, "-m", "giropops", "policy", f"{world.apps}:signed", *common[:4],
                             "--key", str(tmp_path / "missing.pub")], capture_output=True, text=True, env=env,
                            timeout=300)
    assert broken.returncode not in (exitcodes.OK, exitcodes.FINDINGS)
    assert broken.stderr.startswith("giropops: error:") and "Traceback" not in broken.stderr
