"""Assemble an image from a spec: packages, accounts, Python wheels, app code — in that layer order.

Layer order follows how often things change, so a rebuild after an app change
reuses every layer but the top one.  The three lower layers are cached under a
key of their exact inputs (package checksums, requirement lines, wheel tags,
excludes, the timestamp); the app layer is rebuilt each time (it is small).

Determinism: entries sorted, owners numeric, every mtime = ``SOURCE_DATE_EPOCH``
(or 0), gzip with mtime 0 and no name, JSON written canonically.  The same
inputs give the same manifest digest byte for byte.
"""

from __future__ import annotations

import datetime
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from giropops.builder import python as pylayer
from giropops.builder.cache import Cache, key_of
from giropops.builder.debian import (
    DEFAULT_EXCLUDES,
    DebianRepository,
    Source,
    apt_sources,
    open_deb,
    status_paragraph,
)
from giropops.builder.errors import SpecError
from giropops.builder.layer import LayerBlob, PathFilter, Tree, make_layer
from giropops.builder.output import BuiltImage, assemble
from giropops.builder.spec import Spec
from giropops.oci.image import Layer
from giropops.oci.model import ContainerConfig, Digest, HistoryEntry, ImageConfig, Platform, new_image_config
from giropops.oci.mutate import source_date_epoch
from giropops.oci.transport import RegistrySpec, open_image
from giropops.progress import NO_PROGRESS, Progress

BUILDER_VERSION = "1"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_DIR = "usr/share/ca-certificates"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class InstalledPackage:
    ecosystem: str  # "deb" | "apk"
    name: str
    version: str
    arch: str


@dataclass
class _State:
    packages: list[InstalledPackage] = field(default_factory=list)
    python_version: str = ""
    reused_layers: list[str] = field(default_factory=list)
    dropped_dependencies: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BuildResult:
    image: BuiltImage
    packages: list[InstalledPackage]
    python_version: str
    reused_layers: list[str]  # comments of the layers taken from the cache
    dropped_dependencies: list[str]  # "pkg: clause" dropped because of an exclusion


