"""Hostile archives and layouts: a clear error, a non-zero exit, and nothing left in the destination."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from giropops.oci import mediatypes as mt
from giropops.oci.archive import write_archive
from giropops.oci.layout import write_layout
from tests.support.hostile_registry import HostileRegistry
from tests.support.oci_images import random_image
from tests.support.services import require_binary

Entries = list[tuple[tarfile.TarInfo, bytes]]


def giropops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "giropops", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def good_archive(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("good") / "good.tar"
    write_archive(random_image(70, layers=2), path, "example.com/good:1")
    return path


def read_entries(path: Path) -> Entries:
    out = []
    with tarfile.open(path) as t:
        for m in t.getmembers():
            f = t.extractfile(m)
            out.append((m, f.read() if f else b""))
    return out


def write_entries(entries: Entries, path: Path) -> Path:
    with tarfile.open(path, "w") as t:
        for ti, data in entries:
            ti = ti.replace()  # copy: the size may change
            if ti.isreg():
                ti.size = len(data)
            t.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    return path


def file_info(name: str, data: bytes = b"") -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    return ti, data


def layer_names(entries: Entries) -> list[str]:
    manifest = json.loads(next(d for ti, d in entries if ti.name == "manifest.json"))
    return manifest[0]["Layers"]


def set_member(entries: Entries, name: str, data: bytes) -> Entries:
    return [(ti, data if ti.name == name else d) for ti, d in entries]


def drop(entries: Entries, *names: str) -> Entries:
    return [(ti, d) for ti, d in entries if ti.name not in names]


def corrupt_blob(e: Entries) -> Entries:
    name = layer_names(e)[0]
    data = next(d for ti, d in e if ti.name == name)
    return set_member(e, name, bytes([data[0] ^ 1]) + data[1:])


def symlink_escape(e: Entries) -> Entries:
    name = layer_names(e)[0]
    link = tarfile.TarInfo(name)
    link.type = tarfile.SYMTYPE
    link.linkname = "../../../../etc/passwd"
    return [*drop(e, name), (link, b"")]


def device_entry(e: Entries) -> Entries:
    dev = tarfile.TarInfo("dev/null")
    dev.type = tarfile.CHRTYPE
    return [*e, (dev, b"")]


def manifest_outside(e: Entries) -> Entries:
    manifest = json.loads(next(d for ti, d in e if ti.name == "manifest.json"))
    manifest[0]["Layers"][0] = "../../etc/passwd"
    return set_member(drop(e, "index.json"), "manifest.json", json.dumps(manifest).encode())


def manifest_missing_member(e: Entries) -> Entries:
    manifest = json.loads(next(d for ti, d in e if ti.name == "manifest.json"))
    manifest[0]["Layers"][0] = "nowhere/layer.tar"
    return set_member(drop(e, "index.json"), "manifest.json", json.dumps(manifest).encode())


def _index_pointing_at(e: Entries, blob: bytes, media_type: str) -> Entries:
    digest = hashlib.sha256(blob).hexdigest()
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(blob)}]}
    e = set_member(drop(e, "manifest.json"), "index.json", json.dumps(index).encode())
    return [*e, file_info(f"blobs/sha256/{digest}", blob)]


def oversized_manifest(e: Entries) -> Entries:
    return _index_pointing_at(e, b"{" + b" " * (mt.MAX_MANIFEST_BYTES + 10) + b"}", mt.OCI_MANIFEST)


def unknown_media_type(e: Entries) -> Entries:
    return _index_pointing_at(e, b'{"schemaVersion":2}', "application/x-evil+json")


def oversized_config(e: Entries) -> Entries:
    config = b"{" + b" " * (mt.MAX_CONFIG_BYTES + 10) + b"}"
    cd = hashlib.sha256(config).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": {
        "mediaType": mt.OCI_CONFIG, "digest": f"sha256:{cd}", "size": len(config)}, "layers": []}).encode()
    return [*_index_pointing_at(e, manifest, mt.OCI_MANIFEST), file_info(f"blobs/sha256/{cd}", config)]


CASES: list[tuple[str, Callable[[Entries], Entries], str]] = [
    ("dotdot", lambda e: [*e, file_info("../evil", b"x")], "contains '..'"),
    ("absolute", lambda e: [*e, file_info("/etc/evil", b"x")], "absolute path"),
    ("symlink-escape", symlink_escape, "escapes the archive"),
    ("device", device_entry, "device"),
    ("corrupt-blob", corrupt_blob, "does not match its digest"),
    ("bad-index-json", lambda e: set_member(e, "index.json", b"{not json"), "not valid JSON"),
    ("bad-manifest-json", lambda e: set_member(drop(e, "index.json"), "manifest.json", b"[{,"), "not valid JSON"),
    ("manifest-outside", manifest_outside, "contains '..'"),
    ("manifest-missing-member", manifest_missing_member, "is not in the archive"),
    ("oversized-manifest", oversized_manifest, "limit"),
    ("oversized-config", oversized_config, "limit"),
    ("unknown-media-type", unknown_media_type, "unsupported media type 'application/x-evil+json'"),
    ("not-an-archive", lambda e: [file_info("hello.txt", b"hi")], "neither a docker archive"),
]


@pytest.mark.parametrize(("name", "edit", "needle"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dest", ["archive://{d}/out.tar", "oci-dir://{d}/out"])
def test_hostile_archive_is_refused_cleanly(good_archive, tmp_path, name, edit, needle, dest):
    src = write_entries(edit(read_entries(good_archive)), tmp_path / f"{name}.tar")
    outdir = tmp_path / "dest"
    outdir.mkdir()
    proc = giropops("copy", "--quiet", f"archive://{src}", dest.format(d=outdir))
    assert proc.returncode != 0
    assert proc.stderr.startswith("giropops: error: "), proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert os.listdir(outdir) == []


def test_truncated_tar_and_truncated_gzip(good_archive, tmp_path):
    data = good_archive.read_bytes()
    (tmp_path / "trunc.tar").write_bytes(data[: len(data) // 2])
    (tmp_path / "trunc.tar.gz").write_bytes(gzip.compress(data)[:-200])
    out = tmp_path / "dest"
    out.mkdir()
    for src, needle in (("trunc.tar", "truncated"), ("trunc.tar.gz", "truncated gzip")):
        proc = giropops("copy", "-q", f"archive://{tmp_path / src}", f"oci-dir://{out}/x")
        assert proc.returncode != 0 and needle in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert os.listdir(out) == []


def test_truncated_gzip_layer_is_reported_when_read(tmp_path):
    """A blob that matches its digest but is a truncated gzip stream fails when decompressed."""
    img = random_image(71, layers=1)
    lay = tmp_path / "lay"
    write_layout(img, lay, "x")
    blob = next(iter(img.layers())).open_compressed().read()[:-30]
    digest = hashlib.sha256(blob).hexdigest()
    (lay / "blobs" / "sha256" / digest).write_bytes(blob)
    manifest = json.loads(img.raw_manifest)
    manifest["layers"][0].update(digest=f"sha256:{digest}", size=len(blob))
    raw = json.dumps(manifest).encode()
    md = hashlib.sha256(raw).hexdigest()
    (lay / "blobs" / "sha256" / md).write_bytes(raw)
    (lay / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": f"sha256:{md}", "size": len(raw)}]}))
    proc = giropops("inspect", f"oci-dir://{lay}")
    assert proc.returncode != 0
    assert "truncated gzip stream" in proc.stderr and "Traceback" not in proc.stderr


def test_layout_blob_symlink_outside_is_refused(tmp_path):
    img = random_image(72, layers=1)
    lay = tmp_path / "lay"
    write_layout(img, lay, "x")
    target = lay / "blobs" / "sha256" / img.layers()[0].digest.hex
    outside = tmp_path / "secret"
    outside.write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(outside)
    out = tmp_path / "dest"
    out.mkdir()
    proc = giropops("copy", "-q", f"oci-dir://{lay}:x", f"archive://{out}/x.tar")
    assert proc.returncode != 0 and "resolves outside the layout" in proc.stderr, proc.stderr
    assert os.listdir(out) == []


def test_layout_without_oci_layout_file(tmp_path):
    lay = tmp_path / "lay"
    write_layout(random_image(73), lay, "x")
    (lay / "oci-layout").unlink()
    proc = giropops("inspect", f"oci-dir://{lay}")
    assert proc.returncode != 0 and "oci-layout is missing" in proc.stderr


def test_layout_index_json_symlink_is_refused(tmp_path):
    lay = tmp_path / "lay"
    write_layout(random_image(74), lay, "x")
    real = tmp_path / "elsewhere.json"
    real.write_bytes((lay / "index.json").read_bytes())
    (lay / "index.json").unlink()
    (lay / "index.json").symlink_to(real)
    proc = giropops("inspect", f"oci-dir://{lay}")
    assert proc.returncode != 0 and "cannot read index.json" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_destination_that_is_not_a_layout_or_not_a_directory(tmp_path, good_archive):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    proc = giropops("copy", "-q", f"archive://{good_archive}", f"oci-dir://{tmp_path}/busy")
    assert proc.returncode != 0 and "is not empty and is not an OCI image layout" in proc.stderr
    assert os.listdir(tmp_path / "busy") == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    proc = giropops("copy", "-q", f"archive://{good_archive}", f"archive://{tmp_path}/file/out.tar")
    assert proc.returncode != 0 and "is not a directory" in proc.stderr
    proc = giropops("copy", "-q", f"archive://{good_archive}", f"archive://{tmp_path}/busy")
    assert proc.returncode != 0 and "is a directory" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["busy", "file"]


# --- issue 14: writing into layouts, budgets, whole-archive bombs, SIGTERM --------------------------------


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (not following links) with its content."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = b"<link>" if p.is_symlink() else p.read_bytes()
    return out


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("giropops: error: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize("linked", ["blobs", "blobs/sha256"])
def test_writing_into_a_layout_never_follows_blob_directory_links(tmp_path, linked):
    lay = tmp_path / "lay"
    write_layout(random_image(80, layers=1), lay, "first")
    elsewhere = tmp_path / "elsewhere"
    (lay / linked).rename(elsewhere)
    (lay / linked).symlink_to(elsewhere)
    before_outside, before_index = tree(elsewhere), (lay / "index.json").read_bytes()
    src = tmp_path / "second.tar"
    write_archive(random_image(81, layers=2), src, "example.com/second:1")
    proc = giropops("copy", "-q", f"archive://{src}", f"oci-dir://{lay}:second")
    assert proc.returncode != 0
    line = one_error_line(proc)
    assert f"{linked} is a symbolic link" in line
    assert tree(elsewhere) == before_outside  # nothing written where the link leads
    assert (lay / "index.json").read_bytes() == before_index
    assert sorted(os.listdir(lay)) == ["blobs", "index.json", "oci-layout"]


@pytest.mark.parametrize("damage", ["flipped", "truncated", "symlink"])
def test_a_corrupt_blob_in_the_destination_layout_is_rewritten(tmp_path, damage):
    img = random_image(82, layers=2)
    src = tmp_path / "img.tar"
    write_archive(img, src, "example.com/img:1")
    lay = tmp_path / "lay"
    assert giropops("copy", "-q", f"archive://{src}", f"oci-dir://{lay}:img").returncode == 0
    blob = lay / "blobs" / "sha256" / img.layers()[1].digest.hex
    good = blob.read_bytes()
    if damage == "flipped":
        blob.write_bytes(good[:100] + bytes([good[100] ^ 0xFF]) + good[101:])
    elif damage == "truncated":
        blob.write_bytes(good[: len(good) // 2])
    else:
        (tmp_path / "bogus").write_bytes(b"not the blob")
        blob.unlink()
        blob.symlink_to(tmp_path / "bogus")
    proc = giropops("copy", "-q", f"archive://{src}", f"oci-dir://{lay}:img")
    assert proc.returncode == 0, proc.stderr
    assert not blob.is_symlink() and blob.read_bytes() == good
    for p in (lay / "blobs" / "sha256").iterdir():  # every blob is what its name says
        assert hashlib.sha256(p.read_bytes()).hexdigest() == p.name
    if damage == "symlink":
        assert (tmp_path / "bogus").read_bytes() == b"not the blob"  # the link was replaced, not written through
    # And the layout reads back: skopeo checks every digest as it copies.
    proc = subprocess.run([require_binary("skopeo"), "copy", "-q", f"oci:{lay}:img", f"dir:{tmp_path / 'check'}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "check" / img.layers()[1].digest.hex).read_bytes() == good
    assert not [p for p in lay.rglob("*.tmp")]


def gzip_bomb(path: Path, size: int) -> Path:
    """A gzip of ``size`` zero bytes, written in chunks (never held in memory)."""
    with gzip.open(path, "wb", compresslevel=9) as f:
        chunk = b"\0" * (1 << 20)
        for _ in range(size // len(chunk)):
            f.write(chunk)
    return path


def test_a_gzip_bomb_archive_is_refused_at_the_limit(tmp_path):
    bomb = gzip_bomb(tmp_path / "bomb.tar.gz", 600 << 20)  # ~600 kB expanding 1000 times
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    proc = subprocess.run([sys.executable, "-m", "giropops", "inspect", f"archive://{bomb}"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode != 0
    line = one_error_line(proc)
    assert "decompresses to more than" in line and "GIROPOPS_MAX_EXPANSION" in line
    assert os.listdir(tmpdir) == []
    # The user can raise the limits; the archive is then read (and found to be no image).
    env["GIROPOPS_MAX_EXPANSION"] = "10000"
    proc = subprocess.run([sys.executable, "-m", "giropops", "inspect", f"archive://{bomb}"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert "decompresses to more than" not in proc.stderr and proc.returncode != 0
    one_error_line(proc)
    env["GIROPOPS_MAX_IMAGE_SIZE"] = "100M"  # the absolute limit wins over a generous ratio
    proc = subprocess.run([sys.executable, "-m", "giropops", "inspect", f"archive://{bomb}"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert "decompresses to more than 100000000 bytes" in one_error_line(proc)
    env["GIROPOPS_MAX_IMAGE_SIZE"] = "lots"
    proc = subprocess.run([sys.executable, "-m", "giropops", "inspect", f"archive://{bomb}"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode != 0 and "GIROPOPS_MAX_IMAGE_SIZE: 'lots' is not a size" in one_error_line(proc)


def test_a_gzipped_archive_larger_than_the_temporary_space_is_one_line(tmp_path, good_archive):
    """ENOSPC while decompressing into the temporary directory (a 4 MiB tmpfs of our own)."""
    gz = tmp_path / "big.tar.gz"
    with gzip.open(gz, "wb", compresslevel=1) as f:  # a real archive padded past 4 MiB (zeros end a tar)
        f.write(good_archive.read_bytes())
        f.write(b"\0" * (8 << 20))
    mnt = tmp_path / "small-tmp"
    mnt.mkdir()
    script = (
        f"mount -t tmpfs -o size=4m tmpfs {mnt} && "
        f"TMPDIR={mnt} {sys.executable} -m giropops copy -q archive://{gz} oci-dir://{tmp_path}/out; "
        f"echo rc=$?; ls -A {mnt}"
    )
    proc = subprocess.run([require_binary("unshare"), "-m", "sh", "-c", script],
                          capture_output=True, text=True, timeout=120)
    assert "rc=1\n" in proc.stdout, proc.stdout + proc.stderr
    assert proc.stdout.endswith("rc=1\n")  # nothing left in the temporary directory
    line = one_error_line(proc)
    assert "into a temporary file: No space left on device" in line
    assert not (tmp_path / "out").exists()


def test_a_registry_declaring_a_huge_layer_is_refused_before_anything_is_written(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    with HostileRegistry(10**15, "endless") as reg:  # a petabyte: more than any limit and any free space
        for spec in (f"oci-dir://{dest}/lay", f"archive://{dest}/out.tar"):
            proc = giropops("copy", "-q", f"registry://{reg.host}/evil/huge:1", spec)
            assert proc.returncode != 0
            line = one_error_line(proc)
            total = 10**15 + len(reg.config) + len(reg.manifest)  # every blob the copy would write
            assert f"declares 1000000.0 GB ({total} bytes) of blobs, more than the 64.0 GB limit" in line
            assert "GIROPOPS_MAX_IMAGE_SIZE" in line
        # Raised past the declared size, the limit gives way to the free space of the destination.
        free = shutil.disk_usage(dest).free
        env = {**os.environ, "GIROPOPS_MAX_IMAGE_SIZE": "2000T"}
        proc = subprocess.run([sys.executable, "-m", "giropops", "copy", "-q", f"registry://{reg.host}/evil/huge:1",
                               f"oci-dir://{dest}/lay"], capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode != 0
        line = one_error_line(proc)
        assert f"({total} bytes) of blobs, more than the" in line and f"free in {dest}" in line
        assert free < 10**15
        assert not any(f"/blobs/{reg.layer_digest}" in r for r in reg.log)  # the layer was never asked for
    assert os.listdir(dest) == []


@pytest.mark.parametrize("dest_spec", ["oci-dir://{d}/lay", "archive://{d}/out.tar"])
def test_a_layer_streaming_past_its_declared_size_is_cut_off(tmp_path, dest_spec):
    dest = tmp_path / "dest"
    dest.mkdir()
    with HostileRegistry(1 << 20, "endless") as reg:
        proc = giropops("copy", "-q", f"registry://{reg.host}/evil/endless:1", dest_spec.format(d=dest))
        sent = reg.sent
    assert proc.returncode != 0
    assert "more than the declared 1048576 bytes" in one_error_line(proc)
    assert sent < 64 << 20  # cut off right after the declared size (plus what socket buffers held)
    assert os.listdir(dest) == []


@pytest.mark.parametrize("dest_spec", ["oci-dir://{d}/lay", "archive://{d}/out.tar"])
def test_sigterm_during_a_copy_leaves_no_staging_behind(tmp_path, dest_spec):
    dest = tmp_path / "dest"
    dest.mkdir()
    with HostileRegistry(100 << 20, "slow") as reg:
        proc = subprocess.Popen(
            [sys.executable, "-m", "giropops", "copy", "-q", f"registry://{reg.host}/slow/img:1",
             dest_spec.format(d=dest)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while reg.sent < 256 << 10:  # the copy is under way: staging exists and holds layer bytes
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the copy never started reading the layer"
                time.sleep(0.05)
            assert os.listdir(dest)  # the staging directory / temporary archive, caught in the act
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 143, err
    assert err.strip() == "giropops: terminated"
    assert os.listdir(dest) == []
