"""``giropops-senhas`` for real: gunicorn workers, summed metrics, the embedded mode, SIGTERM, Redis outages."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from giropops_senhas.serve import gunicorn_options, settings_from_env
from giropops_senhas.store import ConfigError
from tests.app.conftest import CONSOLE_SCRIPT, http, post_json
from tests.app.test_metrics import amostras, promtool_check
from tests.support.services import RedisServer, require_binary

NO_ARGS = argparse.Namespace(host=None, port=None, workers=None, threads=None)


def test_settings_defaults_with_redis() -> None:
    s = settings_from_env({"REDIS_HOST": "redis-service"})
    assert (s.host, s.port, s.threads, s.embedded) == ("0.0.0.0", 5000, 4, False)
    assert s.workers == max(2, os.cpu_count() or 1)
    assert s.bind == "0.0.0.0:5000"
    assert s.store == "Redis at redis://redis-service:6379"
    assert not s.notes


def test_settings_from_environment_and_options() -> None:
    env = {"REDIS_URL": "redis://r/0", "HOST": "::1", "PORT": "8080", "WORKERS": "3", "THREADS": "2"}
    s = settings_from_env(env)
    assert (s.bind, s.workers, s.threads) == ("[::1]:8080", 3, 2)
    s = settings_from_env(env, argparse.Namespace(host="127.0.0.1", port=9000, workers=5, threads=1))
    assert (s.bind, s.workers, s.threads) == ("127.0.0.1:9000", 5, 1)


def test_embedded_store_forces_one_worker_and_says_why() -> None:
    s = settings_from_env({"WORKERS": "4"})
    assert s.embedded and s.workers == 1 and s.threads >= 4
    assert any("embedded" in n for n in s.notes)
    assert any("1 worker instead of 4" in n for n in s.notes)
    assert len(settings_from_env({}).notes) == 1  # no complaint about a worker count nobody asked for


@pytest.mark.parametrize(
    "env",
    [{"PORT": "http"}, {"PORT": "0"}, {"PORT": "65536"}, {"WORKERS": "0"}, {"WORKERS": "-1"}, {"THREADS": "x"},
     {"REDIS_HOST": "r", "REDIS_PORT": "x"}],
)
def test_bad_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        settings_from_env(env)


def test_gunicorn_options_are_graceful_and_threaded() -> None:
    o = gunicorn_options(settings_from_env({"REDIS_HOST": "r", "GRACEFUL_TIMEOUT": "7"}))
    assert o["worker_class"] == "giropops_senhas.worker.HeadFirstWorker"  # gthread, head read first
    assert o["graceful_timeout"] == 7
    assert o["bind"] == ["0.0.0.0:5000"]


def test_console_script_rejects_bad_configuration_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    r = subprocess.run(
        [str(CONSOLE_SCRIPT)], env={**env, "PORT": "cinco mil"}, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert "giropops-senhas: error: PORT" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_port_already_taken_is_an_error_at_start_up(start_server: Any, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    with socket.socket() as ocupado:
        ocupado.bind(("127.0.0.1", 0))
        ocupado.listen()
        porta = ocupado.getsockname()[1]
        r = subprocess.run(
            [str(CONSOLE_SCRIPT)], env={**env, "HOST": "127.0.0.1", "PORT": str(porta)},
            capture_output=True, text=True, timeout=60,
        )
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{porta}" in r.stderr

    # Nor can a second server share a running one's port (the workers' SO_REUSEPORT would allow it).
    primeiro = start_server({})
    r = subprocess.run(
        [str(CONSOLE_SCRIPT)], env={**env, "HOST": "127.0.0.1", "PORT": str(primeiro.port)},
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 1, r.stderr
    assert "cannot listen" in r.stderr


def test_served_with_redis_by_several_workers(start_server: Any, redis_server: RedisServer) -> None:
    server = start_server({"REDIS_URL": redis_server.url, "WORKERS": "2", "THREADS": "2"})
    assert len(server.wait_workers(2)) == 2
    metrics_dir = server.metrics_dir()
    assert metrics_dir.is_dir()
    assert f"store: Redis at redis://127.0.0.1:{redis_server.port}/0" in server.log()

    def um(i: int) -> int:
        status, corpo = post_json(server.url + "/api/gerar-senha", {"tamanho": 8 + i % 20, "incluir_numeros": True})
        assert len(corpo["senha"]) == 8 + i % 20
        return status

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(um, range(60))) == {200}

    status, _, corpo = http("GET", server.url + "/api/senhas")
    lista = json.loads(corpo)
    assert status == 200 and len(lista) == 10
    assert [item["id"] for item in lista] == list(range(1, 11))  # the original's ids: positions, newest first

    status, _, corpo = http("GET", server.url + "/metrics")
    texto = corpo.decode()
    promtool_check(texto)
    m = amostras(texto)
    # Summed over both workers' files: every password counted exactly once.
    assert m["senha_gerada_total"] == 60
    assert m['http_requests_total{method="POST",route="/api/gerar-senha",status="200"}'] == 60

    server.terminate()
    assert server.wait() == 0
    assert not metrics_dir.exists()  # the directory it created is removed on exit
    assert "Shutting down" in server.log()


def test_connections_are_spread_over_the_workers(start_server: Any, redis_server: RedisServer) -> None:
    # Each worker has its own SO_REUSEPORT listener, so the kernel spreads connections over them; with one
    # shared socket a single worker used to take almost all of them.  (Both get some of 16 connections unless
    # the kernel's hash sends all 16 to one: about 3 in 100,000.)
    ss = require_binary("ss")
    server = start_server({"REDIS_URL": redis_server.url, "WORKERS": "2", "THREADS": "2"})
    server.wait_workers(2)  # the first to boot answers /healthz; the second may still be binding
    conexoes = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(16)]
    try:
        for c in conexoes:  # one keep-alive request each: every connection has been accepted by some worker
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.recv(65536).startswith(b"HTTP/1.1 200")
        saida = subprocess.run(
            [ss, "-tnpH", "state", "established", f"( sport = :{server.port} )"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout
    finally:
        for c in conexoes:
            c.close()
    donos = Counter(int(p) for p in re.findall(r"pid=(\d+)", saida))
    assert sum(donos.values()) == 16, saida
    assert set(donos) == set(server.workers()), (donos, server.workers())


def test_a_replaced_worker_keeps_the_metrics_working(start_server: Any, redis_server: RedisServer) -> None:
    # A worker that exits (crash, max-requests, an operator's kill) is replaced; the others keep writing to the
    # shared metrics directory, and what the dead worker counted is still summed.
    server = start_server({"REDIS_URL": redis_server.url, "WORKERS": "2", "THREADS": "2"})
    metrics_dir = server.metrics_dir()
    for _ in range(10):
        assert post_json(server.url + "/api/gerar-senha", {})[0] == 200
    antigos = server.wait_workers(2)
    os.kill(antigos[0], signal.SIGTERM)
    deadline = time.monotonic() + 30
    while len(set(server.workers()) - set(antigos)) < 1 or len(server.workers()) < 2:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    assert metrics_dir.is_dir()
    for _ in range(10):
        assert post_json(server.url + "/api/gerar-senha", {})[0] == 200
    status, _, corpo = http("GET", server.url + "/metrics")
    assert status == 200
    assert amostras(corpo.decode())["senha_gerada_total"] == 20
    server.terminate()
    assert server.wait() == 0
    assert not metrics_dir.exists()


def ler_resposta(s: socket.socket) -> tuple[bytes, bytes]:
    """One HTTP/1.1 response (status line + headers, body by Content-Length) from a kept-alive socket."""
    dados = b""
    while b"\r\n\r\n" not in dados:
        chunk = s.recv(65536)
        assert chunk, dados
        dados += chunk
    cabeca, _, corpo = dados.partition(b"\r\n\r\n")
    achado = re.search(rb"(?i)content-length: *(\d+)", cabeca)
    assert achado, cabeca
    tamanho = int(achado.group(1))
    while len(corpo) < tamanho:
        chunk = s.recv(65536)
        assert chunk, corpo
        corpo += chunk
    return cabeca, corpo


def test_sigterm_lets_a_request_in_flight_finish(start_server: Any, redis_server: RedisServer) -> None:
    server = start_server({"REDIS_URL": redis_server.url, "WORKERS": "1", "GRACEFUL_TIMEOUT": "20"})
    corpo = json.dumps({"tamanho": 24}).encode()
    pedido = (
        b"POST /api/gerar-senha HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(corpo)
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
        # A first request on this kept-alive connection: a worker has accepted it.
        s.sendall(pedido + corpo)
        cabeca, _ = ler_resposta(s)
        assert cabeca.startswith(b"HTTP/1.1 200")
        # Then headers and half a body: the worker is inside the request, waiting for the rest, when the
        # master is told to stop.
        s.sendall(pedido + corpo[:5])
        time.sleep(0.5)
        server.terminate()
        time.sleep(0.5)
        s.sendall(corpo[5:])
        cabeca, dados = ler_resposta(s)
    assert cabeca.startswith(b"HTTP/1.1 200"), cabeca
    assert len(json.loads(dados)["senha"]) == 24
    assert server.wait() == 0
    # And nothing listens any more.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_served_with_the_embedded_store(start_server: Any) -> None:
    server = start_server({"WORKERS": "4"})
    assert len(server.wait_workers(1)) == 1
    log = server.log()
    assert "embedded in-process store" in log
    assert "1 worker instead of 4" in log
    status, corpo = post_json(server.url + "/api/gerar-senha", {"tamanho": 16})
    assert status == 200
    for _ in range(5):  # one process: every request sees the same list
        status, _, lista = http("GET", server.url + "/api/senhas")
        assert json.loads(lista)[0]["senha"] == corpo["senha"]
    status, _, pronto = http("GET", server.url + "/readyz")
    assert status == 200 and json.loads(pronto)["armazenamento"] == "embedded"


def test_the_listening_line_names_the_address(start_server: Any) -> None:
    """gunicorn with reuse_port logged an empty "Listening at:  (PID)"; the line names the served URL."""
    server = start_server({})
    server.wait_workers(1)
    (line,) = [x for x in server.log().splitlines() if "Listening at:" in x]
    assert f"Listening at: {server.url} " in line


def test_redis_outage_on_the_real_server(start_server: Any, redis_server: RedisServer) -> None:
    server = start_server({"REDIS_URL": redis_server.url, "WORKERS": "2"})
    assert post_json(server.url + "/api/gerar-senha", {})[0] == 200

    redis_server.stop()
    for _ in range(6):  # both workers, several pooled connections
        status, corpo = post_json(server.url + "/api/gerar-senha", {})
        assert status == 503 and "erro" in corpo
        assert http("GET", server.url + "/")[0] == 503
        assert http("GET", server.url + "/healthz")[0] == 200
        assert http("GET", server.url + "/readyz")[0] == 503

    redis_server.start()
    for _ in range(6):
        assert post_json(server.url + "/api/gerar-senha", {})[0] == 200
        assert http("GET", server.url + "/")[0] == 200
        assert http("GET", server.url + "/readyz")[0] == 200
    assert "Traceback" not in server.log()