def _rfc3339(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git(context: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", "-C", str(context), *args], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _public_url(url: str) -> str:
    """A git remote fit for an annotation: http(s) without credentials, else nothing."""
    m = re.match(r"^(https?://)(?:[^@/]*@)?(.+)$", url)
    if m:
        return (m.group(1) + m.group(2)).removesuffix(".git")
    m = re.match(r"^git@([^:]+):(.+?)(?:\.git)?$", url)
    return f"https://{m.group(1)}/{m.group(2)}" if m else ""


class Builder:
    def __init__(self, cache: Cache | None = None, progress: Progress = NO_PROGRESS) -> None:
        self.cache = cache or Cache()
        self.progress = progress

    # ------------------------------------------------------------------ cached layers

    def _cached_layer(self, key: str) -> LayerBlob | None:
        meta = self.cache.get_json("layers", key)
        if not isinstance(meta, dict):
            return None
        data = self.cache.get_blob(str(meta.get("digest", "")).removeprefix("sha256:"))
        if data is None:
            return None
        return LayerBlob(data, str(meta["digest"]), str(meta["diff_id"]), str(meta.get("comment", "")))

    def _reused_layer(self, key: str, result: _State) -> LayerBlob | None:
        """The cached layer for ``key``, recorded as reused; None when it must be built."""
        hit = self._cached_layer(key)
        if hit is not None:
            result.reused_layers.append(hit.comment)
        return hit

    def _store_layer(self, key: str, layer: LayerBlob) -> None:
        self.cache.put_blob(layer.data)
        self.cache.put_json("layers", key, {"digest": layer.digest, "diff_id": layer.diff_id,
                                            "comment": layer.comment})

    # ------------------------------------------------------------------ debian

    def _debian_sources(self, spec: Spec) -> list[Source]:
        d = spec.debian
        assert d is not None
        if d.mirror == "apt-sources":
            sources = apt_sources()
            if d.suites:
                sources = [s for s in sources if s.suite in d.suites]
                missing = set(d.suites) - {s.suite for s in sources}
                if missing:
                    raise SpecError(f"debian.suites: {', '.join(sorted(missing))} not in this machine's apt sources")
            sources = [Source(s.uri, s.suite, tuple(c for c in s.components if c in d.components) or d.components,
                              s.keyring) for s in sources]
        else:
            sources = [Source(d.mirror.rstrip("/"), suite, d.components) for suite in d.suites]
        if d.keyring:
            sources = [Source(s.uri, s.suite, s.components, Path(d.keyring)) for s in sources]
        return sources

    def _debian_layer(self, spec: Spec, arch: str, epoch: int, result: _State) -> LayerBlob:
        d = spec.debian
        assert d is not None
        repo = DebianRepository(self._debian_sources(spec), arch, self.cache, self.progress)
        excludes = list(d.exclude) + (list(DEFAULT_EXCLUDES) if d.default_excludes else [])
        self.progress.note("resolving Debian packages")
        res = repo.resolve(list(d.packages), excludes)
        result.dropped_dependencies = list(res.dropped)
        result.packages += [InstalledPackage("deb", p.name, p.version, p.arch) for p in res.packages]
        key = key_of("deb-layer", BUILDER_VERSION, arch, epoch, [p.sha256 for p in res.packages], spec.excludes)
        hit = self._reused_layer(key, result)
        if hit is not None:
            return hit
        tree = Tree()
        path_filter = PathFilter(spec.excludes)
        self.progress.start("debs", "Debian packages", len(res.packages), unit="packages")
        for pkg in res.packages:
            what = f"{pkg.name}_{pkg.version}_{pkg.arch}.deb"
            deb = open_deb(repo.download(pkg), what)
            tree.add_tar(deb.data_tar, what, path_filter)
            tree.write(f"var/lib/dpkg/status.d/{pkg.name}", status_paragraph(deb.control).encode())
            if deb.md5sums:
                tree.write(f"var/lib/dpkg/status.d/{pkg.name}.md5sums", deb.md5sums.encode())
            self.progress.advance("debs", 1)
        self.progress.finish("debs", f"{len(res.packages)} packages")
        _ca_bundle(tree)
        tree.prune(path_filter)
        layer = make_layer(tree.to_tar(epoch), f"debian packages: {len(res.packages)}")
        self._store_layer(key, layer)
        return layer

    # ------------------------------------------------------------------ apk

    def _apk_layer(self, spec: Spec, arch: str, epoch: int, result: _State) -> LayerBlob:
        from giropops.builder import apk  # the APK path is independent of the Debian one

        if not spec.apk.repositories:
            raise SpecError("'contents.packages' needs 'contents.repositories' (or --repository-append)")

        repo = apk.ApkRepositories(spec.apk.repositories, spec.apk.keyring, arch, self.cache, self.progress,
                                   spec.path.parent if spec.path else None)
        pkgs = repo.resolve(list(spec.apk.packages))
        result.packages += [InstalledPackage("apk", p.name, p.version, p.arch) for p in pkgs]
        key = key_of("apk-layer", BUILDER_VERSION, arch, epoch, [p.checksum for p in pkgs], spec.excludes)
        hit = self._reused_layer(key, result)
        if hit is not None:
            return hit
        tree = Tree()
        path_filter = PathFilter(spec.excludes)
        installed: list[str] = []
        for p in pkgs:
            installed.append(apk.install(repo.download(p), p, tree, path_filter))
        tree.write("lib/apk/db/installed", "".join(installed).encode())
        tree.write("etc/apk/world", ("\n".join(sorted(spec.apk.packages)) + "\n").encode())
        tree.write("etc/apk/repositories", ("\n".join(spec.apk.repositories) + "\n").encode())
        _ca_bundle(tree)
        tree.prune(path_filter)
        layer = make_layer(tree.to_tar(epoch), f"apk packages: {len(pkgs)}")
        self._store_layer(key, layer)
        return layer

    # ------------------------------------------------------------------ build

    def build(self, spec: Spec, arch: str | None = None, context: Path | None = None) -> BuildResult:
        arch = arch or spec.archs[0]
        if arch not in spec.archs:
            raise SpecError(f"platform linux/{arch} is not in the spec's 'archs' ({', '.join(spec.archs)})")
        context = context or (spec.path.parent if spec.path else Path.cwd())
        epoch = source_date_epoch()
        created = _rfc3339(epoch)
        result = _State()
        layers: list[LayerBlob | Layer] = []
        base: ImageConfig | None = None  # the base image's config
        annotations: dict[str, str] = {}
        if spec.base is not None:
            self.progress.note(f"reading base image {spec.base}")
            base_image = open_image(spec.base, Platform("linux", arch, "v8" if arch == "arm64" else None))
            layers += list(base_image.layers())
            base = base_image.config
            annotations["org.opencontainers.image.base.name"] = (
                str(spec.base.ref) if isinstance(spec.base, RegistrySpec) else str(spec.base))
            annotations["org.opencontainers.image.base.digest"] = str(base_image.digest)

        if spec.debian is not None and spec.debian.packages:
            layers.append(self._debian_layer(spec, arch, epoch, result))
        elif spec.apk.packages:
            layers.append(self._apk_layer(spec, arch, epoch, result))

        if spec.base is None or spec.users or spec.groups or spec.paths or spec.work_dir:
            # On a base image, /etc/passwd and /etc/group are only replaced when the spec defines accounts.
            layers.append(make_layer(_accounts_tree(spec).to_tar(epoch), "accounts and paths"))

        env = dict(e.split("=", 1) for e in (base.env if base is not None else []) if "=" in e)
        env.update(dict(spec.environment))
        if spec.python is not None:
            py = spec.python
            if not py.version and spec.base is not None and not result.packages:
                raise SpecError("python.version is required when the interpreter comes from the base image")
            version = py.version or _python_version(result.packages)
            interpreter = py.interpreter or f"/usr/bin/python{version}"
            result.python_version = version
            libc, libc_version = _libc(result.packages)
            platforms = pylayer.pip_platforms(arch, libc, libc_version)
            markers = pylayer.marker_environment(_python_full_version(result.packages, version), arch)
            key = key_of("py-layer", BUILDER_VERSION, epoch, pylayer.pip_layer_key(py, version, platforms, markers))
            hit = self._reused_layer(key, result)
            if hit is not None:
                layers.append(hit)
            else:
                self.progress.note(f"installing Python requirements for Python {version} ({platforms[0]})")
                tree = pylayer.install_wheels(py, version, platforms, self.cache, markers)
                if tree.entries:
                    layer = make_layer(tree.to_tar(epoch), "python requirements")
                    self._store_layer(key, layer)
                    layers.append(layer)
            if py.project is not None:
                layers.append(make_layer(pylayer.app_tree(py, interpreter).to_tar(epoch), "app"))
            paths = [py.app_dir, py.site_packages]
            env.setdefault("PYTHONPATH", ":".join(paths))
            env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
            env.setdefault("PYTHONUNBUFFERED", "1")
            if f"{py.app_dir}/bin" not in env.get("PATH", "").split(":"):
                env["PATH"] = f"{py.app_dir}/bin:{env.get('PATH', DEFAULT_PATH)}"
        env.setdefault("PATH", DEFAULT_PATH)
        if any(p.name == "ca-certificates" for p in result.packages):
            env.setdefault("SSL_CERT_FILE", "/" + CA_BUNDLE)

        user = spec.run_as
        if user and not user.isdigit():
            u = next(u for u in spec.users if u.username == user)
            user = f"{u.uid}:{u.gid}"  # numeric: runtimes need no /etc/passwd lookup and k8s can check runAsNonRoot
        labels = {**base.labels, **dict(spec.labels)} if base is not None else dict(spec.labels)
        container = ContainerConfig(
            user=user or (base.user if base is not None else ""),
            env=tuple(f"{k}={v}" for k, v in sorted(env.items())),
            entrypoint=spec.entrypoint or tuple(base.entrypoint if base is not None else ()),
            # As in a Dockerfile: a new entrypoint resets the base's cmd.
            cmd=spec.cmd or (() if spec.entrypoint or base is None else tuple(base.cmd)),
            working_dir=spec.work_dir or (base.working_dir if base is not None else ""),
            exposed_ports=tuple(sorted(set(spec.expose) | set(base.exposed_ports if base is not None else ()))),
            labels=dict(sorted(labels.items())),
        )
        history: list[HistoryEntry | Mapping[str, Any]] = [*(base.history if base is not None else ())]
        history += [HistoryEntry(f"giropops build: {layer.comment}", created)
                    for layer in layers if isinstance(layer, LayerBlob)]
        config = new_image_config(Platform("linux", arch, "v8" if arch == "arm64" else None), created, container,
                                  [Digest.parse(str(layer.diff_id)) for layer in layers], history)
        annotations["org.opencontainers.image.created"] = created
        revision = _git(context, "rev-parse", "HEAD")
        if revision:
            annotations["org.opencontainers.image.revision"] = revision
        source = _public_url(_git(context, "remote", "get-url", "origin"))
        if source:
            annotations["org.opencontainers.image.source"] = source
        annotations.update(dict(spec.annotations))
        return BuildResult(
            assemble(layers, config, annotations),
            result.packages,
            result.python_version,
            result.reused_layers,
            result.dropped_dependencies,
        )


def _ca_bundle(tree: Tree) -> None:
    """What ca-certificates' postinst would make: the bundle of every shipped certificate."""
    certs = sorted(p for p, e in tree.entries.items() if p.startswith(CA_DIR + "/") and p.endswith(".crt"))
    if not certs or CA_BUNDLE in tree.entries:
        return
    bundle = b"".join(tree.entries[p].data.rstrip(b"\n") + b"\n" for p in certs)
    tree.write(CA_BUNDLE, bundle)
    if "usr/lib/ssl" in tree.entries or any("-linux-gnu/libssl.so" in p for p in tree.entries):
        # OpenSSL's default paths (normally links shipped by the excluded 'openssl' package).
        if "usr/lib/ssl/certs" not in tree.entries:
            tree.symlink("usr/lib/ssl/certs", "/etc/ssl/certs")
        if "usr/lib/ssl/cert.pem" not in tree.entries:
            tree.symlink("usr/lib/ssl/cert.pem", "/" + CA_BUNDLE)


def _accounts_tree(spec: Spec) -> Tree:
    tree = Tree()
    groups = {0: ("root", ())} | {g.gid: (g.groupname, g.members) for g in spec.groups}
    users = [("root", 0, 0, "/root", "/sbin/nologin")] + [
        (u.username, u.uid, u.gid, u.homedir, u.shell) for u in spec.users if u.uid != 0
    ]
    for _name, _uid, gid, _home, _shell in users:
        if gid not in groups:
            raise SpecError(f"accounts: gid {gid} of a user has no group in 'accounts.groups'")
    passwd = "".join(f"{n}:x:{uid}:{gid}:{n}:{home}:{shell}\n" for n, uid, gid, home, shell in users)
    group = "".join(f"{n}:x:{gid}:{','.join(m)}\n" for gid, (n, m) in sorted(groups.items()))
    tree.write("etc/passwd", passwd.encode())
    tree.write("etc/group", group.encode())
    tree.mkdir("root", 0o700)
    tree.mkdir("tmp", 0o1777)
    for n, uid, gid, home, _shell in users[1:]:
        del n
        tree.mkdir(home, 0o755, uid, gid)
    for op in spec.paths:
        if op.type == "directory" or op.type == "permissions":
            tree.mkdir(op.path, op.permissions, op.uid, op.gid)
        elif op.type == "empty-file":
            tree.write(op.path, b"", op.permissions, op.uid, op.gid)
        elif op.type == "symlink":
            if not op.source:
                raise SpecError(f"paths: symlink {op.path} needs 'source'")
            tree.symlink(op.path, op.source)
    if spec.work_dir and spec.work_dir.strip("/") not in tree.entries:
        tree.mkdir(spec.work_dir)
    return tree


def _python_version(packages: Sequence[InstalledPackage]) -> str:
    for p in packages:
        m = re.fullmatch(r"python(3\.\d+)-minimal", p.name) or re.fullmatch(r"python-(3\.\d+)", p.name)
        if m:
            return m.group(1)
    raise SpecError("python: the packages include no Python interpreter; set 'python.version'")


def _python_full_version(packages: Sequence[InstalledPackage], version: str) -> str:
    """``3.11.2`` from the interpreter package's version (``3.11.2-6+deb12u9``, ``3.12.8-r1``)."""
    for p in packages:
        if p.name in (f"python{version}-minimal", f"python-{version}"):
            m = re.match(r"(\d+\.\d+\.\d+)", p.version.split(":")[-1])
            if m:
                return m.group(1)
    return f"{version}.0"


def _libc(packages: Sequence[InstalledPackage]) -> tuple[str, tuple[int, int]]:
    for p in packages:
        if p.name in ("libc6", "glibc"):
            m = re.match(r"(\d+)\.(\d+)", p.version)
            if m:
                return "glibc", (int(m.group(1)), int(m.group(2)))
        if p.name == "musl":
            return "musl", (1, 2)
    return "glibc", (2, 17)  # manylinux2014: what a scratch or unknown base most likely runs
