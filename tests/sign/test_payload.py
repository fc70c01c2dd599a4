"""The simple-signing payload bytes, as cosign (Go encoding/json) writes them."""

from __future__ import annotations

import pytest

from giropops.oci.model import Digest
from giropops.oci.reference import Reference
from giropops.sign import errors as se
from giropops.sign.dsse import build_statement, predicate_type_uri
from giropops.sign.payload import SimpleSigningPayload, docker_reference

D = Digest("sha256", "a" * 64)


def test_docker_hub_names_are_written_in_full():
    # INDEX.md: "cosign writes Docker Hub references in full (index.docker.io/chihjenhuang/cosign1)"
    assert docker_reference(Reference.parse("chihjenhuang/cosign1:latest")) == "index.docker.io/chihjenhuang/cosign1"
    assert docker_reference(Reference.parse("busybox")) == "index.docker.io/library/busybox"
    assert docker_reference(Reference.parse("localhost:5000/a/b:1")) == "localhost:5000/a/b"


def test_payload_bytes_without_and_with_annotations():
    assert SimpleSigningPayload("r.io/x", D).to_bytes() == (
        b'{"critical":{"identity":{"docker-reference":"r.io/x"},"image":{"docker-manifest-digest":"sha256:'
        + b"a" * 64 + b'"},"type":"cosign container image signature"},"optional":null}')
    out = SimpleSigningPayload("r.io/x", D, {"z": "1", "a": "<b&c>"}).to_bytes()
    # Go sorts map keys and escapes <, >, & in strings
    assert out.endswith(b'"optional":{"a":"\\u003cb\\u0026c\\u003e","z":"1"}}')


def test_payload_parse_rejects_other_types():
    with pytest.raises(se.PayloadMalformedError):
        SimpleSigningPayload.from_bytes(b'{"critical":{"type":"x"}}')
    with pytest.raises(se.PayloadMalformedError):
        SimpleSigningPayload.from_bytes(b"not json")


def test_custom_predicate_as_cosign_wraps_it():
    import datetime
    import json

    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    st = json.loads(build_statement("custom", b"foo", "r.io/x", D, now))
    assert st == {"_type": "https://in-toto.io/Statement/v0.1",
                  "predicateType": "https://cosign.sigstore.dev/attestation/v1",
                  "subject": [{"name": "r.io/x", "digest": {"sha256": "a" * 64}}],
                  "predicate": {"Data": "foo", "Timestamp": "2026-01-02T03:04:05Z"}}


@pytest.mark.parametrize(("name", "uri"), [
    ("cyclonedx", "https://cyclonedx.org/bom"),
    ("spdxjson", "https://spdx.dev/Document"),
    ("slsaprovenance", "https://slsa.dev/provenance/v0.2"),
    ("openvex", "https://openvex.dev/ns"),
    ("custom", "https://cosign.sigstore.dev/attestation/v1"),
    ("https://example.com/p/v1", "https://example.com/p/v1"),
])
def test_predicate_type_names(name, uri):
    assert predicate_type_uri(name) == uri
