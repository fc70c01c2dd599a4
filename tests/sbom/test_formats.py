"""SPDX 2.3 and CycloneDX 1.6 output: valid against the official schemas / validators, deterministic,
readable back (ours and Trivy's)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from giropops.errors import SBOMError
from giropops.sbom import SBOM, sbom_for
from giropops.sbom.formats import EncodeOptions, decode, encode
from tests.sbom.conftest import BuiltImage, inventory_of_cyclonedx, pep503, trivy_binary, trivy_cyclonedx

IMAGES = ["distroless_image", "debootstrap_image", "venv_image", "whiteout_image", "apk_image"]


@pytest.fixture(scope="module")
def sboms(request: pytest.FixtureRequest) -> dict[str, SBOM]:
    out = {}
    for name in IMAGES:
        image: BuiltImage = request.getfixturevalue(name)
        out[name] = sbom_for(f"archive://{image.tar}", use_cache=False)
    return out


@pytest.mark.parametrize("name", IMAGES)
def test_cyclonedx_is_valid_against_the_official_1_6_schema(name: str, sboms: dict[str, SBOM]) -> None:
    data = encode(sboms[name], "cyclonedx-json").decode()
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(data)
    assert error is None, str(error)
    doc = json.loads(data)
    assert doc["specVersion"] == "1.6"
    assert doc["metadata"]["component"]["version"] == sboms[name].subject.digest


@pytest.mark.parametrize("name", IMAGES)
def test_spdx_is_valid_spdx_2_3(name: str, sboms: dict[str, SBOM], tmp_path: Path) -> None:
    path = tmp_path / "sbom.spdx.json"
    path.write_bytes(encode(sboms[name], "spdx-json"))
    document = parse_file(str(path))
    messages = validate_full_spdx_document(document, spdx_version="SPDX-2.3")
    assert messages == [], [m.validation_message for m in messages[:5]]
    doc = json.loads(path.read_text())
    root = next(p for p in doc["packages"] if p["SPDXID"] == "SPDXRef-Image")
    assert root["checksums"] == [{"algorithm": "SHA256", "checksumValue": sboms[name].subject.digest.split(":")[1]}]


def test_spdx_license_refs_for_debian_license_names(sboms: dict[str, SBOM]) -> None:
    doc = json.loads(encode(sboms["debootstrap_image"], "spdx-json"))
    refs = {e["licenseId"]: e["name"] for e in doc["hasExtractedLicensingInfos"]}
    assert refs["LicenseRef-GPL-2-plus"] == "GPL-2+"
    assert refs["LicenseRef-GPL-2"] == "GPL-2"  # not a valid SPDX id (GPL-2.0-only is): kept apart
    assert len(set(refs.values())) == len(refs)


@pytest.mark.parametrize("fmt", ["json", "spdx-json", "cyclonedx-json", "list"])
def test_same_input_gives_byte_identical_output(fmt: str, venv_image: BuiltImage, tmp_path: Path) -> None:
    outs = []
    for i in range(2):
        r = subprocess.run(
            ["giropops", "sbom", f"archive://{venv_image.tar}", "--format", fmt, "--no-cache"],
            check=True, capture_output=True, env={"PATH": _venv_path(), "HOME": str(tmp_path / f"h{i}")},
        )
        outs.append(r.stdout)
    assert outs[0] == outs[1]
    assert b"1970-01-01T00:00:00Z" not in outs[0] or fmt != "cyclonedx-json"


def _venv_path() -> str:
    import os
    import sys

    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def test_serial_numbers_follow_the_content(sboms: dict[str, SBOM]) -> None:
    a = json.loads(encode(sboms["venv_image"], "cyclonedx-json"))
    b = json.loads(encode(sboms["whiteout_image"], "cyclonedx-json"))
    a2 = json.loads(encode(sboms["venv_image"], "cyclonedx-json"))
    assert a["serialNumber"] == a2["serialNumber"] != b["serialNumber"]
    assert "timestamp" not in a["metadata"]
    spdx_a = json.loads(encode(sboms["venv_image"], "spdx-json"))
    spdx_b = json.loads(encode(sboms["whiteout_image"], "spdx-json"))
    assert spdx_a["documentNamespace"] != spdx_b["documentNamespace"]


def test_timestamp_only_when_asked(sboms: dict[str, SBOM]) -> None:
    opts = EncodeOptions(timestamp="2025-02-03T04:05:06Z")
    cdx = json.loads(encode(sboms["apk_image"], "cyclonedx-json", opts))
    spdx = json.loads(encode(sboms["apk_image"], "spdx-json", opts))
    assert cdx["metadata"]["timestamp"] == spdx["creationInfo"]["created"] == "2025-02-03T04:05:06Z"
    # without one, SPDX's mandatory "created" is the image's creation time from its config
    spdx = json.loads(encode(sboms["apk_image"], "spdx-json"))
    assert spdx["creationInfo"]["created"] == "2024-01-01T00:00:00Z"


def _essence(sbom: SBOM) -> set[tuple[object, ...]]:
    return {
        (p.type, p.name, p.version, p.purl, p.source_name, p.source_version, p.arch, p.licenses, p.locations)
        for p in sbom.packages
    }


@pytest.mark.parametrize("fmt", ["json", "spdx-json", "cyclonedx-json"])
@pytest.mark.parametrize("name", IMAGES)
def test_round_trip(fmt: str, name: str, sboms: dict[str, SBOM]) -> None:
    original = sboms[name]
    back = decode(encode(original, fmt))
    assert _essence(back) == _essence(original)
    assert back.distro is not None and original.distro is not None
    assert (back.distro.id, back.distro.version_id) == (original.distro.id, original.distro.version_id)
    assert (back.subject.digest, back.subject.diff_ids) == (original.subject.digest, original.subject.diff_ids)
    if fmt == "json":
        assert back == original


def test_reads_trivys_cyclonedx_and_spdx(venv_image: BuiltImage, sboms: dict[str, SBOM], tmp_path: Path) -> None:
    cdx_path = tmp_path / "trivy.cdx.json"
    trivy_doc = trivy_cyclonedx(venv_image.tar, cdx_path, tmp_path / "cache")
    spdx_path = tmp_path / "trivy.spdx.json"
    import os

    subprocess.run(
        [trivy_binary(), "image", "--input", str(venv_image.tar), "--format", "spdx-json", "-o", str(spdx_path),
         "--quiet"],
        check=True, capture_output=True, env={**os.environ, "TRIVY_CACHE_DIR": str(tmp_path / "cache")},
    )
    ours = sboms["venv_image"]
    want = {(p.type, p.name, p.version) for p in ours.packages}
    assert inventory_of_cyclonedx(trivy_doc) == want
    for path in (cdx_path, spdx_path):
        theirs = sbom_for(f"sbom://{path}")
        assert {(p.type, p.name, p.version) for p in theirs.packages} == want, path.name
        assert theirs.distro is not None and theirs.distro.id == "debian"
        assert theirs.distro.osv_ecosystem == "Debian:12"
        by_key = {(p.type, p.name): p for p in theirs.packages}
        for p in ours.packages:
            t = by_key[(p.type, p.name)]
            assert t.layer == p.layer, (path.name, p.name)  # Trivy's LayerDiffID
            if p.type == "deb":
                assert (t.source_name, t.source_version) == (p.source_name, p.source_version), (path.name, p.name)
    # names in Trivy's documents are as the metadata spells them; decoded, they are PEP 503 names
    raw_names = {c["name"] for c in trivy_doc["components"] if "pypi" in c.get("purl", "")}  # type: ignore[union-attr]
    assert "MarkupSafe" in raw_names and pep503("MarkupSafe") in {p.name for p in ours.packages}


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"[1,2]", b'{"bomFormat": "CycloneDX", "components": "nope"}', b"[" * 100000,
     b'{"spdxVersion": "SPDX-2.3", "packages": [{"externalRefs": 5}]}', b'{"hello": "world"}'],
)
def test_hostile_sbom_files_are_clear_errors(content: bytes) -> None:
    with pytest.raises(SBOMError):
        decode(content)


def test_spdx_license_normalization_agrees_with_license_expression(sboms: dict[str, SBOM]) -> None:
    """Our fast validator against the reference implementation, on every license string the test
    images declare plus tricky forms."""
    from license_expression import ExpressionError, get_spdx_licensing

    from giropops.sbom.licenses import spdx_expression

    licensing = get_spdx_licensing()
    samples = {lic for s in sboms.values() for p in s.packages for lic in p.licenses}
    samples |= {"GPL-2.0+", "LGPL-2.1+", "gpl-2.0 with classpath-exception-2.0", "(MIT OR Apache-2.0) AND Zlib",
                "MIT OR", "WITH MIT", "Apache-2.0 WITH", "((MIT)", "BSD-3-clause"}
    assert len(samples) > 30
    for text in sorted(samples):
        try:
            info = licensing.validate(text)
            want = None if info.errors else str(info.normalized_expression)
        except (ExpressionError, AttributeError):
            want = None
        assert spdx_expression(text) == want, text


@pytest.mark.parametrize(
    "doc",
    [
        {},
        [],
        {"a": [], "b": {}, "c": [[], [{}]], "d": None, "e": True, "f": False, "g": 0, "h": -12345678901234567890},
        {"s": "naïve \u2028 \x00 \x1f \" \\ / 😀", "t": ("x", "y")},
        {"nested": [{"k": [1, 2, {"deep": ["v"]}]}]},
        {"float": 1.5, "nan": float("nan"), "inf": float("-inf")},  # floats: json.dumps's own spelling
        {1: "int key", "x": "y"},  # a non-string key: json.dumps converts it
    ],
)
def test_dumps_writes_what_json_dumps_indent_2_writes(doc: object) -> None:
    from giropops.sbom.formats import dumps

    assert dumps(doc) == (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def test_dumps_refuses_a_lone_surrogate_as_before() -> None:
    from giropops.sbom.formats import dumps

    with pytest.raises(UnicodeEncodeError):
        dumps({"s": "\ud800"})
