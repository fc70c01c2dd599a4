"""The giropops-senhas image, built here from real Debian packages, run by podman against a real Redis."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from giropops.builder.builder import Builder
from giropops.builder.cache import Cache
from giropops.builder.output import write_output
from giropops.builder.spec import load_spec
from tests.builder.conftest import BuiltSenhas, app_copy, run
from tests.support.podman import Podman
from tests.support.services import RedisServer, free_port


def _layer_members(archive: Path) -> dict[str, tarfile.TarInfo]:
    """Every path in the image (squashed; no whiteouts are written by the builder)."""
    out: dict[str, tarfile.TarInfo] = {}
    with tarfile.open(archive) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer in manifest[0]["Layers"]:
            data = tf.extractfile(layer).read()  # type: ignore[union-attr]
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as lt:
                for m in lt.getmembers():
                    out[m.name] = m
    return out


def _http(method: str, url: str, body: dict[str, object] | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def test_podman_runs_the_app_as_nonroot_against_redis(
    senhas_image: BuiltSenhas, podman: Podman, redis_server: RedisServer
) -> None:
    podman.run("load", "-i", str(senhas_image.archive))
    port = free_port()
    name = f"senhas-{port}"
    podman.run("run", "-d", "--name", name, "--network", "host",
           "-e", f"PORT={port}", "-e", f"REDIS_URL={redis_server.url}", senhas_image.tag)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = _http("POST", f"http://127.0.0.1:{port}/api/gerar-senha",
                                     {"tamanho": 16, "incluir_numeros": True, "incluir_caracteres_especiais": True})
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    logs = podman.run("logs", name, check=False)
                    pytest.fail(f"the app never answered: {logs.stdout[-2000:]} {logs.stderr[-2000:]}")
                time.sleep(0.3)
        assert status == 200, body
        assert isinstance(body, dict) and len(body["senha"]) == 16
        status, listing = _http("GET", f"http://127.0.0.1:{port}/api/senhas")
        assert status == 200
        assert isinstance(listing, list) and listing[0]["senha"] == body["senha"]
        # The password went to the real Redis, not to an embedded store.
        client = redis.Redis.from_url(redis_server.url)
        assert client.dbsize() > 0
        # Non-root: the kernel's view of the container's main process.
        pid = podman.run("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
        status_lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        uid_line = next(line for line in status_lines if line.startswith("Uid:"))
        assert uid_line.split()[1:] == ["65532"] * 4
        config = json.loads(podman.run("image", "inspect", senhas_image.tag).stdout)[0]["Config"]
        assert config["User"] == "65532:65532"
    finally:
        podman.run("rm", "-f", "-t", "0", name, check=False)


def test_no_shell_no_package_manager_no_pip(senhas_image: BuiltSenhas, podman: Podman) -> None:
    podman.run("load", "-i", str(senhas_image.archive))
    proc = podman.run("run", "--rm", "--entrypoint", "/bin/sh", senhas_image.tag, "-c", "true", check=False)
    assert proc.returncode != 0
    assert "/bin/sh" in proc.stderr and "no such file" in proc.stderr.lower()
    members = _layer_members(senhas_image.archive)
    for forbidden in ("bin/sh", "bin/bash", "bin/dash", "usr/bin/dpkg", "usr/bin/apt", "usr/bin/apt-get",
                      "usr/bin/pip", "usr/bin/pip3", "usr/bin/perl", "usr/bin/openssl"):
        assert forbidden not in members, forbidden
    assert not [m for m in members if m.endswith("/pip/__init__.py")]
    assert "usr/bin/python3.11" in members
    # dpkg records for scanners, one per package, each marked installed.
    status = [m for m in members if m.startswith("var/lib/dpkg/status.d/") and not m.endswith(".md5sums")]
    assert len(status) == len([p for p in senhas_image.result.packages if p.ecosystem == "deb"])


def test_trivy_sbom_lists_every_package(senhas_image: BuiltSenhas, trivy: str, tmp_path: Path) -> None:
    out = tmp_path / "sbom.json"
    run(trivy, "image", "--cache-dir", str(tmp_path / "trivy"), "--input", str(senhas_image.archive),
        "--format", "cyclonedx", "--output", str(out), "--quiet")
    sbom = json.loads(out.read_text())
    found = {(c["name"], c.get("version")) for c in sbom["components"] if c.get("type") == "library"}
    debs = {(p.name, p.version) for p in senhas_image.result.packages if p.ecosystem == "deb"}
    assert debs <= found, sorted(debs - found)
    names = {name.lower().replace("-", "_") for name, _ in found}
    for py in ("flask", "gunicorn", "redis", "prometheus_client", "werkzeug", "jinja2"):
        assert py in names, py
    os_comp = [c for c in sbom["components"] if c.get("type") == "operating-system"]
    assert os_comp and os_comp[0]["name"] == "debian"
    print(f"\nTrivy: {len(found)} packages ({len(debs)} Debian) in giropops-senhas")


def test_same_inputs_same_digest(senhas_image: BuiltSenhas, build_cache: Cache, tmp_path: Path) -> None:
    """A second build that recomputes every layer (downloads still cached) gives the same bytes."""
    cache = Cache(tmp_path / "cache")
    shutil.copytree(build_cache.root / "blobs", cache.root / "blobs")
    if (build_cache.root / "pip").is_dir():
        shutil.copytree(build_cache.root / "pip", cache.root / "pip")
    from tests.support.paths import REPO_ROOT

    result = Builder(cache).build(load_spec(REPO_ROOT / "giropops.yaml"))
    assert result.reused_layers == []
    assert result.image.digest == senhas_image.result.image.digest
    again = tmp_path / "again.tar"
    write_output(result.image, f"archive://{again}", [senhas_image.tag])
    assert again.read_bytes() == senhas_image.archive.read_bytes()


def test_app_change_reuses_every_other_layer(build_cache: Cache, tmp_path: Path) -> None:
    spec_path = app_copy(tmp_path / "project")
    builder = Builder(build_cache)
    first = builder.build(load_spec(spec_path))
    init = tmp_path / "project" / "src" / "giropops_senhas" / "__init__.py"
    init.write_text(init.read_text() + "\n# a change to the app's code\n")
    second = builder.build(load_spec(spec_path))
    a = [layer.diff_id for layer in first.image.layers]
    b = [layer.diff_id for layer in second.image.layers]
    assert len(a) == len(b) >= 4
    assert a[:-1] == b[:-1]
    assert a[-1] != b[-1]
    assert len(second.reused_layers) == 2  # packages and wheels from the cache; accounts are rebuilt identically


def test_our_sbom_and_trivy_agree_on_every_package(senhas_image: BuiltSenhas, trivy: str, tmp_path: Path) -> None:
    from giropops.sbom.source import sbom_for

    ours = sbom_for(f"archive://{senhas_image.archive}", use_cache=False)
    assert ours.distro is not None and ours.distro.id == "debian" and ours.distro.version_id == "12"
    built_debs = {(p.name, p.version) for p in senhas_image.result.packages if p.ecosystem == "deb"}
    our_debs = {(p.name, p.version) for p in ours.packages if p.type == "deb"}
    assert our_debs == built_debs

    out = tmp_path / "trivy.json"
    run(trivy, "image", "--cache-dir", str(tmp_path / "trivy"), "--input", str(senhas_image.archive),
        "--format", "cyclonedx", "--output", str(out), "--quiet")
    comps = json.loads(out.read_text())["components"]
    trivy_debs = {(c["name"], c["version"]) for c in comps if c.get("purl", "").startswith("pkg:deb/")}
    assert trivy_debs == built_debs

    def norm(name: str) -> str:
        return name.lower().replace("_", "-")

    our_py = {(norm(p.name), p.version) for p in ours.packages if p.type == "python"}
    trivy_py = {(norm(c["name"]), c["version"]) for c in comps if c.get("purl", "").startswith("pkg:pypi/")}
    assert trivy_py <= our_py and {"flask", "gunicorn", "redis"} <= {n for n, _ in our_py}


def test_annotations_name_the_revision_and_time(senhas_image: BuiltSenhas) -> None:
    import subprocess

    from tests.support.paths import REPO_ROOT

    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    manifest = json.loads(senhas_image.result.image.manifest)
    ann = manifest["annotations"]
    assert ann["org.opencontainers.image.revision"] == head
    assert ann["org.opencontainers.image.created"] == json.loads(senhas_image.result.image.config)["created"]
    assert "org.opencontainers.image.base.name" not in ann  # built from packages on scratch
