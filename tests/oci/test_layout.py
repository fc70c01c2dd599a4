"""OCI layouts: what we write passes oci-image-tool and skopeo; we read what skopeo writes."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from pathlib import Path

import pytest

from giropops.errors import BlobError
from giropops.oci.image import Image
from giropops.oci.layout import open_layout, open_layout_image, write_layout
from giropops.oci.memory import BlobLayer, build_image, build_index
from giropops.oci.model import Platform
from tests.support.oci_images import random_image
from tests.support.services import require_binary


def skopeo(*args: str) -> str:
    proc = subprocess.run([require_binary("skopeo"), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def validate(layout: Path, name: str) -> None:
    proc = subprocess.run(
        [require_binary("oci-image-tool"), "validate", "--type", "image", "--ref", f"name={name}", str(layout)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation succeeded" in proc.stdout + proc.stderr


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_written_layout_is_valid_and_skopeo_reads_it(tmp_path):
    img = random_image(10, layers=3)
    lay = tmp_path / "lay"
    write_layout(img, lay, "v1")
    validate(lay, "v1")
    assert json.loads((lay / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    info = json.loads(skopeo("inspect", f"oci:{lay}:v1"))
    manifest_blob = lay / "blobs" / "sha256" / info["Digest"].split(":")[1]
    assert info["Digest"] == "sha256:" + hashlib.sha256(manifest_blob.read_bytes()).hexdigest()
    assert info["Digest"] == str(img.digest)
    assert len(info["Layers"]) == 3
    # every blob is named by the hash of its content
    for blob in (lay / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


def test_appending_dedupes_blobs_and_replaces_names(tmp_path):
    lay = tmp_path / "lay"
    a = random_image(11, layers=2)
    write_layout(a, lay, "a")
    before = files(lay)
    write_layout(a, lay, "a-again")
    assert files(lay) == before  # nothing new: same blobs
    b = random_image(12, layers=2)
    write_layout(b, lay, "a")  # the name moves to b
    idx = json.loads((lay / "index.json").read_text())
    names = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in idx["manifests"]}
    assert names == {"a-again": str(a.digest), "a": str(b.digest)}
    assert open_layout_image(lay, "a").digest == b.digest
    assert open_layout_image(lay, "a-again").digest == a.digest
    validate(lay, "a")
    validate(lay, "a-again")
    assert json.loads(skopeo("inspect", f"oci:{lay}:a"))["Digest"] == str(b.digest)


def test_nested_index_and_platform_selection(tmp_path):
    amd = random_image(20, platform=Platform.parse("linux/amd64"))
    arm = random_image(21, platform=Platform.parse("linux/arm64/v8"))
    idx = build_index([(amd, None), (arm, None)])
    lay = tmp_path / "multi"
    write_layout(idx, lay, "multi")
    raw = json.loads(skopeo("inspect", "--raw", f"oci:{lay}:multi"))
    assert [m["platform"]["architecture"] for m in raw["manifests"]] == ["amd64", "arm64"]
    got = json.loads(skopeo("inspect", "--override-arch", "arm64", "--override-variant", "v8", f"oci:{lay}:multi"))
    assert got["Digest"] == str(idx.digest)  # skopeo reports the digest of what the name points at
    assert got["Layers"] == [str(layer.digest) for layer in arm.layers()]
    assert open_layout_image(lay, "multi", platform=Platform.parse("linux/arm64")).digest == arm.digest
    assert open_layout_image(lay, "multi", platform=Platform.parse("linux/amd64")).digest == amd.digest
    whole = open_layout(lay, "multi")
    assert not isinstance(whole, Image) and whole.digest == idx.digest


def test_we_read_what_skopeo_writes(tmp_path):
    img = random_image(30, layers=2)
    ours = tmp_path / "ours"
    write_layout(img, ours, "src")
    theirs = tmp_path / "theirs"
    skopeo("copy", "-q", f"oci:{ours}:src", f"oci:{theirs}:copied")
    theirs_digest = json.loads(skopeo("inspect", f"oci:{theirs}:copied"))["Digest"]
    got = open_layout_image(theirs, "copied")
    assert str(got.digest) == theirs_digest
    assert [layer.diff_id for layer in got.layers()] == [layer.diff_id for layer in img.layers()]
    for ours_layer, their_layer in zip(img.layers(), got.layers(), strict=True):
        assert ours_layer.open_uncompressed().read() == their_layer.open_uncompressed().read()
    # one entry and no name: that entry
    assert open_layout_image(theirs).digest == got.digest


def test_several_images_without_a_name_need_a_choice(tmp_path):
    lay = tmp_path / "two"
    write_layout(random_image(40), lay, "x")
    write_layout(random_image(41), lay, "y")
    top = open_layout(lay)
    assert not isinstance(top, Image) and len(top.index.manifests) == 2


def _broken(img: Image) -> Image:
    """img with its last layer serving the wrong bytes."""
    layers = list(img.layers())
    last = layers[-1]
    assert isinstance(last, BlobLayer)
    layers[-1] = BlobLayer(last.descriptor, last.diff_id, lambda: io.BytesIO(b"\0" * last.size))
    return build_image(img.raw_config, layers)


def test_failed_write_leaves_nothing_behind(tmp_path):
    bad = _broken(random_image(50, layers=2))
    with pytest.raises(BlobError, match="does not match its digest"):
        write_layout(bad, tmp_path / "new", "x")
    assert list(tmp_path.iterdir()) == []
    lay = tmp_path / "existing"
    write_layout(random_image(51), lay, "keep")
    before = {p: p.read_bytes() for p in lay.rglob("*") if p.is_file()}
    with pytest.raises(BlobError):
        write_layout(bad, lay, "x")
    after = {p: p.read_bytes() for p in lay.rglob("*") if p.is_file()}
    assert after == before


def test_selection_by_digest_and_unnamed_multi_image_error(tmp_path):
    from giropops.errors import ArchiveError, ManifestError
    from giropops.oci.transport import open_image

    lay = tmp_path / "two"
    x, y = random_image(90), random_image(91)
    write_layout(x, lay, "x")
    write_layout(y, lay, "y")
    assert open_image(f"oci-dir://{lay}@{y.digest}").digest == y.digest
    assert open_image(f"oci-dir://{lay}:x").digest == x.digest
    with pytest.raises(ManifestError, match="none names a platform"):
        open_image(f"oci-dir://{lay}")
    with pytest.raises(ArchiveError, match=r"no image named 'z' \(names: x, y\)"):
        open_image(f"oci-dir://{lay}:z")
    with pytest.raises(ArchiveError, match="no manifest or blob"):
        open_image(f"oci-dir://{lay}@sha256:{'0' * 64}")


def test_artifact_without_filesystem_layers_round_trips(tmp_path):
    from giropops.oci.archive import open_archive_image, write_archive
    from giropops.oci.memory import bytes_layer

    sig = bytes_layer(b'{"payload":1}', "application/vnd.dev.cosign.simplesigning.v1+json",
                      annotations={"dev.cosignproject.cosign/signature": "MEUC"})
    art = build_image(b"{}", [sig])
    write_layout(art, tmp_path / "lay", "sig")
    got = open_layout_image(tmp_path / "lay", "sig")
    assert got.raw_manifest == art.raw_manifest
    assert got.layers()[0].open_compressed().read() == b'{"payload":1}'
    write_archive(art, tmp_path / "sig.tar", "example.com/app:sha256-abc.sig")
    assert open_archive_image(tmp_path / "sig.tar").raw_manifest == art.raw_manifest
    assert json.loads(skopeo("inspect", "--raw", f"oci-archive:{tmp_path}/sig.tar"))["layers"][0]["annotations"] == {
        "dev.cosignproject.cosign/signature": "MEUC"}


def test_put_blob_and_edit_index_change_a_layout_in_place(tmp_path):
    from giropops.errors import ArchiveError
    from giropops.oci.layout import Layout, edit_index, put_blob, read_layout_blob, with_annotations
    from giropops.oci.model import Descriptor, Digest

    lay = tmp_path / "lay"
    img = random_image(12, layers=1)
    write_layout(img, lay, "v1")
    data = b'{"note":"attached"}'
    digest = put_blob(lay, data)
    assert digest == Digest("sha256", hashlib.sha256(data).hexdigest())
    assert (lay / "blobs" / "sha256" / digest.hex).read_bytes() == data
    assert put_blob(lay, data) == digest  # present: not written again
    extra = Descriptor("application/vnd.oci.image.manifest.v1+json", digest, len(data), {"kind": "x"})
    edit_index(lay, lambda idx: [*(with_annotations(d, {"seen": "yes"}) for d in idx.manifests), extra])
    entries = json.loads((lay / "index.json").read_text())["manifests"]
    assert [e["annotations"] for e in entries] == [{"org.opencontainers.image.ref.name": "v1", "seen": "yes"},
                                                    {"kind": "x"}]
    layout = Layout(lay)
    assert read_layout_blob(layout, digest, len(data), 1024, "blob") == data
    assert open_layout_image(lay, "v1").digest == img.digest  # the image is still there, by name
    (lay / "blobs" / "sha256" / digest.hex).write_bytes(b'{"note":"tampered"}')
    with pytest.raises(BlobError):
        read_layout_blob(layout, digest, None, 1024, "blob")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ArchiveError, match="not an OCI image layout"):
        edit_index(plain, lambda idx: list(idx.manifests))
    assert not (plain / "index.json").exists()
