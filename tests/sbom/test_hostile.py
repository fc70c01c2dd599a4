"""Hostile images against the SBOM layer cache: a layer claiming another image's diff_id poisons nothing.

The per-layer cache is keyed by diff_id.  An attacker image whose config claims
the victim's diff_id for a layer of its own must be refused when its content is
read, and nothing may be cached under the claimed diff_id: scanning the victim
afterwards still finds the victim's packages and their vulnerabilities.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support.sbom_images import Entry, layer_from_entries, write_docker_archive

OS_RELEASE = b'ID=alpine\nVERSION_ID=3.18.4\nNAME="Alpine Linux"\n'
ZLIB = b"C:Q1abc=\nP:zlib\nV:1.2.13-r0\nA:x86_64\nS:1\nI:1\nT:a compression library\nL:Zlib\no:zlib\n\n"
ADVISORY = {
    "schema_version": "1.6.0",
    "id": "ALPINE-TEST-1",
    "modified": "2024-01-01T00:00:00Z",
    "published": "2024-01-01T00:00:00Z",
    "aliases": ["CVE-2099-0001"],
    "affected": [
        {
            "package": {"ecosystem": "Alpine:v3.18", "name": "zlib"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2.13-r1"}]}],
        }
    ],
}


def giropops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "giropops", *args], capture_output=True, text=True, timeout=180, env=env
    )


def claim_diff_ids(src: Path, dst: Path, diff_ids: list[str]) -> Path:
    """A copy of the docker archive ``src`` whose config claims ``diff_ids`` (config renamed to its new digest)."""
    with tarfile.open(src) as t:
        members = [(m, t.extractfile(m).read() if m.isreg() else b"") for m in t.getmembers()]  # type: ignore[union-attr]
    data = dict((m.name, d) for m, d in members)
    manifest = json.loads(data["manifest.json"])
    config = json.loads(data[manifest[0]["Config"]])
    config["rootfs"]["diff_ids"] = diff_ids
    raw_config = json.dumps(config, sort_keys=True).encode()
    config_name = f"blobs/sha256/{hashlib.sha256(raw_config).hexdigest()}"
    old_config = manifest[0]["Config"]
    manifest[0]["Config"] = config_name
    with tarfile.open(dst, "w") as out:
        for m, d in members:
            m = copy.copy(m)
            if m.name == old_config:
                m.name, d = config_name, raw_config
            elif m.name == "manifest.json":
                d = json.dumps(manifest).encode()
            if m.isreg():
                m.size = len(d)
            out.addfile(m, io.BytesIO(d) if m.isreg() else None)
    return dst


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("poison")
    victim_layer = layer_from_entries([Entry("etc/os-release", OS_RELEASE), Entry("lib/apk/db/installed", ZLIB)])
    victim = write_docker_archive(d / "victim.tar", [victim_layer], "victim:1")
    # The attacker's layer: the same distro, no package at all.
    attacker_layer = layer_from_entries([Entry("etc/os-release", OS_RELEASE), Entry("lib/apk/db/installed", b"")])
    honest = write_docker_archive(d / "honest.tar", [attacker_layer], "attacker:1")
    victim_diff_id = f"sha256:{hashlib.sha256(victim_layer).hexdigest()}"
    attacker = claim_diff_ids(honest, d / "attacker.tar", [victim_diff_id])
    db = d / "db.sqlite3"
    (d / "advisories.jsonl").write_text(json.dumps(ADVISORY) + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "giropops", "db", "import", "--db", str(db), str(d / "advisories.jsonl")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return {"victim": victim, "attacker": attacker, "db": db,
            "attacker_layer_digest": Path(f"sha256:{hashlib.sha256(attacker_layer).hexdigest()}"),
            "victim_diff_id": Path(victim_diff_id)}


def cache_files(cache: Path) -> list[Path]:
    """The per-layer SBOM records (the push that sets up the registry case fills other caches beside them)."""
    layers = cache / "sbom-layers"
    return sorted(p for p in layers.rglob("*") if p.is_file() and p.name != ".ledger") if layers.exists() else []


@pytest.mark.parametrize("transport", ["archive", "oci-dir", "registry"])
def test_layer_claiming_another_diff_id_is_refused_and_poisons_nothing(
    images: dict[str, Path], tmp_path: Path, transport: str, request: pytest.FixtureRequest
) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(cache)}
    env.pop("GIROPOPS_DB", None)
    attacker = f"archive://{images['attacker']}"
    if transport == "oci-dir":
        proc = giropops(env, "copy", "-q", attacker, f"oci-dir://{tmp_path}/lay:evil")
        assert proc.returncode == 0, proc.stderr
        attacker = f"oci-dir://{tmp_path}/lay:evil"
    elif transport == "registry":
        registry = request.getfixturevalue("registry")
        ref = f"{registry.host}/hostile/poison-{tmp_path.name}:1"
        proc = giropops(env, "copy", "-q", attacker, f"registry://{ref}")
        assert proc.returncode == 0, proc.stderr
        attacker = f"registry://{ref}"

    proc = giropops(env, "sbom", attacker)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    victim_diff_id = str(images["victim_diff_id"])
    assert lines[0].startswith("giropops: error: ")
    assert victim_diff_id in lines[0]  # the claimed diff_id...
    assert "does not match" in lines[0] or "claims diff_id" in lines[0]
    assert str(images["attacker_layer_digest"]) in lines[0]  # ...and what the content really hashes to
    assert proc.stdout == ""
    # Nothing was cached under the claimed diff_id (nor anything else).
    assert cache_files(cache) == []

    victim = f"archive://{images['victim']}"
    proc = giropops(env, "sbom", "--format", "json", victim)
    assert proc.returncode == 0, proc.stderr
    names = {(p["name"], p["version"]) for p in json.loads(proc.stdout)["packages"]}
    assert names == {("zlib", "1.2.13-r0")}
    assert len(cache_files(cache)) == 1  # the victim's own, honest, record

    proc = giropops(env, "cves", "-e", "--db", str(images["db"]), victim)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "CVE-2099-0001" in proc.stdout
