"""``scan --sbom-from-attestation --key PUB``: the SBOM from the image's verified cosign attestation, no layer read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from giropops.cli.main import main
from giropops.sign.keys import write_key_pair
from tests.fleet.fleetdata import build_fleet, push_fleet
from tests.support.services import Registry


def test_sbom_from_verified_attestation(registry: Registry, fleet_db: Path, tmp_path: Path, cache_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    images = build_fleet(3, prefix="attested")  # three repositories: attested/app-0, -1, -2
    push_fleet(registry.host, images)
    monkeypatch.setenv("COSIGN_PASSWORD", "fleet")
    keys = write_key_pair(tmp_path / "att", b"fleet")[0]
    other = write_key_pair(tmp_path / "other", b"fleet")[0]
    refs = [f"{registry.host}/{fi.repository}:{fi.tags[0]}" for fi in images]
    for ref, fmt, key in ((refs[0], "spdx-json", keys.private), (refs[1], "cyclonedx-json", keys.private),
                          (refs[2], "spdx-json", other.private)):
        doc = tmp_path / f"{ref.rsplit('/', 1)[1]}.json"
        assert main(["sbom", f"registry://{ref}", "--format", fmt, "--output", str(doc)]) == 0
        kind = "spdxjson" if fmt == "spdx-json" else "cyclonedx"
        assert main(["attest", "--key", str(key), "--type", kind, "--predicate", str(doc), ref]) == 0
    capsys.readouterr()

    by_layers = tmp_path / "layers.sqlite3"
    assert main(["scan", *refs[:2], "--index", str(by_layers), "--db", str(fleet_db), "--format", "jsonl",
                 "--rescan"]) == 0
    from_layers = {r["digest"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}

    fresh = tmp_path / "fresh-cache"
    monkeypatch.setenv("GIROPOPS_CACHE_DIR", str(fresh))
    # whole repositories: the .att tags beside the images are not scanned as images
    targets = [f"{registry.host}/{fi.repository}" for fi in images]
    code = main(["scan", *targets, "--sbom-from-attestation", "--key", str(keys.public), "--index",
                 str(tmp_path / "att.sqlite3"), "--db", str(fleet_db), "--format", "jsonl"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1  # the third image's attestation is signed by another key
    good = {r["digest"]: r for r in rows if r["status"] == "scanned"}
    bad = [r for r in rows if r["status"] == "error"]
    assert set(good) == {images[0].digest, images[1].digest}
    assert len(bad) == 1 and bad[0]["references"] == [refs[2]]
    assert not fresh.exists() or not any(fresh.rglob("sha256"))  # no layer was catalogued
    for digest, row in good.items():
        assert row["layers_read"] == 0 and row["packages"] == 3
        assert sorted((f["id"], f["package"], f["version"]) for f in row["findings"]) == sorted(
            (f["id"], f["package"], f["version"]) for f in from_layers[digest]["findings"])
