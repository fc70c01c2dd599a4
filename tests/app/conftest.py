"""Fixtures for the giropops-senhas app: Flask test clients on a real Redis, and the real server process."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from giropops_senhas.app import create_app
from tests.support.paths import REPO_ROOT
from tests.support.services import RedisServer, free_port, require_binary

CONSOLE_SCRIPT = Path(sys.executable).parent / "giropops-senhas"
ORIGINAL_APP = REPO_ROOT / "bench" / "original_app.py"


@pytest.fixture
def app(redis_server: RedisServer) -> Flask:
    """The app on a real redis-server (REDIS_URL), as ``giropops-senhas`` would build it in a worker."""
    return create_app({"ENV": {"REDIS_URL": redis_server.url}})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def embedded_app() -> Flask:
    """No REDIS_* at all: the embedded store."""
    return create_app({"ENV": {}})


@pytest.fixture
def embedded_client(embedded_app: Flask) -> FlaskClient:
    return embedded_app.test_client()


def _original_module() -> Any:
    """``bench/original_app.py`` imported once per test process (it registers a metric in the global registry)."""
    nome = "giropops_original_app"
    if nome not in sys.modules:
        spec = importlib.util.spec_from_file_location(nome, ORIGINAL_APP)
        assert spec is not None and spec.loader is not None
        modulo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(modulo)
        sys.modules[nome] = modulo
    return sys.modules[nome]


@pytest.fixture
def original_client(redis_server: RedisServer) -> Iterator[FlaskClient]:
    """The ORIGINAL app (``bench/original_app.py``, unchanged) on the same real redis-server as ``client``."""
    modulo = _original_module()
    anterior = modulo.r
    modulo.r = redis.StrictRedis.from_url(redis_server.url, decode_responses=True)
    try:
        yield modulo.app.test_client()
    finally:
        modulo.r.close()
        modulo.r = anterior


def http(
    method: str, url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with the standard library; any status is returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


def post_json(url: str, payload: Any) -> tuple[int, Any]:
    status, _, body = http("POST", url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    return status, json.loads(body)


class AppServer:
    """``giropops-senhas`` (the console script: gunicorn) on a free loopback port, stopped with SIGTERM."""

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.port = free_port()
        self.log_path = workdir / f"giropops-senhas-{self.port}.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "PROMETHEUS_", "WORKERS"))}
        self.env = {**base, "HOST": "127.0.0.1", "PORT": str(self.port), **env}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert CONSOLE_SCRIPT.exists(), f"{CONSOLE_SCRIPT} missing: install the project (pip install -e .)"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(CONSOLE_SCRIPT)], env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"giropops-senhas exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if http("GET", self.url + "/healthz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"giropops-senhas not answering after 30 s:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics_dir(self) -> Path:
        found = re.search(r"metrics of all workers are summed in (\S+)", self.log())
        assert found, self.log()
        return Path(found.group(1))

    def workers(self) -> list[int]:
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [int(c) for c in children]

    def wait_workers(self, n: int, timeout: float = 30) -> list[int]:
        """Wait until n workers run and each has bound its listening socket (they boot one after another)."""
        ss = require_binary("ss")
        deadline = time.monotonic() + timeout
        while True:
            escutando = subprocess.run(
                [ss, "-tlnpH", f"( sport = :{self.port} )"], capture_output=True, text=True, check=True, timeout=30
            ).stdout
            workers = self.workers()
            if len(workers) == n and {int(p) for p in re.findall(r"pid=(\d+)", escutando)} == set(workers):
                return workers
            if time.monotonic() > deadline:
                raise RuntimeError(f"expected {n} workers listening, have {workers}:\n{escutando}\n{self.log()}")
            time.sleep(0.1)

    def terminate(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._log.close()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    """``start_server(env)`` starts a server; every one started is stopped at the end of the test."""
    servers: list[AppServer] = []

    def start(env: Mapping[str, str]) -> AppServer:
        server = AppServer(tmp_path, env)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
