"""Pull and push against the real distribution registry, anonymous access."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from giropops.errors import ImageReferenceError, ManifestError, NotFoundError, RegistryError
from giropops.oci import mediatypes as mt
from giropops.oci.image import Image, ImageIndex
from giropops.oci.model import Platform
from giropops.oci.reference import Reference
from giropops.oci.registry import (
    RegistryClient,
    RegistryOptions,
    RemoteImage,
    RetryPolicy,
    open_registry,
    write_registry,
)
from tests.oci.registry.conftest import ref_for
from tests.support.faultproxy import FaultProxy
from tests.support.images import MemImage, MemIndex, MemLayer, sha256
from tests.support.progress import RecordingProgress
from tests.support.services import Registry, require_binary


def small_image(tag: bytes = b"hello") -> MemImage:
    return MemImage([MemLayer({"etc/hello.txt": tag}), MemLayer({"bin/tool": tag * 100})], labels={"t": "1"})


def test_round_trip_keeps_manifest_config_and_layers(registry: Registry, repo: str) -> None:
    img = small_image()
    ref = ref_for(registry.host, repo, "v1")
    assert write_registry(img, ref) == img.digest

    got = open_registry(ref)
    assert isinstance(got, Image) and not isinstance(got, ImageIndex)
    assert got.digest == img.digest
    assert got.raw_manifest == img.raw_manifest
    assert got.media_type == mt.OCI_MANIFEST
    assert got.raw_config == img.raw_config
    assert got.config.labels == {"t": "1"}
    layers = got.layers()
    assert [layer.digest for layer in layers] == [x.digest for x in img.layers()]
    assert [layer.diff_id for layer in layers] == [x.diff_id for x in img.layers()]
    for remote, local in zip(layers, img.layers(), strict=True):
        with remote.open_compressed() as f:
            assert f.read() == local.blob
        with remote.open_uncompressed() as f:
            assert f.read() == local.tar


def test_pull_by_digest_and_head(registry: Registry, client: RegistryClient, repo: str) -> None:
    img = small_image(b"by-digest")
    write_registry(img, ref_for(registry.host, repo))
    raw, mtype, digest = client.get_manifest(repo, str(img.digest))
    assert (raw, mtype, digest) == (img.raw_manifest, mt.OCI_MANIFEST, img.digest)
    desc = client.head_manifest(repo, "latest")
    assert desc is not None
    assert (desc.digest, desc.size, desc.media_type) == (img.digest, len(img.raw_manifest), mt.OCI_MANIFEST)
    assert client.head_manifest(repo, "no-such-tag") is None


def test_delete_manifest_then_not_found(registry: Registry, client: RegistryClient, repo: str) -> None:
    img = small_image(b"delete-me")
    write_registry(img, ref_for(registry.host, repo))
    client.delete_manifest(repo, img.digest)
    with pytest.raises(NotFoundError) as err:
        client.get_manifest(repo, str(img.digest))
    assert registry.host in str(err.value) and repo in str(err.value)


def test_missing_repository_and_blob_are_not_found(client: RegistryClient, registry: Registry) -> None:
    with pytest.raises(NotFoundError) as err:
        client.get_manifest("no/such-repo", "latest")
    assert "no/such-repo" in str(err.value) and registry.host in str(err.value)
    missing = sha256(b"never pushed")
    assert client.blob_exists("no/such-repo", missing) is False
    with pytest.raises(NotFoundError):
        client.open_blob("no/such-repo", missing, None).read()


def test_monolithic_upload_is_one_put(registry: Registry, repo: str) -> None:
    layer = MemLayer.random(300_000)
    with FaultProxy(registry.port) as proxy:
        c = RegistryClient(proxy.host, RegistryOptions())
        c.push_blob(repo, layer.digest, layer.size, layer.open_compressed)
        methods = [m for m, path, _ in proxy.log if "/blobs/" in path]
    assert methods == ["HEAD", "POST", "PUT"]
    with RegistryClient(registry.host).open_blob(repo, layer.digest, layer.size) as f:
        assert f.read() == layer.blob


def test_chunked_upload_sends_patches_with_content_range(registry: Registry, repo: str) -> None:
    layer = MemLayer.random(200_000)
    chunk = 64 * 1024
    with FaultProxy(registry.port) as proxy:
        c = RegistryClient(proxy.host, RegistryOptions(chunk_size=chunk))
        c.push_blob(repo, layer.digest, layer.size, layer.open_compressed)
        methods = [m for m, path, _ in proxy.log if "/blobs/" in path]
    expected_patches = -(-layer.size // chunk)
    assert methods == ["HEAD", "POST", *["PATCH"] * expected_patches, "PUT"]
    with RegistryClient(registry.host).open_blob(repo, layer.digest, layer.size) as f:
        assert f.read() == layer.blob
    # And a whole image in chunks reads back the same.
    img = MemImage([MemLayer.random(150_000), MemLayer({"a": b"b"})])
    ref = ref_for(registry.host, repo, "chunked")
    write_registry(img, ref, RegistryOptions(chunk_size=chunk))
    got = open_registry(ref)
    assert isinstance(got, RemoteImage)
    assert [layer.open_compressed().read() for layer in got.layers()] == [x.blob for x in img.layers()]


def test_existing_blobs_are_skipped(registry: Registry, repo: str) -> None:
    img = small_image(b"twice")
    with FaultProxy(registry.port) as proxy:
        ref = ref_for(proxy.host, repo)
        write_registry(img, ref)
        first = list(proxy.log)
        proxy.log.clear()
        write_registry(img, ref)
        second = list(proxy.log)
    assert sum(1 for m, p, _ in first if m == "POST" and "/blobs/uploads/" in p) == 3  # config + 2 layers
    blob_calls = sorted((m, p) for m, p, _ in second if "/blobs/" in p)
    assert blob_calls == sorted(("HEAD", f"/v2/{repo}/blobs/{d}") for d in
                                [img.manifest.config.digest, *(x.digest for x in img.layers())])


def test_cross_repository_mount(registry: Registry, repo: str) -> None:
    img = small_image(b"mount me")
    source = ref_for(registry.host, f"{repo}-src")
    write_registry(img, source)
    with FaultProxy(registry.port) as proxy:
        # The source image is read through the proxy too, so the push sees "same registry" and mounts.
        src = open_registry(ref_for(proxy.host, f"{repo}-src"))
        write_registry(src, ref_for(proxy.host, f"{repo}-dst"))
        posts = [(p, what) for m, p, what in proxy.log if m == "POST"]
        puts = [p for m, p, _ in proxy.log if m in ("PUT", "PATCH") and "/blobs/" in p]
    assert len(posts) == 3
    assert all(f"from={repo}-src".replace("/", "%2F") in p and "mount=sha256" in p for p, _ in posts)
    assert all(what == "forwarded 201" for _, what in posts)
    assert puts == []
    got = open_registry(ref_for(registry.host, f"{repo}-dst"))
    assert isinstance(got, RemoteImage)
    assert got.raw_config == img.raw_config


def test_mount_of_unknown_blob_falls_back_to_upload(registry: Registry, client: RegistryClient, repo: str) -> None:
    layer = MemLayer.random(10_000)
    client.push_blob(repo, layer.digest, layer.size, layer.open_compressed, mount_from=f"{repo}-nowhere")
    with client.open_blob(repo, layer.digest, layer.size) as f:
        assert f.read() == layer.blob


def test_tags_list_follows_pagination(registry: Registry, repo: str) -> None:
    img = small_image(b"tags")
    client = RegistryClient(registry.host)
    write_registry(img, ref_for(registry.host, repo, "a0"))
    names = ["a0", "b1", "c2", "d3", "e4"]
    for tag in names[1:]:
        client.put_manifest(repo, tag, img.raw_manifest, img.media_type)
    assert sorted(client.list_tags(repo)) == names
    with FaultProxy(registry.port, paginate_tags=True) as proxy:
        tags = RegistryClient(proxy.host).list_tags(repo, page_size=2)
        pages = [what for _, p, what in proxy.log if "/tags/list" in p]
    assert tags == names
    assert pages == ["forwarded 200 paged"] * 3


def test_multi_platform_index_push_and_platform_selection(registry: Registry, repo: str) -> None:
    amd = MemImage([MemLayer({"arch": b"amd64"})], Platform("linux", "amd64"))
    arm = MemImage([MemLayer({"arch": b"arm64"})], Platform("linux", "arm64", "v8"))
    idx = MemIndex([amd, arm])
    ref = ref_for(registry.host, repo, "multi")
    assert write_registry(idx, ref) == idx.digest

    whole = open_registry(ref)
    assert isinstance(whole, ImageIndex)
    assert whole.raw_manifest == idx.raw_manifest
    assert [d.digest for d in whole.index.manifests] == [amd.digest, arm.digest]

    picked = open_registry(ref, platform=Platform.parse("linux/arm64"))
    assert isinstance(picked, Image)
    assert picked.digest == arm.digest
    assert picked.config.platform == Platform("linux", "arm64", "v8")
    with picked.layers()[0].open_uncompressed() as f:
        assert f.read() == arm.layers()[0].tar
    assert open_registry(ref, platform=Platform.parse("linux/amd64")).digest == amd.digest
    with pytest.raises(ManifestError, match="s390x"):
        open_registry(ref, platform=Platform.parse("linux/s390x"))


def test_referrers_fall_back_to_the_tag_schema(registry: Registry, client: RegistryClient, repo: str) -> None:
    img = small_image(b"subject")
    write_registry(img, ref_for(registry.host, repo))
    subject = img.descriptor()
    sbom = MemImage([MemLayer({"sbom.json": b"{}"})], subject=subject, artifact_type="application/vnd.example.sbom")
    sig = MemImage([MemLayer({"sig": b"x"})], subject=subject, artifact_type="application/vnd.example.sig")
    for art in (sbom, sig):
        write_registry(art, ref_for(registry.host, repo).with_digest(art.digest))

    everything = client.referrers(repo, img.digest)
    assert {(d.digest, d.artifact_type) for d in everything.manifests} == {
        (sbom.digest, "application/vnd.example.sbom"),
        (sig.digest, "application/vnd.example.sig"),
    }
    only_sboms = client.referrers(repo, img.digest, artifact_type="application/vnd.example.sbom")
    assert [d.digest for d in only_sboms.manifests] == [sbom.digest]
    # The fallback tag is the spec's "<alg>-<hex>" and holds an OCI index.
    tag = f"sha256-{img.digest.hex}"
    assert tag in client.list_tags(repo)
    raw, mtype, _ = client.get_manifest(repo, tag)
    assert mtype == mt.OCI_INDEX
    assert {m["digest"] for m in json.loads(raw)["manifests"]} == {str(sbom.digest), str(sig.digest)}
    # Nothing refers to the SBOM itself.
    assert client.referrers(repo, sbom.digest).manifests == ()


def test_skopeo_reads_what_we_push_and_we_read_what_skopeo_pushes(
    registry: Registry, repo: str, tmp_path: Path
) -> None:
    skopeo = require_binary("skopeo")
    img = small_image(b"skopeo")
    ref = ref_for(registry.host, repo, "ours")
    write_registry(img, ref)
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        check=True, capture_output=True,
    ).stdout
    assert raw == img.raw_manifest
    out = tmp_path / "dir"
    subprocess.run(
        [skopeo, "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}", f"dir:{out}"],
        check=True, capture_output=True,
    )
    for layer in img.layers():
        assert (out / layer.digest.hex).read_bytes() == layer.blob

    theirs = ref_for(registry.host, f"{repo}-skopeo", "theirs")
    subprocess.run(
        [skopeo, "copy", "--quiet", "--dest-tls-verify=false", "--format", "v2s2", f"dir:{out}", f"docker://{theirs}"],
        check=True, capture_output=True,
    )
    got = open_registry(theirs)
    assert isinstance(got, RemoteImage)
    assert got.media_type == mt.DOCKER_MANIFEST
    assert [layer.diff_id for layer in got.layers()] == [x.diff_id for x in img.layers()]
    for layer, local in zip(got.layers(), img.layers(), strict=True):
        with layer.open_uncompressed() as f:
            assert f.read() == local.tar
    assert got.digest == sha256(got.raw_manifest)
    assert sha256(got.raw_config) == got.manifest.config.digest


def test_manifest_before_its_blobs_is_refused_with_the_registry_reason(client: RegistryClient, repo: str) -> None:
    img = small_image(b"no blobs yet")
    with pytest.raises(RegistryError) as err:
        client.put_manifest(repo, "early", img.raw_manifest, img.media_type)
    assert "MANIFEST_BLOB_UNKNOWN" in str(err.value) and repo in str(err.value)


def test_push_reports_progress_per_blob(registry: Registry, repo: str) -> None:
    img = small_image(b"progress")
    blobs = {str(img.manifest.config.digest): img.manifest.config.size} | {
        str(x.digest): x.size for x in img.layers()
    }
    first = RecordingProgress()
    write_registry(img, ref_for(registry.host, repo), progress=first)
    assert first.started == blobs
    assert first.advanced == blobs
    assert set(first.finished.values()) == {"pushed"}
    again = RecordingProgress()
    write_registry(img, ref_for(registry.host, repo, "again"), progress=again)
    assert set(again.finished.values()) == {"already exists"} and again.advanced == {}
    assert any(str(img.digest) in n for n in again.notes)


def test_push_to_a_digest_reference_that_does_not_match_is_refused(registry: Registry, repo: str) -> None:
    img = small_image(b"digest ref")
    other = sha256(b"something else")
    with pytest.raises(ManifestError, match=str(other)):
        write_registry(img, ref_for(registry.host, repo).with_digest(other))
    by_digest = Reference.parse(f"{registry.host}/{repo}@{img.digest}")
    assert write_registry(img, by_digest) == img.digest
    assert open_registry(by_digest).digest == img.digest


@pytest.mark.parametrize(
    ("host", "scheme"),
    [
        ("localhost:5000", "http"),
        ("127.0.0.1:5000", "http"),
        ("[::1]:5000", "http"),
        ("registry.example:5000", "https"),
        ("10.1.2.3", "https"),
    ],
)
def test_scheme_https_unless_loopback(host: str, scheme: str) -> None:
    # Without insecure=True, building the transport opens no connection.
    assert RegistryClient(host).transport.base_url == f"{scheme}://{host}"


@pytest.mark.parametrize("bad_repo", ["../etc", "UPPER/case", "a//b", "", "a/b?x=1"])
def test_hostile_repository_names_are_refused_before_any_request(bad_repo: str) -> None:
    with pytest.raises(ImageReferenceError, match="repository"):
        RegistryClient("registry.example").get_manifest(bad_repo, "latest")


@pytest.mark.parametrize("bad_ref", ["../../x", "sha256:abc", "tag with space", ""])
def test_hostile_manifest_references_are_refused(bad_ref: str) -> None:
    with pytest.raises((ImageReferenceError, ManifestError)):
        RegistryClient("registry.example").get_manifest("ok/repo", bad_ref)


def test_options_never_show_the_password() -> None:
    options = RegistryOptions(username="bob", password="s3cret-value")
    assert "s3cret-value" not in repr(options) and "bob" in repr(options)


def test_non_loopback_host_needs_insecure_for_plain_http(registry: Registry, repo: str) -> None:
    """0.0.0.0 reaches this machine's listeners on Linux but is not a loopback address: HTTPS unless insecure."""
    img = small_image(b"insecure")
    host = f"0.0.0.0:{registry.port}"
    with pytest.raises(RegistryError, match="insecure"):
        write_registry(img, ref_for(host, repo), RegistryOptions(retry=RetryPolicy(attempts=2, backoff=0.01)))
    assert write_registry(img, ref_for(host, repo), RegistryOptions(insecure=True)) == img.digest
    got = open_registry(ref_for(host, repo), RegistryOptions(insecure=True))
    assert got.raw_manifest == img.raw_manifest


