"""registry:// wired through transport: copies between the real registry and archives/layouts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from giropops.oci.archive import open_archive_image, write_archive
from giropops.oci.layout import open_layout_image, write_layout
from giropops.oci.memory import build_index
from giropops.oci.model import Platform
from tests.support.oci_images import hello_image, random_image
from tests.support.services import require_binary


def giropops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "giropops", *args], capture_output=True, text=True, timeout=180)


def skopeo(*args: str) -> str:
    proc = subprocess.run([require_binary("skopeo"), *args], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def hello_archive(hello_binary, tmp_path_factory) -> tuple[Path, object]:
    img = hello_image(hello_binary)
    path = tmp_path_factory.mktemp("reg") / "hello.tar"
    write_archive(img, path, "example.com/hello:1")
    return path, img


def test_push_archive_and_pull_it_back(registry, hello_archive, tmp_path, podman):
    path, img = hello_archive
    ref = f"{registry.host}/copy/hello:1"
    proc = giropops("push", "-q", f"archive://{path}", ref)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(img.digest)
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref}"))
    assert info["Digest"] == str(img.digest)
    proc = giropops("pull", "-q", ref, f"archive://{tmp_path}/back.tar")
    assert proc.returncode == 0, proc.stderr
    back = open_archive_image(tmp_path / "back.tar")
    assert back.digest == img.digest
    # the source reference becomes the archive's name, so podman can run it by that name
    podman.run("load", "-i", str(tmp_path / "back.tar"))
    out = podman.run("run", "--rm", "--network", "none", ref, "pulled")
    assert out.stdout.strip() == "hello from giropops pulled"


def test_multi_platform_push_and_platform_pull(registry, tmp_path):
    amd = random_image(100, platform=Platform.parse("linux/amd64"))
    arm = random_image(101, platform=Platform.parse("linux/arm64/v8"))
    idx = build_index([(amd, None), (arm, None)])
    write_layout(idx, tmp_path / "multi", "m")
    ref = f"{registry.host}/copy/multi:1"
    proc = giropops("copy", "-q", "--all-platforms", f"oci-dir://{tmp_path}/multi:m", ref)
    assert proc.returncode == 0, proc.stderr
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}"))
    assert [m["digest"] for m in raw["manifests"]] == [str(amd.digest), str(arm.digest)]
    proc = giropops("pull", "-q", "--platform", "linux/arm64", ref, f"oci-dir://{tmp_path}/arm:a")
    assert proc.returncode == 0, proc.stderr
    assert open_layout_image(tmp_path / "arm", "a").digest == arm.digest


def test_we_pull_what_skopeo_pushes_and_chunked_push(registry, tmp_path):
    img = random_image(102, layers=3, size=200_000)
    write_layout(img, tmp_path / "src", "s")
    ref = f"{registry.host}/copy/by-skopeo:1"
    skopeo("copy", "-q", "--dest-tls-verify=false", f"oci:{tmp_path}/src:s", f"docker://{ref}")
    proc = giropops("copy", "-q", ref, f"oci-dir://{tmp_path}/pulled:p")
    assert proc.returncode == 0, proc.stderr
    got = open_layout_image(tmp_path / "pulled", "p")
    assert [layer.diff_id for layer in got.layers()] == [layer.diff_id for layer in img.layers()]
    ref2 = f"{registry.host}/copy/chunked:1"
    proc = giropops("copy", "-q", "--chunk-size", "65536", f"oci-dir://{tmp_path}/pulled:p", ref2)
    assert proc.returncode == 0, proc.stderr
    skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{ref2}", f"oci:{tmp_path}/sk:c")
    assert json.loads(skopeo("inspect", f"oci:{tmp_path}/sk:c"))["Layers"] == [str(x.digest) for x in got.layers()]


def test_missing_registry_image_is_a_clear_error(registry, tmp_path):
    proc = giropops("pull", "-q", f"{registry.host}/copy/absent:1", f"archive://{tmp_path}/x.tar")
    assert proc.returncode != 0 and proc.stderr.startswith("giropops: error:")
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
