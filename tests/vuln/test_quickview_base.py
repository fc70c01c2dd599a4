"""quickview's base image comes from the detector ``recommendations`` uses: labels and provenance count too."""

from __future__ import annotations

from giropops.oci.baseimage import BaseImage
from giropops.sbom.model import SBOM, Subject
from giropops.sign.dsse import STATEMENT_V01, InTotoStatement
from giropops.vuln.quickview import QuickView, pick_base, render
from giropops.vuln.report.view import ReportView

BASE_DIGEST = "sha256:" + "b" * 64
BASE = SBOM(Subject("debian:12-slim", BASE_DIGEST, diff_ids=("sha256:" + "1" * 64,)), None, ())
OTHER = SBOM(Subject("alpine:3.19", "sha256:" + "a" * 64, diff_ids=("sha256:" + "9" * 64,)), None, ())
APP_LAYERS = ("sha256:" + "1" * 64, "sha256:" + "2" * 64)
APP = SBOM(Subject("app:1", "sha256:" + "c" * 64, diff_ids=APP_LAYERS), None, ())


def shown(image: SBOM, base: SBOM | None, ref: BaseImage | None) -> str:
    view = QuickView(ReportView(image, (), (), ()), ReportView(base, (), (), ()) if base else None, ref)
    return render(view, "app:1")


def test_config_labels_name_the_base() -> None:
    base, how = pick_base(APP, [OTHER, BASE], labels={"org.opencontainers.image.base.name": "debian:12-slim"})
    assert base is BASE and how is not None and how.how == "labels"
    assert "debian:12-slim (from label)" in shown(APP, base, how)


def test_unverified_provenance_names_the_base_by_digest() -> None:
    slsa = InTotoStatement(STATEMENT_V01, "https://slsa.dev/provenance/v0.2", ({"digest": {"sha256": "c" * 64}},), {
        "materials": [{"uri": "pkg:docker/debian@12-slim", "digest": {"sha256": "b" * 64}}]}, b"")
    # diff_ids that match no candidate: only the provenance can say which one is the base
    image = SBOM(Subject("app:1", "sha256:" + "c" * 64, diff_ids=("sha256:" + "7" * 64,)), None, ())
    base, how = pick_base(image, [OTHER, BASE], statements=lambda: [slsa])
    assert base is BASE and how is not None and how.how == "provenance"
    assert "debian:12-slim (from provenance, unverified)" in shown(image, base, how)


def test_annotations_win_over_labels_and_layers_still_match_without_metadata() -> None:
    base, how = pick_base(APP, [OTHER, BASE], annotations={"org.opencontainers.image.base.digest": BASE_DIGEST},
                          labels={"org.opencontainers.image.base.name": "alpine:3.19"})
    assert base is BASE and how is not None and how.how == "annotations"
    base, how = pick_base(APP, [OTHER, BASE])
    assert base is BASE and how is not None and how.how == "layers"
    # the image itself is never its own base, even when offered as a candidate
    assert pick_base(BASE, [BASE]) == (None, None)


def test_a_named_base_that_is_not_a_candidate_is_shown_as_the_image_names_it() -> None:
    base, how = pick_base(APP, [OTHER], annotations={"org.opencontainers.image.base.name": "debian:12-slim"})
    assert base is None and how is not None and how.name == "docker.io/library/debian:12-slim"
    view = QuickView(ReportView(APP, (), (), ()), None, how, "offline")
    assert "│ debian:12-slim (not scanned: offline)" in render(view, "app:1")
