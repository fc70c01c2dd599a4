import pytest

from giropops.errors import ImageReferenceError
from giropops.oci.reference import Reference


# Docker's normalisation rules (distribution/reference: ParseNormalizedNamed).
@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest"),
    [
        ("redis", "docker.io", "library/redis", "latest", None),
        ("redis:7", "docker.io", "library/redis", "7", None),
        ("bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", None),
        ("index.docker.io/library/redis", "docker.io", "library/redis", "latest", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/a/b:1.0", "localhost:5000", "a/b", "1.0", None),
        ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", None),
        ("cgr.dev/chainguard/python:latest-dev", "cgr.dev", "chainguard/python", "latest-dev", None),
        ("[::1]:5000/app:v", "[::1]:5000", "app", "v", None),
        (f"redis@sha256:{'a' * 64}", "docker.io", "library/redis", None, f"sha256:{'a' * 64}"),
        (f"redis:7@sha256:{'b' * 64}", "docker.io", "library/redis", "7", f"sha256:{'b' * 64}"),
    ],
)
def test_parse_applies_docker_defaults(text, domain, path, tag, digest):
    ref = Reference.parse(text)
    assert (ref.domain, ref.path, ref.tag) == (domain, path, tag)
    assert (str(ref.digest) if ref.digest else None) == digest


@pytest.mark.parametrize(
    "text",
    ["", " redis", "Redis", "redis:", "redis:-bad", "a//b", "redis@sha256:abc", "redis@md5:" + "a" * 32,
     "UPPER.example.com/app/Thing", "app:" + "x" * 129],
)
def test_parse_rejects_invalid(text):
    with pytest.raises(ImageReferenceError):
        Reference.parse(text)


def test_registry_host_and_loopback():
    assert Reference.parse("redis").registry_host == "registry-1.docker.io"
    assert Reference.parse("localhost:5000/x").is_loopback()
    assert Reference.parse("127.0.0.1:5000/x").is_loopback()
    assert Reference.parse("[::1]:5000/x").is_loopback()
    assert not Reference.parse("ghcr.io/x/y").is_loopback()


def test_familiar_and_str_round_trip():
    ref = Reference.parse("redis:7")
    assert ref.familiar() == "redis:7"
    assert str(ref) == "docker.io/library/redis:7"
    assert Reference.parse(str(ref)) == ref
