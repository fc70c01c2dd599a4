"""A warm push of an unchanged archive replayed from its record (``cli._replay``, ``oci/registry/replay.py``).

Everything runs ``python -m giropops`` against the real distribution registry; requests are counted
through a forwarding proxy (a loopback host, as the replay requires).  Validity of what was pushed is
checked by skopeo (copying verifies every blob's digest and size).  Which path ran is shown by the
modules the process had imported (``GIROPOPS_TEST_MODULES``: the replay does not load the image code).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from giropops.oci import mutate
from giropops.oci.empty import empty_image
from giropops.oci.registry.replay import DIR_NAME, MAX_CONNECTIONS
from giropops.oci.transport import write_image
from tests.support.faultproxy import FaultProxy
from tests.support.oci_images import tar_bytes
from tests.support.services import Registry, require_binary, write_htpasswd

#: Runs ``giropops ARGS`` and prints the modules loaded at exit to stderr (after the command's own output).
_RUNNER = (
    "import atexit, os, sys\n"
    "def _show():\n"
    "    sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n'); sys.stderr.flush()\n"
    "atexit.register(_show)\n"
    "_real_exit = os._exit\n"
    "def _os_exit(n):\n"
    "    _show(); _real_exit(n)\n"
    "os._exit = _os_exit\n"
)


def _archive(tmp: Path, seed: int) -> Path:
    """A docker-archive written by skopeo (layers uncompressed: a push gzips them)."""
    layers = [mutate.layer_from_tar(tar_bytes({f"data/{seed}-{i}.txt": f"{seed} {i} ".encode() * 5000}), "none")
              for i in range(2)]
    img = mutate.canonicalize(mutate.with_config(mutate.append_layers(empty_image(), layers), cmd=["/bin/true"]), 0)
    layout = tmp / f"layout-{seed}"
    write_image(img, f"oci-dir://{layout}:src")
    archive = tmp / f"docker-{seed}.tar"
    subprocess.run([require_binary("skopeo"), "copy", "-q", f"oci:{layout}:src",
                    f"docker-archive:{archive}:example.com/replay:{seed}"], check=True, timeout=120)
    return archive


def _giropops(*args: str, env: dict[str, str]) -> tuple[int, str, str, set[str]]:
    """(exit code, stdout, stderr without the module line, modules loaded) of ``giropops ARGS``."""
    code = _RUNNER + f"sys.argv = ['giropops', *{list(args)!r}]\nfrom giropops.cli.main import entry\nentry()\n"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    lines = proc.stderr.splitlines()
    modules = {m for line in lines if line.startswith("MODULES ") for m in line.split()[1:]}
    stderr = "\n".join(line for line in lines if not line.startswith("MODULES "))
    return proc.returncode, proc.stdout, stderr, modules


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("GIROPOPS_") and "proxy" not in k.lower()}
    e["GIROPOPS_CACHE_DIR"] = str(tmp_path / "cache")
    return e


def _records(env: dict[str, str]) -> list[Path]:
    d = Path(env["GIROPOPS_CACHE_DIR"]) / DIR_NAME
    return sorted(p for p in d.iterdir() if not p.name.startswith(".")) if d.is_dir() else []


def _skopeo_manifest(host: str, ref: str) -> dict[str, object]:
    out = subprocess.run([require_binary("skopeo"), "inspect", "--raw", "--tls-verify=false", f"docker://{host}/{ref}"],
                         check=True, capture_output=True, timeout=60).stdout
    return dict(json.loads(out))


def _skopeo_copies(host: str, ref: str, tmp: Path) -> None:
    """skopeo reads the image and verifies every blob's digest and size."""
    subprocess.run([require_binary("skopeo"), "copy", "-q", "--src-tls-verify=false", f"docker://{host}/{ref}",
                    f"oci:{tmp / ref.replace('/', '_').replace(':', '_')}:x"], check=True, capture_output=True,
                   timeout=120)


def _slow_path(modules: set[str]) -> bool:
    return "giropops.oci.registry.remote" in modules


