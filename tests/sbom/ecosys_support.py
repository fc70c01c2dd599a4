"""Helpers for the issue-13 ecosystem tests: real artifacts fetched through npm and apt, Trivy's view."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from collections.abc import Sequence
from pathlib import Path

from packageurl import PackageURL

from tests.support.sbom_images import apt_download, trivy_binary, unpack_deb

__all__ = ["apt_download", "unpack_deb"]


def npm_install(dest: Path, *specs: str) -> Path:
    """A real ``node_modules`` laid out by npm itself (no install scripts run)."""
    npm = shutil.which("npm")
    assert npm, "npm is needed (Debian package npm)"
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", str(dest), *specs],
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "npm_config_cache": str(dest.parent / "npm-cache")},
    )
    return dest / "node_modules"


def name_of_purl(purl: str) -> tuple[str, str, str]:
    """(purl type, ecosystem name, version) written out from the purl spec, independently of the code."""
    p = PackageURL.from_string(purl)
    if p.type == "maven":
        name = f"{p.namespace}:{p.name}"
    elif p.type in ("rpm", "deb", "apk"):
        name = p.name  # the namespace is the vendor/distribution, not part of the package name
    elif p.namespace:
        name = f"{p.namespace}/{p.name}"
    else:
        name = p.name
    return p.type, name, p.version or ""


def empty_java_db(cache: Path) -> None:
    """Trivy's Java index DB with its tables only, so that it reads pom.properties offline."""
    import sqlite3

    db = cache / "java-db"
    db.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db / "trivy-java.db")
    con.executescript(
        "CREATE TABLE IF NOT EXISTS artifacts(id INTEGER PRIMARY KEY, group_id TEXT, artifact_id TEXT);"
        "CREATE TABLE IF NOT EXISTS indices(artifact_id INTEGER, version TEXT, sha1 BLOB, archive_type TEXT);"
    )
    con.commit()
    con.close()
    meta = {"Version": 1, "NextUpdate": "2099-01-01T00:00:00Z", "UpdatedAt": "2025-01-01T00:00:00Z"}
    (db / "metadata.json").write_text(json.dumps(meta))


def trivy_inventory(
    tar: Path, cache: Path, types: set[str], java_db: bool = False, versions_with_epoch: bool = False
) -> set[tuple[str, str, str]]:
    """Trivy's (purl type, name, version) of an image tarball, offline, for the given purl types."""
    env = {**os.environ, "TRIVY_CACHE_DIR": str(cache), "TRIVY_NO_PROGRESS": "true"}
    out = cache / "trivy.json"
    cache.mkdir(parents=True, exist_ok=True)
    target = ["fs", str(tar)] if tar.is_dir() else ["image", "--input", str(tar)]
    args = [trivy_binary(), *target, "--format", "cyclonedx", "-o", str(out), "--quiet"]
    if java_db:
        empty_java_db(cache)
        args += ["--skip-db-update", "--skip-java-db-update", "--offline-scan"]
    subprocess.run(args, check=True, env=env, capture_output=True, timeout=600)
    doc = json.loads(out.read_text())
    found: set[tuple[str, str, str]] = set()
    stack = list(doc.get("components") or [])
    while stack:
        c = stack.pop()
        stack.extend(c.get("components") or [])
        if c.get("purl"):
            t = name_of_purl(c["purl"])
            if versions_with_epoch:  # rpm: the purl's epoch qualifier, written [epoch:]version-release
                epoch = PackageURL.from_string(c["purl"]).qualifiers.get("epoch")
                t = (t[0], t[1], f"{epoch}:{t[2]}" if epoch and epoch != "0" else t[2])
            if t[0] in types:
                found.add(t)
    return found


def elf64(sections: list[tuple[str, bytes]], phdrs: Sequence[tuple[int, int, int]] = ()) -> bytes:
    """A minimal little-endian ELF64 with the given sections (name table last) and PT_LOAD headers."""
    names = b"\0" + b"".join(n.encode() + b"\0" for n, _ in sections) + b".shstrtab\0"
    body = b""
    offsets = []
    base = 64 + 56 * len(phdrs)
    for _, data in sections:
        offsets.append(base + len(body))
        body += data
    str_off = base + len(body)
    body += names
    shoff = base + len(body)
    shnum = len(sections) + 2
    header = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    header += struct.pack(
        "<HHIQQQIHHHHHH", 2, 62, 1, 0, 64 if phdrs else 0, shoff, 0, 64, 56, len(phdrs), 64, shnum, shnum - 1
    )
    ph = b"".join(struct.pack("<IIQQQQQQ", 1, 5, off, va, va, size, size, 0x1000) for off, va, size in phdrs)
    sh = b"\0" * 64
    pos = 1
    for (name, data), off in zip(sections, offsets, strict=True):
        sh += struct.pack("<IIQQQQIIQQ", pos, 1, 2, 0x400000 + off, off, len(data), 0, 0, 16, 0)
        pos += len(name) + 1
    sh += struct.pack("<IIQQQQIIQQ", pos, 3, 0, 0, str_off, len(names), 0, 0, 1, 0)
    return header + ph + body + sh
