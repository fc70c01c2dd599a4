"""Spec validation and the ``giropops build`` command: clear errors naming the key, exit codes, no partial output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from giropops.builder.cache import Cache
from giropops.builder.errors import SpecError
from giropops.builder.layer import PathFilter
from giropops.builder.spec import load_spec, parse_spec
from tests.support.paths import REPO_ROOT

_CACHE: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _session_cache(build_cache: Cache) -> None:
    _CACHE["dir"] = str(build_cache.root)


def _giropops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIROPOPS_CACHE_DIR": _CACHE["dir"]}
    return subprocess.run([sys.executable, "-m", "giropops", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False, env=env)


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ({"contnets": {}}, "contnets"),
        ({"debian": {"packages": ["x"], "mirorr": "apt-sources"}}, "debian.mirorr"),
        ({"debian": {"mirror": "ftp://x", "suites": ["a"]}}, "debian.mirror"),
        ({"debian": {"mirror": "http://mirror.invalid/debian"}}, "debian.suites"),
        ({"accounts": {"users": [{"username": "Bad Name", "uid": 1}]}}, "accounts.users[0].username"),
        ({"accounts": {"users": [{"username": "a", "uid": -1}]}}, "accounts.users[0].uid"),
        ({"accounts": {"run-as": "ghost"}}, "accounts.run-as"),
        ({"expose": ["http"]}, "expose[0]"),
        ({"work-dir": "relative"}, "work-dir"),
        ({"archs": ["sparc"]}, "archs"),
        ({"paths": [{"path": "/x/../etc", "type": "directory"}]}, "paths[0].path"),
        ({"entrypoint": {"shell-fragment": "echo hi"}}, "entrypoint.shell-fragment"),
        ({"base": "oci-archive://ubuntu.tar"}, "base"),  # a bare "ubuntu" is a registry image (the transport)
        ({"python": {"requirements": ["--index-url=http://evil"]}}, "python.requirements[0]"),
    ],
)
def test_invalid_specs_name_the_key(doc: dict[str, object], key: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(doc)
    assert f"'{key}'" in str(err.value)


def test_repository_specs_parse() -> None:
    senhas = load_spec(REPO_ROOT / "giropops.yaml")
    assert senhas.debian is not None and "python3.11-minimal" in senhas.debian.packages
    assert senhas.run_as == "nonroot" and senhas.entrypoint == ("/app/bin/giropops-senhas",)
    assert senhas.python is not None and senhas.python.project == REPO_ROOT
    assert "5000/tcp" in senhas.expose
    wolfi = load_spec(REPO_ROOT / "specs" / "wolfi-python.yaml")
    assert "python-3.12" in wolfi.apk.packages
    # Wolfi's repository and signing key as wolfi.dev documents them.
    assert wolfi.apk.repositories == ("https://packages.wolfi.dev/os",)
    assert wolfi.apk.keyring == ("https://packages.wolfi.dev/os/wolfi-signing.rsa.pub",)
    assert wolfi.run_as == "65532" and wolfi.archs == ("amd64", "arm64")


def test_excludes_keep_negated_paths() -> None:
    f = PathFilter(["usr/share/doc/*", "!usr/share/doc/*/copyright"])
    assert f.excluded("usr/share/doc/libc6/changelog.gz")
    assert not f.excluded("usr/share/doc/libc6/copyright")
    assert not f.excluded("usr/lib/libc.so.6")


def test_cli_reports_spec_errors_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "giropops.yaml").write_text("debian:\n  packages: [x]\n  mirorr: apt-sources\n")
    proc = _giropops("build", "-t", "localhost/x:1", cwd=tmp_path)
    assert proc.returncode == 64
    assert proc.stderr.startswith("giropops: error: ") and "debian.mirorr" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _giropops("build", "-f", "missing.yaml", "-t", "localhost/x:1", cwd=tmp_path)
    assert proc.returncode == 64 and "missing.yaml" in proc.stderr


def test_cli_unresolvable_package_fails_cleanly_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "giropops.yaml").write_text(
        "debian:\n  suites: [bookworm]\n  packages: [no-such-package-giropops]\n"
    )
    proc = _giropops("build", "-t", "localhost/x:1", "--output", f"archive://{tmp_path / 'out.tar'}",
                     cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "no-such-package-giropops" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["giropops.yaml"]


def test_cli_builds_an_archive_and_an_oci_layout(tmp_path: Path) -> None:
    (tmp_path / "giropops.yaml").write_text(
        "debian:\n  suites: [bookworm]\n  packages: [netbase]\n"
        "accounts:\n  groups: [{groupname: nonroot, gid: 65532}]\n"
        "  users: [{username: nonroot, uid: 65532}]\n  run-as: nonroot\n"
    )
    proc = _giropops("build", "-t", "localhost/netbase:1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "netbase.tar").is_file()
    proc = _giropops("build", "-t", "localhost/netbase:1", "--output", f"oci-dir://{tmp_path / 'layout'}",
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    digest = proc.stdout.split()[-1]
    skopeo = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{tmp_path / 'layout'}"], capture_output=True,
                            text=True, check=True)
    import hashlib

    assert "sha256:" + hashlib.sha256(skopeo.stdout.encode()).hexdigest() == digest


def test_source_date_epoch_sets_every_time(tmp_path: Path) -> None:
    import gzip
    import io
    import json
    import tarfile

    (tmp_path / "giropops.yaml").write_text("debian:\n  suites: [bookworm]\n  packages: [netbase]\n")
    env_epoch = "1700000000"
    expected = subprocess.run(["date", "-u", "-d", f"@{env_epoch}", "+%Y-%m-%dT%H:%M:%SZ"], capture_output=True,
                              text=True, check=True).stdout.strip()
    env = {**os.environ, "GIROPOPS_CACHE_DIR": _CACHE["dir"], "SOURCE_DATE_EPOCH": env_epoch}
    out = tmp_path / "layout"
    proc = subprocess.run([sys.executable, "-m", "giropops", "build", "--output", f"oci-dir://{out}"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    config = json.loads(subprocess.run(["skopeo", "inspect", "--config", f"oci:{out}"], capture_output=True,
                                       check=True).stdout)
    assert config["created"] == expected
    manifest = json.loads(subprocess.run(["skopeo", "inspect", "--raw", f"oci:{out}"], capture_output=True,
                                         check=True).stdout)
    assert manifest["annotations"]["org.opencontainers.image.created"] == expected
    for desc in manifest["layers"]:
        blob = (out / "blobs" / "sha256" / desc["digest"].split(":")[1]).read_bytes()
        assert blob[4:8] == b"\0\0\0\0"  # gzip header mtime
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tf:
            assert {m.mtime for m in tf.getmembers()} == {int(env_epoch)}
