"""A registry that misbehaves: a loopback proxy in front of the real registry injects the faults."""

from __future__ import annotations

import io
import json
import time

import pytest

from giropops.errors import BlobError, ManifestError, RegistryError
from giropops.oci import mediatypes as mt
from giropops.oci.registry import (
    RegistryClient,
    RegistryOptions,
    RemoteImage,
    RetryPolicy,
    open_registry,
    write_registry,
)
from tests.oci.registry.conftest import ref_for
from tests.support.faultproxy import Fault, FaultProxy, any_request, blob_get, manifest_get
from tests.support.images import MemImage, MemLayer
from tests.support.progress import RecordingProgress
from tests.support.services import Registry


def image(seed: bytes) -> MemImage:
    return MemImage([MemLayer({"seed": seed}), MemLayer({"more": seed * 50})])


class SleepLog:
    """Records the delays the client chose, and still sleeps them (no clock is asserted)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        time.sleep(seconds)


def client_with_sleep_log(host: str, options: RegistryOptions) -> tuple[RegistryClient, SleepLog]:
    client = RegistryClient(host, options)
    log = SleepLog()
    client.transport.sleep = log
    return client, log


def pull_everything(client: RegistryClient, repo: str, img: MemImage) -> None:
    raw, _, digest = client.get_manifest(repo, "latest")
    assert (raw, digest) == (img.raw_manifest, img.digest)
    for layer in img.layers():
        with client.open_blob(repo, layer.digest, layer.size) as f:
            assert f.read() == layer.blob


def test_503_with_retry_after_is_retried_after_the_delay_asked(registry: Registry, repo: str) -> None:
    img = image(b"503")
    faults = [Fault(any_request, times=2, status=503, retry_after="1")]
    with FaultProxy(registry.port, faults) as proxy:
        client, sleeps = client_with_sleep_log(proxy.host, RegistryOptions())
        for blob in [img.layers()[0], img.layers()[1]]:
            client.push_blob(repo, blob.digest, blob.size, blob.open_compressed)
        cfg = img.manifest.config
        client.push_blob(repo, cfg.digest, cfg.size, lambda: io.BytesIO(img.raw_config))
        client.put_manifest(repo, "latest", img.raw_manifest, img.media_type)
        pull_everything(client, repo, img)
        injected = [what for _, _, what in proxy.log if what.startswith("fault")]
    assert injected == ["fault 503", "fault 503"]
    assert sleeps.delays == [1.0, 1.0]


def test_429_without_retry_after_backs_off_exponentially(registry: Registry, repo: str) -> None:
    img = image(b"429")
    write_registry(img, ref_for(registry.host, repo))
    policy = RetryPolicy(attempts=5, backoff=0.05)
    with FaultProxy(registry.port, [Fault(any_request, times=3, status=429)]) as proxy:
        client, sleeps = client_with_sleep_log(proxy.host, RegistryOptions(retry=policy))
        pull_everything(client, repo, img)
        assert client.head_manifest(repo, "absent") is None
    assert sleeps.delays == [0.05, 0.1, 0.2]


def test_dropped_connections_are_retried_and_uploads_replayed(registry: Registry, repo: str) -> None:
    img = image(b"drop")
    # Drop the first two monolithic blob PUTs (after their bodies were sent) and the first blob GET.
    faults = [
        Fault(lambda m, p: m == "PUT" and "/blobs/uploads/" in p, times=2, drop=True),
        Fault(blob_get, times=1, drop=True),
    ]
    with FaultProxy(registry.port, faults) as proxy:
        ref = ref_for(proxy.host, repo)
        assert write_registry(img, ref, RegistryOptions(retry=RetryPolicy(backoff=0.01))) == img.digest
        got = open_registry(ref, RegistryOptions(retry=RetryPolicy(backoff=0.01)))
        assert isinstance(got, RemoteImage)
        assert got.raw_config == img.raw_config
        for remote, local in zip(got.layers(), img.layers(), strict=True):
            with remote.open_compressed() as f:
                assert f.read() == local.blob
        dropped = [(m, what) for m, _, what in proxy.log if what == "dropped"]
    assert dropped == [("PUT", "dropped"), ("PUT", "dropped"), ("GET", "dropped")]


def test_progress_counts_each_byte_once_when_an_upload_is_replayed(registry: Registry, repo: str) -> None:
    layer = MemLayer.random(120_000)
    faults = [Fault(lambda m, p: m == "PUT" and "/blobs/uploads/" in p, times=2, drop=True)]
    progress = RecordingProgress()
    with FaultProxy(registry.port, faults) as proxy:
        client = RegistryClient(proxy.host, RegistryOptions(retry=RetryPolicy(backoff=0.01)))
        client.push_blob(repo, layer.digest, layer.size, layer.open_compressed, progress=progress)
        assert sum(1 for _, _, what in proxy.log if what == "dropped") == 2
    assert progress.advanced == {str(layer.digest): layer.size}
    assert progress.finished == {str(layer.digest): "pushed"}


def test_chunked_upload_survives_a_failed_patch(registry: Registry, repo: str) -> None:
    layer = MemLayer.random(150_000)
    faults = [Fault(lambda m, p: m == "PATCH", times=1, status=502)]
    with FaultProxy(registry.port, faults) as proxy:
        client = RegistryClient(proxy.host, RegistryOptions(chunk_size=50_000, retry=RetryPolicy(backoff=0.01)))
        client.push_blob(repo, layer.digest, layer.size, layer.open_compressed)
        assert ("PATCH", "fault 502") in [(m, w) for m, _, w in proxy.log]
    with RegistryClient(registry.host).open_blob(repo, layer.digest, layer.size) as f:
        assert f.read() == layer.blob


@pytest.mark.parametrize("chunk_size", [None, 40_000], ids=["monolithic", "chunked"])
def test_lost_upload_response_restarts_the_upload(registry: Registry, repo: str, chunk_size: int | None) -> None:
    """The registry acted on a PUT/PATCH but the answer never came: the retry meets a stale session."""
    layer = MemLayer.random(100_000)
    method = "PUT" if chunk_size is None else "PATCH"
    faults = [Fault(lambda m, p: m == method and "/blobs/uploads/" in p, times=1, lose_response=True)]
    with FaultProxy(registry.port, faults) as proxy:
        client = RegistryClient(proxy.host, RegistryOptions(chunk_size=chunk_size, retry=RetryPolicy(backoff=0.01)))
        client.push_blob(repo, layer.digest, layer.size, layer.open_compressed)
        lost = [m for m, _, what in proxy.log if what.endswith("response lost")]
        sessions = [m for m, p, _ in proxy.log if m == "POST" and "/blobs/uploads/" in p]
    assert lost == [method]
    assert len(sessions) == (1 if chunk_size is None else 2)  # a committed monolithic upload needs no new session
    with RegistryClient(registry.host).open_blob(repo, layer.digest, layer.size) as f:
        assert f.read() == layer.blob


def test_persistent_failure_gives_a_clear_error(registry: Registry, repo: str) -> None:
    policy = RetryPolicy(attempts=3, backoff=0.01)
    with FaultProxy(registry.port, [Fault(any_request, times=None, status=503)]) as proxy:
        client = RegistryClient(proxy.host, RegistryOptions(retry=policy))
        with pytest.raises(RegistryError) as err:
            client.get_manifest(repo, "latest")
        attempts = len(proxy.log)
    msg = str(err.value)
    assert proxy.host in msg and repo in msg and "503" in msg
    assert attempts == 3


def test_persistent_dropped_connections_give_a_clear_error(registry: Registry, repo: str) -> None:
    policy = RetryPolicy(attempts=3, backoff=0.01)
    with FaultProxy(registry.port, [Fault(any_request, times=None, drop=True)]) as proxy:
        client = RegistryClient(proxy.host, RegistryOptions(retry=policy))
        with pytest.raises(RegistryError) as err:
            client.blob_exists(repo, image(b"x").layers()[0].digest)
        attempts = len(proxy.log)
    assert "giving up after 3 attempts" in str(err.value) and proxy.host in str(err.value)
    assert attempts == 3


def test_blob_download_resumes_after_the_connection_breaks_mid_body(registry: Registry, repo: str) -> None:
    layer = MemLayer.random(2_000_000)
    RegistryClient(registry.host).push_blob(repo, layer.digest, layer.size, layer.open_compressed)
    with FaultProxy(registry.port, [Fault(blob_get, times=2, truncate=True)]) as proxy:
        client = RegistryClient(proxy.host, RegistryOptions(retry=RetryPolicy(backoff=0.01)))
        with client.open_blob(repo, layer.digest, layer.size) as f:
            assert f.read() == layer.blob
        gets = [(p, what) for m, p, what in proxy.log if m == "GET"]
    assert [what for _, what in gets] == ["forwarded 200 truncated", "forwarded 206 truncated", "forwarded 206"]


def test_blob_download_that_keeps_breaking_is_a_blob_error(registry: Registry, repo: str) -> None:
    layer = MemLayer.random(100_000)
    RegistryClient(registry.host).push_blob(repo, layer.digest, layer.size, layer.open_compressed)
    with FaultProxy(registry.port, [Fault(blob_get, times=None, truncate=True)]) as proxy:
        client = RegistryClient(proxy.host, RegistryOptions(retry=RetryPolicy(attempts=3, backoff=0.01)))
        with pytest.raises(BlobError, match="connection failed while reading") as err, \
                client.open_blob(repo, layer.digest, layer.size) as f:
            f.read()
    assert str(layer.digest) in str(err.value)


def test_wrong_blob_bytes_are_a_blob_error(registry: Registry, repo: str) -> None:
    img = image(b"wrong bytes")
    write_registry(img, ref_for(registry.host, repo))
    with FaultProxy(registry.port, [Fault(blob_get, times=None, corrupt=True)]) as proxy:
        client = RegistryClient(proxy.host)
        layer = img.layers()[1]
        with pytest.raises(BlobError) as err, client.open_blob(repo, layer.digest, layer.size) as f:
            f.read()
        assert str(layer.digest) in str(err.value) and "does not match" in str(err.value)
        got = open_registry(ref_for(proxy.host, repo))
        assert isinstance(got, RemoteImage)
        with pytest.raises(BlobError):
            got.raw_config  # noqa: B018
        with pytest.raises(BlobError), got.layers()[0].open_uncompressed() as f:
            f.read()


@pytest.mark.parametrize("no_length", [False, True], ids=["content-length", "until-close"])
def test_oversized_manifest_is_refused(registry: Registry, repo: str, no_length: bool) -> None:
    img = image(b"big")
    write_registry(img, ref_for(registry.host, repo))
    huge = b'{"schemaVersion":2,"padding":"' + b"x" * (mt.MAX_MANIFEST_BYTES + 10) + b'"}'
    with FaultProxy(registry.port, [Fault(manifest_get, times=None, body=huge, no_length=no_length)]) as proxy:
        with pytest.raises(ManifestError) as err:
            open_registry(ref_for(proxy.host, repo))
    assert "limit" in str(err.value) and repo in str(err.value)


def test_tampered_manifest_does_not_match_its_digest(registry: Registry, repo: str) -> None:
    img = image(b"tamper")
    write_registry(img, ref_for(registry.host, repo))
    tampered = img.raw_manifest.replace(b'"schemaVersion":2', b'"schemaVersion":2 ')
    with FaultProxy(registry.port, [Fault(manifest_get, times=None, body=tampered)]) as proxy:
        client = RegistryClient(proxy.host)
        with pytest.raises(ManifestError, match="the digest asked for"):
            client.get_manifest(repo, str(img.digest))
        with pytest.raises(ManifestError, match="Docker-Content-Digest"):
            client.get_manifest(repo, "latest")


def test_referrers_api_answer_is_used_and_filtered(registry: Registry, repo: str) -> None:
    """distribution 2.8 has no referrers API; the proxy plays a registry that has one."""
    img = image(b"subject")
    write_registry(img, ref_for(registry.host, repo))
    sbom, sig = image(b"sbom").digest, image(b"sig").digest
    answer = json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_INDEX,
        "manifests": [
            {"mediaType": mt.OCI_MANIFEST, "digest": str(sbom), "size": 10, "artifactType": "application/x.sbom"},
            {"mediaType": mt.OCI_MANIFEST, "digest": str(sig), "size": 10, "artifactType": "application/x.sig"},
        ],
    }).encode()
    api = Fault(lambda m, p: "/referrers/" in p, times=None, respond=(200, {"Content-Type": mt.OCI_INDEX}, answer))
    with FaultProxy(registry.port, [api]) as proxy:
        client = RegistryClient(proxy.host)
        assert [d.digest for d in client.referrers(repo, img.digest).manifests] == [sbom, sig]
        only = client.referrers(repo, img.digest, artifact_type="application/x.sig")
        assert [d.digest for d in only.manifests] == [sig]
        assert not any("/manifests/sha256-" in p for _, p, _ in proxy.log)  # no fallback tag lookups
