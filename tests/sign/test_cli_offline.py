"""The signing commands as a user runs them, offline, on an OCI layout directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from giropops.errors import UsageError
from giropops.sign import errors as se
from tests.sign.test_image_layout import make_layout


def run(*args: str, password: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"}
    if password is not None:
        env["COSIGN_PASSWORD"] = password
    proc = subprocess.run([sys.executable, "-m", "giropops", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, stdin=subprocess.DEVNULL, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_generate_key_pair_prefix_and_no_overwrite(tmp_path):
    proc = run("generate-key-pair", "--output-key-prefix", "team", password="pw", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    key = (tmp_path / "team.key").read_bytes()
    assert key.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
    proc = run("generate-key-pair", "--output-key-prefix", "team", password="pw", cwd=tmp_path)
    assert proc.returncode == se.KeyExistsError.exit_code
    assert (tmp_path / "team.key").read_bytes() == key
    proc = run("generate-key-pair", "--output-key-prefix", "team", "--force", password="pw", cwd=tmp_path)
    assert proc.returncode == 0
    assert (tmp_path / "team.key").read_bytes() != key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team.key", "team.pub"]


def test_no_password_and_no_terminal_is_a_usage_error(tmp_path):
    proc = run("generate-key-pair", cwd=tmp_path)
    assert proc.returncode == UsageError.exit_code
    assert "COSIGN_PASSWORD" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_sign_verify_attest_layout_via_cli(tmp_path, keypair):
    root = tmp_path / "layout"
    make_layout(root, "app:1")
    target = f"oci-dir://{root}:app:1"
    proc = run("sign", "--key", str(keypair.private), "-a", "git=abc", target, password=keypair.password.decode())
    assert proc.returncode == 0, proc.stderr
    proc = run("verify", "--key", str(keypair.public), "-a", "git=abc", target)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["optional"] == {"git": "abc"}
    pred = tmp_path / "vex.json"
    pred.write_text('{"@context": "https://openvex.dev/ns/v0.2.0", "statements": []}')
    proc = run("attest", "--key", str(keypair.private), "--type", "openvex", "--predicate", str(pred), target,
               password=keypair.password.decode())
    assert proc.returncode == 0, proc.stderr
    proc = run("verify-attestation", "--key", str(keypair.public), "--type", "openvex", target)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["predicateType"] == "https://openvex.dev/ns"
    proc = run("tree", target)
    assert "https://openvex.dev/ns" in proc.stdout and ".sig" in proc.stdout


def test_bad_inputs_are_clear_errors(tmp_path, keypair):
    root = tmp_path / "layout"
    make_layout(root, "app:1")
    target = f"oci-dir://{root}"
    assert run("sign", "--key", str(keypair.private), "-a", "novalue", target,
               password="x").returncode == UsageError.exit_code
    assert run("sign", "--key", str(keypair.private), "--tlog-upload=true", target,
               password="x").returncode == UsageError.exit_code
    assert run("attest", "--key", str(keypair.private), "--type", "custom", target,
               password="x").returncode == UsageError.exit_code
    assert run("attest", "--key", str(keypair.private), "--type", "not a type", "--predicate", "x", target,
               password="x").returncode == UsageError.exit_code
    proc = run("verify", "--key", str(tmp_path / "missing.pub"), target)
    assert proc.returncode == se.KeyFormatError.exit_code and "missing.pub" in proc.stderr
    proc = run("verify", "--key", str(keypair.public), f"oci-dir://{tmp_path / 'nope'}")
    assert proc.returncode != 0 and "not an OCI image layout" in proc.stderr


def _layout_from_vector(root: Path, case: str) -> str:
    """An OCI layout holding a containers-image vector's manifest and its cosign signature layer."""
    import hashlib

    from giropops.oci.model import Descriptor, Digest
    from giropops.sign.attached import SignatureLayer
    from giropops.sign.image import attached_manifest
    from giropops.sign.storage import LayoutStore
    from tests.support.paths import COSIGN_VECTORS

    d = COSIGN_VECTORS / "containers-image" / case
    manifest = (d / "manifest.json").read_bytes()
    digest = hashlib.sha256(manifest).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "blobs" / "sha256" / digest).write_bytes(manifest)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    mtype = json.loads(manifest)["mediaType"]
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": mtype, "digest": f"sha256:{digest}", "size": len(manifest)}]}))
    layer = SignatureLayer.from_containers_image((d / "signature-1").read_bytes())
    desc = Descriptor(layer.media_type, Digest.of(layer.payload), len(layer.payload), layer.annotations)
    raw, config = attached_manifest([desc])
    LayoutStore(root).write_attached(Digest("sha256", digest), "sig", raw,
                                     {desc.digest: layer.payload, Digest.of(config): config})
    return f"oci-dir://{root}"


