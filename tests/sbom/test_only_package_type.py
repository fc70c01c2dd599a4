"""``giropops sbom --only-package-type``: filters by package type (aliases too); a bad type is one clear line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.sbom.conftest import BuiltImage
from tests.sbom.test_cli import giropops
from tests.sbom.test_golang import go_image  # noqa: F401 - fixture


def test_only_package_type_filters(go_image: BuiltImage, cache_dir: Path) -> None:  # noqa: F811
    r = giropops("sbom", f"archive://{go_image.tar}", "-f", "json")
    assert r.returncode == 0, r.stderr
    everything = {p["type"] for p in json.loads(r.stdout)["packages"]}
    assert everything == {"golang"}
    r = giropops("sbom", f"archive://{go_image.tar}", "-f", "json", "--only-package-type", "npm,deb")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["packages"] == []
    r = giropops("sbom", f"archive://{go_image.tar}", "-f", "json", "--only-package-type", "go")
    kept = json.loads(r.stdout)["packages"]
    assert kept and {p["type"] for p in kept} == {"golang"}


def test_unknown_package_type_is_a_clear_error(go_image: BuiltImage, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "out.json"
    r = giropops("sbom", f"archive://{go_image.tar}", "--only-package-type", "deb,cobol", "-o", str(out))
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [
        "giropops: error: --only-package-type: unknown package type 'cobol' "
        "(one of: deb, apk, rpm, python, npm, golang, maven, gem, cargo, nuget, composer)"
    ]
    assert not out.exists()
