"""The main job, as library steps: build, SBOM, scan, compare, sign + verify, run.

``giropops demo`` (``giropops.cli.demo``) calls these in order and prints what each
returned; nothing here prints.  Every step writes into one work directory
(``DemoPaths``) and returns a small result the summary is made of, so a test can
check each claim against the files on disk.

Steps and the parts of the toolkit they use:

  build      ``giropops.build`` (the repository's ``giropops.yaml``) -> an archive and an OCI layout
  sbom       ``giropops.sbom`` -> SPDX 2.3 and CycloneDX 1.6 JSON
  scan       ``giropops.vuln`` against the local database; a missing, empty or incomplete database
             raises ``DatabaseNotReadyError`` like every scan does (the caller reports that the scan
             could not run and goes on), a stale one comes back as ``ScanSummary.stale``
  compare    the same for the conventional image (``specs/conventional-python3-debian12.yaml``,
             built the same way; the builder's cache makes the second build nearly free)
  sign       ``giropops.sign``: a key pair in the work directory, the layout signed offline as
             ``cosign save`` lays signatures out, then verified with the public key
  run        a container engine (podman or docker) found by probing it, plus a loopback
             ``redis-server`` when there is one
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from giropops import jsonio
from giropops.build.builder import Builder
from giropops.build.cache import Cache
from giropops.build.output import write_output
from giropops.build.spec import load_spec
from giropops.errors import GiropopsError
from giropops.oci.transport import ArchiveSpec, OCIDirSpec, open_image
from giropops.progress import NO_PROGRESS, Progress
from giropops.sbom import SBOM, generate, subject_for
from giropops.sbom.formats import encode
from giropops.sign.attached import Trust
from giropops.sign.image import sign_image, verify_image
from giropops.sign.keys import SigningKey, VerifyingKey, write_key_pair
from giropops.sign.storage import LayoutStore
from giropops.vuln.db.store import VulnDB
from giropops.vuln.match import scan
from giropops.vuln.model import SEVERITIES
from giropops.vuln.report import Format, render
from giropops.vuln.report.view import ReportView
from giropops.vuln.scan import view_for

SPEC_NAME = "giropops.yaml"
CONVENTIONAL_SPEC = Path("specs") / "conventional-python3-debian12.yaml"
DEFAULT_TAG = "localhost/giropops-senhas:demo"
CONVENTIONAL_TAG = "localhost/giropops-senhas:conventional"
DB_STALE_AFTER = timedelta(days=7)
# What a distroless image leaves out on purpose; the summary says which of them each image has.
TOOLS = ("bash", "dash", "apt", "dpkg", "perl-base", "python3-pip")
READY_TIMEOUT = 60.0


class DemoError(GiropopsError):
    """A demo step could not do what it claims (the app did not start, the spec is missing...)."""


# --------------------------------------------------------------------------- where things go


@dataclass(frozen=True)
class DemoPaths:
    workdir: Path

    @property
    def archive(self) -> Path:
        return self.workdir / "giropops-senhas.tar"

    @property
    def layout(self) -> Path:
        return self.workdir / "giropops-senhas.oci"

    @property
    def conventional_archive(self) -> Path:
        return self.workdir / "conventional.tar"

    @property
    def spdx(self) -> Path:
        return self.workdir / "giropops-senhas.spdx.json"

    @property
    def cyclonedx(self) -> Path:
        return self.workdir / "giropops-senhas.cdx.json"

    @property
    def cves(self) -> Path:
        return self.workdir / "giropops-senhas.cves.json"

    @property
    def key_prefix(self) -> Path:
        return self.workdir / "cosign"

    @property
    def private_key(self) -> Path:
        return self.workdir / "cosign.key"

    @property
    def public_key(self) -> Path:
        return self.workdir / "cosign.pub"

    @property
    def summary(self) -> Path:
        return self.workdir / "summary.json"

    @property
    def run_state(self) -> Path:
        return self.workdir / "run.json"

    @property
    def redis_pid(self) -> Path:
        return self.workdir / "redis.pid"


def find_spec(explicit: Path | None, cwd: Path) -> Path:
    """``--spec``; else ``giropops.yaml`` in ``cwd`` or a parent; else the checkout giropops runs from."""
    if explicit is not None:
        if not explicit.is_file():
            raise DemoError(f"spec {explicit} not found")
        return explicit.resolve()
    for d in (cwd, *cwd.parents):
        if (d / SPEC_NAME).is_file() and (d / "pyproject.toml").is_file():
            return (d / SPEC_NAME).resolve()
    checkout = Path(__file__).resolve().parents[2]  # src/giropops/pipeline.py -> the repository (editable install)
    if (checkout / SPEC_NAME).is_file():
        return checkout / SPEC_NAME
    raise DemoError(f"no {SPEC_NAME} in {cwd} or its parents: run in the giropops repository or pass --spec FILE")


def conventional_spec_for(spec: Path) -> Path | None:
    path = spec.parent / CONVENTIONAL_SPEC
    return path if path.is_file() else None


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class BuiltImage:
    spec: Path
    tag: str
    digest: str
    archive: Path
    archive_size: int  # bytes on disk
    compressed_size: int  # config + layers, as a registry stores them
    layers: int
    os_packages: int  # what the builder installed
    reused_layers: tuple[str, ...]
    layout: Path | None


def build(spec_path: Path, tag: str, archive: Path, layout: Path | None, cache: Cache | None = None,
          progress: Progress = NO_PROGRESS, context: Path | None = None) -> BuiltImage:
    """Build ``spec_path`` and write it to ``archive`` (and to a fresh OCI layout ``layout``, named ``tag``).

    ``context``: the directory the spec's files must lie in (default: the spec's directory).
    """
    result = Builder(cache, progress).build(load_spec(spec_path, context))
    image = result.image
    write_output(image, ArchiveSpec(archive), [tag], progress)
    if layout is not None:
        # A fresh layout every run: signatures of an earlier run must not pile up beside the new image.
        tmp = Path(tempfile.mkdtemp(dir=layout.parent, prefix=f".{layout.name}."))
        try:
            write_output(image, OCIDirSpec(tmp / "layout"), [tag], progress)
            if layout.exists():
                shutil.rmtree(layout)
            os.replace(tmp / "layout", layout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return BuiltImage(spec_path, tag, image.digest, archive, archive.stat().st_size, image.compressed_size,
                      len(image.layers), len(result.packages), tuple(result.reused_layers), layout)


# --------------------------------------------------------------------------- SBOM


@dataclass(frozen=True)
class SBOMFiles:
    sbom: SBOM
    spdx: Path
    cyclonedx: Path

    @property
    def packages(self) -> int:
        return len(self.sbom.packages)

    def count(self, type_: str) -> int:
        return count_packages(self.sbom, type_)

    def tools(self) -> tuple[str, ...]:
        return tools_in(self.sbom)


def count_packages(sbom: SBOM, type_: str) -> int:
    return sum(1 for p in sbom.packages if p.type == type_)


def tools_in(sbom: SBOM) -> tuple[str, ...]:
    """Which of ``TOOLS`` (shells, package managers) the image has."""
    names = {p.name for p in sbom.packages}
    return tuple(t for t in TOOLS if t in names)


def sbom_of(archive: Path, progress: Progress = NO_PROGRESS) -> SBOM:
    spec = f"archive://{archive}"
    image = open_image(spec)
    return generate(image, subject_for(image, spec), progress=progress)


def write_sboms(archive: Path, spdx: Path, cyclonedx: Path, progress: Progress = NO_PROGRESS) -> SBOMFiles:
    sbom = sbom_of(archive, progress)
    _atomic_write(spdx, encode(sbom, "spdx-json"))
    _atomic_write(cyclonedx, encode(sbom, "cyclonedx-json"))
    return SBOMFiles(sbom, spdx, cyclonedx)


# --------------------------------------------------------------------------- vulnerability database


@dataclass(frozen=True)
class DbState:
    path: Path
    present: bool
    advisories: int = 0
    newest: str | None = None  # newest advisory's "modified"
    age: timedelta | None = None

    @property
    def stale(self) -> bool:
        return self.present and (self.age is None or self.age > DB_STALE_AFTER)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def db_state(path: Path, now: datetime | None = None) -> DbState:
    """What the scan can rely on: no database at all (never updated), or one whose newest advisory has an age."""
    if not path.is_file():
        return DbState(path, False)
    with VulnDB(path) as db:
        st = db.status()
    newest = _parse_time(st.newest_modified)
    age = None if newest is None else (now or datetime.now(UTC)) - newest
    return DbState(path, True, st.advisories, st.newest_modified, age)


@dataclass(frozen=True)
class ScanSummary:
    view: ReportView
    report: Path | None
    stale: str | None = None  # the database's one-line staleness warning, as every scan gives it

    @property
    def counts(self) -> dict[str, int]:
        return self.view.counts()

    @property
    def total(self) -> int:
        return len(self.view.findings)


def scan_sbom(sbom: SBOM, db_path: Path, report: Path | None = None) -> ScanSummary:
    """Match ``sbom`` against the database; ``report`` gets the JSON report (docs/cves-json.md).

    Raises ``DatabaseNotReadyError`` when the database is missing, empty or lacks the SBOM's ecosystems."""
    with VulnDB(db_path) as db:
        result = scan(sbom, db)
        stale = db.stale_warning()
    view = view_for(result)  # disputed findings and "not affected" statements are not counted
    if report is not None:
        _atomic_write(report, render(view, Format.JSON).encode())
    return ScanSummary(view, report, stale)


