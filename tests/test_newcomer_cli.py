"""What a newcomer trips over, through the real ``giropops`` command: bare paths, unresolvable registries,
and a ``.gitignore`` that keeps README's outputs (a private key among them) out of ``git add .``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT


def giropops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "giropops", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("command", ["inspect", "sbom", "cves"])
def test_a_bare_path_that_exists_says_which_scheme_was_meant(command: str, tmp_path: Path) -> None:
    (tmp_path / "x.tar").write_bytes(b"not really a tar")
    (tmp_path / "layout").mkdir()
    (tmp_path / "layout" / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (tmp_path / "rootfs").mkdir()
    for given, meant, what in [("./x.tar", "archive://./x.tar", "a file"),
                               (str(tmp_path / "x.tar"), f"archive://{tmp_path / 'x.tar'}", "a file"),
                               ("x.tar", "archive://x.tar", "a file"),
                               ("./layout", "oci-dir://./layout", "an OCI layout"),
                               ("./rootfs/", "fs://./rootfs/", "a directory")]:
        proc = giropops(command, given, cwd=tmp_path)
        assert proc.returncode == 64, (given, proc.stderr)
        assert proc.stderr.splitlines() == [
            f"giropops: error: {given!r} is {what}, not an image reference: did you mean '{meant}'?"]


def test_a_registry_host_that_does_not_resolve_fails_at_once(tmp_path: Path) -> None:
    # .invalid never resolves (RFC 2606): no connection is ever made
    proc = giropops("inspect", "registry.invalid/app:1", cwd=tmp_path)
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert line.startswith("giropops: error: registry.invalid: ")
    assert "cannot resolve the host name 'registry.invalid'" in line and "giving up after" not in line


def test_gitignore_covers_what_readme_writes_into_the_repository_root(tmp_path: Path) -> None:
    """A throw-away git repository with this .gitignore: README's outputs are ignored, fixtures are not."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(REPO_ROOT / ".gitignore", repo / ".gitignore")
    written = ["cosign.key", "cosign.pub", "giropops-senhas.tar", "conventional.tar", "giropops-senhas.spdx.json",
               "giropops-senhas.cdx.json", "giropops-senhas.cves.json", "senhas.oci/index.json",
               "giropops-demo/cosign.key"]
    kept = ["tests/data/cosign/cosign.key", "tests/data/images/x.tar", "src/app.py"]
    for rel in written + kept:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("x")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=all"],
                            capture_output=True, text=True, check=True).stdout
    untracked = sorted(line[3:] for line in status.splitlines())
    assert untracked == sorted([".gitignore", *kept])