def test_warm_push_replays_with_heads_and_one_put(registry: Registry, repo: str, tmp_path: Path,
                                                  env: dict[str, str]) -> None:
    archive = _archive(tmp_path, 1)
    with FaultProxy(registry.port) as proxy:
        code, out1, err1, mods = _giropops("copy", "-q", f"archive://{archive}", f"registry://{proxy.host}/{repo}:1",
                                           env=env)
        assert code == 0 and _slow_path(mods), err1
        assert len(_records(env)) == 1
        proxy.log.clear()
        code, out2, err2, mods = _giropops("copy", "-q", f"archive://{archive}", f"registry://{proxy.host}/{repo}:2",
                                           env=env)
        assert code == 0, err2
        assert not _slow_path(mods) and "giropops.oci.registry.replay" in mods
        assert not {"json", "argparse", "urllib.parse", "giropops.oci.registry.client"} & mods
        methods = [m for m, _p, _w in proxy.log]
        assert sorted(methods[:3]) == ["HEAD"] * 3 and methods[3:] == ["PUT"]  # config + 2 layers, then the manifest
        pushed = _skopeo_manifest(registry.host, f"{repo}:1")
        blobs = [pushed["config"]["digest"], *(d["digest"] for d in pushed["layers"])]  # type: ignore[index,attr-defined]
        assert sorted(p for _m, p, _w in proxy.log[:3]) == sorted(f"/v2/{repo}/blobs/{d}" for d in blobs)
        assert proxy.max_connections <= MAX_CONNECTIONS
        assert proxy.log[-1][1] == f"/v2/{repo}/manifests/2"
        # the same lines as the full path: the manifest digest, nothing on stderr
        assert out2 == out1 and err2 == err1 == ""
        # the slow path run again prints the same thing (a fresh cache: no record)
        env2 = dict(env, GIROPOPS_CACHE_DIR=str(tmp_path / "other-cache"))
        code, out3, err3, mods = _giropops("push", f"archive://{archive}", f"registry://{proxy.host}/{repo}:3",
                                           env=env2)
        assert code == 0 and _slow_path(mods) and (out3, err3) == (out2, err2)
    for tag in ("1", "2", "3"):
        assert _skopeo_manifest(registry.host, f"{repo}:{tag}") == _skopeo_manifest(registry.host, f"{repo}:1")
    _skopeo_copies(registry.host, f"{repo}:2", tmp_path)


def test_other_repository_mounts_then_heads(registry: Registry, repo: str, tmp_path: Path,
                                            env: dict[str, str]) -> None:
    archive = _archive(tmp_path, 2)
    with FaultProxy(registry.port) as proxy:
        assert _giropops("push", "-q", f"archive://{archive}", f"registry://{proxy.host}/{repo}:1", env=env)[0] == 0
        proxy.log.clear()
        code, out, err, mods = _giropops("push", f"archive://{archive}", f"registry://{proxy.host}/{repo}-b:1",
                                         "--quiet", env=env)
        assert code == 0 and not _slow_path(mods), err
        methods = [m for m, _p, _w in proxy.log]
        assert sorted(methods[:6]) == ["HEAD"] * 3 + ["POST"] * 3 and methods[6:] == ["PUT"]
        assert all(f"from={repo}" in p for m, p, _w in proxy.log if m == "POST")
    assert out.startswith("sha256:") and err == ""
    _skopeo_copies(registry.host, f"{repo}-b:1", tmp_path)


@pytest.mark.parametrize("change", ["touch", "rewrite"])
def test_a_touched_or_changed_archive_is_pushed_in_full(registry: Registry, repo: str, tmp_path: Path,
                                                        env: dict[str, str], change: str) -> None:
    archive = _archive(tmp_path, 3)
    assert _giropops("copy", f"archive://{archive}", f"registry://{registry.host}/{repo}:1", env=env)[0] == 0
    if change == "touch":
        st = archive.stat()
        os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        expected = _skopeo_manifest(registry.host, f"{repo}:1")
    else:
        (tmp_path / "other").mkdir()
        shutil.copy(_archive(tmp_path / "other", 4), archive)
        expected = None
    code, _out, err, mods = _giropops("copy", f"archive://{archive}", f"registry://{registry.host}/{repo}:2", env=env)
    assert code == 0 and _slow_path(mods), err
    manifest = _skopeo_manifest(registry.host, f"{repo}:2")
    if expected is not None:
        assert manifest == expected
    else:
        assert manifest != _skopeo_manifest(registry.host, f"{repo}:1")
    _skopeo_copies(registry.host, f"{repo}:2", tmp_path)


