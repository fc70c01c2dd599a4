"""The conventional way to the same app image: debootstrap minbase + python3 + pip (what python:3.11-slim is).

Shared by the comparison test and ``bench/build_bench.py``.  Uses the Debian mirror of this machine's apt
sources; the app's requirements are installed with the image's own pip, inside the root (chroot).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from giropops.builder.debian import apt_sources
from giropops.builder.layer import LayerBlob, make_layer
from giropops.builder.output import BuiltImage, assemble
from giropops.oci.model import ContainerConfig, Digest, Platform, new_image_config

REQUIREMENTS = ["flask>=3.0", "gunicorn>=22", "redis>=5", "hiredis>=2", "prometheus-client>=0.20"]


def conventional_rootfs(root: Path, project: Path) -> Path:
    source = next(s for s in apt_sources() if "-" not in s.suite)
    subprocess.run(
        ["debootstrap", "--variant=minbase", "--include=python3,python3-pip,ca-certificates", source.suite,
         str(root), source.uri],
        check=True, capture_output=True, timeout=1200,
    )
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    if os.environ.get("PIP_INDEX_URL"):
        env["PIP_INDEX_URL"] = os.environ["PIP_INDEX_URL"]
    # The builder's network trust (a TLS-inspecting proxy's CA, say) applies inside the build, as in docker build.
    host_ca = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if host_ca and Path(host_ca).is_file():
        shutil.copy(host_ca, root / "tmp" / "host-ca.crt")
        env["PIP_CERT"] = "/tmp/host-ca.crt"
    proc = subprocess.run(
        ["chroot", str(root), "pip", "install", "--quiet", "--break-system-packages", "--no-cache-dir",
         *REQUIREMENTS],
        capture_output=True, text=True, timeout=1200, env=env, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pip in the debootstrap root failed: {proc.stderr[-2000:]}")
    (root / "tmp" / "host-ca.crt").unlink(missing_ok=True)
    shutil.copytree(project / "src" / "giropops_senhas", root / "app" / "giropops_senhas",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for p in (root / cache).glob("*"):
            if p.is_file():
                p.unlink()
    return root


def image_of_rootfs(root: Path) -> BuiltImage:
    tar = subprocess.run(["tar", "-C", str(root), "--numeric-owner", "--sort=name", "-cf", "-", "."],
                         check=True, capture_output=True).stdout
    layer: LayerBlob = make_layer(tar, "debootstrap rootfs", level=6)
    config = new_image_config(
        Platform("linux", "amd64"), "1970-01-01T00:00:00Z",
        ContainerConfig(entrypoint=("/usr/bin/python3", "-m", "gunicorn"), working_dir="/app"),
        [Digest.parse(layer.diff_id)],
    )
    return assemble([layer], config, {})


def uncompressed_size(image: BuiltImage) -> int:
    total = 0
    for layer in image.layers:
        with layer.open_uncompressed() as f:
            while chunk := f.read(1 << 20):
                total += len(chunk)
    return total