def counts_line(counts: Mapping[str, int]) -> str:
    """``2C 10H 31M 5L``, Scout's shorthand, plus ``31N`` for negligible and ``3?`` for unknown severities."""
    text = f"{counts['critical']}C {counts['high']}H {counts['medium']}M {counts['low']}L"
    if counts.get("negligible"):
        text += f" {counts['negligible']}N"
    return text + (f" {counts['unspecified']}?" if counts.get("unspecified") else "")


# --------------------------------------------------------------------------- keys and signatures


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    generated: bool


def ensure_key_pair(paths: DemoPaths, password: bytes) -> KeyPair:
    """The work directory's ``cosign.key`` / ``cosign.pub``, generated when neither exists."""
    have_key, have_pub = paths.private_key.exists(), paths.public_key.exists()
    if have_key and have_pub:
        return KeyPair(paths.private_key, paths.public_key, False)
    if have_key or have_pub:
        present = paths.private_key if have_key else paths.public_key
        raise DemoError(f"{present} exists without its other half; remove it or restore the pair")
    written, _ = write_key_pair(paths.key_prefix, password)
    return KeyPair(written.private, written.public, True)


@dataclass(frozen=True)
class Signed:
    layout: Path
    name: str
    digest: str
    signatures: int  # attached to the digest after signing
    verified: int  # signatures that verified with the public key

    @property
    def target(self) -> str:
        return f"oci-dir://{self.layout}:{self.name}"


