"""``giropops-senhas``: serve the app with gunicorn, configured from the environment.

``HOST`` (default ``0.0.0.0``), ``PORT`` (default 5000), ``WORKERS`` (processes; default: the number of CPUs,
at least 2) and ``THREADS`` (threads per process, default 4) — or the same as options.  With the embedded store
(no ``REDIS_URL``/``REDIS_HOST``) the passwords live in one process's memory, so the server runs **one**
worker whatever ``WORKERS`` says, and says so.  ``SIGTERM`` stops gracefully: no new connections, requests in
flight finish (up to ``GRACEFUL_TIMEOUT`` seconds, default 20), then the process exits 0.

Metrics from all workers are summed through prometheus_client's multiprocess mode: this module sets
``PROMETHEUS_MULTIPROC_DIR`` to a fresh temporary directory (or empties the one the environment names) before
any worker imports prometheus_client, and removes the directory it created on exit.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.config import KNOWN_SETTINGS
from gunicorn.glogging import Logger as GunicornLogger

from .store import ConfigError, redis_config_from_env
from .worker import supported as head_first_supported

log = logging.getLogger("giropops_senhas")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # same name as metrics.MULTIPROC_ENV, without importing prometheus
DEFAULT_PORT = 5000
DEFAULT_THREADS = 4
EMBEDDED_THREADS = 8
WORKER_CLASS = "giropops_senhas.worker.HeadFirstWorker"


@dataclass(frozen=True)
class ServeSettings:
    host: str
    port: int
    workers: int
    threads: int
    graceful_timeout: int
    access_log: bool
    store: str
    embedded: bool
    notes: tuple[str, ...] = ()

    @property
    def bind(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int, cli: int | None = None) -> int:
    if cli is not None:
        value, text = cli, str(cli)
    else:
        text = env.get(name, "").strip()
        if not text:
            return default
        if not (text.isascii() and text.isdecimal()):
            raise ConfigError(f"{name} must be a whole number from {low} to {high} (got {text!r})")
        value = int(text)
    if not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high} (got {text!r})")
    return value


def settings_from_env(env: Mapping[str, str], args: argparse.Namespace | None = None) -> ServeSettings:
    args = args or argparse.Namespace(host=None, port=None, workers=None, threads=None)
    host = args.host or env.get("HOST", "").strip() or "0.0.0.0"  # noqa: S104 - a server, meant to be reached
    port = _int(env, "PORT", DEFAULT_PORT, 1, 65535, args.port)
    cpus = os.cpu_count() or 1
    workers = _int(env, "WORKERS", max(2, cpus), 1, 64, args.workers)
    threads = _int(env, "THREADS", DEFAULT_THREADS, 1, 256, args.threads)
    graceful = _int(env, "GRACEFUL_TIMEOUT", 20, 0, 3600)
    access_log = env.get("ACCESS_LOG", "").strip().lower() in ("1", "true", "yes", "on")
    redis = redis_config_from_env(env)
    notes: list[str] = []
    if redis is None:
        notes.append(
            "no REDIS_URL or REDIS_HOST: using the embedded in-process store "
            "(passwords are kept in memory and lost on restart)"
        )
        if workers != 1 and (args.workers is not None or env.get("WORKERS", "").strip()):
            notes.append(
                f"the embedded store lives in one process: serving with 1 worker instead of {workers}, "
                f"{max(threads, EMBEDDED_THREADS)} threads (set REDIS_URL or REDIS_HOST to run several workers)"
            )
        workers = 1
        threads = max(threads, EMBEDDED_THREADS)
        store = "embedded"
    else:
        store = f"Redis at {redis.description}"
    return ServeSettings(host, port, workers, threads, graceful, access_log, store, redis is None, tuple(notes))


def gunicorn_options(settings: ServeSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bind": [settings.bind],
        "workers": settings.workers,
        "threads": settings.threads,
        # gthread, but a request is read in the event loop first (worker.py): slow clients wait there, and 64
        # of them no longer freeze the server (issue 14). A request wholly arrived is answered in the loop
        # itself; the threads take the rest (bodies still coming, Expect, chunked) and every request while the
        # app is slow (a store timing out).
        "worker_class": WORKER_CLASS if head_first_supported() else "gthread",
        "graceful_timeout": settings.graceful_timeout,
        "timeout": 30,
        "keepalive": 5,
        # Each worker listens on its own SO_REUSEPORT socket; the kernel spreads new connections over them (by
        # a hash of the addresses).
        # With one shared socket the worker that wakes first takes nearly every connection (measured: 29 of
        # 32 wrk connections on one of two workers), and kept-alive clients then stay on a saturated worker.
        "reuse_port": True,
        "accesslog": "-" if settings.access_log else None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "giropops-senhas",
        "child_exit": _child_exit,
        "logger_class": ListeningLogger,
    }
    # Newer gunicorn opens a control socket under $HOME by default; a container's read-only root has no use
    # for it (and older gunicorn has no such setting).
    known = {s.name for s in KNOWN_SETTINGS}
    if "control_socket_disable" in known:
        options["control_socket_disable"] = True
    return options


class ListeningLogger(GunicornLogger):  # type: ignore[misc]  # gunicorn has no type hints
    """gunicorn's logger, except that "Listening at:" names the address.

    With ``reuse_port`` the arbiter holds no listening socket (each worker binds its own), so gunicorn
    prints an empty "Listening at:  (PID)"; the address the workers bind is in the configuration."""

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if msg.startswith("Listening at:") and args and not args[0]:
            where = ",".join(f"http://{b}" for b in self.cfg.bind)
            args = (f"{where} (each worker binds it with SO_REUSEPORT)", *args[1:])
        super().info(msg, *args, **kwargs)


def _child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


class SenhasServer(BaseApplication):  # type: ignore[misc]  # gunicorn has no type hints
    def __init__(self, options: Mapping[str, Any], factory: Callable[[], Any]) -> None:
        self.options = dict(options)
        self.factory = factory
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        return self.factory()


def _create_app() -> Any:
    # Imported in the worker, after PROMETHEUS_MULTIPROC_DIR is set.
    from .app import create_app

    return create_app()


def reserve_address(host: str, port: int) -> socket.socket:
    """Check that nothing listens on host:port, then hold the address for the server's lifetime.

    Workers bind their own SO_REUSEPORT sockets (see ``gunicorn_options``); a port already taken would only
    make them fail and be respawned forever.  A plain bind fails if any socket holds the port, so the error
    is said once, at start-up.  The reservation that follows is bound with SO_REUSEPORT but never listens:
    it takes no connections, and no other program can take the port while workers come and go.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
    reserved = socket.socket(family, kind, proto)
    try:
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reserved.bind(address)
    except OSError:
        reserved.close()
        raise
    return reserved


