"""Authentication against the real registry: htpasswd basic auth and the bearer token flow."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from giropops.errors import AuthError, ConfigError
from giropops.oci.registry import (
    ENV_PASSWORD,
    ENV_USERNAME,
    RegistryClient,
    RegistryOptions,
    open_registry,
    write_registry,
)
from giropops.oci.registry.auth import Challenge, parse_challenges
from tests.oci.registry.conftest import ref_for
from tests.support.images import MemImage, MemLayer
from tests.support.services import Registry, TokenAuth, write_htpasswd
from tests.support.tokenserver import TokenServer

USER, PASSWORD = "alice", "wonder-land:42"  # a colon in the password must survive every path
REFRESH_TOKEN = "refresh-0123456789"


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Each test starts with no credentials from the machine: empty Docker config, no env vars."""
    empty = tmp_path / "docker-empty"
    empty.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(empty))
    monkeypatch.delenv(ENV_USERNAME, raising=False)
    monkeypatch.delenv(ENV_PASSWORD, raising=False)
    return empty


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    work = tmp_path_factory.mktemp("basic-registry")
    reg = Registry(work, htpasswd=write_htpasswd(work / "htpasswd", {USER: PASSWORD}))
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    server = TokenServer(
        tmp_path_factory.mktemp("token"), {USER: PASSWORD},
        anonymous_pull=frozenset({"public/app"}), refresh_tokens={REFRESH_TOKEN: USER},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory, token_server: TokenServer) -> Iterator[Registry]:
    auth = TokenAuth(token_server.realm, token_server.service, token_server.issuer, token_server.cert_path)
    reg = Registry(tmp_path_factory.mktemp("token-registry"), token_auth=auth)
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


def image(seed: bytes) -> MemImage:
    return MemImage([MemLayer({"f": seed})])


def round_trip(host: str, repo: str, options: RegistryOptions, seed: bytes) -> None:
    img = image(seed)
    ref = ref_for(host, repo)
    assert write_registry(img, ref, options) == img.digest
    got = open_registry(ref, options)
    assert got.raw_manifest == img.raw_manifest
    assert RegistryClient(host, options).list_tags(repo) == ["latest"]


