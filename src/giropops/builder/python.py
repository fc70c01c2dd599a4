"""The Python layers: third-party wheels, and the app's own code on its own.

Wheels are resolved and installed by the *builder's* pip into a directory
outside the image (``pip install --target --only-binary=:all: --platform …
--python-version … --implementation cp``): nothing runs in the image and no
sdist is ever built, so what lands in the image is exactly the published
wheels for the image's interpreter, libc and architecture.  pip's wheel cache
lives in our cache directory.

The app's own code (import packages copied from the project's ``src``, a
minimal ``.dist-info`` so scanners see it, and launchers for its console
scripts) goes in a separate top layer, so a code change rebuilds only that.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

from giropops.builder.cache import Cache, key_of
from giropops.builder.errors import BuildError, SpecError
from giropops.builder.layer import FILE, Entry, Tree, normalise
from giropops.builder.spec import PythonSpec, read_spec_file

PIP_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}


def pip_platforms(arch: str, libc: str, libc_version: tuple[int, int]) -> list[str]:
    """Wheel platform tags the image can run, newest first (pip does not expand manylinux_x_y itself)."""
    machine = PIP_ARCH.get(arch, arch)
    if libc == "musl":
        return [f"musllinux_1_{minor}_{machine}" for minor in range(libc_version[1], -1, -1)]
    major, minor = libc_version
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 16, -1)]
    tags += [f"manylinux2014_{machine}"]
    if machine == "x86_64":
        tags += [f"manylinux2010_{machine}", f"manylinux1_{machine}"]
    return tags


def _requirements(spec: PythonSpec) -> list[str]:
    reqs = list(spec.requirements)
    if spec.requirements_file is not None:
        data = read_spec_file(spec.requirements_file, "python.requirements-file")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(f"python.requirements-file {spec.requirements_file}: not UTF-8 text") from exc
        # Errors name the line, never quote it: the file may not be a requirements file at all.
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if line:
                if line.startswith("-"):
                    raise SpecError(
                        f"python.requirements-file {spec.requirements_file}: line {number} is an option line "
                        "(not supported)"
                    )
                if not re.match(r"^[A-Za-z0-9]", line):
                    raise SpecError(
                        f"python.requirements-file {spec.requirements_file}: line {number} is not a requirement"
                    )
                reqs.append(line)
    return reqs


# pip evaluates environment markers (``python_full_version < "3.11.3"``) with the
# interpreter it runs on, even with --python-version: the image's 3.11.2 would
# miss a backport the builder's 3.11.7 does not need.  This launcher runs pip
# with the marker environment of the image's interpreter instead.
_PIP_LAUNCHER = """
import json, sys
from pip._vendor.packaging import markers
_env = json.loads(sys.argv.pop(1))
_orig = markers.default_environment
markers.default_environment = lambda: {**_orig(), **_env}
from pip._internal.cli.main import main
sys.exit(main())
"""


def marker_environment(full_version: str, arch: str) -> dict[str, str]:
    major_minor = ".".join(full_version.split(".")[:2])
    return {
        "python_version": major_minor,
        "python_full_version": full_version,
        "implementation_version": full_version,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "platform_machine": PIP_ARCH.get(arch, arch),
        "platform_system": "Linux",
        "sys_platform": "linux",
        "os_name": "posix",
    }


def install_wheels(
    spec: PythonSpec,
    python_version: str,
    platforms: Sequence[str],
    cache: Cache,
    markers: dict[str, str] | None = None,
) -> Tree:
    """Third-party packages installed under ``spec.site_packages``; cached by the exact inputs."""
    reqs = _requirements(spec)
    tree = Tree()
    if not reqs and not spec.wheels:
        return tree
    with tempfile.TemporaryDirectory(prefix="giropops-pip-") as tmp:
        target = Path(tmp) / "site"
        pyver = python_version.replace(".", "")
        cmd = [
            sys.executable, "-c", _PIP_LAUNCHER, json.dumps(markers or {}),
            "install", "--quiet", "--disable-pip-version-check", "--no-input",
            "--target", str(target), "--only-binary=:all:", "--implementation", "cp",
            "--python-version", python_version, "--abi", f"cp{pyver}", "--no-compile",
            "--cache-dir", str(cache.root / "pip"), "--no-warn-script-location",
        ]
        for plat in platforms:
            cmd += ["--platform", plat]
        cmd += [str(w) for w in spec.wheels] + reqs
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_TARGET")}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
            raise BuildError(f"pip could not install the Python requirements for Python {python_version}:\n{tail}")
        base = normalise(spec.site_packages.lstrip("/"), "python.site-packages")
        for path in sorted(target.rglob("*")):
            rel = path.relative_to(target).as_posix()
            if rel == "bin" or rel.startswith("bin/") or "__pycache__" in rel.split("/"):
                continue  # console scripts carry the *builder's* interpreter in their shebang
            if path.is_symlink():
                continue
            if path.is_dir():
                tree.mkdir(f"{base}/{rel}")
            else:
                mode = 0o755 if os.access(path, os.X_OK) else 0o644
                tree.write(f"{base}/{rel}", path.read_bytes(), mode)
    return tree


def pip_layer_key(spec: PythonSpec, python_version: str, platforms: Sequence[str], markers: dict[str, str]) -> str:
    reqs = _requirements(spec)
    wheel_ids = [hashlib.sha256(w.read_bytes()).hexdigest() for w in spec.wheels]
    return key_of("pip-layer-v1", reqs, wheel_ids, python_version, list(platforms), markers, spec.site_packages)


def app_tree(spec: PythonSpec, interpreter: str) -> Tree:
    """The app's own code, a ``.dist-info`` naming it, and launchers for its console scripts."""
    tree = Tree()
    if spec.project is None:
        return tree
    try:
        meta = tomllib.loads(read_spec_file(spec.project / "pyproject.toml", "python.project").decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SpecError(f"python.project: {spec.project / 'pyproject.toml'} is not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:  # says where, not what: it quotes no text
        raise SpecError(f"python.project: cannot read pyproject.toml: {exc}") from exc
    except RecursionError as exc:
        raise SpecError(f"python.project: {spec.project / 'pyproject.toml'} is nested too deeply") from exc
    project = meta.get("project", {})
    name = str(project.get("name", "app"))
    version = str(project.get("version", "0"))
    app_dir = normalise(spec.app_dir.lstrip("/"), "python.app-dir")
    src_roots = [spec.project / "src", spec.project]
    for pkg in spec.packages:
        root = next((r / pkg for r in src_roots if (r / pkg / "__init__.py").is_file()), None)
        if root is None:
            raise SpecError(f"python.packages: {pkg!r} not found in {spec.project} (looked in src/ and the root)")
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root.parent).as_posix()
            if "__pycache__" in rel.split("/") or path.suffix in (".pyc", ".pyo") or path.is_symlink():
                continue
            if path.is_dir():
                tree.mkdir(f"{app_dir}/{rel}")
            else:
                tree.write(f"{app_dir}/{rel}", path.read_bytes(), 0o644)
    scripts = project.get("scripts", {}) if isinstance(project.get("scripts"), dict) else {}
    for script in spec.scripts:
        target = scripts.get(script)
        if not isinstance(target, str) or not re.fullmatch(r"[\w.]+:[\w.]+", target):
            raise SpecError(f"python.scripts: {script!r} is not a console script of {name} ({sorted(scripts)})")
        module, func = target.split(":")
        # A launcher like pip's: the kernel reads the shebang, no shell is involved.
        text = (
            f"#!{interpreter}\nimport sys\nfrom {module} import {func.split('.')[0]}\n"
            f"sys.exit({func}())\n"
        )
        tree.write(f"{app_dir}/bin/{script}", text.encode(), 0o755)
    norm = re.sub(r"[-_.]+", "_", name)
    dist = f"{app_dir}/{norm}-{version}.dist-info"
    tree.write(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode())
    tree.write(f"{dist}/INSTALLER", b"giropops\n")
    top = "\n".join(spec.packages) + "\n"
    tree.write(f"{dist}/top_level.txt", top.encode())
    records = [f"{p[len(app_dir) + 1:]},," for p, e in sorted(tree.entries.items()) if e.kind == FILE]
    records.append(f"{dist[len(app_dir) + 1:]}/RECORD,,")
    tree.add(Entry(f"{dist}/RECORD", FILE, 0o644, data=("\n".join(records) + "\n").encode()))
    return tree
