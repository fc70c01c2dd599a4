"""The build spec: YAML with apko's keys where they apply, plus ours.

apko keys: ``contents.repositories``, ``contents.keyring``, ``contents.packages``,
``accounts`` (``users``, ``groups``, ``run-as``), ``entrypoint`` (``command``),
``cmd``, ``environment``, ``work-dir``, ``archs``, ``paths``, ``annotations``,
``include``.

Ours: ``base`` (``scratch`` or an image source in ``giropops.oci.transport``'s grammar:
``python:3.12-slim``, ``registry://…``, ``archive://…``, ``oci-dir://…``, ``fs://…``, ``local://…``),
``debian`` (``mirror``, ``suites``,
``components``, ``keyring``, ``packages``, ``exclude``, ``default-excludes``),
``python`` (``version``, ``interpreter``, ``requirements``, ``requirements-file``,
``wheels``, ``project``, ``packages``, ``scripts``, ``site-packages``, ``app-dir``),
``excludes`` (path globs; ``!glob`` keeps), ``labels``, ``expose``.

``include`` merges another spec underneath this one: mappings merge key by
key, lists are concatenated (the included spec's items first), anything else
is overridden by the including spec.  Paths in a spec are relative to the file.

Every file a spec names (``include``, ``python.project``, ``python.requirements-file``,
``python.wheels``, the ``python.packages`` directories) must resolve, symlinks followed, inside the
*build context*: by default the spec's own directory (``giropops build`` widens it to the current
directory when the spec lies below it, as ``docker build -f SPEC .`` does, and ``--context DIR`` names
another one).  A spec from elsewhere so cannot read the host's files.  Spec files are read only if they
are regular files of at most ``MAX_SPEC_BYTES``, and errors never quote what a file contains.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from giropops.builder.errors import SpecError
from giropops.errors import ImageReferenceError, quote_for_error
from giropops.oci.transport import SBOMFileSpec
from giropops.oci.transport import Spec as ImageSource
from giropops.oci.transport import parse_spec as parse_source

TOP_KEYS = {
    "include", "base", "contents", "debian", "accounts", "entrypoint", "cmd", "environment", "work-dir",
    "archs", "paths", "annotations", "labels", "expose", "excludes", "python", "name", "description",
}
ARCH_ALIASES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
APK_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}
MAX_SPEC_BYTES = 1 << 20  # a spec, an included spec, a requirements file, a pyproject.toml
MAX_SPEC_DEPTH = 64  # nesting of mappings and lists in a spec; real specs use 4


@dataclass(frozen=True)
class User:
    username: str
    uid: int
    gid: int
    homedir: str
    shell: str = "/sbin/nologin"


@dataclass(frozen=True)
class Group:
    groupname: str
    gid: int
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class PathOp:
    path: str
    type: str  # directory | empty-file | symlink | permissions
    uid: int = 0
    gid: int = 0
    permissions: int = 0o755
    source: str = ""


@dataclass(frozen=True)
class DebianSpec:
    mirror: str = "apt-sources"
    suites: tuple[str, ...] = ()
    components: tuple[str, ...] = ("main",)
    keyring: str = ""
    packages: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    default_excludes: bool = True


@dataclass(frozen=True)
class ApkSpec:
    repositories: tuple[str, ...] = ()
    keyring: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class PythonSpec:
    version: str = ""
    interpreter: str = ""
    requirements: tuple[str, ...] = ()
    requirements_file: Path | None = None
    wheels: tuple[Path, ...] = ()
    project: Path | None = None
    packages: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()
    site_packages: str = "/app/site-packages"
    app_dir: str = "/app"


@dataclass(frozen=True)
class Spec:
    path: Path | None
    base: ImageSource | None = None  # None: scratch
    apk: ApkSpec = field(default_factory=ApkSpec)
    debian: DebianSpec | None = None
    users: tuple[User, ...] = ()
    groups: tuple[Group, ...] = ()
    run_as: str = ""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    work_dir: str = ""
    archs: tuple[str, ...] = ("amd64",)
    paths: tuple[PathOp, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    expose: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    python: PythonSpec | None = None


# --------------------------------------------------------------------------- helpers


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else v
        return out
    if isinstance(base, list) and isinstance(over, list):
        return base + [x for x in over if x not in base]
    return over


def read_spec_file(path: Path, what: str, limit: int = MAX_SPEC_BYTES) -> bytes:
    """The bytes of a regular file a spec names, at most ``limit`` of them (no device, FIFO or directory)."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise SpecError(f"{what} {path} not found") from exc
    except OSError as exc:
        raise SpecError(f"{what} {path}: cannot read it ({exc.strerror or type(exc).__name__})") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise SpecError(f"{what} {path} is {kind}")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise SpecError(f"{what} {path}: cannot read it ({exc.strerror or type(exc).__name__})") from exc
    if len(data) > limit:
        raise SpecError(f"{what} {path} is larger than {limit} bytes")
    return data