def write_config(directory: Path, config: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def helper_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, known_host: str) -> Path:
    """A real ``docker-credential-giropopstest`` program that knows one server and logs each question."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    asked = tmp_path / "helper-asked.log"
    script = bindir / "docker-credential-giropopstest"
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = get ] || exit 2\nread -r server\necho "$server" >> "{asked}"\n'
        f'if [ "$server" = "{known_host}" ]; then\n'
        f'  printf \'{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASSWORD}"}}\' "$server"\n'
        "else\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return asked


# -- challenge parsing ------------------------------------------------------------------------


def test_parse_challenges_with_quoted_commas_and_several_schemes() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push repository:c:pull", Basic realm="x \\"y\\""'
    )
    assert parse_challenges(header) == [
        Challenge("bearer", {"realm": "https://auth.example/token", "service": "registry.example",
                             "scope": "repository:a/b:pull,push repository:c:pull"}),
        Challenge("basic", {"realm": 'x "y"'}),
    ]


# -- basic auth -------------------------------------------------------------------------------


def test_basic_auth_with_the_right_password(basic_registry: Registry) -> None:
    round_trip(basic_registry.host, "basic/right", RegistryOptions(username=USER, password=PASSWORD), b"right")


def test_basic_auth_with_a_wrong_password_is_an_auth_error(basic_registry: Registry) -> None:
    options = RegistryOptions(username=USER, password="not-it")
    with pytest.raises(AuthError) as err:
        open_registry(ref_for(basic_registry.host, "basic/right"), options)
    msg = str(err.value)
    assert basic_registry.host in msg and "basic/right" in msg and USER in msg
    assert "not-it" not in msg and "not-it" not in repr(options)


def test_basic_auth_without_credentials_is_an_auth_error(basic_registry: Registry) -> None:
    with pytest.raises(AuthError, match="none found"):
        RegistryClient(basic_registry.host).list_tags("basic/right")


def test_credentials_from_the_environment(basic_registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_USERNAME, USER)
    monkeypatch.setenv(ENV_PASSWORD, PASSWORD)
    round_trip(basic_registry.host, "basic/env", RegistryOptions(), b"env")
    monkeypatch.delenv(ENV_PASSWORD)
    with pytest.raises(ConfigError, match=ENV_PASSWORD):
        RegistryClient(basic_registry.host).list_tags("basic/env")


def test_docker_config_auths_from_docker_config_env(
    basic_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    cfg = write_config(tmp_path / "dockercfg", {"auths": {f"http://{basic_registry.host}": {"auth": token}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    round_trip(basic_registry.host, "basic/config-env", RegistryOptions(), b"config")


def test_docker_config_auths_username_password_from_option(basic_registry: Registry, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "other", {"auths": {basic_registry.host: {"username": USER, "password": PASSWORD}}})
    round_trip(basic_registry.host, "basic/config-option", RegistryOptions(docker_config=cfg), b"option")


def test_docker_config_with_bad_auth_field_is_a_config_error(basic_registry: Registry, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "bad", {"auths": {basic_registry.host: {"auth": "***not base64***"}}})
    with pytest.raises(ConfigError, match="base64"):
        RegistryClient(basic_registry.host, RegistryOptions(docker_config=cfg)).list_tags("basic/x")


def test_cred_helpers_run_the_helper_for_the_host(
    basic_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = helper_on_path(tmp_path, monkeypatch, basic_registry.host)
    cfg = write_config(tmp_path / "helpers", {"credHelpers": {basic_registry.host: "giropopstest"}})
    round_trip(basic_registry.host, "basic/helper", RegistryOptions(docker_config=cfg), b"helper")
    assert set(asked.read_text().split()) == {basic_registry.host}


def test_creds_store_is_asked_when_no_helper_matches(
    basic_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = helper_on_path(tmp_path, monkeypatch, basic_registry.host)
    cfg = write_config(tmp_path / "store", {"credsStore": "giropopstest", "credHelpers": {"elsewhere.example": "x"}})
    round_trip(basic_registry.host, "basic/store", RegistryOptions(docker_config=cfg), b"store")
    assert basic_registry.host in asked.read_text().split()


def test_helper_that_knows_nothing_means_anonymous(
    basic_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helper_on_path(tmp_path, monkeypatch, "some.other.host")
    cfg = write_config(tmp_path / "unknown", {"credsStore": "giropopstest"})
    with pytest.raises(AuthError, match="none found"):
        RegistryClient(basic_registry.host, RegistryOptions(docker_config=cfg)).list_tags("basic/x")


def test_missing_helper_program_is_named(basic_registry: Registry, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "missing", {"credHelpers": {basic_registry.host: "giropops-does-not-exist"}})
    with pytest.raises(AuthError, match="docker-credential-giropops-does-not-exist"):
        RegistryClient(basic_registry.host, RegistryOptions(docker_config=cfg)).list_tags("basic/x")


# -- bearer token flow ------------------------------------------------------------------------


def test_bearer_flow_push_and_pull(token_registry: Registry, token_server: TokenServer) -> None:
    token_server.requests.clear()
    round_trip(token_registry.host, "team/app", RegistryOptions(username=USER, password=PASSWORD), b"bearer")
    asked = [r for r in token_server.requests if r["ok"]]
    assert asked and all(r["account"] == USER for r in asked)
    assert any("repository:team/app:pull,push" in r["scopes"] for r in asked)  # type: ignore[operator]


def test_bearer_flow_with_credentials_from_docker_config(
    token_registry: Registry, token_server: TokenServer, tmp_path: Path
) -> None:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    cfg = write_config(tmp_path / "bearer-cfg", {"auths": {token_registry.host: {"auth": token}}})
    round_trip(token_registry.host, "team/from-config", RegistryOptions(docker_config=cfg), b"bearer-cfg")


def test_bearer_flow_wrong_password(token_registry: Registry) -> None:
    with pytest.raises(AuthError) as err:
        RegistryClient(token_registry.host, RegistryOptions(username=USER, password="nope")).list_tags("team/app")
    assert "token server refused" in str(err.value) and token_registry.host in str(err.value)
    assert "nope" not in str(err.value)


def test_bearer_anonymous_pull_allowed_push_denied(token_registry: Registry) -> None:
    img = image(b"public")
    write_registry(img, ref_for(token_registry.host, "public/app"), RegistryOptions(username=USER, password=PASSWORD))
    got = open_registry(ref_for(token_registry.host, "public/app"))
    assert got.digest == img.digest
    with pytest.raises(AuthError) as err:
        write_registry(image(b"anon push"), ref_for(token_registry.host, "public/app", "anon"))
    assert "anonymously" in str(err.value) and "public/app" in str(err.value)


def test_bearer_cross_repository_mount_asks_for_both_scopes(
    token_registry: Registry, token_server: TokenServer
) -> None:
    options = RegistryOptions(username=USER, password=PASSWORD)
    img = image(b"mount-bearer")
    write_registry(img, ref_for(token_registry.host, "team/src"), options)
    token_server.requests.clear()
    src = open_registry(ref_for(token_registry.host, "team/src"), options)
    write_registry(src, ref_for(token_registry.host, "team/dst"), options)
    scopes = [set(r["scopes"]) for r in token_server.requests]  # type: ignore[call-overload]
    assert {"repository:team/dst:pull,push", "repository:team/src:pull"} in scopes
    assert open_registry(ref_for(token_registry.host, "team/dst"), options).digest == img.digest


def test_bearer_flow_with_an_identity_token(
    token_registry: Registry, token_server: TokenServer, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "ident", {"auths": {token_registry.host: {"identitytoken": REFRESH_TOKEN}}})
    token_server.requests.clear()
    round_trip(token_registry.host, "team/identity", RegistryOptions(docker_config=cfg), b"identity")
    assert token_server.requests and all(r.get("grant") == "refresh_token" for r in token_server.requests)
    bad = write_config(tmp_path / "ident-bad", {"auths": {token_registry.host: {"identitytoken": "forged"}}})
    with pytest.raises(AuthError, match="token server refused"):
        RegistryClient(token_registry.host, RegistryOptions(docker_config=bad)).list_tags("team/identity")


def test_a_push_asks_the_token_server_once(token_registry: Registry, token_server: TokenServer) -> None:
    """Four parallel uploads meet their first 401 together; one token serves them all."""
    img = MemImage([MemLayer({"n": bytes([i]) * 100}) for i in range(6)])
    token_server.requests.clear()
    write_registry(img, ref_for(token_registry.host, "team/once"), RegistryOptions(username=USER, password=PASSWORD))
    assert len(token_server.requests) == 1
    assert "repository:team/once:pull,push" in token_server.requests[0]["scopes"]  # type: ignore[operator]
