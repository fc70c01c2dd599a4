"""Deeply nested JSON and YAML in every kind of input: one error line, a non-zero exit, no traceback.

``json.loads`` and ``yaml.safe_load`` recurse once per level, so 100,000 brackets used to end in a
``RecursionError`` traceback; everything now goes through ``giropops.jsonio``.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from giropops import jsonio
from giropops.errors import ManifestError
from tests.sign.test_image_layout import make_layout
from tests.support.faultproxy import Fault, FaultProxy, manifest_get
from tests.support.services import Registry
from tests.vuln.sbomfile import write as write_sbom

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000


def giropops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "giropops", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode not in (0, 2), (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("giropops: error:"), lines
    assert len(lines[0]) < 1000
    return lines[0]


def tar_with(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def test_archive_manifest_100k_deep(tmp_path: Path) -> None:
    archive = tar_with(tmp_path / "deep.tar", {"manifest.json": DEEP})
    line = one_error_line(giropops("inspect", f"archive://{archive}"))
    assert "manifest.json" in line and "nested too deeply" in line


def test_layout_index_100k_deep(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    make_layout(root, "app:1")
    (root / "index.json").write_bytes(DEEP_OBJECT)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    line = one_error_line(giropops("inspect", f"oci-dir://{root}:app:1"))
    assert "index.json" in line and "nested too deeply" in line
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_layout_manifest_blob_100k_deep(tmp_path: Path) -> None:
    """A nested index/manifest blob the index points to (the next link of an index chain)."""
    root = tmp_path / "layout"
    make_layout(root, "app:1")
    digest = hashlib.sha256(DEEP_OBJECT).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(DEEP_OBJECT)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": f"sha256:{digest}",
         "size": len(DEEP_OBJECT), "annotations": {"org.opencontainers.image.ref.name": "app:1"}}]}))
    line = one_error_line(giropops("inspect", f"oci-dir://{root}:app:1"))
    assert "nested too deeply" in line or "larger than" in line or "more than" in line


def test_vex_document_100k_deep(tmp_path: Path) -> None:
    db = tmp_path / "vuln.sqlite3"
    rec = tmp_path / "r.jsonl"
    rec.write_text(json.dumps({"id": "A-1", "modified": "2025-01-01T00:00:00Z", "affected": [
        {"package": {"ecosystem": "PyPI", "name": "somepkg"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}) + "\n")
    assert giropops("db", "import", "--db", str(db), str(rec)).returncode == 0
    vex = tmp_path / "vex.json"
    vex.write_bytes(DEEP_OBJECT)
    spec = write_sbom(tmp_path / "app.json", "app", None, [], pythons=[("somepkg", "1.0")])
    line = one_error_line(giropops("cves", "--db", str(db), "--vex", str(vex), spec))
    assert "VEX document" in line and "nested too deeply" in line


def test_sbom_file_100k_deep(tmp_path: Path) -> None:
    sbom = tmp_path / "deep.cdx.json"
    sbom.write_bytes(DEEP)
    line = one_error_line(giropops("sbom", f"sbom://{sbom}"))
    assert "nested too deeply" in line


def test_policy_yaml_50k_deep(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("[" * 50_000 + "]" * 50_000)
    spec = write_sbom(tmp_path / "app.json", "app", None, [])
    line = one_error_line(giropops("policy", "--policy", str(policy), spec))
    assert "policy.yaml" in line and "nested too deeply" in line


def test_osv_record_100k_deep_is_skipped_with_a_reason(tmp_path: Path) -> None:
    src = tmp_path / "deep.jsonl"
    src.write_bytes(DEEP + b"\n")
    db = tmp_path / "vuln.sqlite3"
    proc = giropops("db", "import", "--db", str(db), str(src))
    # the only record is refused with its reason; with no valid record the import fails and writes nothing
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "nested too deeply" in proc.stderr
    assert not db.exists()


@pytest.mark.parametrize("depth", [150, 201])
def test_depth_limit_is_exact_and_shallow_documents_parse(depth: int) -> None:
    doc = b"[" * depth + b"]" * depth
    if depth <= jsonio.MAX_DEPTH:
        assert jsonio.loads(doc, "doc") == json.loads(doc)
    else:
        with pytest.raises(ManifestError, match="nested too deeply"):
            jsonio.loads(doc, "doc", error=ManifestError)


def test_yaml_aliases_are_walked_once() -> None:
    # a "billion laughs" of aliases: safe_load shares the nodes; the depth walk must not expand them
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    doc = jsonio.load_yaml("\n".join(lines), "laughs")
    assert isinstance(doc, dict) and len(doc) == 12


def test_layout_index_chain_3000_long(tmp_path: Path) -> None:
    """An index whose only entry is an index whose only entry is an index... 3000 times."""
    root = tmp_path / "layout"
    make_layout(root, "app:1")
    child = json.loads((root / "index.json").read_text())["manifests"][0]
    child.pop("annotations")
    for _ in range(3000):
        doc = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                          "manifests": [child]}).encode()
        digest = hashlib.sha256(doc).hexdigest()
        (root / "blobs" / "sha256" / digest).write_bytes(doc)
        child = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": f"sha256:{digest}",
                 "size": len(doc), "platform": {"os": "linux", "architecture": "amd64"}}
    child["annotations"] = {"org.opencontainers.image.ref.name": "app:1"}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [child]}))
    for args in (("sbom", "--platform", "linux/amd64", f"oci-dir://{root}:app:1"),
                 ("copy", "--all-platforms", f"oci-dir://{root}:app:1", f"oci-dir://{tmp_path / 'out'}:x")):
        line = one_error_line(giropops(*args))
        assert "nested more than" in line, args
    assert not (tmp_path / "out").exists()


def test_registry_manifest_100k_deep(registry: Registry, tmp_path: Path) -> None:
    """A registry (a proxy in front of the real one) answers a manifest request with 100,000 nested objects."""
    answer = (200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, DEEP_OBJECT)
    with FaultProxy(registry.port, [Fault(manifest_get, times=None, respond=answer)]) as proxy:
        line = one_error_line(giropops("inspect", f"registry://{proxy.host}/deep/app:latest"))
    assert "nested too deeply" in line
