"""Image tarballs: skopeo and podman accept what we write; we read what they write."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from giropops.oci.archive import open_archive, open_archive_image, write_archive
from giropops.oci.image import Image
from giropops.oci.layout import write_layout
from giropops.oci.memory import build_index
from giropops.oci.model import Platform
from tests.support.oci_images import hello_image, random_image, read_json_member, sha256, tar_bytes
from tests.support.services import require_binary


def skopeo(*args: str) -> str:
    proc = subprocess.run([require_binary("skopeo"), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def hello_tar(hello_binary, tmp_path_factory) -> tuple[Path, Image]:
    img = hello_image(hello_binary)
    path = tmp_path_factory.mktemp("arch") / "hello.tar"
    write_archive(img, path, "example.com/giropops/hello:1")
    return path, img


def test_archive_has_both_docker_and_oci_views(hello_tar):
    path, img = hello_tar
    with tarfile.open(path) as t:
        names = set(t.getnames())
    assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= names
    manifest = read_json_member(path, "manifest.json")
    assert manifest == [{
        "Config": f"blobs/sha256/{img.manifest.config.digest.hex}",
        "RepoTags": ["example.com/giropops/hello:1"],
        "Layers": [f"blobs/sha256/{d.digest.hex}" for d in img.manifest.layers],
    }]
    index = read_json_member(path, "index.json")
    assert index["manifests"][0]["digest"] == sha256(img.raw_manifest)
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "example.com/giropops/hello:1"
    for name in names:
        if name.startswith("blobs/sha256/") and name.count("/") == 2:
            with tarfile.open(path) as t:
                data = t.extractfile(name).read()
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]


def test_skopeo_reads_our_archive_both_ways(hello_tar, tmp_path):
    path, img = hello_tar
    docker = json.loads(skopeo("inspect", f"docker-archive:{path}"))
    assert docker["Architecture"] == Platform.host().architecture
    assert docker["RepoTags"] == [] or "1" in docker["RepoTags"]
    oci = json.loads(skopeo("inspect", f"oci-archive:{path}"))
    assert oci["Digest"] == str(img.digest)
    skopeo("copy", "-q", f"docker-archive:{path}", f"oci:{tmp_path}/out:x")
    config = json.loads(skopeo("inspect", "--config", f"oci:{tmp_path}/out:x"))
    assert config["rootfs"]["diff_ids"] == [str(layer.diff_id) for layer in img.layers()]
    assert config["config"]["Entrypoint"] == ["/hello"]


def test_podman_loads_and_runs_our_archive(hello_tar, podman):
    path, _img = hello_tar
    out = podman.run("load", "-i", str(path))
    assert "example.com/giropops/hello:1" in out.stdout + out.stderr
    run = podman.run("run", "--rm", "--network", "none", "example.com/giropops/hello:1", "from", "podman")
    assert run.stdout.strip() == "hello from giropops from podman"


def test_we_read_what_skopeo_and_podman_write(hello_tar, tmp_path, podman):
    path, img = hello_tar
    want_diffs = [layer.diff_id for layer in img.layers()]
    want_tar = img.layers()[0].open_uncompressed().read()
    skopeo("copy", "-q", f"oci-archive:{path}", f"docker-archive:{tmp_path}/sk-docker.tar:foo/bar:2")
    skopeo("copy", "-q", f"oci-archive:{path}", f"oci-archive:{tmp_path}/sk-oci.tar:v9")
    podman.run("load", "-i", str(path))
    podman.run("save", "--format", "docker-archive", "-o", f"{tmp_path}/pd-docker.tar", "example.com/giropops/hello:1")
    podman.run("save", "--format", "oci-archive", "-o", f"{tmp_path}/pd-oci.tar", "example.com/giropops/hello:1")
    for name, sel in [("sk-docker.tar", "foo/bar:2"), ("sk-oci.tar", "v9"), ("pd-docker.tar", None),
                      ("pd-oci.tar", None)]:
        got = open_archive_image(tmp_path / name, sel)
        assert [layer.diff_id for layer in got.layers()] == want_diffs, name
        assert got.layers()[0].open_uncompressed().read() == want_tar, name
        assert got.config.entrypoint == ["/hello"], name
    # skopeo's docker archive stores uncompressed layers: the synthesised manifest says so
    sk = open_archive_image(tmp_path / "sk-docker.tar", "docker.io/foo/bar:2")
    assert sk.layers()[0].media_type == "application/vnd.oci.image.layer.v1.tar"
    assert sk.layers()[0].digest == sk.layers()[0].diff_id


def test_gzipped_archive_is_read(hello_tar, tmp_path):
    path, img = hello_tar
    gz = tmp_path / "hello.tar.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert open_archive_image(gz).digest == img.digest


def test_legacy_docker_save_layout_with_layer_dirs_and_symlinks(tmp_path):
    """The pre-Docker-25 format: <id>/layer.tar, <id>.json config, a symlinked duplicate layer."""
    t1, t2 = tar_bytes({"a": b"A"}), tar_bytes({"b": b"B"})
    config = {
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/a"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(t1), sha256(t2), sha256(t1)]},
    }
    raw_config = json.dumps(config).encode()
    cfg_name = hashlib.sha256(raw_config).hexdigest() + ".json"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        def add(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        add("l1/layer.tar", t1)
        add("l2/layer.tar", t2)
        link = tarfile.TarInfo("l3/layer.tar")
        link.type = tarfile.SYMTYPE
        link.linkname = "../l1/layer.tar"
        t.addfile(link)
        add(cfg_name, raw_config)
        add("manifest.json", json.dumps([{"Config": cfg_name, "RepoTags": ["legacy:1"],
                                          "Layers": ["l1/layer.tar", "l2/layer.tar", "l3/layer.tar"]}]).encode())
        add("repositories", b'{"legacy":{"1":"l3"}}')
    path = tmp_path / "legacy.tar"
    path.write_bytes(buf.getvalue())
    img = open_archive_image(path, "legacy:1")
    assert [str(layer.diff_id) for layer in img.layers()] == [sha256(t1), sha256(t2), sha256(t1)]
    assert img.layers()[2].open_uncompressed().read() == t1
    # and skopeo agrees on what is in it after we rewrite it
    out = tmp_path / "rewritten"
    write_layout(img, out, "legacy")
    cfg = json.loads(skopeo("inspect", "--config", f"oci:{out}:legacy"))
    assert cfg["rootfs"]["diff_ids"] == config["rootfs"]["diff_ids"]


def test_multi_platform_index_in_an_archive(tmp_path):
    amd = random_image(60, platform=Platform.parse("linux/amd64"))
    arm = random_image(61, platform=Platform.parse("linux/arm64/v8"))
    idx = build_index([(amd, None), (arm, None)])
    path = tmp_path / "multi.tar"
    write_archive(idx, path, "example.com/multi:1")
    whole = open_archive(path)
    assert not isinstance(whole, Image) and whole.digest == idx.digest
    assert open_archive_image(path, platform=Platform.parse("linux/arm64")).digest == arm.digest
    raw = json.loads(skopeo("inspect", "--raw", f"oci-archive:{path}"))
    assert {m["digest"] for m in raw["manifests"]} == {str(amd.digest), str(arm.digest)}
    manifest = read_json_member(path, "manifest.json")
    assert len(manifest) == 2 and sum(bool(e["RepoTags"]) for e in manifest) == 1


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_.-]{0,20}", fullmatch=True),
                                      st.binary(max_size=2000), min_size=1, max_size=4),
                      min_size=0, max_size=3))
def test_any_image_round_trips_through_archive_and_layout(tmp_path_factory, files):
    """Whatever layers an image has, archive and layout give back the same manifest, config and bytes."""
    from giropops.oci import mutate
    from giropops.oci.empty import EMPTY_IMAGE
    from giropops.oci.layout import open_layout_image

    tmp = tmp_path_factory.mktemp("prop")
    tars = [tar_bytes(f) for f in files]
    img = mutate.append_layers(EMPTY_IMAGE, [mutate.layer_from_tar(t) for t in tars]) if tars else EMPTY_IMAGE
    write_archive(img, tmp / "a.tar", "example.com/prop:1")
    write_layout(img, tmp / "lay", "p")
    for got in (open_archive_image(tmp / "a.tar"), open_layout_image(tmp / "lay", "p")):
        assert got.raw_manifest == img.raw_manifest
        assert got.raw_config == img.raw_config
        assert [layer.open_uncompressed().read() for layer in got.layers()] == tars


def test_docker_archive_with_several_images_needs_a_name(tmp_path):
    from giropops.errors import ArchiveError

    a, b = random_image(200), random_image(201)
    write_archive(a, tmp_path / "a.tar", "example.com/a:1")
    write_archive(b, tmp_path / "b.tar", "example.com/b:1")
    members: dict[str, bytes] = {}
    manifest = []
    for p in ("a.tar", "b.tar"):
        with tarfile.open(tmp_path / p) as t:
            for m in t.getmembers():
                if m.isreg() and m.name.startswith("blobs/"):
                    members[m.name] = t.extractfile(m).read()
        manifest += read_json_member(tmp_path / p, "manifest.json")
    members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(tmp_path / "both.tar", "w") as t:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    with pytest.raises(ArchiveError, match=r"holds 2 images; choose one by name \(tags: example.com/a:1, "):
        open_archive_image(tmp_path / "both.tar")
    got = open_archive_image(tmp_path / "both.tar", "example.com/b:1")
    assert got.raw_config == b.raw_config
    assert [x.digest for x in got.layers()] == [x.digest for x in b.layers()]
    by_config = open_archive_image(tmp_path / "both.tar", digest=a.manifest.config.digest)
    assert by_config.raw_config == a.raw_config


def test_image_id_selects_in_a_combined_archive(tmp_path):
    """``archive://FILE@<config digest>`` (what `docker images` calls the image ID) works on our archives too."""
    img = random_image(210)
    write_archive(img, tmp_path / "x.tar", "example.com/x:1")
    got = open_archive_image(tmp_path / "x.tar", digest=img.manifest.config.digest)
    assert got.raw_config == img.raw_config
    assert open_archive_image(tmp_path / "x.tar", digest=img.digest).digest == img.digest


def test_zstd_layers_load_and_run_in_podman(hello_binary, tmp_path, podman):
    from giropops.oci import mutate
    from giropops.oci.empty import EMPTY_IMAGE

    tar = tar_bytes({"hello": hello_binary.read_bytes()}, mode=0o755)
    layer = mutate.layer_from_tar(tar, compression="zstd")
    img = mutate.with_config(mutate.append_layers(EMPTY_IMAGE, [layer]), entrypoint=["/hello"])
    write_archive(img, tmp_path / "z.tar", "example.com/giropops/zstd:1")
    manifest = json.loads(skopeo("inspect", "--raw", f"oci-archive:{tmp_path}/z.tar"))
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    podman.run("load", "-i", str(tmp_path / "z.tar"))
    out = podman.run("run", "--rm", "--network", "none", "example.com/giropops/zstd:1", "zstd")
    assert out.stdout.strip() == "hello from giropops zstd"
    assert open_archive_image(tmp_path / "z.tar").layers()[0].open_uncompressed().read() == tar
