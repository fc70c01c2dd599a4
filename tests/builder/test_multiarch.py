"""``archs`` with two entries: one image per architecture under an OCI index, from each architecture's packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from giropops.builder.cache import Cache


def test_two_archs_make_an_index(build_cache: Cache, tmp_path: Path) -> None:
    (tmp_path / "giropops.yaml").write_text(
        "debian:\n  suites: [bookworm]\n  packages: [libc6, netbase]\n"
        "archs: [x86_64, aarch64]\n"
        "entrypoint: {command: /lib/ld-linux-aarch64.so.1}\n"
    )
    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(build_cache.root)}
    layout = tmp_path / "layout"
    proc = subprocess.run(
        [sys.executable, "-m", "giropops", "build", "-t", "localhost/multi:1", "--output", f"oci-dir://{layout}"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    index = json.loads(subprocess.run(["skopeo", "inspect", "--raw", f"oci:{layout}"], capture_output=True,
                                      check=True).stdout)
    plats = sorted((m["platform"]["architecture"], m["platform"].get("variant")) for m in index["manifests"])
    assert plats == [("amd64", None), ("arm64", "v8")]
    for arch, loader in (("amd64", "lib64/ld-linux-x86-64.so.2"), ("arm64", "lib/ld-linux-aarch64.so.1")):
        cfg = json.loads(subprocess.run(
            ["skopeo", "--override-arch", arch, "inspect", "--config", f"oci:{layout}"],
            capture_output=True, check=True).stdout)
        assert cfg["architecture"] == arch
        out = tmp_path / arch
        subprocess.run(["skopeo", "--override-arch", arch, "copy", f"oci:{layout}", f"dir:{out}"],
                       capture_output=True, check=True)
        names = set()
        for blob in out.iterdir():
            tar = subprocess.run(["tar", "-tzf", str(blob)], capture_output=True, text=True, check=False)
            if tar.returncode == 0:
                names |= set(tar.stdout.split())
        assert loader in names, (arch, loader)
        assert "var/lib/dpkg/status.d/libc6" in names
