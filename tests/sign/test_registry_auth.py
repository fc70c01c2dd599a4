"""The registry flags (``--username``, ``--password-stdin``, ``--insecure``) on every command that talks to a
registry: signing, verifying and cataloguing an image in a registry that wants a password."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from giropops.cli.main import OFFLINE_COMMANDS, build_parser
from giropops.oci.reference import Reference
from giropops.oci.registry import ENV_PASSWORD, ENV_USERNAME, RegistryOptions, write_registry
from tests.sign.conftest import KeyPair
from tests.support.oci_images import random_image
from tests.support.services import Registry, write_htpasswd

USER, PASSWORD = "carol", "s3cret:with-colon"


@pytest.fixture(scope="module")
def locked_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    work = tmp_path_factory.mktemp("locked-registry")
    reg = Registry(work, htpasswd=write_htpasswd(work / "htpasswd", {USER: PASSWORD}))
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


def _giropops(tmp_path: Path, *args: str, stdin: str = "",
              key_password: bytes = b"") -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "docker-empty"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in (ENV_USERNAME, ENV_PASSWORD)}
    env.update(DOCKER_CONFIG=str(empty), COSIGN_PASSWORD=key_password.decode(),
               GIROPOPS_CACHE_DIR=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, "-m", "giropops", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def test_every_registry_command_takes_the_same_flags() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    online = {name: p for name, p in sub.choices.items() if name not in OFFLINE_COMMANDS}  # type: ignore[union-attr]
    assert {"copy", "sign", "verify", "attest", "verify-attestation", "tree", "sbom", "cves", "policy",
            "recommendations", "scan"} <= set(online)
    for name, p in online.items():
        flags = {s for a in p._actions for s in a.option_strings}
        assert {"--username", "--password-stdin", "--insecure", "--timeout"} <= flags, name


def test_sign_verify_and_sbom_with_credentials(tmp_path: Path, keypair: KeyPair, locked_registry: Registry) -> None:
    ref = Reference.parse(f"{locked_registry.host}/locked/app:1")
    digest = write_registry(random_image(7), ref, RegistryOptions(username=USER, password=PASSWORD))
    image = f"{ref.repository}@{digest}"
    auth = ("--username", USER, "--password-stdin")

    refused = _giropops(tmp_path, "sign", "--key", str(keypair.private), "--tlog-upload=false", image,
                        key_password=keypair.password)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr

    signed = _giropops(tmp_path, "sign", "--key", str(keypair.private), "--tlog-upload=false", *auth, image,
                       stdin=PASSWORD + "\n", key_password=keypair.password)
    assert signed.returncode == 0, signed.stderr
    verified = _giropops(tmp_path, "verify", "--key", str(keypair.public), "--insecure-ignore-tlog", *auth, image,
                         stdin=PASSWORD + "\n")
    assert verified.returncode == 0, verified.stderr
    tree = _giropops(tmp_path, "tree", *auth, image, stdin=PASSWORD + "\n")
    assert tree.returncode == 0 and "signature" in tree.stdout.lower(), tree.stderr
    sbom = _giropops(tmp_path, "sbom", *auth, "-f", "spdx-json", image, stdin=PASSWORD + "\n")
    assert sbom.returncode == 0 and '"spdxVersion"' in sbom.stdout, sbom.stderr
