"""Building on a base image (the distroless Python base written as an OCI layout) and pushing to a registry."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from giropops.builder.builder import Builder
from giropops.builder.cache import Cache
from giropops.builder.output import write_output
from giropops.builder.spec import load_spec
from tests.builder.conftest import app_copy
from tests.support.paths import REPO_ROOT
from tests.support.services import Registry


def test_app_on_a_base_image_and_pushed(build_cache: Cache, tmp_path: Path, registry: Registry) -> None:
    base_result = Builder(build_cache).build(load_spec(REPO_ROOT / "specs" / "distroless-python3-debian12.yaml"))
    base_dir = tmp_path / "base"
    write_output(base_result.image, f"oci-dir://{base_dir}", ["localhost/distroless-python3:test"])
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{base_dir}"], capture_output=True, check=True).stdout
    base_digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    base_diff_ids = json.loads(subprocess.run(["skopeo", "inspect", "--config", f"oci:{base_dir}"],
                                              capture_output=True, check=True).stdout)["rootfs"]["diff_ids"]

    app_copy(tmp_path / "project")
    spec = tmp_path / "on-base.yaml"
    req = "\n".join(f"    - {r}" for r in ("flask>=3.0", "gunicorn>=22", "redis>=5", "prometheus-client>=0.20"))
    spec.write_text(
        f"base: oci-dir://{base_dir}\n"
        "python:\n  version: '3.11'\n  project: project\n  packages: [giropops_senhas]\n"
        f"  scripts: [giropops-senhas]\n  requirements:\n{req}\n"
        "entrypoint: {command: /app/bin/giropops-senhas}\n"
        "expose: [5000]\n"
    )
    result = Builder(build_cache).build(load_spec(spec))
    manifest = json.loads(result.image.manifest)
    assert manifest["annotations"]["org.opencontainers.image.base.digest"] == base_digest
    assert manifest["annotations"]["org.opencontainers.image.base.name"] == f"oci-dir://{base_dir}"
    config = json.loads(result.image.config)
    diff_ids = config["rootfs"]["diff_ids"]
    assert diff_ids[: len(base_diff_ids)] == base_diff_ids and len(diff_ids) == len(base_diff_ids) + 2
    assert config["config"]["User"] == "65532:65532"  # inherited from the base
    assert "LANG=C.UTF-8" in config["config"]["Env"]
    assert config["config"]["Entrypoint"] == ["/app/bin/giropops-senhas"]

    ref = f"{registry.host}/giropops-senhas:on-base"
    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(build_cache.root)}
    proc = subprocess.run([sys.executable, "-m", "giropops", "build", "-f", str(spec), "-t", ref, "--push"],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    pushed = proc.stdout.strip().splitlines()[-1]
    assert pushed == f"{ref}@{result.image.digest}"
    remote = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"],
                            capture_output=True, check=True).stdout
    assert "sha256:" + hashlib.sha256(remote).hexdigest() == result.image.digest
