"""Build small Debian images from real bookworm packages (``apt-get download``, ``dpkg-deb -x``).

The packages are recorded distroless-style, one control file per package in
``/var/lib/dpkg/status.d/``.  ``older`` rewrites the recorded version of some
packages: the mirror serves only current versions, and a status entry is just
text, so the fixed-version paths can be exercised with real files.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.services import require_binary


@dataclass(frozen=True)
class DebRecord:
    name: str
    version: str
    source: str
    source_version: str
    arch: str


def download(names: list[str], dest: Path) -> list[Path]:
    apt_get = require_binary("apt-get")
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [apt_get, "download", "-q", *names]
    res = subprocess.run(cmd, cwd=dest, capture_output=True, text=True)
    if res.returncode != 0:  # a fresh machine may not have package lists yet
        subprocess.run([apt_get, "update", "-qq"], check=True, capture_output=True)
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    debs = sorted(dest.glob("*.deb"))
    assert len(debs) == len(names), debs
    return debs


def _fields(deb: Path) -> dict[str, str]:
    out = subprocess.run([require_binary("dpkg-deb"), "-f", str(deb)], capture_output=True, text=True,
                         check=True).stdout
    fields: dict[str, str] = {}
    key = ""
    for line in out.splitlines():
        if line[:1].isspace() and key:
            fields[key] += "\n" + line
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def build_rootfs(debs: list[Path], rootfs: Path, older: dict[str, str] | None = None) -> list[DebRecord]:
    """Unpack ``debs`` into ``rootfs`` and write their status.d entries; returns what was recorded."""
    older = older or {}
    status_d = rootfs / "var" / "lib" / "dpkg" / "status.d"
    status_d.mkdir(parents=True, exist_ok=True)
    records = []
    for deb in debs:
        subprocess.run([require_binary("dpkg-deb"), "-x", str(deb), str(rootfs)], check=True)
        f = _fields(deb)
        name, version = f["Package"], f["Version"]
        source, _, src_ver = f.get("Source", name).partition(" ")
        source_version = src_ver.strip("()") or version
        if name in older:
            version = source_version = older[name]
            f["Version"] = version
            f["Source"] = f"{source} ({version})" if source != name else source
        f["Status"] = "install ok installed"
        (status_d / name).write_text("".join(f"{k}: {v}\n" for k, v in f.items()))
        records.append(DebRecord(name, version, source, source_version, f["Architecture"]))
    return records
