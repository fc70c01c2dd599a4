"""SPDX 2.3 and CycloneDX 1.6 for the issue-13 package types: valid documents, and decode(encode(x))
gives back every package (type, name, version, purl, licences, locations) of the real test images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from giropops.sbom import SBOM, sbom_for
from giropops.sbom.formats import decode, encode
from tests.sbom.conftest import BuiltImage
from tests.sbom.test_gem_nuget_composer import polyglot_image, ruby_root  # noqa: F401 - fixtures
from tests.sbom.test_golang import go_image  # noqa: F401 - fixture
from tests.sbom.test_java import java_image, java_root  # noqa: F401 - fixtures
from tests.sbom.test_npm import node_app, node_image  # noqa: F401 - fixtures
from tests.sbom.test_rpm import rpm_db, rpm_image  # noqa: F401 - fixtures

IMAGES = ["node_image", "go_image", "java_image", "polyglot_image", "rpm_image"]
TYPES = {"npm", "golang", "maven", "gem", "nuget", "composer", "rpm"}


@pytest.fixture(scope="module")
def sboms(request: pytest.FixtureRequest) -> dict[str, SBOM]:
    out = {}
    for name in IMAGES:
        image: BuiltImage = request.getfixturevalue(name)
        out[name] = sbom_for(f"archive://{image.tar}", use_cache=False)
    return out


def _essence(sbom: SBOM) -> set[tuple[object, ...]]:
    return {(p.type, p.name, p.version, p.purl, p.arch, p.licenses, p.locations) for p in sbom.packages}


def test_every_new_type_is_covered(sboms: dict[str, SBOM]) -> None:
    assert {p.type for s in sboms.values() for p in s.packages} >= TYPES


@pytest.mark.parametrize("fmt", ["json", "spdx-json", "cyclonedx-json"])
@pytest.mark.parametrize("name", IMAGES)
def test_round_trip(fmt: str, name: str, sboms: dict[str, SBOM]) -> None:
    original = sboms[name]
    back = decode(encode(original, fmt))
    assert original.packages and _essence(back) == _essence(original)


@pytest.mark.parametrize("name", IMAGES)
def test_documents_are_valid(name: str, sboms: dict[str, SBOM], tmp_path: Path) -> None:
    data = encode(sboms[name], "cyclonedx-json").decode()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(data) is None
    path = tmp_path / "sbom.spdx.json"
    path.write_bytes(encode(sboms[name], "spdx-json"))
    messages = validate_full_spdx_document(parse_file(str(path)), spdx_version="SPDX-2.3")
    assert messages == [], [m.validation_message for m in messages[:5]]


def test_foreign_documents_give_ecosystem_names(sboms: dict[str, SBOM]) -> None:
    """A CycloneDX document whose component names are only the purl's last part (as other tools write)."""
    doc = json.loads(encode(sboms["node_image"], "cyclonedx-json"))
    for c in doc["components"]:
        c["name"] = c["name"].rpartition("/")[2]
        c["properties"] = [p for p in c.get("properties", []) if not p["name"].startswith("giropops:")]
    back = decode(json.dumps(doc).encode())
    assert ("@babel/code-frame", "7.22.5") in {(p.name, p.version) for p in back.packages}
