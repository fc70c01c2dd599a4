"""``giropops sbom`` end to end: formats, atomic output, clear errors, hostile layers."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

from debian.debian_support import Version as DebVersion

from tests.sbom.conftest import BuiltImage
from tests.support import sbom_images as im
from tests.support.sbom_images import Entry, layer_from_entries, whiteout, write_docker_archive


def giropops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "giropops", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},

    )


def test_list_format_shows_every_package(distroless_image: BuiltImage, debs: dict[str, Path],
                                         cache_dir: Path) -> None:
    r = giropops("sbom", f"archive://{distroless_image.tar}")
    assert r.returncode == 0, r.stderr
    assert "distro: Debian GNU/Linux 12 (bookworm)" in r.stdout
    assert "10 packages, 0 unknown files" in r.stdout
    # the version the mirror served when the test fetched the .deb, read from the .deb with dpkg-deb
    rows = {line.split()[0]: line.split()[1:3] for line in r.stdout.splitlines() if len(line.split()) >= 3}
    for name, deb in debs.items():
        version, kind = rows[name]
        assert kind == "deb", name
        assert DebVersion(version) == DebVersion(im.deb_field(deb, "Version")), name


def test_output_file_is_written_atomically_with_normal_permissions(
    apk_image: BuiltImage, tmp_path: Path, cache_dir: Path
) -> None:
    out = tmp_path / "out" / "sbom.cdx.json"
    out.parent.mkdir()
    r = giropops("sbom", f"archive://{apk_image.tar}", "--format", "cyclonedx-json", "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    doc = json.loads(out.read_text())
    assert {c["name"] for c in doc["components"]} >= {"musl", "busybox", "alpine"}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in out.parent.iterdir()) == ["sbom.cdx.json"]


def test_source_date_epoch_sets_the_timestamp(apk_image: BuiltImage, cache_dir: Path) -> None:
    r = giropops("sbom", f"archive://{apk_image.tar}", "-f", "cyclonedx-json", env={"SOURCE_DATE_EPOCH": "86400"})
    assert json.loads(r.stdout)["metadata"]["timestamp"] == "1970-01-02T00:00:00Z"
    r = giropops("sbom", f"archive://{apk_image.tar}", "-f", "cyclonedx-json", env={"SOURCE_DATE_EPOCH": "soon"})
    assert r.returncode == 64 and "SOURCE_DATE_EPOCH" in r.stderr


def test_missing_image_is_a_clear_error_and_leaves_nothing(tmp_path: Path, cache_dir: Path) -> None:
    out = tmp_path / "sbom.json"
    r = giropops("sbom", f"archive://{tmp_path / 'nope.tar'}", "-f", "json", "-o", str(out))
    assert r.returncode != 0
    assert r.stderr.startswith("giropops: error:") and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == [] or not out.exists()


def test_unreadable_sbom_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"bomFormat": "CycloneDX", "components": 7}')
    out = tmp_path / "out.json"
    r = giropops("sbom", f"sbom://{bad}", "-f", "spdx-json", "-o", str(out))
    assert r.returncode == 1 and r.stderr.startswith("giropops: error:") and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_output_into_a_missing_directory_is_a_usage_error(apk_image: BuiltImage, tmp_path: Path) -> None:
    r = giropops("sbom", f"archive://{apk_image.tar}", "-o", str(tmp_path / "no" / "such" / "dir.json"))
    assert r.returncode == 64 and "does not exist" in r.stderr


def test_sbom_read_back_and_converted(venv_image: BuiltImage, tmp_path: Path, cache_dir: Path) -> None:
    spdx = tmp_path / "a.spdx.json"
    assert giropops("sbom", f"archive://{venv_image.tar}", "-f", "spdx-json", "-o", str(spdx)).returncode == 0
    direct = giropops("sbom", f"archive://{venv_image.tar}", "-f", "list").stdout
    via = giropops("sbom", f"sbom://{spdx}", "-f", "list").stdout
    assert direct.splitlines()[1:] == via.splitlines()[1:]  # the first line names the source


def _hostile_layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:

        def add(ti: tarfile.TarInfo, data: bytes = b"") -> None:
            ti.size = len(data) if ti.isreg() else 0
            tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)

        add(tarfile.TarInfo("../../../../tmp/giropops-escape"), b"x")
        add(tarfile.TarInfo("/etc/os-release"), b"ID=debian\nVERSION_ID=12\n")
        dev = tarfile.TarInfo("var/lib/dpkg/status")
        dev.type = tarfile.CHRTYPE  # a device where the status file should be
        add(dev)
        big = tarfile.TarInfo("var/lib/dpkg/status.d/huge")
        big.pax_headers = {"comment": "x" * (2 << 20)}
        add(big, b"Package: huge\nVersion: 1\n")
        link = tarfile.TarInfo("var/lib/dpkg/status.d/escape")
        link.type, link.linkname = tarfile.SYMTYPE, "/../../../../etc/shadow"
        add(link)
        hard = tarfile.TarInfo("var/lib/dpkg/status.d/hard")
        hard.type, hard.linkname = tarfile.LNKTYPE, "../../etc/passwd"
        add(hard)
        add(tarfile.TarInfo("var/lib/dpkg/status.d/garbage"), b"\x00\x01\x02 not a control file")
        add(tarfile.TarInfo("lib/apk/db/installed"), b"\xff" * 64)
        add(tarfile.TarInfo(".wh.."), b"")
    return buf.getvalue()


def test_hostile_layers_do_not_break_cataloging(tmp_path: Path, cache_dir: Path) -> None:
    base = layer_from_entries([Entry("var/lib/dpkg/status.d/keep", b"Package: keep\nVersion: 2\nArchitecture: all\n")])
    top = layer_from_entries([whiteout("../../etc"), Entry("a", symlink="../../..")])
    tar = write_docker_archive(tmp_path / "hostile.tar", [base, _hostile_layer(), top])
    r = giropops("sbom", f"archive://{tar}", "-f", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert {(p["name"], p["version"]) for p in doc["packages"]} == {("keep", "2"), ("huge", "1")}
    assert doc["distro"]["id"] == "debian"
    unknown_paths = {u["location"]["path"] for u in doc["unknowns"]}
    assert {"/var/lib/dpkg/status.d/garbage", "/lib/apk/db/installed"} <= unknown_paths
    assert not Path("/tmp/giropops-escape").exists()


def test_corrupt_layer_is_a_clear_error(tmp_path: Path, cache_dir: Path) -> None:
    layer = layer_from_entries([Entry("etc/os-release", b"ID=debian\n")])
    tar = write_docker_archive(tmp_path / "img.tar", [layer])
    data = bytearray(tar.read_bytes())
    at = data.find(b"ID=debian")
    data[at] = ord("X")  # the layer no longer matches its digest
    tar.write_bytes(bytes(data))
    r = giropops("sbom", f"archive://{tar}")
    assert r.returncode == 1 and r.stderr.startswith("giropops: error:") and "Traceback" not in r.stderr
    assert "digest" in r.stderr
