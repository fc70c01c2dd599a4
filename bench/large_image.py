"""The large polyglot bench image (issue 19): a docker-archive of five gzip layers, 1 GB uncompressed.

Built offline-from-registries only, from real artifacts, with the builders of
``tests/support/sbom_images.py``:

1. a debootstrap minbase;
2. "apt-get install" of real Debian packages: the Go toolchain and its
   sources (tens of thousands of files, Go binaries with build information),
   skopeo, podman and docker-registry (Go), Debian's jars (commons, slf4j,
   maven), Ruby gems (gemspecs), Perl and Python standard libraries; the
   layer rewrites ``var/lib/dpkg/status`` and adds each package's
   ``info/<name>.list``, as dpkg does;
3. a Python virtual environment of real wheels from PyPI;
4. a ``node_modules`` laid out by npm itself, including esbuild's Go binary;
5. an application layer: an rpm database written by ``rpm``
   from packages built by ``rpmbuild``, a Spring-Boot-style fat jar with
   nested jars, a war, a .NET ``deps.json``, a Composer ``installed.json``, a
   Rust binary with cargo-auditable's ``.dep-v0``, and whiteouts deleting a
   Python and an npm package of the layers below.

Every layer is gzip (as pulled from a registry).  Sizes: 1.04 GB uncompressed, 0.33 GB stored,
45,000 entries.  Everything is kept
in ``--workdir`` (default ``giropops-bench-large`` in the temporary directory), and a second run reuses the
image and whatever intermediate part is already there.

    .venv/bin/python bench/large_image.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.sbom.ecosys_support import elf64, npm_install  # noqa: E402
from tests.support import sbom_images as im  # noqa: E402
from tests.support.sbom_images import Entry, layer_from_entries, whiteout  # noqa: E402

DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "giropops-bench-large"
IMAGE_NAME = "large-image.tar"

DEBS = (
    "golang-1.19-go",
    "golang-1.19-src",
    "skopeo",
    "podman",
    "docker-registry",
    "libcommons-lang3-java",
    "libcommons-io-java",
    "libslf4j-java",
    "libmaven3-core-java",
    "libguava-java",
    "ruby-rack",
    "ruby-concurrent",
    "ruby-i18n",
    "perl-modules-5.36",
    "libpython3.11-stdlib",
)
WHEELS = (
    "numpy==1.26.4",
    "pandas==2.2.2",
    "python-dateutil==2.9.0.post0",
    "pytz==2024.1",
    "tzdata==2024.1",
    "six==1.16.0",
    "Django==5.0.6",
    "asgiref==3.8.1",
    "sqlparse==0.5.0",
    "botocore==1.34.120",
    "boto3==1.34.120",
    "s3transfer==0.10.1",
    "jmespath==1.0.1",
    "urllib3==2.2.1",
    "requests==2.32.3",
    "certifi==2024.6.2",
    "idna==3.7",
    "charset_normalizer==3.3.2",
)
NPM = (
    "express@4.19.2",
    "lodash@4.17.21",
    "webpack@5.91.0",
    "@babel/core@7.24.5",
    "eslint@8.57.0",
    "typescript@5.4.5",
    "esbuild@0.19.12",
)
VENV_SITE = "opt/app/venv/lib/python3.11/site-packages"
RPM_SPECS: dict[str, im.RpmSpec] = {
    "hello": ("1.2.3", "4.el9", "2", "MIT", "noarch"),
    "openssl-libs": ("3.0.7", "24.el9", "1", "Apache-2.0", "x86_64"),
    "bash": ("5.1.8", "6.el9_1", None, "GPL-3.0-or-later", "x86_64"),
}
CARGO_AUDIT = {
    "packages": [
        {"name": "server", "version": "0.3.0", "source": "local", "dependencies": [1, 2, 3], "root": True},
        {"name": "serde", "version": "1.0.188", "source": "crates.io"},
        {"name": "tokio", "version": "1.32.0", "source": "crates.io"},
        {"name": "smallvec", "version": "1.11.0", "source": "crates.io", "kind": "runtime"},
    ]
}
DEPS_JSON = {
    "runtimeTarget": {"name": ".NETCoreApp,Version=v8.0"},
    "targets": {".NETCoreApp,Version=v8.0": {}},
    "libraries": {
        "WebApp/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
        "Newtonsoft.Json/13.0.1": {"type": "package", "serviceable": True, "sha512": "sha512-x"},
        "Serilog/3.1.1": {"type": "package", "serviceable": True, "sha512": "sha512-y"},
    },
}
COMPOSER = {
    "packages": [
        {"name": "monolog/monolog", "version": "3.5.0", "license": ["MIT"], "type": "library"},
        {"name": "psr/log", "version": "3.0.0", "license": ["MIT"], "type": "library"},
    ],
    "dev": False,
    "dev-package-names": [],
}


def _gzip_file(src: Path, dst: Path) -> Path:
    """``gzip -6 -n``: Trivy 0.59 fails on the largest layer as Python's ``gzip`` module writes it
    ("archive/tar: invalid tar header"), while reading the same bytes compressed by gzip(1)."""
    if not dst.exists():
        tmp = dst.with_name(dst.name + ".tmp")
        with open(src, "rb") as f, open(tmp, "wb") as out:
            subprocess.run(["gzip", "-6", "-n", "-c"], stdin=f, stdout=out, check=True)
        tmp.replace(dst)
    return dst


def _bytes_layer(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- layer 1: debootstrap minbase ---------------------------------------------------------------


def minbase_layer(work: Path) -> Path:
    out = work / "minbase.tar"
    if not out.exists():
        root = work / "minbase"
        if not (root / "var/lib/dpkg/status").exists():
            shutil.rmtree(root, ignore_errors=True)
            im.build_debootstrap_root(work)
        im.layer_from_dir(root, out)
    return out


# -- layer 2: Debian packages installed over it ----------------------------------------------------


def _status_paragraph(deb: Path) -> str:
    control = im.deb_control(deb).rstrip("\n").splitlines()
    out = [control[0], "Status: install ok installed", *control[1:]]
    return "\n".join(out) + "\n"


def _list_file(deb: Path) -> str:
    listing = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
    names = []
    with tarfile.open(fileobj=io.BytesIO(listing)) as tf:
        for member in tf:
            name = "/" + member.name.lstrip("./")
            names.append("/." if name == "/" else name.rstrip("/"))
    return "\n".join(names) + "\n"


def debs_layer(work: Path) -> Path:
    out = work / "debs.tar"
    if out.exists():
        return out
    root = work / "debs-root"
    shutil.rmtree(root, ignore_errors=True)
    debs = im.apt_download(DEBS, work / "debs")
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    status = (work / "minbase/var/lib/dpkg/status").read_text().rstrip("\n") + "\n"
    for name, deb in debs.items():
        im.unpack_deb(deb, root)
        status += "\n" + _status_paragraph(deb)
        (info / f"{name}.list").write_text(_list_file(deb))
    (root / "var/lib/dpkg/status").write_text(status)
    return im.layer_from_dir(root, out)


# -- layer 3: a Python virtual environment ----------------------------------------------------------


def venv_layer(work: Path) -> Path:
    out = work / "venv.tar"
    if out.exists():
        return out
    wheels = work / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps", "--python-version",
         "3.11", "--platform", "manylinux2014_x86_64", "-d", str(wheels), *WHEELS],
        check=True,
    )
    root = work / "venv-root"
    shutil.rmtree(root, ignore_errors=True)
    site = root / VENV_SITE
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-compile", "--target",
         str(site), *sorted(str(p) for p in wheels.glob("*.whl"))],
        check=True,
    )
    (root / "opt/app/venv/pyvenv.cfg").write_text(
        "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n"
    )
    return im.layer_from_dir(root, out)


# -- layer 4: node_modules ------------------------------------------------------------------------


def node_layer(work: Path) -> Path:
    out = work / "node.tar"
    if out.exists():
        return out
    app = work / "node-app"
    if not (app / "node_modules").is_dir():
        npm_install(app, *NPM)
    root = work / "node-root"
    shutil.rmtree(root, ignore_errors=True)
    (root / "srv").mkdir(parents=True)
    shutil.copytree(app / "node_modules", root / "srv/web/node_modules", symlinks=True)
    for f in ("package.json",):
        shutil.copy2(app / f, root / "srv/web" / f)
    return im.layer_from_dir(root, out)


# -- layer 5: the application: rpm db, jars, .NET, Composer, Rust, whiteouts ---------------------------


def _rpm_db(work: Path) -> Path:
    return im.rpm_database(work, RPM_SPECS)


def _zip(entries: dict[str, bytes]) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def app_layer(work: Path) -> Path:
    out = work / "app.tar"
    if out.exists():
        return out
    share = work / "debs-root/usr/share/java"
    boot = _zip(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\n"
            b"Main-Class: org.springframework.boot.loader.JarLauncher\r\n",
            "META-INF/maven/com.example/shop/pom.properties": b"groupId=com.example\nartifactId=shop\nversion=2.1.0\n",
            "BOOT-INF/lib/commons-lang3.jar": (share / "commons-lang3.jar").read_bytes(),
            "BOOT-INF/lib/commons-io.jar": (share / "commons-io.jar").read_bytes(),
            "BOOT-INF/lib/guava.jar": (share / "guava.jar").read_bytes(),
        }
    )
    war = _zip({"WEB-INF/lib/slf4j-api.jar": (share / "slf4j-api.jar").read_bytes(), "WEB-INF/web.xml": b"<web-app/>"})
    rust = elf64([(".text", b"\x90" * 4096), (".dep-v0", zlib.compress(json.dumps(CARGO_AUDIT).encode()))])
    db = _rpm_db(work)
    site = work / "venv-root" / VENV_SITE
    six_info = next(p.name for p in site.glob("six-*.dist-info"))
    entries = [
        Entry("opt/app/shop.jar", data=boot),
        Entry("opt/app/legacy.war", data=war),
        Entry("opt/dotnet/WebApp.deps.json", data=json.dumps(DEPS_JSON).encode()),
        Entry("var/www/vendor/composer/installed.json", data=json.dumps(COMPOSER).encode()),
        Entry("usr/local/bin/server", data=rust, mode=0o755),
        Entry("var/lib/rpm/rpmdb.sqlite", data=(db / "rpmdb.sqlite").read_bytes()),
        whiteout(f"{VENV_SITE}/{six_info}"),
        whiteout(f"{VENV_SITE}/six.py"),
        whiteout("srv/web/node_modules/lodash"),
    ]
    return _bytes_layer(out, layer_from_entries(entries))


# -- the image --------------------------------------------------------------------------------------


def write_image(out: Path, layers: Sequence[tuple[Path, bool]]) -> Path:
    """A docker-archive (``manifest.json`` naming ``blobs/sha256/*``) of uncompressed or gzip layers."""
    blobs: list[Path] = []
    diff_ids: list[str] = []
    for path, compress in layers:
        diff_ids.append(f"sha256:{im.sha256_file(path)}")
        blobs.append(_gzip_file(path, path.with_name(path.name + ".gz")) if compress else path)
    hexes = [im.sha256_file(b) for b in blobs]
    created = "2024-01-01T00:00:00Z"
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": created, "created_by": "giropops bench"} for _ in diff_ids],
        },
        sort_keys=True,
    ).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        [{"Config": f"blobs/sha256/{config_hex}", "RepoTags": ["giropops-bench/large:latest"],
          "Layers": [f"blobs/sha256/{h}" for h in hexes]}]
    ).encode()
    tmp = out.with_name(out.name + ".tmp")

    def info(name: str, size: int = 0) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mtime, ti.mode = size, 0, 0o644
        return ti

    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("blobs", "blobs/sha256"):
            ti = info(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
        tf.addfile(info(f"blobs/sha256/{config_hex}", len(config)), io.BytesIO(config))
        for blob, h in zip(blobs, hexes, strict=True):
            with open(blob, "rb") as f:
                tf.addfile(info(f"blobs/sha256/{h}", blob.stat().st_size), f)
        tf.addfile(info("manifest.json", len(manifest)), io.BytesIO(manifest))
    tmp.replace(out)
    return out


def build(work: Path) -> Path:
    out = work / IMAGE_NAME
    if out.exists():
        return out
    work.mkdir(parents=True, exist_ok=True)
    minbase = minbase_layer(work)
    # Every layer gzip, as pulled from a registry: Trivy (go-containerregistry's tarball reader) takes
    # the first layer's compression for all of them, so one archive cannot mix gzip and plain layers.
    layers = [(minbase, True), (debs_layer(work), True), (venv_layer(work), True), (node_layer(work), True)]
    layers.append((app_layer(work), True))
    return write_image(out, layers)


def describe(tar: Path) -> str:
    """Size as stored, uncompressed size and number of entries of each layer."""
    lines = []
    total_u = total_n = 0
    with tarfile.open(tar) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for name in manifest[0]["Layers"]:
            member = outer.getmember(name)
            f = outer.extractfile(member)
            assert f is not None
            head = f.read(2)
            f.seek(0)
            stream = gzip.GzipFile(fileobj=f) if head == b"\x1f\x8b" else f
            counter = _Counter(stream)
            with tarfile.open(fileobj=counter, mode="r|") as layer:
                n = sum(1 for _ in layer)
            counter.drain()
            total_u += counter.n
            total_n += n
            kind = "gzip" if head == b"\x1f\x8b" else "tar"
            lines.append(f"  {name[-12:]} {kind:<4} stored {member.size / 1e6:7.1f} MB  "
                         f"uncompressed {counter.n / 1e6:7.1f} MB  {n:>6} entries")
    lines.append(f"  total: stored {tar.stat().st_size / 1e6:.1f} MB, uncompressed {total_u / 1e6:.1f} MB, "
                 f"{total_n} entries")
    return "\n".join(lines)


class _Counter(io.RawIOBase):
    def __init__(self, f: io.IOBase | gzip.GzipFile) -> None:
        self.f, self.n = f, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        data = self.f.read(len(b))
        b[: len(data)] = data
        self.n += len(data)
        return len(data)

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--describe", action="store_true", help="print each layer's sizes and entry count")
    args = parser.parse_args()
    tar = build(args.workdir)
    (args.workdir / "READY").write_text(f"{tar}\n")
    print(tar)
    if args.describe:
        print(describe(tar))
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