def test_verify_with_own_pki_roots(tmp_path):
    from tests.support.paths import COSIGN_VECTORS

    d = COSIGN_VECTORS / "containers-image" / "cosign-pki-valid"
    target = _layout_from_vector(tmp_path / "pki", "cosign-pki-valid")
    proc = run("verify", "--ca-roots", str(d / "pki_root_crts.pem"), target)
    assert proc.returncode == 0, proc.stderr
    assert "certificate authority" in proc.stderr
    assert json.loads(proc.stdout)[0]["critical"]["identity"]["docker-reference"] == "localhost:5000/test"
    fulcio = COSIGN_VECTORS / "containers-image" / "cosign-fulcio-rekor-valid" / "fulcio_v1.crt.pem"
    proc = run("verify", "--ca-roots", str(fulcio), target)
    assert proc.returncode == se.CertificateError.exit_code, proc.stderr
    proc = run("verify", "--key", str(d / "cosign.pub"), "--ca-roots", str(fulcio), target)
    assert proc.returncode == UsageError.exit_code


def test_verify_keyless_fulcio_with_identity_and_rekor(tmp_path):
    from tests.support.paths import COSIGN_VECTORS

    d = COSIGN_VECTORS / "containers-image" / "cosign-fulcio-rekor-valid"
    target = _layout_from_vector(tmp_path / "fulcio", "cosign-fulcio-rekor-valid")
    base = ["verify", "--ca-roots", str(d / "fulcio_v1.crt.pem"), "--rekor-public-key", str(d / "rekor.pub")]
    proc = run(*base, "--certificate-identity", "mitr@redhat.com",
               "--certificate-oidc-issuer", "https://github.com/login/oauth", target)
    assert proc.returncode == 0, proc.stderr
    assert "transparency log was verified offline" in proc.stderr
    proc = run(*base, "--certificate-identity", "someone@else.example", target)
    assert proc.returncode == se.CertificateIdentityError.exit_code
    proc = run(*base, "--certificate-oidc-issuer", "https://accounts.google.com", target)
    assert proc.returncode == se.CertificateIssuerError.exit_code
    proc = run("verify", "--ca-roots", str(d / "fulcio_v1.crt.pem"), "--rekor-public-key",
               str(d / "cosign.pub"), target)
    assert proc.returncode == se.TransparencyLogError.exit_code


def _pty_run(args: list[str], cwd: Path, answers: list[str]) -> tuple[int, str]:
    """Run giropops on a pseudo-terminal, answering each password prompt in turn."""
    import pty
    import select
    import time

    env = {k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"}
    pid, fd = pty.fork()
    if pid == 0:  # child: never return into pytest
        try:
            os.chdir(cwd)
            os.execvpe(sys.executable, [sys.executable, "-m", "giropops", *args], env)  # noqa: S606
        finally:
            os._exit(127)
    out = b""
    pending = list(answers)
    answered = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            # answer each prompt once, only after it is fully shown (getpass flushes earlier input)
            if pending and out.count(b"Enter password") > answered and out.endswith(b": "):
                answered += 1
                os.write(fd, pending.pop(0).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_generate_key_pair_prompts_twice_without_echo(tmp_path):
    code, out = _pty_run(["generate-key-pair"], tmp_path, ["pw1", "pw1"])
    assert code == 0, out
    assert "Enter password for private key:" in out and "Enter password for private key again:" in out
    assert "pw1" not in out  # not echoed
    from giropops.sign.keys import SigningKey

    SigningKey.load(tmp_path / "cosign.key", b"pw1")


def test_generate_key_pair_mismatched_passwords(tmp_path):
    code, out = _pty_run(["generate-key-pair"], tmp_path, ["pw1", "pw2"])
    assert code == UsageError.exit_code, out
    assert "do not match" in out
    assert list(tmp_path.iterdir()) == []
