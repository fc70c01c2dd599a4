"""Base image detection: annotations, labels, SLSA provenance, leading layers — or a plain "don't know"."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from giropops.cli.main import main
from giropops.oci import mediatypes as mt
from giropops.oci.memory import build_image, bytes_layer
from giropops.oci.model import Digest, canonical_json
from giropops.oci.transport import open_image, parse_spec, write_image
from giropops.reco.base import detect_base
from tests.reco.conftest import World

DSSE = "application/vnd.dsse.envelope.v1+json"


def push_statement(world: World, tag: str, statement: dict[str, Any]) -> None:
    """An attestation the way cosign stores it: a DSSE envelope layer in the ``sha256-<hex>.att`` image."""
    envelope = json.dumps({
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.b64encode(json.dumps(statement).encode()).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(b"not checked here").decode()}],
    }).encode()
    layer = bytes_layer(envelope, media_type=DSSE, annotations={"predicateType": statement["predicateType"]})
    config = canonical_json({"architecture": "", "os": "", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [str(layer.digest)]}})
    artifact = build_image(config, [layer], media_type=mt.OCI_MANIFEST)
    app = world.app_images[tag]
    write_image(artifact, f"registry://{world.apps}:sha256-{app.digest.hex}.att")


def slsa02(world: World, subject: Digest, base_digest: Digest) -> dict[str, Any]:
    host, _, repo = world.python.partition("/")
    return {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "subject": [{"name": f"{world.apps}", "digest": {"sha256": subject.hex}}],
        "predicate": {
            "builder": {"id": "https://example.org/builder"},
            "buildType": "https://mobyproject.org/buildkit@v1",
            "materials": [
                # BuildKit lists the base image first, as a package URL with the platform qualifier
                {"uri": f"pkg:docker/{host}/{repo}@3.11-slim?platform=linux%2Famd64",
                 "digest": {"sha256": base_digest.hex}},
                {"uri": "https://github.com/example/app.git", "digest": {"sha1": "0" * 40}},
            ],
        },
    }


def detect(world: World, tag: str, candidates: tuple[str, ...] = ()) -> Any:
    spec = parse_spec(f"{world.apps}:{tag}")
    return detect_base(open_image(spec), spec, candidates=candidates)


def test_annotations(world: World) -> None:
    base = detect(world, "annotated")
    assert (base.how, base.name, base.digest) == (
        "annotations", f"{world.python}:3.11-slim", world.images["3.11-slim@old"].digest)
    assert "manifest annotations" in base.detail


def test_labels(world: World) -> None:
    base = detect(world, "labelled")
    assert (base.how, base.name, base.digest) == (
        "labels", f"{world.python}:3.11-slim", world.images["3.11-slim@old"].digest)


def test_provenance_attestation(world: World) -> None:
    old = world.images["3.11-slim@old"].digest
    app = world.app_images["provenance"]
    assert detect(world, "provenance").how == "none"  # nothing attached yet
    # a statement about another image is ignored
    push_statement(world, "provenance", slsa02(world, world.app_images["bare"].digest, old))
    assert detect(world, "provenance").how == "none"
    push_statement(world, "provenance", slsa02(world, app.digest, old))
    base = detect(world, "provenance")
    assert (base.how, base.name, base.digest) == ("provenance", f"{world.python}:3.11-slim", old)
    assert "signature was not checked" in base.detail


def test_leading_layers(world: World) -> None:
    old = world.images["3.11-slim@old"]
    others = (f"{world.python}:3.11-slim", f"{world.python}:3.12-slim")  # the tag moved: no match
    assert detect(world, "bare", others).how == "none"
    base = detect(world, "bare", (*others, f"{world.python}@{old.digest}"))
    assert (base.how, base.digest) == ("layers", old.digest)
    assert base.detail == f"its first 2 layers (diff_ids) are those of {world.python}@{old.digest}"


def test_not_found_says_so(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["recommendations", f"{world.apps}:bare", "--db", str(world.db), "--catalog", str(world.catalog)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "No base image detected." in out.out
    assert "the base image could not be determined" in out.out
    assert "no layer match among 2 candidate images" in out.out  # the catalog's two entries
    code = main(["recommendations", f"{world.apps}:bare", "--db", str(world.db), "--catalog", str(world.catalog),
                 "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["baseImage"]["found"] is False and doc["current"] is None and doc["updates"] is None


def test_detected_by_layers_recommends_too(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    old = world.images["3.11-slim@old"]
    code = main(["recommendations", f"{world.apps}:bare", "--db", str(world.db), "--catalog", str(world.catalog),
                 "--base-candidate", f"{world.python}@{old.digest}", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["baseImage"]["how"] == "layers" and doc["current"]["digest"] == str(old.digest)
    # named by digest only: there is no tag to follow for a refresh; the repository's tags and the
    # catalog still offer updates (3.11-slim included: it is no longer the image the app was built on)
    assert doc["refresh"]["status"] == "unknown"
    assert "not named by a tag" in doc["refresh"]["detail"]
    assert sorted((u["kind"], u["tag"]) for u in doc["updates"]) == [
        ("catalog", "latest"), ("tag", "3.11-slim"), ("tag", "3.12-slim")]


def test_invalid_annotation_is_reported_not_trusted(world: World) -> None:
    from giropops.oci import mutate
    from giropops.reco.base import BASE_DIGEST, BASE_NAME

    img = mutate.with_annotations(world.app_images["bare"], {BASE_NAME: "Not A Reference!", BASE_DIGEST: "sha256:xyz"})
    write_image(img, f"registry://{world.apps}:hostile")
    base = detect(world, "hostile")
    assert base.how == "none"
    assert "could not be determined" in base.detail
    assert base.notes == (
        "ignored invalid org.opencontainers.image.base.digest 'sha256:xyz' in the manifest annotations",
        "ignored invalid org.opencontainers.image.base.name 'Not A Reference!' in the manifest annotations",
    )


def test_slsa_v1_resolved_dependencies_and_docker_hub_names() -> None:
    from giropops.oci.baseimage import from_provenance
    from giropops.sign.dsse import STATEMENT_V1, InTotoStatement

    hexd = "ab" * 32
    v1 = InTotoStatement(STATEMENT_V1, "https://slsa.dev/provenance/v1", ({"digest": {"sha256": "cd" * 32}},), {
        "buildDefinition": {"resolvedDependencies": [
            {"uri": "git+https://github.com/example/app@refs/heads/main", "digest": {"gitCommit": "0" * 40}},
            {"uri": "pkg:docker/python@3.12-slim?platform=linux%2Famd64", "digest": {"sha256": hexd}},
        ]},
    }, b"")
    base = from_provenance([v1])
    assert base is not None
    assert (base.how, base.name, str(base.digest)) == (
        "provenance", "docker.io/library/python:3.12-slim", f"sha256:{hexd}")
    other = InTotoStatement(STATEMENT_V1, "https://spdx.dev/Document", (),
                            {"materials": [{"uri": "pkg:docker/x@1"}]}, b"")
    assert from_provenance([other]) is None


def test_image_built_by_giropops_build(world: World, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """``giropops build`` on a base image writes the annotations detection reads first."""
    spec = tmp_path / "giropops.yaml"
    spec.write_text(
        f"base: registry://{world.python}:3.12-slim\n"
        "cmd: [python3, /app/main.py]\n"
        "environment:\n  APP: giropops\n"
    )
    code = main(["build", "-f", str(spec), "-t", f"{world.apps}:built", "--push"])
    out = capsys.readouterr()
    assert code == 0, out.err
    base = detect(world, "built")
    assert (base.how, base.name, base.digest) == (
        "annotations", f"{world.python}:3.12-slim", world.images["3.12-slim"].digest)
    doc_code = main(["recommendations", f"{world.apps}:built", "--db", str(world.db), "--catalog",
                     str(world.catalog), "--only-refresh", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc_code == 0
    assert doc["refresh"]["status"] == "up-to-date"


def test_an_unreachable_host_is_tried_once(world: World, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """Several catalog images on a host that does not answer cost one failure, not one per image."""
    from tests.support.services import free_port

    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("replace: true\nruntimes:\n  python:\n"
                       + "".join(f"    - image: {dead}/mirror/python:{t}\n" for t in ("a", "b", "c")))
    code = main(["recommendations", f"{world.apps}:bare", "--db", str(world.db), "--catalog", str(catalog),
                 "--format", "json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = json.loads(out.out)
    assert doc["baseImage"]["found"] is False
    first, *rest = doc["notes"]
    assert first.startswith(f"candidate {dead}/mirror/python:a not read: ")
    assert rest == [
        f"candidate {dead}/mirror/python:{t} skipped: {dead} did not answer earlier in this run" for t in ("b", "c")
    ]
