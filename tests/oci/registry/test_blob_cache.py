"""Pushing what the registry already has: the blob-info cache against the real distribution registry.

The source is a docker-archive written by skopeo (layers stored uncompressed, as ``docker save``
and skopeo write them), so a push gzips each layer.  Requests are counted through a forwarding
proxy; "nothing was read" is proven by corrupting the layer bytes inside the archive after the
first push (any read of them fails its digest check).  Validity of what was pushed is checked by
skopeo (copying verifies every blob's digest and size) and by decompressing the layers here.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import multiprocessing
import os
import random
import subprocess
import sys
import tarfile
import urllib.request
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode

import pytest

from giropops.errors import BlobError
from giropops.oci import mediatypes as mt
from giropops.oci import mutate
from giropops.oci.empty import empty_image
from giropops.oci.memory import build_index
from giropops.oci.model import Digest, Platform
from giropops.oci.registry.blobinfo import DIR_NAME, BlobInfoCache, BlobLocation
from giropops.oci.transport import open_any, open_image, write_image
from giropops.progress import NO_PROGRESS, Progress
from tests.support.faultproxy import FaultProxy
from tests.support.oci_images import tar_bytes
from tests.support.progress import RecordingProgress
from tests.support.services import Registry, require_binary

Log = list[tuple[str, str, str]]


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer_tars(seed: int, n: int = 3) -> list[bytes]:
    rnd = random.Random(seed)
    words = [rnd.randbytes(6).hex().encode() for _ in range(300)]
    # compressible text, so the compressed blobs differ in size from the tars
    return [tar_bytes({f"data/{seed}-{i}.txt": b" ".join(rnd.choices(words, k=20000))}) for i in range(n)]


def _skopeo_docker_archive(tmp: Path, seed: int, platform: Platform | None = None) -> tuple[Path, list[bytes]]:
    """A docker-archive written by skopeo from an image with uncompressed layers."""
    tars = _layer_tars(seed)
    layers = [mutate.layer_from_tar(t, "none") for t in tars]
    img = mutate.canonicalize(mutate.with_config(mutate.append_layers(empty_image(platform), layers),
                                                 cmd=["/bin/true"]), 0)
    layout = tmp / f"layout-{seed}"
    write_image(img, f"oci-dir://{layout}:src")
    archive = tmp / f"docker-{seed}.tar"
    subprocess.run([require_binary("skopeo"), "copy", "-q", f"oci:{layout}:src",
                    f"docker-archive:{archive}:example.com/blob/cache:{seed}"], check=True, timeout=120)
    return archive, tars


def _corrupt_layers(archive: Path) -> None:
    """Flip a byte in the middle of every layer the archive's manifest.json names (tar headers intact)."""
    with tarfile.open(archive) as t:
        manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
        spots = []
        for name in manifest[0]["Layers"]:
            m = t.getmember(name)
            spots.append(m.offset_data + m.size // 2)
    with open(archive, "r+b") as f:
        for pos in spots:
            f.seek(pos)
            b = f.read(1)
            f.seek(pos)
            f.write(bytes([b[0] ^ 0xFF]))


def _push(archive: Path, host: str, dest: str, progress: Progress = NO_PROGRESS) -> Digest:
    return write_image(open_image(f"archive://{archive}"), f"registry://{host}/{dest}", progress=progress)


def _compressed(progress: RecordingProgress) -> list[str]:
    return [n for n in progress.notes if n.startswith("compressing layer")]


def _blob_writes(log: Log) -> list[tuple[str, str, str]]:
    return [e for e in log if e[0] in ("POST", "PUT", "PATCH") and "/blobs/" in e[1]]


def _uploads(log: Log) -> list[tuple[str, str, str]]:
    """Requests that carry blob bytes (a monolithic PUT with the digest, or a PATCH)."""
    return [e for e in log if "/blobs/uploads/" in e[1] and (e[0] == "PATCH" or (e[0] == "PUT" and "digest=" in e[1]))]


def _check_valid(registry: Registry, ref: str, tars: list[bytes], tmp: Path) -> dict:
    """skopeo copies the image (verifying every blob); layers are gzip and decompress to the tars."""
    out = tmp / f"check-{ref.replace('/', '_').replace(':', '_')}"
    subprocess.run([require_binary("skopeo"), "copy", "-q", "--src-tls-verify=false",
                    f"docker://{registry.host}/{ref}", f"oci:{out}:x"], check=True, timeout=120,
                   capture_output=True)
    index = json.loads((out / "index.json").read_text())
    man_digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((out / "blobs/sha256" / man_digest).read_bytes())
    config = json.loads((out / "blobs/sha256" / manifest["config"]["digest"].split(":")[1]).read_bytes())
    assert config["rootfs"]["diff_ids"] == [_sha(t) for t in tars]
    for desc, tar in zip(manifest["layers"], tars, strict=True):
        assert desc["mediaType"] == mt.OCI_LAYER_GZIP
        blob = (out / "blobs/sha256" / desc["digest"].split(":")[1]).read_bytes()
        assert len(blob) == desc["size"] and _sha(blob) == desc["digest"]
        assert gzip.decompress(blob) == tar
    return manifest


def _layer_files(cache_dir: Path) -> list[Path]:
    return sorted(p for p in (cache_dir / DIR_NAME).iterdir() if not p.name.startswith("."))


def _cache_rows(cache_dir: Path) -> list[tuple]:
    """(diff_id, digest, media_type, size, registry, repository) of every row, read from the files."""
    return [tuple(row[:6]) for p in _layer_files(cache_dir) for row in json.loads(p.read_bytes())["rows"]]


def _edit_rows(cache_dir: Path, edit) -> None:  # type: ignore[no-untyped-def]
    """Rewrite every stored row with ``edit(row)`` (the files as another writer would leave them)."""
    for p in _layer_files(cache_dir):
        doc = json.loads(p.read_bytes())
        doc["rows"] = [edit(list(row)) for row in doc["rows"]]
        p.write_text(json.dumps(doc))


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("GIROPOPS_CACHE_DIR", str(d))
    return d


def test_second_push_to_the_same_repository_only_heads(
    registry: Registry, repo: str, tmp_path: Path, cache_dir: Path
) -> None:
    archive, tars = _skopeo_docker_archive(tmp_path, 1)
    with FaultProxy(registry.port) as proxy:
        first = _push(archive, proxy.host, f"{repo}:1")
        assert len(_uploads(proxy.log)) == 4  # three gzipped layers and the config
        _check_valid(registry, f"{repo}:1", tars, tmp_path)

        _corrupt_layers(archive)  # from now on, reading a layer fails its digest check
        proxy.log.clear()
        progress = RecordingProgress()
        second = _push(archive, proxy.host, f"{repo}:2", progress)
        assert _compressed(progress) == []
        assert second == first
        assert _blob_writes(proxy.log) == []
        assert [m for m, _p, _w in proxy.log].count("HEAD") == 4
        assert [(m, p) for m, p, _w in proxy.log if m != "HEAD"] == [("PUT", f"/v2/{repo}/manifests/2")]
    _check_valid(registry, f"{repo}:2", tars, tmp_path)


def test_the_corrupted_archive_would_fail_if_it_were_read(
    registry: Registry, repo: str, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proof above holds: without the cache the same corrupted archive cannot be pushed."""
    archive, _tars = _skopeo_docker_archive(tmp_path, 2)
    _push(archive, registry.host, f"{repo}:1")
    _corrupt_layers(archive)
    monkeypatch.setenv("GIROPOPS_CACHE_DIR", str(tmp_path / "empty-cache"))
    with pytest.raises(BlobError, match="does not match its digest"):
        _push(archive, registry.host, f"{repo}:2")


def test_push_to_another_repository_of_the_same_registry_mounts(
    registry: Registry, repo: str, tmp_path: Path, cache_dir: Path
) -> None:
    archive, tars = _skopeo_docker_archive(tmp_path, 3)
    with FaultProxy(registry.port) as proxy:
        first = _push(archive, proxy.host, f"{repo}/a:1")
        _corrupt_layers(archive)
        proxy.log.clear()
        second = _push(archive, proxy.host, f"{repo}/b:1")
        assert second == first
        assert _uploads(proxy.log) == []
        mounts = [e for e in proxy.log if e[0] == "POST" and urlencode({"from": f"{repo}/a"}) in e[1]]
        assert len(mounts) == 4 and all(w == "forwarded 201" for _m, _p, w in mounts)  # three layers + config
    _check_valid(registry, f"{repo}/b:1", tars, tmp_path)
    repos = {r[5] for r in _cache_rows(cache_dir)}
    assert repos == {f"{repo}/a", f"{repo}/b"}


def test_a_changed_layer_in_the_archive_is_read_and_pushed_again(
    registry: Registry, repo: str, tmp_path: Path, cache_dir: Path
) -> None:
    """The same archive path rewritten with one layer changed (a rebuilt image): that layer is read,
    compressed and uploaded; the unchanged ones are not."""
    tars = _layer_tars(11)
    archive = tmp_path / "app.tar"

    def write(layer_tars: list[bytes]) -> None:
        layers = [mutate.layer_from_tar(t, "none") for t in layer_tars]
        img = mutate.canonicalize(mutate.with_config(mutate.append_layers(empty_image(), layers),
                                                     cmd=["/bin/true"]), 0)
        layout = tmp_path / f"layout-{len(list(tmp_path.iterdir()))}"
        write_image(img, f"oci-dir://{layout}:src")
        archive.unlink(missing_ok=True)
        subprocess.run([require_binary("skopeo"), "copy", "-q", f"oci:{layout}:src",
                        f"docker-archive:{archive}:example.com/app:1"], check=True, timeout=120)

    write(tars)
    _push(archive, registry.host, f"{repo}:1")
    changed = [tars[0], tar_bytes({"data/changed.txt": b"the second build changed this layer\n" * 500}), tars[2]]
    write(changed)
    with FaultProxy(registry.port) as proxy:
        progress = RecordingProgress()
        _push(archive, proxy.host, f"{repo}:2", progress)
        assert _compressed(progress) == [f"compressing layer {Digest.parse(_sha(changed[1])).short}"]
        ups = _uploads(proxy.log)
    assert len(ups) == 2  # the changed layer (gzipped) and the new config (its diff_ids changed)
    _check_valid(registry, f"{repo}:2", changed, tmp_path)
    _check_valid(registry, f"{repo}:1", tars, tmp_path)  # the first push is untouched


def test_a_warm_push_to_another_repository_asks_only_for_mounts_and_sizes(
    registry: Registry, repo: str, tmp_path: Path, cache_dir: Path
) -> None:
    archive, tars = _skopeo_docker_archive(tmp_path, 12)
    with FaultProxy(registry.port) as proxy:  # one registry host for both pushes (the cache is per host)
        _push(archive, proxy.host, f"{repo}/a:1")
        proxy.log.clear()
        _push(archive, proxy.host, f"{repo}/b:1")
        log = list(proxy.log)
    mount = urlencode({"from": f"{repo}/a"})
    posts = [p for m, p, w in log if m == "POST" and mount in p and w == "forwarded 201"]
    heads = [p for m, p, _w in log if m == "HEAD"]
    assert len(posts) == 4  # the config and three layers, each mounted at once (no HEAD before the mount)
    assert len(heads) == 3  # each layer's size in the destination, after its mount (the cache's is a hint)
    assert [(m, p) for m, p, _w in log if m not in ("POST", "HEAD")] == [("PUT", f"/v2/{repo}/b/manifests/1")]
    assert len(log) == 8
    _check_valid(registry, f"{repo}/b:1", tars, tmp_path)


def test_a_warm_cli_push_imports_neither_sqlite_nor_openssl_nor_the_terminal_progress(
    registry: Registry, repo: str, tmp_path: Path, cache_dir: Path
) -> None:
    from tests.support.imports import MODULES_WRAPPER

    archive, _tars = _skopeo_docker_archive(tmp_path, 13)
    _push(archive, registry.host, f"{repo}:1")
    out = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", MODULES_WRAPPER, str(out), "copy", "-q", f"archive://{archive}",
                           f"registry://{registry.host}/{repo}:2"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    modules = set(json.loads(out.read_text())["modules"])
    assert "giropops.oci.registry.blobinfo" in modules  # the wrapper really pushed, through the cache
    unwanted = {"sqlite3", "_sqlite3", "datetime", "giropops.cli.progress", "argparse", "tempfile",
                "concurrent.futures", "giropops.oci.copygzip", "gzip", "hashlib", "_hashlib", "threading", "binascii"}
    assert sorted(unwanted & modules) == []


def _delete_blob(registry: Registry, repo: str, digest: str) -> None:
    req = urllib.request.Request(f"http://{registry.host}/v2/{repo}/blobs/{digest}", method="DELETE")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 202


def test_blob_deleted_from_the_registry_falls_back_to_an_upload(
    registry: Registry, repo: str, tmp_path: Path, cache_dir: Path
) -> None:
    archive, tars = _skopeo_docker_archive(tmp_path, 4)
    with FaultProxy(registry.port) as proxy:
        _push(archive, proxy.host, f"{repo}/a:1")
        manifest = _check_valid(registry, f"{repo}/a:1", tars, tmp_path)
        gone = manifest["layers"][1]["digest"]
        _delete_blob(registry, f"{repo}/a", gone)
        # in the destination repository (a HEAD says absent) and as a mount source (the mount does not happen)
        proxy.log.clear()
        _push(archive, proxy.host, f"{repo}/a:2")
        ups = _uploads(proxy.log)
        assert len(ups) == 1 and f"digest={gone.replace(':', '%3A')}" in ups[0][1]  # only the deleted layer
        assert ("HEAD", f"/v2/{repo}/a/blobs/{gone}", "forwarded 404") in proxy.log
        _check_valid(registry, f"{repo}/a:2", tars, tmp_path)
        _delete_blob(registry, f"{repo}/a", gone)
        proxy.log.clear()
        _push(archive, proxy.host, f"{repo}/b:1")
        ups = _uploads(proxy.log)
        assert len(ups) == 1 and f"digest={gone.replace(':', '%3A')}" in ups[0][1]
        assert any(m == "POST" and f"mount={gone.replace(':', '%3A')}" in p and w == "forwarded 202"
                   for m, p, w in proxy.log)
    _check_valid(registry, f"{repo}/b:1", tars, tmp_path)


def test_wrong_size_in_the_cache_is_not_trusted(
    registry: Registry, repo: str, tmp_path: Path, cache_dir: Path
) -> None:
    archive, tars = _skopeo_docker_archive(tmp_path, 5)
    _push(archive, registry.host, f"{repo}/a:1")
    true_sizes = {d["digest"]: d["size"] for d in _check_valid(registry, f"{repo}/a:1", tars, tmp_path)["layers"]}
    for dest in (f"{repo}/a:2", f"{repo}/b:1"):  # the HEAD path, the mount path
        _edit_rows(cache_dir, lambda r: [*r[:3], r[3] + 7, *r[4:]] if r[2] == mt.OCI_LAYER_GZIP else r)
        progress = RecordingProgress()
        _push(archive, registry.host, dest, progress)
        assert len(_compressed(progress)) == 3  # the entries were not trusted: each layer read again
    progress = RecordingProgress()
    _push(archive, registry.host, f"{repo}/b:2", progress)
    assert _compressed(progress) == []  # and the true sizes recorded serve the next push
    for ref in (f"{repo}/a:2", f"{repo}/b:1", f"{repo}/b:2"):
        got = _check_valid(registry, ref, tars, tmp_path)
        assert {d["digest"]: d["size"] for d in got["layers"]} == true_sizes
    sizes = {r[1]: r[3] for r in _cache_rows(cache_dir) if r[2] == mt.OCI_LAYER_GZIP}
    assert sizes == true_sizes  # the wrong rows were forgotten and the true ones recorded


def test_cache_rows_naming_no_valid_repository_are_ignored(
    registry: Registry, repo: str, tmp_path: Path, cache_dir: Path
) -> None:
    archive, tars = _skopeo_docker_archive(tmp_path, 10)
    _push(archive, registry.host, f"{repo}/a:1")
    _edit_rows(cache_dir, lambda r: [*r[:5], "../../v2/_catalog?x=", *r[6:]])
    progress = RecordingProgress()
    _push(archive, registry.host, f"{repo}/b:1", progress)
    assert len(_compressed(progress)) == 3
    _check_valid(registry, f"{repo}/b:1", tars, tmp_path)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign", "other-layer"])
def test_damaged_cache_files_are_misses_then_rewritten(
    registry: Registry, repo: str, tmp_path: Path, cache_dir: Path, damage: str
) -> None:
    archive, tars = _skopeo_docker_archive(tmp_path, 6)
    _push(archive, registry.host, f"{repo}/{damage}:0")
    files = _layer_files(cache_dir)
    assert len(files) == 4  # three layers and the config
    datas = [path.read_bytes() for path in files]
    for i, (path, data) in enumerate(zip(files, datas, strict=True)):
        if damage == "garbage":
            path.write_bytes(b"this is not json\n" * 100)
        elif damage == "truncated":
            path.write_bytes(data[: len(data) // 2])
        elif damage == "foreign":
            path.write_text(json.dumps({"something": [1, 2, 3]}))
        else:  # each file holds another layer's rows: rows filed under the wrong name are not trusted
            path.write_bytes(datas[(i + 1) % len(datas)])
    progress = RecordingProgress()
    _push(archive, registry.host, f"{repo}/{damage}:1", progress)
    assert len(_compressed(progress)) == 3  # nothing usable was known: every layer read and compressed again
    assert len(_cache_rows(cache_dir)) == 4  # rewritten, holding what this push saw
    _corrupt_layers(archive)
    with FaultProxy(registry.port) as proxy:
        _push(archive, proxy.host, f"{repo}/{damage}:2")
        assert _blob_writes(proxy.log) == []
    _check_valid(registry, f"{repo}/{damage}:2", tars, tmp_path)


def test_an_index_of_uncompressed_images_is_pushed_gzipped_and_stays_valid(
    registry: Registry, repo: str, tmp_path: Path, cache_dir: Path
) -> None:
    amd_tars, arm_tars = _layer_tars(7, 2), _layer_tars(8, 1)
    amd = mutate.append_layers(empty_image(Platform("linux", "amd64")),
                               [mutate.layer_from_tar(t, "none") for t in amd_tars])
    arm = mutate.append_layers(empty_image(Platform("linux", "arm64", "v8")),
                               [mutate.layer_from_tar(t, "none") for t in arm_tars])
    idx = build_index([(amd, None), (arm, None)])
    digest = write_image(idx, f"registry://{registry.host}/{repo}:multi")
    assert digest != idx.digest  # its children now name gzip blobs
    got = open_any(f"registry://{registry.host}/{repo}@{digest}")
    assert got.digest == digest
    for plat, tars in ((Platform("linux", "amd64"), amd_tars), (Platform("linux", "arm64", "v8"), arm_tars)):
        ref = f"{repo}@{got.image_for(plat).digest}"
        _check_valid(registry, ref, tars, tmp_path)


def _giropops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "giropops", *args], capture_output=True, text=True, timeout=120)


def test_cli_push_gzips_and_preserve_digests_keeps_the_archive_digest(
    registry: Registry, repo: str, tmp_path: Path, cache_dir: Path
) -> None:
    archive, tars = _skopeo_docker_archive(tmp_path, 9)
    as_is = open_image(f"archive://{archive}")
    proc = _giropops("copy", f"archive://{archive}", f"registry://{registry.host}/{repo}:gz")
    assert proc.returncode == 0, proc.stderr
    gz = proc.stdout.strip()
    assert gz != str(as_is.digest)
    _check_valid(registry, f"{repo}:gz", tars, tmp_path)
    proc = _giropops("push", "--preserve-digests", f"archive://{archive}", f"{registry.host}/{repo}:plain")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(as_is.digest)
    raw = subprocess.run([require_binary("skopeo"), "inspect", "--raw", "--tls-verify=false",
                          f"docker://{registry.host}/{repo}:plain"], capture_output=True, check=True, timeout=60)
    assert _sha(raw.stdout) == str(as_is.digest)
    assert {d["mediaType"] for d in json.loads(raw.stdout)["layers"]} != {mt.OCI_LAYER_GZIP}
    assert len(_layer_files(cache_dir)) == 4


# -- the cache on its own --------------------------------------------------------------------------


def _loc(i: int, repo: str = "r") -> BlobLocation:
    def d(tag: str) -> Digest:
        return Digest("sha256", hashlib.sha256(f"{tag}{i}".encode()).hexdigest())

    return BlobLocation(d("diff"), d("gz"), mt.OCI_LAYER_GZIP, 100 + i, "127.0.0.1:5000", repo)


def test_cache_is_bounded_and_evicts_the_oldest(tmp_path: Path) -> None:
    with BlobInfoCache(tmp_path / "c", max_entries=5, refresh_after=0) as cache:
        for i in range(8):
            cache.update(add=[_loc(i)])
        assert len(cache) == 5
        kept = {loc.size - 100 for loc in cache.lookup(diff_ids=[_loc(i).diff_id for i in range(8)])}
        assert kept == {3, 4, 5, 6, 7}
        cache.update(add=[_loc(3)])  # confirmed again: now the newest
        cache.update(add=[_loc(8)])
        kept = {loc.size - 100 for loc in cache.lookup(diff_ids=[_loc(i).diff_id for i in range(9)])}
        assert kept == {3, 5, 6, 7, 8}


def test_a_row_confirmed_within_the_refresh_time_is_not_written_again(tmp_path: Path) -> None:
    # the same sequence as above with the default refresh time: confirming _loc(3) again so soon
    # leaves its row as it was (no write), so it is still the oldest and the one evicted
    with BlobInfoCache(tmp_path / "c", max_entries=5) as cache:
        for i in range(8):
            cache.update(add=[_loc(i)])
        cache.update(add=[_loc(3)])
        cache.update(add=[_loc(8)])
        kept = {loc.size - 100 for loc in cache.lookup(diff_ids=[_loc(i).diff_id for i in range(9)])}
        assert kept == {4, 5, 6, 7, 8}
        changed = replace(_loc(4), size=999)  # the registry said another size: that is written at once
        cache.update(add=[changed])
        assert {loc.size for loc in cache.lookup(diff_ids=[changed.diff_id])} == {999}
        # contradicted by the registry and pushed again as the same blob in one push: the row stays
        cache.update(add=[_loc(5)], forget=[_loc(5)])
        assert cache.lookup(diff_ids=[_loc(5).diff_id]) == [_loc(5)]


def _writer(path: str, worker: int, n: int) -> None:
    with BlobInfoCache(Path(path)) as cache:
        for i in range(n):
            cache.update(add=[_loc(worker * 1000 + i, repo=f"w{worker}")])
        assert cache.disabled_reason is None, cache.disabled_reason


def test_cache_is_safe_for_concurrent_processes(tmp_path: Path) -> None:
    path = tmp_path / "c"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w, 60)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with BlobInfoCache(path) as cache:
        assert len(cache) == 240
        found = cache.lookup(diff_ids=[_loc(w * 1000 + i).diff_id for w in range(4) for i in range(60)])
        assert sorted((loc.repository, loc.size) for loc in found) == sorted(
            (f"w{w}", 100 + w * 1000 + i) for w in range(4) for i in range(60))
    assert [p.name for p in path.iterdir() if p.name.startswith(".tmp-")] == []


def _same_layer_writer(path: str, worker: int, n: int) -> None:
    with BlobInfoCache(Path(path)) as cache:
        for i in range(n):
            cache.update(add=[replace(_loc(0), repository=f"w{worker}-{i}")])
        assert cache.disabled_reason is None, cache.disabled_reason


def test_concurrent_processes_adding_rows_to_one_layer_keep_every_row(tmp_path: Path) -> None:
    path = tmp_path / "c"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_same_layer_writer, args=(str(path), w, 12)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with BlobInfoCache(path) as cache:
        repos = {loc.repository for loc in cache.lookup(diff_ids=[_loc(0).diff_id])}
    assert repos == {f"w{w}-{i}" for w in range(4) for i in range(12)}  # no update lost to another's


def test_a_cache_file_damaged_in_the_middle_is_a_miss_then_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "c"
    locs = [replace(_loc(0), repository=f"r{i}") for i in range(30)]
    with BlobInfoCache(path) as cache:
        cache.update(add=locs)
    (layer_file,) = [p for p in path.iterdir() if not p.name.startswith(".")]
    data = layer_file.read_bytes()
    layer_file.write_bytes(data[: len(data) // 3] + os.urandom(len(data) // 3) + data[2 * len(data) // 3:])
    with BlobInfoCache(path) as cache:
        assert cache.lookup(diff_ids=[_loc(0).diff_id]) == []  # not trusted in part: a miss
        cache.update(add=[locs[5]])
        assert cache.disabled_reason is None
    with BlobInfoCache(path) as cache:
        assert cache.lookup(diff_ids=[_loc(0).diff_id]) == [locs[5]]


def test_rows_per_layer_are_bounded_keeping_the_newest(tmp_path: Path) -> None:
    from giropops.oci.registry.blobinfo import MAX_ROWS

    locs = [replace(_loc(0), repository=f"r{i}") for i in range(MAX_ROWS + 10)]
    with BlobInfoCache(tmp_path / "c", refresh_after=0) as cache:
        for loc in locs:
            cache.update(add=[loc])
        found = cache.lookup(diff_ids=[_loc(0).diff_id])
    assert found == locs[::-1][:MAX_ROWS]  # most recently confirmed first


def test_cache_that_cannot_be_created_is_skipped(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    with BlobInfoCache(blocker / "c") as cache:
        assert cache.lookup(diff_ids=[_loc(1).diff_id]) == []
        cache.update(add=[_loc(1)])
        assert cache.disabled_reason is not None and str(blocker / "c") in cache.disabled_reason


_PLANTED = """
import os, sys
from pathlib import Path
from giropops.oci.registry.blobinfo import BlobInfoCache
from tests.oci.registry.test_blob_cache import _loc
cache_dir = Path(sys.argv[1])
with BlobInfoCache(cache_dir) as cache:
    cache.update(add=[_loc(1), _loc(2)])
    fifo, link = (cache_dir / f"sha256-{_loc(i).diff_id.hex}" for i in (1, 2))
    fifo.unlink()
    os.mkfifo(fifo)  # nobody ever writes to it: reading it would wait for ever
    (cache_dir / "secret").write_text("not a cache file")
    link.unlink()
    link.symlink_to(cache_dir / "secret")
    print(cache.lookup(diff_ids=[_loc(1).diff_id, _loc(2).diff_id]))
"""


def test_a_fifo_or_a_link_in_place_of_a_layer_file_is_a_miss_not_a_hang(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", _PLANTED, str(tmp_path / "c")], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[3])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_lookup_near_a_push_returns_only_the_rows_it_can_use(tmp_path: Path) -> None:
    here = replace(_loc(0), registry="a.example", repository="r5")
    same_registry = [replace(_loc(0), registry="a.example", repository=f"r{i}") for i in range(20) if i != 5]
    elsewhere = [replace(_loc(0), registry="b.example", repository=f"s{i}") for i in range(10)]
    with BlobInfoCache(tmp_path / "c", refresh_after=0) as cache:
        for loc in [here, *same_registry, *elsewhere]:  # confirmed in this order: the last is the newest
            cache.update(add=[loc])
        near = cache.lookup(diff_ids=[_loc(0).diff_id], near=("a.example", "r5"))
        everything = cache.lookup(diff_ids=[_loc(0).diff_id])
    assert len(everything) == 30
    assert set(near) == {here, *same_registry[-4:], *elsewhere[-4:]}
    assert near[0] == elsewhere[-1]  # still most recently confirmed first


def test_cache_prune_empties_the_blob_info_store_and_the_old_sqlite_one(
    registry: Registry, repo: str, tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from giropops.cli.main import main

    archive, _tars = _skopeo_docker_archive(tmp_path, 21)
    _push(archive, registry.host, f"{repo}:1")
    written = [p for p in (cache_dir / DIR_NAME).rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert len(written) >= 3  # one file per pushed layer
    # what an earlier release left: an SQLite store in WAL mode, its side files open while a connection is
    old = cache_dir / "blob-info-v1.sqlite"
    conn = sqlite3.connect(old)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    assert (cache_dir / "blob-info-v1.sqlite-wal").exists()
    capsys.readouterr()
    assert main(["cache", "df"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.startswith("blob-info")}
    assert int(rows[DIR_NAME][1]) == len([p for p in (cache_dir / DIR_NAME).rglob("*") if p.is_file()])
    assert "blob-info-v1.sqlite" in rows and "(no longer used)" in out

    assert main(["cache", "prune", "--sboms"]) == 0  # the SBOM caches only: the push records stay
    assert DIR_NAME not in capsys.readouterr().out and all(p.exists() for p in written) and old.exists()
    assert main(["cache", "prune"]) == 0
    out = capsys.readouterr().out
    conn.close()
    assert f"{DIR_NAME}: " in out and "blob-info-v1.sqlite (no longer used): " in out
    assert not any(p.is_file() for p in (cache_dir / DIR_NAME).rglob("*"))
    assert not any(cache_dir.glob("blob-info-v1.sqlite*"))
    # the next push works from the emptied store, and fills it again
    _push(archive, registry.host, f"{repo}:2")
    assert any(p.is_file() for p in (cache_dir / DIR_NAME).rglob("*"))