def sign_and_verify(layout: Path, name: str, keys: KeyPair, password: bytes,
                    annotations: Mapping[str, str] | None = None) -> Signed:
    """Sign the layout's image offline (cosign's ``.sig`` layout), then verify it with the public key."""
    key = SigningKey.load(keys.private, password)
    store = LayoutStore(layout, name)
    subject = store.subject()
    result = sign_image(store, key, dict(annotations or {}), subject)
    check = verify_image(LayoutStore(layout, name), Trust(key=VerifyingKey.load(keys.public)),
                         dict(annotations or {}))
    return Signed(layout, name, str(subject.digest), result.total, len(check.signatures))


# --------------------------------------------------------------------------- container engine


@dataclass(frozen=True)
class Engine:
    name: str  # podman | docker
    binary: str


@dataclass(frozen=True)
class EngineProbe:
    engine: Engine | None
    problems: tuple[str, ...]  # why each engine found was not usable


PODMAN_HINT = (
    "podman on some hosts needs a containers.conf with '[containers] default_ulimits = []' and "
    "'[engine] cgroup_manager = \"cgroupfs\"' plus runtime = \"runc\"; point CONTAINERS_CONF at it"
)

#: What podman says when the host, not the image, is the problem (rlimits it may not set, a cgroup manager
#: that is not there, a crun that fails on this kernel): the demo's own containers.conf fixes these.
PODMAN_HOST_PROBLEMS = ("rlimit", "ulimit", "cgroup", "crun", "systemd")
PODMAN_CONF = (
    "# Written by giropops demo: podman settings that work on hosts where the defaults do not\n"
    "# (containers may not raise rlimits, no systemd cgroup manager, crun failing on the kernel).\n"
    "[containers]\ndefault_ulimits = []\n\n"
    '[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\nevents_logger = "file"\n'
)
ENGINE_INSTALL_HINT = (
    "install podman, runc and redis-server (Debian/Ubuntu, as root: apt-get install podman runc redis-server; "
    "./scripts/run does this when run as root on Debian), then run the demo again"
)


def podman_host_problem(message: str) -> bool:
    """Whether a podman failure names one of the host problems ``PODMAN_CONF`` works around."""
    lower = message.lower()
    return any(word in lower for word in PODMAN_HOST_PROBLEMS)


def write_podman_conf(paths: DemoPaths) -> Path:
    """The demo's own ``containers.conf`` in the work directory (``CONTAINERS_CONF`` for the retry)."""
    conf = paths.workdir / "containers.conf"
    _atomic_write(conf, PODMAN_CONF.encode())
    return conf