def confine(path: Path, context: Path, what: str) -> Path:
    """``path`` resolved (symlinks followed); a SpecError unless it lies inside ``context``."""
    real = path.resolve()
    if not real.is_relative_to(context):
        raise SpecError(
            f"{what} {path} is outside the build context {context} (pass --context DIR to allow another directory)"
        )
    return real


def _depth_ok(doc: Any, limit: int = MAX_SPEC_DEPTH) -> bool:
    todo: list[tuple[Any, int]] = [(doc, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return False
            todo.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return True


def _yaml_error(exc: yaml.YAMLError) -> str:
    """What is wrong and where, never the text around it (PyYAML quotes the offending line)."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or "syntax error"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def _load_yaml(path: Path, context: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    shown = path
    what = f"{seen[-1].name}: include" if seen else "spec"
    # The spec the user names is read wherever it is; what it includes must lie in the context.
    path = confine(path, context, what) if seen else path.resolve()
    if path in seen:
        raise SpecError(f"{path.name}: include cycle")
    data = read_spec_file(path, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{shown}: not UTF-8 text (byte {exc.start})") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path.name}: not valid YAML: {_yaml_error(exc)}") from exc
    except RecursionError as exc:
        raise SpecError(f"{path.name}: nested too deeply (at most {MAX_SPEC_DEPTH} levels)") from exc
    if not _depth_ok(doc):
        raise SpecError(f"{path.name}: nested too deeply (at most {MAX_SPEC_DEPTH} levels)")
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise SpecError(f"{path.name}: the spec must be a mapping")
    inc = doc.pop("include", None)
    if inc is None:
        return _rebase_paths(doc, path.parent, context)
    if not isinstance(inc, str | list):
        raise SpecError(f"{path.name}: 'include' must be a path or a list of paths")
    merged: dict[str, Any] = {}
    for item in [inc] if isinstance(inc, str) else inc:
        if not isinstance(item, str):
            raise SpecError(f"{path.name}: 'include' entries must be paths")
        merged = _merge(merged, _load_yaml(path.parent / item, context, (*seen, path)))
    result: dict[str, Any] = _merge(merged, _rebase_paths(doc, path.parent, context))
    return result


def _rebase_paths(doc: dict[str, Any], where: Path, context: Path) -> dict[str, Any]:
    """Make the file paths of ``python`` absolute relative to the spec that names them, inside the context."""
    py = doc.get("python")
    if isinstance(py, dict):
        py = dict(py)
        for key in ("project", "requirements-file"):
            if isinstance(py.get(key), str) and py[key]:
                py[key] = str(confine(where / py[key], context, f"'python.{key}'"))
        if isinstance(py.get("wheels"), list):
            py["wheels"] = [
                str(confine(where / w, context, f"'python.wheels[{i}]'")) if isinstance(w, str) else w
                for i, w in enumerate(py["wheels"])
            ]
        doc = {**doc, "python": py}
    return doc


def _base(text: str) -> ImageSource | None:
    """``scratch`` or an image source, parsed by the transport (the one grammar for image sources)."""
    if text == "scratch":
        return None
    try:
        source = parse_source(text)
    except ImageReferenceError as exc:
        raise SpecError(f"'base' must be 'scratch' or an image source such as registry://REF: {exc}") from exc
    if isinstance(source, SBOMFileSpec):
        raise SpecError(f"'base' must be an image, not {quote_for_error(text)}")
    return source


def _str(obj: Any, key: str) -> str:
    if not isinstance(obj, str | int | float) or isinstance(obj, bool):
        raise SpecError(f"'{key}' must be a string")
    return str(obj)


def _str_list(obj: Any, key: str) -> tuple[str, ...]:
    if obj is None:
        return ()
    if isinstance(obj, str):
        return (obj,)
    if not isinstance(obj, list):
        raise SpecError(f"'{key}' must be a list of strings")
    return tuple(_str(x, f"{key}[{i}]") for i, x in enumerate(obj))


def _str_map(obj: Any, key: str) -> tuple[tuple[str, str], ...]:
    if obj is None:
        return ()
    if not isinstance(obj, Mapping):
        raise SpecError(f"'{key}' must be a mapping of strings")
    return tuple(sorted((_str(k, key), _str(v, f"{key}.{k}")) for k, v in obj.items()))


def _int(obj: Any, key: str, lo: int = 0, hi: int = 2**31 - 1) -> int:
    if isinstance(obj, bool) or not isinstance(obj, int) or not lo <= obj <= hi:
        raise SpecError(f"'{key}' must be an integer between {lo} and {hi}")
    return obj


def _check_keys(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for k in obj:
        if k not in allowed:
            raise SpecError(f"unknown key '{where}{k}' (allowed: {', '.join(sorted(allowed))})")


def _abs_path(obj: Any, key: str) -> str:
    s = _str(obj, key)
    if not s.startswith("/") or ".." in s.split("/"):
        raise SpecError(f"'{key}' must be an absolute path inside the image without '..', got {s!r}")
    return s


def _command(obj: Any, key: str) -> tuple[str, ...]:
    """apko writes ``entrypoint: {command: "a b"}`` and ``cmd: "x y"``; lists are accepted too."""
    if obj is None:
        return ()
    if isinstance(obj, Mapping):
        _check_keys(obj, {"command", "type", "services", "shell-fragment"}, f"{key}.")
        if "shell-fragment" in obj:
            raise SpecError(f"'{key}.shell-fragment' needs a shell, which these images do not have")
        obj = obj.get("command")
        if obj is None:
            return ()
    if isinstance(obj, str):
        return tuple(obj.split())
    return _str_list(obj, key)


# --------------------------------------------------------------------------- parse


def parse_spec(doc: Mapping[str, Any], path: Path | None = None) -> Spec:
    _check_keys(doc, TOP_KEYS, "")
    base = _base(_str(doc.get("base", "scratch"), "base"))

    contents = doc.get("contents") or {}
    if not isinstance(contents, Mapping):
        raise SpecError("'contents' must be a mapping")
    _check_keys(contents, {"repositories", "keyring", "packages", "build_repositories"}, "contents.")
    apk = ApkSpec(
        _str_list(contents.get("repositories"), "contents.repositories"),
        _str_list(contents.get("keyring"), "contents.keyring"),
        _str_list(contents.get("packages"), "contents.packages"),
    )

    debian = None
    if doc.get("debian") is not None:
        d = doc["debian"]
        if not isinstance(d, Mapping):
            raise SpecError("'debian' must be a mapping")
        _check_keys(
            d, {"mirror", "suites", "components", "keyring", "packages", "exclude", "default-excludes"}, "debian."
        )
        mirror = _str(d.get("mirror", "apt-sources"), "debian.mirror")
        if mirror != "apt-sources" and not re.match(r"^(https?|file)://", mirror):
            raise SpecError(f"'debian.mirror' must be 'apt-sources' or an http(s) URL, got {mirror!r}")
        suites = _str_list(d.get("suites"), "debian.suites")
        if mirror != "apt-sources" and not suites:
            raise SpecError("'debian.suites' is required when 'debian.mirror' is a URL")
        dflt = d.get("default-excludes", True)
        if not isinstance(dflt, bool):
            raise SpecError("'debian.default-excludes' must be true or false")
        debian = DebianSpec(
            mirror,
            suites,
            _str_list(d.get("components"), "debian.components") or ("main",),
            _str(d.get("keyring", ""), "debian.keyring"),
            _str_list(d.get("packages"), "debian.packages"),
            _str_list(d.get("exclude"), "debian.exclude"),
            dflt,
        )
    if debian is not None and apk.packages:
        raise SpecError("a spec takes packages from 'debian' or from 'contents' (APK), not both")

    users: list[User] = []
    groups: list[Group] = []
    run_as = ""
    acc = doc.get("accounts")
    if acc is not None:
        if not isinstance(acc, Mapping):
            raise SpecError("'accounts' must be a mapping")
        _check_keys(acc, {"users", "groups", "run-as"}, "accounts.")
        for i, g in enumerate(acc.get("groups") or []):
            k = f"accounts.groups[{i}]"
            if not isinstance(g, Mapping):
                raise SpecError(f"'{k}' must be a mapping")
            _check_keys(g, {"groupname", "gid", "members"}, f"{k}.")
            groups.append(Group(_name(g.get("groupname"), f"{k}.groupname"), _int(g.get("gid"), f"{k}.gid"),
                                _str_list(g.get("members"), f"{k}.members")))
        for i, u in enumerate(acc.get("users") or []):
            k = f"accounts.users[{i}]"
            if not isinstance(u, Mapping):
                raise SpecError(f"'{k}' must be a mapping")
            _check_keys(u, {"username", "uid", "gid", "homedir", "shell"}, f"{k}.")
            name = _name(u.get("username"), f"{k}.username")
            uid = _int(u.get("uid"), f"{k}.uid")
            users.append(User(name, uid, _int(u.get("gid", uid), f"{k}.gid"),
                              _abs_path(u.get("homedir", f"/home/{name}"), f"{k}.homedir"),
                              _abs_path(u.get("shell", "/sbin/nologin"), f"{k}.shell")))
        if acc.get("run-as") is not None:
            run_as = _str(acc.get("run-as"), "accounts.run-as")
            if not run_as.isdigit() and run_as not in {u.username for u in users}:
                raise SpecError(f"'accounts.run-as' names user {run_as!r}, which 'accounts.users' does not define")

    archs = tuple(
        ARCH_ALIASES.get(a) or _bad_arch(a) for a in _str_list(doc.get("archs"), "archs")
    ) or ("amd64",)

    paths: list[PathOp] = []
    for i, p in enumerate(doc.get("paths") or []):
        k = f"paths[{i}]"
        if not isinstance(p, Mapping):
            raise SpecError(f"'{k}' must be a mapping")
        _check_keys(p, {"path", "type", "uid", "gid", "permissions", "source", "recursive"}, f"{k}.")
        ptype = _str(p.get("type", "directory"), f"{k}.type")
        if ptype not in ("directory", "empty-file", "symlink", "permissions"):
            raise SpecError(f"'{k}.type' must be directory, empty-file, symlink or permissions")
        perms = p.get("permissions", 0o755 if ptype == "directory" else 0o644)
        paths.append(PathOp(_abs_path(p.get("path"), f"{k}.path"), ptype, _int(p.get("uid", 0), f"{k}.uid"),
                            _int(p.get("gid", 0), f"{k}.gid"), _int(perms, f"{k}.permissions", 0, 0o7777),
                            _str(p.get("source", ""), f"{k}.source")))

    expose = []
    for i, e in enumerate(_str_list(doc.get("expose"), "expose")):
        m = re.fullmatch(r"(\d{1,5})(?:/(tcp|udp))?", e)
        if not m or not 0 < int(m.group(1)) < 65536:
            raise SpecError(f"'expose[{i}]' must be PORT or PORT/tcp|udp, got {e!r}")
        expose.append(f"{m.group(1)}/{m.group(2) or 'tcp'}")

    work_dir = _abs_path(doc["work-dir"], "work-dir") if doc.get("work-dir") else ""

    return Spec(
        path=path,
        base=base,
        apk=apk,
        debian=debian,
        users=tuple(users),
        groups=tuple(groups),
        run_as=run_as,
        entrypoint=_command(doc.get("entrypoint"), "entrypoint"),
        cmd=_command(doc.get("cmd"), "cmd"),
        environment=_str_map(doc.get("environment"), "environment"),
        work_dir=work_dir,
        archs=archs,
        paths=tuple(paths),
        annotations=_str_map(doc.get("annotations"), "annotations"),
        labels=_str_map(doc.get("labels"), "labels"),
        expose=tuple(sorted(set(expose))),
        excludes=_str_list(doc.get("excludes"), "excludes"),
        python=_python(doc.get("python")),
    )


def _name(obj: Any, key: str) -> str:
    s = _str(obj, key)
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", s):
        raise SpecError(f"'{key}' must be a lowercase account name, got {s!r}")
    return s


def _bad_arch(a: str) -> str:
    raise SpecError(f"'archs' has unknown architecture {a!r} (known: {', '.join(sorted(ARCH_ALIASES))})")


def _python(obj: Any) -> PythonSpec | None:
    if obj is None:
        return None
    if not isinstance(obj, Mapping):
        raise SpecError("'python' must be a mapping")
    _check_keys(
        obj,
        {"version", "interpreter", "requirements", "requirements-file", "wheels", "project", "packages", "scripts",
         "site-packages", "app-dir"},
        "python.",
    )
    version = _str(obj.get("version", ""), "python.version")
    if version and not re.fullmatch(r"3\.\d{1,2}", version):
        raise SpecError(f"'python.version' must look like 3.11, got {version!r}")
    reqs = _str_list(obj.get("requirements"), "python.requirements")
    for i, r in enumerate(reqs):
        if r.startswith("-") or not re.match(r"^[A-Za-z0-9]", r):
            raise SpecError(f"'python.requirements[{i}]' must be a requirement such as 'flask>=3', got {r!r}")
    project = Path(obj["project"]) if obj.get("project") else None
    if project is not None and not (project / "pyproject.toml").is_file():
        raise SpecError(f"'python.project' {project} has no pyproject.toml")
    rf = Path(obj["requirements-file"]) if obj.get("requirements-file") else None
    if rf is not None and not rf.is_file():
        raise SpecError(f"'python.requirements-file' {rf} does not exist")
    packages = _str_list(obj.get("packages"), "python.packages")
    for i, p in enumerate(packages):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p):
            raise SpecError(f"'python.packages[{i}]' must be an import package name, got {p!r}")
    if packages and project is None:
        raise SpecError("'python.packages' needs 'python.project'")
    return PythonSpec(
        version=version,
        interpreter=_abs_path(obj["interpreter"], "python.interpreter") if obj.get("interpreter") else "",
        requirements=reqs,
        requirements_file=rf,
        wheels=tuple(Path(w) for w in _str_list(obj.get("wheels"), "python.wheels")),
        project=project,
        packages=packages,
        scripts=_str_list(obj.get("scripts"), "python.scripts"),
        site_packages=_abs_path(obj.get("site-packages", "/app/site-packages"), "python.site-packages"),
        app_dir=_abs_path(obj.get("app-dir", "/app"), "python.app-dir"),
    )


def require_keys(doc: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    """``doc`` (a spec file, includes merged) unless it is empty or all its keys are empty: that file
    would build an empty image, which is never what was meant."""
    if not any(value not in (None, {}, [], "") for value in doc.values()):
        raise SpecError(f"spec file {path} is empty: give at least one of base, contents, debian, python, paths")
    return doc


def package_root(project: Path, package: str) -> Path | None:
    """Where ``python.packages`` finds ``package``: ``src/PACKAGE`` or ``PACKAGE`` under the project."""
    return next((r / package for r in (project / "src", project) if (r / package / "__init__.py").is_file()), None)


def load_spec(path: Path, context: Path | None = None) -> Spec:
    """Read the spec at ``path``; the files it names must lie inside ``context`` (default: its directory)."""
    root = (context or path.absolute().parent).resolve()
    spec = parse_spec(require_keys(_load_yaml(path, root), path), path.resolve())
    py = spec.python
    if py is not None and py.project is not None:
        for pkg in py.packages:
            found = package_root(py.project, pkg)
            if found is not None:  # a missing package is reported when the app layer is made
                confine(found, root, f"'python.packages' {pkg!r}:")
    return spec
