"""local:// through a real Docker Engine API: podman system service on a private socket."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from giropops.errors import DaemonError
from giropops.oci.archive import write_archive
from giropops.oci.daemon import open_local
from giropops.oci.image import Image
from tests.support.oci_images import hello_image
from tests.support.podman import Podman


@pytest.fixture(scope="module")
def engine(hello_binary, tmp_path_factory) -> Iterator[tuple[Path, Image]]:
    work = tmp_path_factory.mktemp("engine")
    pod = Podman(work / "podman")
    img = hello_image(hello_binary)
    write_archive(img, work / "hello.tar", "example.com/giropops/hello:2")
    pod.run("load", "-i", str(work / "hello.tar"))
    try:
        with pod.service() as sock:
            yield sock, img
    finally:
        pod.cleanup()


def giropops(sock: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"DOCKER_HOST": f"unix://{sock}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "giropops", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_local_image_is_read_through_the_engine_api(engine, tmp_path):
    sock, img = engine
    got = open_local("example.com/giropops/hello:2", docker_host=f"unix://{sock}")
    assert isinstance(got, Image)
    assert [layer.diff_id for layer in got.layers()] == [layer.diff_id for layer in img.layers()]
    assert got.config.entrypoint == ["/hello"]
    assert got.layers()[0].open_uncompressed().read() == img.layers()[0].open_uncompressed().read()
    proc = giropops(sock, "copy", "-q", "local://example.com/giropops/hello:2", f"oci-dir://{tmp_path}/lay")
    assert proc.returncode == 0, proc.stderr
    index = json.loads((tmp_path / "lay" / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == \
        "example.com/giropops/hello:2"


def test_missing_local_image_and_unreachable_engine(engine, tmp_path):
    sock, _img = engine
    proc = giropops(sock, "inspect", "local://example.com/nope:1")
    assert proc.returncode != 0
    assert "no image 'example.com/nope:1' in the engine" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(DaemonError, match="cannot connect to the engine"):
        open_local("x", docker_host=f"unix://{tmp_path}/absent.sock")
    with pytest.raises(DaemonError, match="only unix://"):
        open_local("x", docker_host="tcp://127.0.0.1:2375")


def test_local_is_read_only(engine, tmp_path):
    sock, _img = engine
    proc = giropops(sock, "copy", "-q", "local://example.com/giropops/hello:2", "local://other:1")
    assert proc.returncode != 0 and "local:// is read-only" in proc.stderr