def check_serving(url: str, timeout: float = 10.0) -> int:
    """A real request to the app's page; the HTTP status (``DemoError`` when nothing answers)."""
    try:
        with urllib.request.urlopen(url + "/", timeout=timeout) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        raise DemoError(f"{url}/ did not answer: {exc}") from exc


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def probe_engine(env: Mapping[str, str] | None = None) -> EngineProbe:
    """The first of podman, docker whose CLI answers ``info`` (a docker client without an engine does not)."""
    problems: list[str] = []
    for name in ("podman", "docker"):
        binary = shutil.which(name)
        if binary is None:
            continue
        try:
            proc = subprocess.run([binary, "info"], capture_output=True, text=True, timeout=60,
                                  env=dict(env) if env is not None else None, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            problems.append(f"{name}: {exc}")
            continue
        if proc.returncode == 0:
            return EngineProbe(Engine(name, binary), tuple(problems))
        problems.append(f"{name} info failed: {_first_line(proc.stderr)}")
    return EngineProbe(None, tuple(problems))


@dataclass(frozen=True)
class Running:
    engine: str
    container: str
    url: str
    store: str  # "redis://127.0.0.1:PORT/0" or "embedded"
    redis_pid: int | None
    engine_env: Mapping[str, str] = field(default_factory=dict)  # what `stop` needs to find the container again

    def to_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "container": self.container, "url": self.url, "store": self.store,
                "redis_pid": self.redis_pid, "engine_env": dict(self.engine_env)}


# The variables that decide which engine configuration and storage a container lives in.
ENGINE_ENV = ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF", "DOCKER_HOST",
              "DOCKER_CONTEXT", "TMPDIR", "XDG_RUNTIME_DIR")


class EngineUnusable(DemoError):
    """The engine could not start a container at all (a host configuration problem, not the image's)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def container_name(workdir: Path) -> str:
    return "giropops-demo-" + hashlib.sha256(str(workdir.resolve()).encode()).hexdigest()[:10]


def _is_our_redis(pid: int, port: int | None = None) -> bool:
    """Still a redis-server (on ``port`` when given): a recycled pid must never be signalled."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"redis-server" in cmdline and (port is None or f":{port}".encode() in cmdline)


