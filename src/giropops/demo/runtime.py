"""Running the demo's image: a container engine (podman or docker) found by probing it, plus a loopback
``redis-server`` when there is one; and stopping both again (``giropops demo --stop``).

Process management only: the images, keys and reports are ``giropops.demo.steps``'.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from giropops import jsonio
from giropops.demo.steps import DemoError, DemoPaths
from giropops.fileio import atomic_write

READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class ContainerEngine:
    name: str  # podman | docker
    binary: str


@dataclass(frozen=True)
class EngineProbe:
    engine: ContainerEngine | None
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
    atomic_write(conf, PODMAN_CONF.encode())
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
            return EngineProbe(ContainerEngine(name, binary), tuple(problems))
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


def _engine_run(engine: ContainerEngine, args: Sequence[str], env: Mapping[str, str] | None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([engine.binary, *args], capture_output=True, text=True, timeout=timeout,
                              env=dict(env) if env is not None else None, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DemoError(f"{engine.name} {args[0]} timed out") from exc


def _wait_ready(url: str, engine: ContainerEngine, name: str, env: Mapping[str, str] | None) -> None:
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


def run_app(paths: DemoPaths, engine: ContainerEngine, tag: str, port: int, use_redis: bool = True,
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
    atomic_write(paths.run_state, json.dumps(state.to_json(), indent=2).encode())
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