def _metrics_dir() -> tuple[Path, bool]:
    """The multiprocess metrics directory and whether this process created it (and so removes it)."""
    given = os.environ.get(MULTIPROC_ENV, "").strip()
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # values from an earlier run would be summed in
            stale.unlink()
        return path, False
    path = Path(tempfile.mkdtemp(prefix="giropops-senhas-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return path, True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="giropops-senhas",
        description="Serve the giropops-senhas password generator (gunicorn). Settings come from the "
        "environment (HOST, PORT, WORKERS, THREADS, REDIS_URL or REDIS_HOST/REDIS_PORT/REDIS_PASSWORD, "
        "GRACEFUL_TIMEOUT, ACCESS_LOG); options override them.",
    )
    parser.add_argument("--host", help="address to listen on (env HOST, default 0.0.0.0)")
    parser.add_argument("--port", type=int, help=f"TCP port (env PORT, default {DEFAULT_PORT})")
    parser.add_argument("--workers", type=int, help="worker processes (env WORKERS, default: CPUs, at least 2)")
    parser.add_argument("--threads", type=int, help=f"threads per worker (env THREADS, default {DEFAULT_THREADS})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s", stream=sys.stderr
    )
    try:
        settings = settings_from_env(os.environ, args)
    except ConfigError as e:
        print(f"giropops-senhas: error: {e}", file=sys.stderr)
        return 2

    try:
        reserved = reserve_address(settings.host, settings.port)
    except OSError as e:
        print(f"giropops-senhas: error: cannot listen on {settings.bind}: {e.strerror or e}", file=sys.stderr)
        return 1

    log.info(
        "giropops-senhas on http://%s: store: %s; %d worker(s) x %d thread(s)",
        settings.bind, settings.store, settings.workers, settings.threads,
    )
    for note in settings.notes:
        log.warning("%s", note)
    if not head_first_supported():
        log.warning(
            "this gunicorn is not a 27.x release: serving with its plain gthread worker, in which slow clients "
            "can hold every thread (see giropops_senhas/worker.py)"
        )

    metrics_dir, created = _metrics_dir()
    log.info("metrics of all workers are summed in %s", metrics_dir)
    master = os.getpid()
    try:
        SenhasServer(gunicorn_options(settings), _create_app).run()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        # Workers are forks of this process and leave through this same frame when they exit: only the
        # master may remove the directory the other workers are still writing to.
        if os.getpid() == master:
            reserved.close()
            if created:
                shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
