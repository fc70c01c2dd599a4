"""mutate / memory / empty: expected values come from hashlib, gzip and tarfile directly."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from giropops.errors import ConfigError, ImageError, ManifestError
from giropops.oci import mediatypes as mt
from giropops.oci import mutate
from giropops.oci.blob import gzip_bytes
from giropops.oci.empty import EMPTY_IMAGE, empty_image
from giropops.oci.memory import build_image, build_index, bytes_layer
from giropops.oci.model import Platform
from tests.support.oci_images import random_image, sha256, tar_bytes


def test_empty_image_is_scratch_for_this_platform():
    cfg = json.loads(EMPTY_IMAGE.raw_config)
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": []}
    assert cfg["os"] == "linux"
    assert cfg["architecture"] == Platform.host().architecture
    assert EMPTY_IMAGE.layers() == ()
    assert str(EMPTY_IMAGE.digest) == sha256(EMPTY_IMAGE.raw_manifest)
    arm = empty_image(Platform.parse("linux/arm64/v8"))
    assert json.loads(arm.raw_config)["variant"] == "v8"


def test_layer_from_tar_digests_and_deterministic_gzip(tmp_path):
    tar = tar_bytes({"a.txt": b"hello\n" * 1000})
    layer = mutate.layer_from_tar(tar)
    assert str(layer.diff_id) == sha256(tar)
    blob = layer.open_compressed().read()
    assert blob == gzip_bytes(tar)  # streaming compressor == blob.gzip_bytes
    assert gzip.decompress(blob) == tar
    assert str(layer.digest) == sha256(blob)
    assert layer.size == len(blob)
    assert blob[4:8] == b"\0\0\0\0"  # gzip mtime 0
    assert layer.media_type == mt.OCI_LAYER_GZIP
    # A file path gives the same layer as the bytes.
    (tmp_path / "l.tar").write_bytes(tar)
    from_file = mutate.layer_from_tar(tmp_path / "l.tar")
    assert from_file.digest == layer.digest
    assert from_file.open_uncompressed().read() == tar


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_other_compressions_round_trip(compression):
    tar = tar_bytes({"x": b"y" * 5000})
    layer = mutate.layer_from_tar(tar, compression=compression)
    assert str(layer.diff_id) == sha256(tar)
    assert layer.open_uncompressed().read() == tar
    if compression == "none":
        assert layer.digest == layer.diff_id


def test_append_layers_updates_manifest_config_and_history():
    tar1, tar2 = tar_bytes({"1": b"one"}), tar_bytes({"2": b"two"})
    img = mutate.append_layers(EMPTY_IMAGE, [mutate.layer_from_tar(tar1)], created_by="step 1")
    img = mutate.append_layers(img, [mutate.layer_from_tar(tar2)], created_by="step 2")
    cfg = json.loads(img.raw_config)
    assert cfg["rootfs"]["diff_ids"] == [sha256(tar1), sha256(tar2)]
    assert [h["created_by"] for h in cfg["history"]] == ["step 1", "step 2"]
    manifest = json.loads(img.raw_manifest)
    assert manifest["config"]["digest"] == sha256(img.raw_config)
    assert manifest["layers"][1]["digest"] == sha256(gzip_bytes(tar2))
    assert str(img.digest) == sha256(img.raw_manifest)
    assert len(EMPTY_IMAGE.layers()) == 0  # the base is untouched


def test_with_config_sets_and_clears_fields():
    img = mutate.with_config(
        EMPTY_IMAGE, entrypoint=["/bin/app"], cmd=["--serve"], env=["A=1", "PATH=/bin"], user="1000:1000",
        working_dir="/app", exposed_ports=["8080", "53/udp"], labels={"k": "v"},
    )
    c = json.loads(img.raw_config)["config"]
    assert c == {
        "Entrypoint": ["/bin/app"], "Cmd": ["--serve"], "Env": ["A=1", "PATH=/bin"], "User": "1000:1000",
        "WorkingDir": "/app", "ExposedPorts": {"8080/tcp": {}, "53/udp": {}}, "Labels": {"k": "v"},
    }
    img2 = mutate.with_env(mutate.with_labels(img, {"k2": "v2"}), {"A": "2", "B": "3"})
    assert img2.config.env == ["A=2", "PATH=/bin", "B=3"]
    assert img2.config.labels == {"k": "v", "k2": "v2"}
    cleared = mutate.with_config(img, cmd=[], user="")
    assert "Cmd" not in json.loads(cleared.raw_config)["config"]
    assert cleared.config.user == ""
    with pytest.raises(ImageError, match="invalid port"):
        mutate.with_config(img, exposed_ports=["http"])
    with pytest.raises(ImageError, match="KEY=VALUE"):
        mutate.with_config(img, env=["NOEQUALS"])


def test_annotations_merge_or_replace():
    img = mutate.with_annotations(EMPTY_IMAGE, {"a": "1"})
    img = mutate.with_annotations(img, {"b": "2"})
    assert json.loads(img.raw_manifest)["annotations"] == {"a": "1", "b": "2"}
    img = mutate.with_annotations(img, {"c": "3"}, replace=True)
    assert json.loads(img.raw_manifest)["annotations"] == {"c": "3"}


def test_canonicalize_uses_source_date_epoch(monkeypatch):
    img = random_image(1)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    canon = mutate.canonicalize(img)
    cfg = json.loads(canon.raw_config)
    assert cfg["created"] == "2023-11-14T22:13:20Z"
    assert {h["created"] for h in cfg["history"]} == {"2023-11-14T22:13:20Z"}
    assert mutate.canonicalize(img).digest == canon.digest  # reproducible
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH"):
        mutate.canonicalize(img)
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert json.loads(mutate.canonicalize(img).raw_config)["created"] == "1970-01-01T00:00:00Z"


def test_docker_manifest_gets_docker_layer_types_and_to_oci_converts_back():
    docker = empty_image(media_type=mt.DOCKER_MANIFEST)
    img = mutate.append_layers(docker, [mutate.layer_from_tar(tar_bytes({"f": b"x"}))])
    m = json.loads(img.raw_manifest)
    assert m["mediaType"] == mt.DOCKER_MANIFEST
    assert m["config"]["mediaType"] == mt.DOCKER_CONFIG
    assert m["layers"][0]["mediaType"] == mt.DOCKER_LAYER_GZIP
    oci = mutate.to_oci(img)
    m2 = json.loads(oci.raw_manifest)
    assert (m2["mediaType"], m2["layers"][0]["mediaType"]) == (mt.OCI_MANIFEST, mt.OCI_LAYER_GZIP)
    assert m2["layers"][0]["digest"] == m["layers"][0]["digest"]


def test_artifact_layers_keep_annotations_and_index_selects_platform():
    payload = b'{"critical":{}}'
    sig = bytes_layer(payload, "application/vnd.dev.cosign.simplesigning.v1+json", annotations={"sig": "abc"})
    art = build_image(b"{}", [sig])
    assert json.loads(art.raw_manifest)["layers"][0]["annotations"] == {"sig": "abc"}
    assert art.layers()[0].open_compressed().read() == payload
    amd = random_image(1, platform=Platform.parse("linux/amd64"))
    arm = random_image(2, platform=Platform.parse("linux/arm64/v8"))
    idx = build_index([(amd, None), (arm, None)])
    assert idx.image_for(Platform.parse("linux/arm64")).digest == arm.digest
    assert idx.image_for(Platform.parse("linux/amd64")).digest == amd.digest
    with pytest.raises(ManifestError, match="no manifest for platform linux/s390x"):
        idx.image_for(Platform.parse("linux/s390x"))
    assert str(idx.digest) == "sha256:" + hashlib.sha256(idx.raw_manifest).hexdigest()


def test_layer_with_wrong_content_fails_when_read():
    good = mutate.layer_from_tar(tar_bytes({"f": b"x"}))
    from giropops.errors import BlobError
    from giropops.oci.memory import BlobLayer

    bad = BlobLayer(good.descriptor, good.diff_id, lambda: __import__("io").BytesIO(b"not the blob"))
    with pytest.raises(BlobError):
        bad.open_compressed().read()
