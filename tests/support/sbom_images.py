"""Build real image tarballs for tests: layers from directories or from entry lists, docker-archive writer.

Written independently of ``giropops.oci.archive`` (the code under test reads
these tarballs, Trivy reads them too): the docker-archive written here is the
layout ``docker save`` produces since Docker 25
(``blobs/sha256/<hex>`` blobs named in ``manifest.json``), readable by Trivy,
skopeo and podman.  Layers are uncompressed tars, deterministic (sorted names,
mtime 0, root ownership).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """One tar entry of a hand-made layer: a file (``data``), a directory, a symlink or a hard link."""

    name: str
    data: bytes | None = None
    symlink: str | None = None
    hardlink: str | None = None
    directory: bool = False
    kind: bytes | None = None  # raw tar type flag for devices, fifos...
    mode: int = 0o644


def whiteout(path: str) -> Entry:
    parent, _, base = path.rstrip("/").rpartition("/")
    return Entry(f"{parent}/.wh.{base}" if parent else f".wh.{base}", data=b"")


def opaque(directory: str) -> Entry:
    return Entry(f"{directory.rstrip('/')}/.wh..wh..opq", data=b"")


def _info(name: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti


def layer_from_entries(entries: Iterable[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = _info(e.name)
            ti.mode = e.mode
            if e.directory:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif e.symlink is not None:
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, e.symlink, 0o777
                tf.addfile(ti)
            elif e.hardlink is not None:
                ti.type, ti.linkname = tarfile.LNKTYPE, e.hardlink
                tf.addfile(ti)
            elif e.kind is not None:
                ti.type = e.kind
                tf.addfile(ti)
            else:
                data = e.data or b""
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def layer_from_dir(root: Path, out: Path, prefix: str = "") -> Path:
    """Tar a directory (symlinks kept as links, never followed) into an uncompressed layer file."""
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root)
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.normpath(os.path.join(prefix, rel_dir, name))
                ti = tf.gettarinfo(full, arcname=rel)
                ti.mtime = 0
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = "root"
                if ti.isreg():
                    with open(full, "rb") as f:
                        tf.addfile(ti, f)
                else:
                    tf.addfile(ti)
    return out


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_docker_archive(
    out: Path,
    layers: Sequence[bytes | Path],
    tag: str = "giropops-test:latest",
    created: str = "2024-01-01T00:00:00Z",
) -> Path:
    """A docker-archive tarball of ``layers`` (bottom first), each an uncompressed tar (bytes or file)."""
    hexes: list[str] = []
    for layer in layers:
        hexes.append(hashlib.sha256(layer).hexdigest() if isinstance(layer, bytes) else _sha256_file(layer))
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{h}" for h in hexes]},
            "history": [{"created": created, "created_by": "giropops tests"} for _ in hexes],
        },
        sort_keys=True,
    ).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        [{"Config": f"blobs/sha256/{config_hex}", "RepoTags": [tag], "Layers": [f"blobs/sha256/{h}" for h in hexes]}]
    ).encode()
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tf:

        def add_bytes(name: str, data: bytes) -> None:
            ti = _info(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))

        for d in ("blobs", "blobs/sha256"):
            ti = _info(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
        add_bytes(f"blobs/sha256/{config_hex}", config)
        done: set[str] = set()
        for layer, h in zip(layers, hexes, strict=True):
            if h in done:
                continue
            done.add(h)
            if isinstance(layer, bytes):
                add_bytes(f"blobs/sha256/{h}", layer)
            else:
                ti = _info(f"blobs/sha256/{h}")
                ti.size = layer.stat().st_size
                with open(layer, "rb") as f:
                    tf.addfile(ti, f)
        add_bytes("manifest.json", manifest)
        add_bytes("repositories", json.dumps({tag.split(":")[0]: {tag.split(":")[1]: hexes[-1]}}).encode())
    tmp.replace(out)
    return out


# -- Debian packages ---------------------------------------------------------------------------


def debian_mirror() -> str:
    """The Debian mirror apt uses here, from the machine's apt sources (never hard-coded)."""
    candidates: list[tuple[str, list[str]]] = []
    d = Path("/etc/apt/sources.list.d")
    for f in sorted(d.glob("*.sources")) if d.is_dir() else []:
        for stanza in f.read_text().split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith("#"):
                    k, _, v = line.partition(":")
                    fields[k.strip()] = v.strip()
            for uri in fields.get("URIs", "").split():
                candidates.append((uri, fields.get("Suites", "").split()))
    lst = Path("/etc/apt/sources.list")
    if lst.is_file():
        for line in lst.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb":
                uri_idx = 2 if parts[1].startswith("[") else 1
                candidates.append((parts[uri_idx], parts[uri_idx + 1 : uri_idx + 2]))
    for uri, suites in candidates:
        if "bookworm" in suites:
            return uri
    raise RuntimeError("no Debian bookworm mirror in the apt sources")


def apt_download(names: Sequence[str], dest: Path) -> dict[str, Path]:
    """``apt-get download`` each package into ``dest`` (once); returns name -> .deb path."""
    dest.mkdir(parents=True, exist_ok=True)
    missing = [n for n in names if not list(dest.glob(f"{n}_*.deb"))]
    if missing:
        cmd = ["apt-get", "download", "-q", *missing]
        r = subprocess.run(cmd, cwd=dest, capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
            subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    out: dict[str, Path] = {}
    for n in names:
        found = sorted(dest.glob(f"{n}_*.deb"))
        assert found, f"apt-get download did not produce {n}"
        out[n] = found[-1]
    return out


def deb_field(deb: Path, field: str) -> str:
    r = subprocess.run(["dpkg-deb", "-f", str(deb), field], check=True, capture_output=True, text=True)
    return r.stdout.strip()


def deb_control(deb: Path) -> str:
    """The package's control paragraph, as distroless writes it into status.d."""
    return subprocess.run(["dpkg-deb", "-f", str(deb)], check=True, capture_output=True, text=True).stdout


def unpack_deb(deb: Path, root: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)


def require(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed; run scripts/test, which installs it")
    return path
