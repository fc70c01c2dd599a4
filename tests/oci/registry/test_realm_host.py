"""Registry credentials never travel in clear text to a token server on another host.

The registry is reached as ``127.0.0.1:PORT`` or as ``localhost:PORT``; its token realm is
``http://localhost:TPORT/token`` (the real token server on loopback).  Reached as ``localhost``,
the realm is on the same host and the credentials go to it; reached as ``127.0.0.1``, the realm
is another host over plain HTTP: the token is asked for anonymously, with a one-line warning.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from giropops.oci.archive import write_archive
from giropops.oci.registry import ENV_PASSWORD, ENV_USERNAME, RegistryOptions, open_registry, write_registry
from tests.oci.registry.conftest import ref_for
from tests.support.images import MemImage, MemLayer
from tests.support.services import Registry, TokenAuth
from tests.support.tokenserver import TokenServer

USER, PASSWORD = "alice", "secret-wonderland"


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    server = TokenServer(tmp_path_factory.mktemp("token"), {USER: PASSWORD}, anonymous_pull=frozenset({"public/app"}))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, token_server: TokenServer) -> Iterator[Registry]:
    realm = token_server.realm.replace("//127.0.0.1:", "//localhost:")
    auth = TokenAuth(realm, token_server.service, token_server.issuer, token_server.cert_path)
    reg = Registry(tmp_path_factory.mktemp("registry"), token_auth=auth)
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def pushed(registry: Registry) -> MemImage:
    """public/app:latest, pushed with credentials to the registry reached as localhost (realm on the same host)."""
    img = MemImage([MemLayer({"f": b"public"})])
    options = RegistryOptions(username=USER, password=PASSWORD)
    assert write_registry(img, ref_for(f"localhost:{registry.port}", "public/app"), options) == img.digest
    return img


def giropops(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    empty = home / "docker-empty"
    empty.mkdir(exist_ok=True)
    env = {**os.environ, ENV_USERNAME: USER, ENV_PASSWORD: PASSWORD, "DOCKER_CONFIG": str(empty)}
    return subprocess.run([sys.executable, "-m", "giropops", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120)


def test_same_host_realm_gets_the_credentials(registry: Registry, token_server: TokenServer,
                                              pushed: MemImage) -> None:
    token_server.requests.clear()
    got = open_registry(ref_for(f"localhost:{registry.port}", "public/app"),
                        RegistryOptions(username=USER, password=PASSWORD))
    assert got.raw_manifest == pushed.raw_manifest
    assert token_server.requests and all(r["account"] == USER for r in token_server.requests)


def test_plain_http_realm_on_another_host_gets_no_credentials(registry: Registry, token_server: TokenServer,
                                                              pushed: MemImage, tmp_path: Path) -> None:
    token_server.requests.clear()
    proc = giropops("inspect", f"registry://127.0.0.1:{registry.port}/public/app:latest", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("giropops: warning:")]
    assert len(warnings) == 1 and "not sending credentials" in warnings[0] and "localhost" in warnings[0]
    assert PASSWORD not in proc.stderr + proc.stdout
    assert str(pushed.digest) in proc.stdout
    # the token server was asked, and only ever anonymously
    assert token_server.requests and all(r["account"] is None for r in token_server.requests)


def test_push_through_a_foreign_plain_http_realm_is_refused(registry: Registry, token_server: TokenServer,
                                                            pushed: MemImage, tmp_path: Path) -> None:
    token_server.requests.clear()
    src = tmp_path / "app.tar"
    write_archive(pushed, src, "x/app:1")
    proc = giropops("copy", f"archive://{src}", f"registry://127.0.0.1:{registry.port}/private/app:1", home=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("giropops: error:")]
    assert len(errors) == 1, proc.stderr
    assert all(r["account"] is None for r in token_server.requests)
