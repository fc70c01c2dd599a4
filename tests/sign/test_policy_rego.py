"""``--policy FILE`` (Rego, via regorus) on verify-attestation and verify-blob-attestation."""

from __future__ import annotations

import json
from pathlib import Path

from giropops.errors import UsageError
from giropops.sign import errors as se
from tests.sign.test_cli_offline import run
from tests.sign.test_image_layout import make_layout

ATT = Path(__file__).resolve().parent.parent / "data" / "cosign-keyless" / "attest-blob-dsse"

V1_ALLOW_CI = """package signature
import rego.v1
default allow := false
allow if {
    input.predicateType == "https://slsa.dev/provenance/v0.2"
    input.predicate.builder.id == "ci"
}
deny contains msg if {
    input.predicate.builder.id != "ci"
    msg := sprintf("builder %v is not trusted", [input.predicate.builder.id])
}
"""

# cosign's documentation writes policies in the pre-1.0 syntax
V0_OPENVEX = """package signature

allow {
  input.predicateType == "https://openvex.dev/ns"
  count(input.predicate.statements) == 0
}
"""


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _attested_blob(tmp_path: Path, keypair, builder: str) -> tuple[str, str]:
    blob = tmp_path / f"app-{builder}.bin"
    blob.write_bytes(b"binary " + builder.encode())
    pred = tmp_path / f"prov-{builder}.json"
    pred.write_text(json.dumps({"builder": {"id": builder}, "buildType": "x"}))
    env = tmp_path / f"att-{builder}.json"
    proc = run("attest-blob", "--key", str(keypair.private), "--type", "slsaprovenance", "--predicate", str(pred),
               "--output-signature", str(env), str(blob), password=keypair.password.decode())
    assert proc.returncode == 0, proc.stderr
    return str(env), str(blob)


def test_blob_attestation_policy(tmp_path, keypair):
    policy = _write(tmp_path / "ci.rego", V1_ALLOW_CI)
    env, blob = _attested_blob(tmp_path, keypair, "ci")
    proc = run("verify-blob-attestation", "--key", str(keypair.public), "--signature", env, "--policy", policy, blob)
    assert proc.returncode == 0, proc.stderr
    env, blob = _attested_blob(tmp_path, keypair, "laptop")
    proc = run("verify-blob-attestation", "--key", str(keypair.public), "--signature", env, "--policy", policy, blob)
    assert proc.returncode == se.PolicyViolationError.exit_code, proc.stderr
    assert "builder laptop is not trusted" in proc.stderr
    # without the policy the same attestation verifies: the policy is what refused it
    proc = run("verify-blob-attestation", "--key", str(keypair.public), "--signature", env, blob)
    assert proc.returncode == 0, proc.stderr


def test_cosign_vector_with_policy(tmp_path):
    ok = _write(tmp_path / "t.rego", 'package signature\nimport rego.v1\nallow if startswith(input.predicateType, '
                '"https://slsa.dev/provenance/")\n')
    no = _write(tmp_path / "n.rego", 'package signature\nimport rego.v1\nallow if input.predicateType == "x"\n')
    base = ["verify-blob-attestation", "--key", str(ATT / "cosign.pub"), "--signature",
            str(ATT / "slsa-provenance.dsse.json")]
    assert run(*base, "--policy", ok, str(ATT / "blob")).returncode == 0
    assert run(*base, "--policy", no, str(ATT / "blob")).returncode == se.PolicyViolationError.exit_code


def test_image_attestation_policy_v0_syntax(tmp_path, keypair):
    root = tmp_path / "layout"
    make_layout(root, "app:1")
    target = f"oci-dir://{root}:app:1"
    pred = tmp_path / "vex.json"
    pred.write_text('{"@context": "https://openvex.dev/ns/v0.2.0", "statements": []}')
    proc = run("attest", "--key", str(keypair.private), "--type", "openvex", "--predicate", str(pred), target,
               password=keypair.password.decode())
    assert proc.returncode == 0, proc.stderr
    policy = _write(tmp_path / "vex.rego", V0_OPENVEX)
    proc = run("verify-attestation", "--key", str(keypair.public), "--type", "openvex", "--policy", policy, target)
    assert proc.returncode == 0, proc.stderr
    assert "satisfies the policy vex.rego" in proc.stderr
    strict = _write(tmp_path / "strict.rego", V0_OPENVEX.replace("== 0", "> 0"))
    proc = run("verify-attestation", "--key", str(keypair.public), "--type", "openvex", "--policy", strict, target)
    assert proc.returncode == se.PolicyViolationError.exit_code, proc.stderr


def test_bad_policies_are_usage_errors(tmp_path, keypair):
    env, blob = _attested_blob(tmp_path, keypair, "ci")
    for name, text in (("syntax.rego", "package signature\nallow if {"), ("pkg.rego", "package other\nallow := true\n"),
                       ("p.cue", "allow: true\n")):
        proc = run("verify-blob-attestation", "--key", str(keypair.public), "--signature", env, "--policy",
                   _write(tmp_path / name, text), blob)
        assert proc.returncode == UsageError.exit_code, (name, proc.stderr)
        assert proc.stderr.count("\n") == 1, proc.stderr
    proc = run("verify-blob-attestation", "--key", str(keypair.public), "--signature", env, "--policy",
               str(tmp_path / "missing.rego"), blob)
    assert proc.returncode == UsageError.exit_code