def test_empty_blob_round_trip(registry: Registry, client: RegistryClient, repo: str) -> None:
    empty = sha256(b"")
    for name, chunk_size in (("mono", None), ("chunked", 1024)):
        c = RegistryClient(registry.host, RegistryOptions(chunk_size=chunk_size))
        c.push_blob(f"{repo}-{name}", empty, 0, lambda: io.BytesIO(b""))
        with client.open_blob(f"{repo}-{name}", empty, 0) as f:
            assert f.read() == b""


def test_skopeo_copies_our_multi_platform_index_and_we_read_its_copy(registry: Registry, repo: str) -> None:
    skopeo = require_binary("skopeo")
    amd = MemImage([MemLayer({"arch": b"amd64 via skopeo"})], Platform("linux", "amd64"))
    arm = MemImage([MemLayer({"arch": b"arm64 via skopeo"})], Platform("linux", "arm64", "v8"))
    idx = MemIndex([amd, arm])
    ours = ref_for(registry.host, repo, "multi")
    write_registry(idx, ours)
    theirs = ref_for(registry.host, f"{repo}-copy", "multi")
    subprocess.run(
        [skopeo, "copy", "--quiet", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
         f"docker://{ours}", f"docker://{theirs}"],
        check=True, capture_output=True,
    )
    copied = open_registry(theirs)
    assert isinstance(copied, ImageIndex)
    assert copied.digest == idx.digest
    picked = open_registry(theirs, platform=Platform.parse("linux/arm64/v8"))
    assert picked.digest == arm.digest
    with picked.layers()[0].open_uncompressed() as f:
        assert f.read() == arm.layers()[0].tar
