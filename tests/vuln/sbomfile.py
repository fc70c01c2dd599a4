"""Write small SBOMs (giropops JSON, via the SBOM side's own encoder) for ``sbom://FILE``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from giropops.sbom.formats import encode
from giropops.sbom.model import SBOM, Distro, Package, Subject

DEB_BASE = [  # real bookworm binary packages, their sources and versions (some deliberately old)
    ("libssl3", "3.0.11-1~deb12u2", "openssl"),
    ("openssl", "3.0.11-1~deb12u2", "openssl"),
    ("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
    ("libc6", "2.36-9+deb12u4", "glibc"),
    ("libexpat1", "2.5.0-1", "expat"),
    ("tar", "1.34+dfsg-1.2", "tar"),
    ("libsqlite3-0", "3.40.1-2", "sqlite3"),
    ("libpython3.11-minimal", "3.11.2-6", "python3.11"),
]


def write(path: Path, name: str, distro: tuple[str, str] | None, debs: Sequence[tuple[str, str, str]],
          pythons: Sequence[tuple[str, str]] = (), apks: Sequence[tuple[str, str, str]] = (),
          digest: str = "sha256:" + "a" * 64, size: int = 50_000_000, diff_ids: Sequence[str] = (),
          annotations: dict[str, str] | None = None) -> str:
    pkgs = [Package(n, v, "deb", purl=f"pkg:deb/debian/{n}@{v}?arch=amd64&distro=debian-12", source_name=src)
            for n, v, src in debs]
    pkgs += [Package(n, v, "python", purl=f"pkg:pypi/{n.lower()}@{v}") for n, v in pythons]
    pkgs += [Package(n, v, "apk", purl=f"pkg:apk/alpine/{n}@{v}?arch=x86_64", source_name=o) for n, v, o in apks]
    sbom = SBOM(
        Subject(name, digest, "linux/amd64", size, tuple(diff_ids), dict(annotations or {})),
        Distro(distro[0], distro[1]) if distro else None,
        tuple(pkgs),
    )
    path.write_bytes(encode(sbom, "json"))
    return f"sbom://{path}"