def test_a_blob_gone_from_the_registry_falls_back(tmp_path: Path, env: dict[str, str]) -> None:
    reg = Registry(tmp_path / "own-registry")
    reg.start()
    try:
        archive = _archive(tmp_path, 5)
        assert _giropops("push", f"archive://{archive}", f"registry://{reg.host}/r/x:1", env=env)[0] == 0
        layer = _skopeo_manifest(reg.host, "r/x:1")["layers"][1]["digest"]  # type: ignore[index]
        # the blob's data in the registry's storage, removed as a garbage collection would
        blob_dir = tmp_path / "own-registry/storage/docker/registry/v2/blobs/sha256" / layer[7:9] / layer[7:]
        shutil.rmtree(blob_dir)
        code, _out, err, mods = _giropops("push", f"archive://{archive}", f"registry://{reg.host}/r/x:2", env=env)
        assert code == 0 and _slow_path(mods), err
        _skopeo_copies(reg.host, "r/x:2", tmp_path)
    finally:
        reg.stop()


def test_a_damaged_record_is_a_miss(registry: Registry, repo: str, tmp_path: Path, env: dict[str, str]) -> None:
    archive = _archive(tmp_path, 6)
    assert _giropops("push", f"archive://{archive}", f"registry://{registry.host}/{repo}:1", env=env)[0] == 0
    (record,) = _records(env)
    data = record.read_bytes()
    record.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # the manifest no longer hashes to its digest
    code, _out, err, mods = _giropops("push", f"archive://{archive}", f"registry://{registry.host}/{repo}:2", env=env)
    assert code == 0 and _slow_path(mods), err
    assert _skopeo_manifest(registry.host, f"{repo}:2") == _skopeo_manifest(registry.host, f"{repo}:1")
    assert record.read_bytes() == data  # the full push recorded it again


def test_an_auth_protected_registry_falls_back(tmp_path: Path, env: dict[str, str]) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "s3cret"})
    reg = Registry(tmp_path / "auth-registry", htpasswd=htpasswd)
    reg.start()
    try:
        env = dict(env, GIROPOPS_REGISTRY_USERNAME="alice", GIROPOPS_REGISTRY_PASSWORD="s3cret")
        archive = _archive(tmp_path, 7)
        with FaultProxy(reg.port) as proxy:
            assert _giropops("push", f"archive://{archive}", f"registry://{proxy.host}/r/x:1", env=env)[0] == 0
            assert len(_records(env)) == 1
            proxy.log.clear()
            code, _out, err, mods = _giropops("push", f"archive://{archive}", f"registry://{proxy.host}/r/x:2",
                                             env=env)
            assert code == 0 and _slow_path(mods), err
            assert [m for m, _p, w in proxy.log if m == "PUT" and "/manifests/" in _p] == ["PUT"]
    finally:
        reg.stop()


@pytest.mark.parametrize("text", [
    "registry://127.0.0.1:5000/a/b:1", "registry://localhost/x:latest", "registry://[::1]:5000/a-b/c__d:v1.0_x",
    "registry://127.0.0.1:5000/a.b/c---d:T-1", "registry://127.1.2.3/a:b",
    # refused: not loopback, a digest, no tag, bad names, bad ports
    "registry://example.com/a:1", "registry://127.0.0.1:5000/a@sha256:" + "0" * 64, "registry://127.0.0.1:5000/a",
    "registry://127.0.0.1:5000/A:1", "registry://127.0.0.1:5000/a..b:1", "registry://127.0.0.1:5000/a_-b:1",
    "registry://127.0.0.1:5000/-a:1", "registry://127.0.0.1:5000/a/:1", "registry://127.0.0.1:5000/a:.1",
    "registry://127.0.0.1:x/a:1", "registry://127.0.0.1:5000/a:" + "t" * 129, "registry://127.0.0.256/a:1",
    "127.0.0.1:5000/a:1", "registry://127.0.0.1:5000//a:1",
])
def test_replayed_destinations_read_as_the_full_path_reads_them(text: str) -> None:
    """Whatever the replay's own parser takes, ``Reference.parse`` reads as the same host, repository and tag."""
    from giropops.cli._replay import parse_destination
    from giropops.errors import ImageReferenceError
    from giropops.oci.reference import Reference

    parsed = parse_destination(text)
    if parsed is None:
        return
    try:
        ref = Reference.parse(text[len("registry://"):])
    except ImageReferenceError:
        pytest.fail(f"the replay takes {text!r}, the reference parser refuses it")
    assert (ref.registry_host, ref.path, ref.tag, ref.digest) == (*parsed, None)