def start_redis(paths: DemoPaths, port: int) -> int:
    """A ``redis-server`` on 127.0.0.1:``port`` that outlives the demo (stopped by ``giropops demo --stop``)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise DemoError("redis-server not found")
    log = paths.workdir / "redis.log"
    proc = subprocess.run(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--daemonize", "yes", "--pidfile", str(paths.redis_pid.resolve()), "--logfile", str(log.resolve()),
         "--dir", str(paths.workdir.resolve())],
        capture_output=True, text=True, timeout=30, check=False,
    )
    if proc.returncode != 0:
        raise DemoError(f"redis-server did not start: {_first_line(proc.stderr or proc.stdout)}")
    import redis

    deadline = time.monotonic() + 15
    while True:
        try:
            redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping()
            pid = int(paths.redis_pid.read_text().strip())
            break
        except (redis.RedisError, OSError, ValueError) as exc:
            if time.monotonic() > deadline:
                _stop_redis_of(paths)
                raise DemoError(f"redis-server on 127.0.0.1:{port} did not answer: {exc}") from exc
            time.sleep(0.1)
    return pid


def _stop_redis_of(paths: DemoPaths) -> int | None:
    """Stop the redis-server whose pid file is in the work directory, if it is still that redis-server."""
    try:
        pid = int(paths.redis_pid.read_text().strip())
    except (OSError, ValueError):
        return None
    if not _is_our_redis(pid):
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _is_our_redis(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pid


def _engine_run(engine: Engine, args: Sequence[str], env: Mapping[str, str] | None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([engine.binary, *args], capture_output=True, text=True, timeout=timeout,
                              env=dict(env) if env is not None else None, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DemoError(f"{engine.name} {args[0]} timed out") from exc


def _wait_ready(url: str, engine: Engine, name: str, env: Mapping[str, str] | None) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        state = _engine_run(engine, ["inspect", "--format", "{{.State.Running}}", name], env, 30)
        if state.returncode == 0 and state.stdout.strip() == "false":
            logs = _engine_run(engine, ["logs", name], env, 30)
            raise DemoError(f"the container {name} exited: {_first_line(logs.stderr + logs.stdout)}")
        time.sleep(0.2)
    raise DemoError(f"{url}/readyz did not answer 200 within {READY_TIMEOUT:.0f} s ({last})")


def run_app(paths: DemoPaths, engine: Engine, tag: str, port: int, use_redis: bool = True,
            env: Mapping[str, str] | None = None) -> Running:
    """Load the archive into the engine and run the app on 127.0.0.1:``port`` (host network)."""
    stop(paths, env)  # an earlier run of this work directory
    load = _engine_run(engine, ["load", "-i", str(paths.archive)], env)
    if load.returncode != 0:
        raise EngineUnusable(f"{engine.name} load failed: {_first_line(load.stderr)}")
    redis_pid = None
    store = "embedded"
    if use_redis and shutil.which("redis-server"):
        redis_port = free_port()
        redis_pid = start_redis(paths, redis_port)
        store = f"redis://127.0.0.1:{redis_port}/0"
    name = container_name(paths.workdir)
    args = ["run", "-d", "--name", name, "--network", "host", "-e", "HOST=127.0.0.1", "-e", f"PORT={port}"]
    if store != "embedded":
        args += ["-e", f"REDIS_URL={store}"]
    url = f"http://127.0.0.1:{port}"
    source = env if env is not None else os.environ
    state = Running(engine.name, name, url, store, redis_pid, {k: source[k] for k in ENGINE_ENV if k in source})
    _atomic_write(paths.run_state, json.dumps(state.to_json(), indent=2).encode())
    started = _engine_run(engine, [*args, tag], env)
    if started.returncode != 0:
        stop(paths, env)
        raise EngineUnusable(f"{engine.name} run failed: {_first_line(started.stderr)}")
    try:
        _wait_ready(url, engine, name, env)
    except DemoError:
        stop(paths, env)
        raise
    return state


@dataclass
class Stopped:
    container: str | None = None
    redis_pid: int | None = None
    notes: list[str] = field(default_factory=list)


def stop(paths: DemoPaths, env: Mapping[str, str] | None = None) -> Stopped:
    """Stop what ``run_app`` started for this work directory (its container and its redis-server only)."""
    out = Stopped()
    try:
        state = jsonio.loads(paths.run_state.read_bytes(), str(paths.run_state))
    except (OSError, jsonio.DocumentError):
        return out
    binary = shutil.which(str(state.get("engine", "")))
    name = str(state.get("container", ""))
    saved = state.get("engine_env")
    engine_env = {**(env if env is not None else os.environ)}
    if isinstance(saved, dict):
        # The container lives where the run put it, whatever this shell's configuration says.
        engine_env.update({k: str(v) for k, v in saved.items() if k in ENGINE_ENV})
    if binary and name:
        # podman waits for a graceful stop unless told otherwise; docker's rm -f kills at once (and has no -t)
        rm = ["rm", "-f", "-t", "0"] if state.get("engine") == "podman" else ["rm", "-f"]
        proc = subprocess.run([binary, *rm, name], capture_output=True, text=True, timeout=120,
                              env=engine_env, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            out.container = name
        elif proc.returncode != 0:
            out.notes.append(f"{name}: {_first_line(proc.stderr)}")
    pid = state.get("redis_pid")
    store = str(state.get("store", ""))
    port = store.rsplit(":", 1)[-1].split("/")[0] if store.startswith("redis://") else ""
    if isinstance(pid, int) and port.isdigit() and _is_our_redis(pid, int(port)):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _is_our_redis(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        out.redis_pid = pid
    paths.run_state.unlink(missing_ok=True)
    return out


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Side:
    """One image's column of the summary."""

    name: str
    digest: str
    archive_size: int
    compressed_size: int
    packages: int
    deb_packages: int
    python_packages: int
    tools: tuple[str, ...]
    vulnerabilities: dict[str, int] | None  # by severity; None when not scanned

    @property
    def total_vulnerabilities(self) -> int | None:
        return None if self.vulnerabilities is None else sum(self.vulnerabilities.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "digest": self.digest, "archive_size": self.archive_size,
            "compressed_size": self.compressed_size, "packages": self.packages,
            "deb_packages": self.deb_packages, "python_packages": self.python_packages,
            "tools": list(self.tools), "vulnerabilities": self.vulnerabilities,
            "vulnerabilities_total": self.total_vulnerabilities,
        }


def side_of(name: str, built: BuiltImage, sbom: SBOM, scanned: ScanSummary | None) -> Side:
    return Side(name, built.digest, built.archive_size, built.compressed_size, len(sbom.packages),
                count_packages(sbom, "deb"), count_packages(sbom, "python"), tools_in(sbom),
                {s: scanned.counts[s] for s in SEVERITIES} if scanned is not None else None)


def write_summary(paths: DemoPaths, data: Mapping[str, Any]) -> None:
    _atomic_write(paths.summary, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
