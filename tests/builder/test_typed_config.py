"""The builder writes its image config through ``oci.model`` (``ContainerConfig``, ``new_image_config``): the
bytes are Docker's key order, what a base image brings is kept unless the spec says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from giropops.builder.builder import Builder
from giropops.builder.cache import Cache
from giropops.builder.output import write_output
from giropops.builder.spec import parse_spec
from giropops.oci.model import ContainerConfig, Digest, HistoryEntry, Platform, new_image_config

SPEC = {
    "archs": ["arm64"],
    "accounts": {"users": [{"username": "app", "uid": 1000, "gid": 1000}],
                 "groups": [{"groupname": "app", "gid": 1000}], "run-as": "app"},
    "entrypoint": {"command": "/bin/app serve"}, "cmd": ["--port", "8080"], "environment": {"LANG": "C.UTF-8"},
    "work-dir": "/srv", "expose": [8080], "labels": {"b": "2", "a": "1"},
}
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def test_the_config_bytes_of_a_scratch_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    result = Builder(Cache(tmp_path / "cache")).build(parse_spec(SPEC, tmp_path / "spec.yaml"), context=tmp_path)
    diff_id = result.image.image.config.diff_ids[0]
    assert result.image.config.decode() == (
        '{"created":"1970-01-02T00:00:00Z","architecture":"arm64","os":"linux","config":{"User":"1000:1000",'
        f'"Env":["LANG=C.UTF-8","PATH={PATH}"],"Entrypoint":["/bin/app","serve"],"Cmd":["--port","8080"],'
        '"WorkingDir":"/srv","ExposedPorts":{"8080/tcp":{}},"Labels":{"a":"1","b":"2"}},'
        f'"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}},'
        '"history":[{"created":"1970-01-02T00:00:00Z","created_by":"giropops build: accounts and paths"}],'
        '"variant":"v8"}'
    )


def test_on_a_base_the_base_config_carries_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    builder = Builder(Cache(tmp_path / "cache"))
    base = builder.build(parse_spec(SPEC, tmp_path / "spec.yaml"), context=tmp_path)
    write_output(base.image, f"oci-dir://{tmp_path / 'base'}", ["base:1"])
    on_base = {"base": f"oci-dir://{tmp_path / 'base'}", "archs": ["arm64"], "environment": {"MODE": "x"},
               "labels": {"c": "3"}}
    result = builder.build(parse_spec(on_base, tmp_path / "on-base.yaml"), context=tmp_path)
    cfg = result.image.image.config
    assert cfg.user == "1000:1000" and cfg.entrypoint == ["/bin/app", "serve"] and cfg.cmd == ["--port", "8080"]
    assert cfg.env == ["LANG=C.UTF-8", "MODE=x", f"PATH={PATH}"]
    assert cfg.working_dir == "/srv" and cfg.exposed_ports == ["8080/tcp"]
    assert cfg.labels == {"a": "1", "b": "2", "c": "3"}
    assert [h["created_by"] for h in cfg.history] == ["giropops build: accounts and paths"]
    assert cfg.diff_ids == base.image.image.config.diff_ids


def test_new_image_config_leaves_out_what_is_empty() -> None:
    d = Digest.parse("sha256:" + "a" * 64)
    cfg = new_image_config(Platform("linux", "amd64"), "2024-01-01T00:00:00Z", ContainerConfig(), [d],
                           [HistoryEntry("x")])
    assert cfg.to_bytes() == (
        b'{"created":"2024-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{"Env":[]},'
        b'"rootfs":{"type":"layers","diff_ids":["sha256:' + b"a" * 64 + b'"]},"history":[{"created_by":"x"}]}'
    )