def test_replayed_destination_parser_accepts_the_plain_ones() -> None:
    from giropops.cli._replay import parse_destination

    assert parse_destination("registry://127.0.0.1:5000/a/b:1") == ("127.0.0.1:5000", "a/b", "1")
    assert parse_destination("registry://[::1]:5000/a-b/c__d:v1") == ("[::1]:5000", "a-b/c__d", "v1")
    for refused in ("registry://example.com/a:1", "registry://127.0.0.1:5000/a", "registry://127.0.0.1/A:1",
                    "registry://127.0.0.1/a..b:1", "registry://127.0.0.1/a_-b:1", "registry://127.0.0.1/a:.x"):
        assert parse_destination(refused) is None, refused


def test_cache_prune_removes_the_records_and_the_next_push_is_a_full_one(
    registry: Registry, repo: str, tmp_path: Path, env: dict[str, str]
) -> None:
    from giropops.cachectl import PUSH_REPLAY

    assert PUSH_REPLAY == DIR_NAME
    archive = _archive(tmp_path, 8)
    assert _giropops("push", f"archive://{archive}", f"registry://{registry.host}/{repo}:1", env=env)[0] == 0
    assert len(_records(env)) == 1
    assert _giropops("cache", "prune", "--sboms", env=env)[0] == 0  # the SBOM caches only
    assert len(_records(env)) == 1
    code, out, _err, _mods = _giropops("cache", "prune", env=env)
    assert code == 0 and f"{DIR_NAME}: " in out and _records(env) == []
    code, _out, err, mods = _giropops("push", f"archive://{archive}", f"registry://{registry.host}/{repo}:2", env=env)
    assert code == 0 and _slow_path(mods), err
    assert len(_records(env)) == 1


def _record_bytes() -> bytes:
    from giropops.oci.registry.replay import Record

    manifest = b'{"schemaVersion":2}'
    return Record((1, 2, 3, 4, 5), "e" * 32, "127.0.0.1:5000", "a/b", "sha256:" + "1" * 64,
                  "application/vnd.oci.image.manifest.v1+json", manifest, [("sha256:" + "2" * 64, 10)]).encode()


def test_a_record_reads_back_as_written() -> None:
    import hashlib

    from giropops.oci.registry.replay import decode

    record = decode(_record_bytes())
    assert record is not None
    assert (record.identity, record.host, record.repo, record.manifest, record.blobs) == (
        (1, 2, 3, 4, 5), "127.0.0.1:5000", "a/b", b'{"schemaVersion":2}', [("sha256:" + "2" * 64, 10)])
    assert record.digest == "sha256:" + hashlib.sha256(b'{"schemaVersion":2}').hexdigest()


@pytest.mark.parametrize("damage", [
    lambda b: b"x" + b,                                             # another magic line
    lambda b: b[:-3],                                               # the manifest cut short
    lambda b: b.replace(b"identity 1 2 3 4 5", b"identity 1 2 3 4"),  # an identity of another shape
    lambda b: b.replace(b"identity 1 2", b"identity x 2"),
    lambda b: b.replace(b"host ", b"host2 "),                        # a field missing
    lambda b: b.replace(b"repo a/b\n", b"repo a/b\nrepo c\n"),        # a field twice
    lambda b: b.replace(b"blob sha256:" + b"2" * 64 + b" 10\n", b""),  # no blob
    lambda b: b.replace(b" 10\n", b" -1\n"),                         # a size that is not one
    lambda b: b.replace(b"digest sha256:", b"digest sha512:"),       # a digest that is not the manifest's
    lambda b: b + b"\0" * (256 * 1024),                               # too large
    lambda b: b.replace(b"source sha256:", b"source \xff"),          # not ASCII
])
def test_a_record_not_exactly_ours_is_a_miss(damage) -> None:  # type: ignore[no-untyped-def]
    from giropops.oci.registry.replay import decode

    assert decode(damage(_record_bytes())) is None
