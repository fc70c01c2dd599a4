"""A small fleet for the tests: images on two shared bases, pushed to a real registry, and advisories.

Every image is two layers: one of two bases (a Debian 12 "zlib + openssl" base, and a Debian 12
"expat + requests" Python base) and an application layer of its own, holding a Flask
distribution whose version comes from ``FLASK_VERSIONS``.  Records are hand-written
dpkg ``status.d`` entries and ``.dist-info/METADATA`` files: what the catalogers read,
a few hundred bytes per layer.  Expected answers are computed here from these parameters,
never by the code under test.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from giropops.oci.reference import Reference
from giropops.oci.registry import write_registry
from tests.support.images import MemImage, MemLayer

OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
SITE = "usr/local/lib/python3.11/site-packages"
FLASK_VERSIONS = ["1.1.4", "2.0.3", "2.2.5", "2.3.3", "3.0.0"]


def _status(name: str, version: str, source: str) -> bytes:
    return (f"Package: {name}\nStatus: install ok installed\nVersion: {version}\nSource: {source}\n"
            f"Architecture: amd64\nMaintainer: Test <test@example.org>\nDescription: {name}\n").encode()


def _dist(name: str, version: str) -> dict[str, bytes]:
    return {f"{SITE}/{name}-{version}.dist-info/METADATA":
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()}


BASE_C = MemLayer({
    "etc/os-release": OS_RELEASE,
    "var/lib/dpkg/status.d/zlib1g": _status("zlib1g", "1:1.2.13.dfsg-1", "zlib"),
    "var/lib/dpkg/status.d/libssl3": _status("libssl3", "3.0.11-1~deb12u2", "openssl"),
})
BASE_PY = MemLayer({
    "etc/os-release": OS_RELEASE,
    "var/lib/dpkg/status.d/libexpat1": _status("libexpat1", "2.5.0-1", "expat"),
    **_dist("requests", "2.25.0"),
})
BASES = {"c": BASE_C, "py": BASE_PY}


@dataclass(frozen=True)
class FleetImage:
    repository: str  # path in the registry
    tags: tuple[str, ...]
    base: str  # "c" | "py"
    flask: str
    image: MemImage

    @property
    def digest(self) -> str:
        return str(self.image.digest)

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(str(layer.diff_id) for layer in self.image.layers())


def build_fleet(count: int, prefix: str = "fleet") -> list[FleetImage]:
    """``count`` images in 4 repositories; image 0 also carries a second tag (one digest, two refs)."""
    out = []
    for i in range(count):
        base = "c" if i % 2 == 0 else "py"
        flask = FLASK_VERSIONS[i % len(FLASK_VERSIONS)]
        app = MemLayer({f"app/image-{i}.txt": f"image {i}\n".encode(), **_dist("flask", flask)})
        labels = {"org.opencontainers.image.base.name": f"example.org/base/{base}:1"}
        image = MemImage([BASES[base], app], labels=labels)
        tags = (f"v{i}", "stable") if i == 0 else (f"v{i}",)
        out.append(FleetImage(f"{prefix}/app-{i % 4}", tags, base, flask, image))
    return out


def push_fleet(host: str, images: list[FleetImage]) -> None:
    for fi in images:
        for tag in fi.tags:
            write_registry(fi.image, Reference.parse(f"{host}/{fi.repository}:{tag}"))


def _record(osv_id: str, eco: str, name: str, fixed: str | None, aliases: list[str] | None = None,
            severity: str | None = None, introduced: str = "0") -> dict[str, Any]:
    events: list[dict[str, str]] = [{"introduced": introduced}]
    if fixed:
        events.append({"fixed": fixed})
    rec: dict[str, Any] = {
        "id": osv_id, "modified": "2026-01-01T00:00:00Z", "summary": f"{name} problem",
        "affected": [{"package": {"ecosystem": eco, "name": name},
                      "ranges": [{"type": "ECOSYSTEM", "events": events}]}],
    }
    if aliases:
        rec["aliases"] = aliases
    if severity:
        rec["database_specific"] = {"severity": severity}
    return rec


#: In the first database: zlib hits every "c" image; a Flask GHSA (alias CVE-2099-1002) hits Flask < 2.3.0.
BASE_ADVISORIES = [
    _record("CVE-2099-1001", "Debian:12", "zlib", "1:1.2.13.dfsg-2"),
    _record("GHSA-fl4s-k000-0001", "PyPI", "flask", "2.3.0", ["CVE-2099-1002"], "HIGH"),
    _record("CVE-2099-1009", "Debian:12", "curl", "7.88.1-10"),  # no image has curl
]
#: Imported later, before ``rematch``: requests (every "py" image), Flask 3.0.0 only, openssl (every "c").
EXTRA_ADVISORIES = [
    _record("GHSA-r3qu-e5t5-0003", "PyPI", "requests", "2.31.0", ["CVE-2099-1003"], "MODERATE"),
    _record("GHSA-fl4s-k000-0004", "PyPI", "flask", "3.0.1", ["CVE-2099-1004"], "CRITICAL", introduced="3.0.0"),
    _record("CVE-2099-1005", "Debian:12", "openssl", None),
]


def write_advisories(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in records))
    return path
