"""Requests answered in the worker's event loop (``worker.py``, "inline") never make the loop wait.

A request that has wholly arrived is answered without a thread; these tests hold the three things that could
make such a worker stall on one client or one slow store: an answer the client does not read, a store that
stops answering, a kept-alive connection left idle.  Each one would hang ``/healthz`` in a naive inline server.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import pytest
import redis

from giropops_senhas.worker import Settings, request_buffered
from tests.app.conftest import http
from tests.support.services import RedisServer

PROBE_TIMEOUT = 1.0


def _healthz_answers() -> Any:
    def probe(url: str) -> None:
        t0 = time.monotonic()
        status, _, _ = http("GET", url + "/healthz", timeout=PROBE_TIMEOUT)
        assert status == 200
        assert time.monotonic() - t0 < PROBE_TIMEOUT

    return probe


POST = b"POST /api/gerar-senha HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "buffered"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (POST % 2 + b"{}", True),
        (POST % 2 + b"{}GET / HTTP/1.1\r\n", True),  # the first request is all there; the next one is not
        (POST % 3 + b"{}", False),  # a byte of the body is missing
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", False),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}", False),  # gunicorn's to refuse
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", False),
        (b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\n", False),  # no end of head
    ],
)
def test_only_a_request_wholly_in_memory_is_answered_inline(request_bytes: bytes, buffered: bool) -> None:
    assert request_buffered(request_bytes) is buffered


def test_answers_the_client_does_not_read_wait_in_the_worker(start_server: Any) -> None:
    # One process (embedded store): a client pipelines many requests and reads nothing, with a small receive
    # window, so the answers cannot all leave; the worker keeps them and goes on serving everyone else.
    server = start_server({})
    probe = _healthz_answers()
    count = 4000  # about 9 MB of answers: more than the kernel buffers on both sides hold
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", server.port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * count)  # the page: several KiB each
        time.sleep(0.5)
        for _ in range(5):
            probe(server.url)
        data = b""
        while data.count(b"</html>") < 200:  # the answers come, in order, whole
            chunk = s.recv(65536)
            assert chunk, data.count(b"</html>")
            data += chunk
    # and this client leaves with most of its answers unread
    pages = data.split(b"HTTP/1.1 ")[1:201]
    assert all(p.startswith(b"200 OK\r\n") and p.rstrip().endswith(b"</html>") for p in pages)
    probe(server.url)
    assert "Traceback" not in server.log()


def test_a_store_that_stops_answering_sends_requests_to_the_threads(
    start_server: Any, redis_server: RedisServer
) -> None:
    server = start_server({"REDIS_URL": redis_server.url, "WORKERS": "1", "THREADS": "4"})
    probe = _healthz_answers()
    body = json.dumps({"tamanho": 12}).encode()
    results: list[int] = []

    def post() -> None:
        results.append(http("POST", server.url + "/api/gerar-senha", body, {"Content-Type": "application/json"})[0])

    assert http("POST", server.url + "/api/gerar-senha", body, {"Content-Type": "application/json"})[0] == 200
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.client_pause(6000, all=True)  # Redis takes commands and answers none for 6 s
        post()  # answered inline: the loop waits for the store's timeout (1 s), then the answer is a 503
        assert results == [503]
        assert "requests go to the thread pool" in server.log()
        # Three more requests wait on the store, now each in a thread: the loop still answers at once.
        waiting = [threading.Thread(target=post) for _ in range(3)]
        for t in waiting:
            t.start()
        time.sleep(0.2)
        probe(server.url)
        for t in waiting:
            t.join(timeout=10)
        assert results == [503] * 4
    finally:
        client.client_unpause()
        client.close()
    assert http("POST", server.url + "/api/gerar-senha", body, {"Content-Type": "application/json"})[0] == 200
    assert "Traceback" not in server.log()


def test_an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout(start_server: Any) -> None:
    server = start_server({})
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b'{"status":"ok"}' not in data:
            chunk = s.recv(65536)
            assert chunk
            data += chunk
        assert b"Connection: keep-alive" in data
        t0 = time.monotonic()
        assert s.recv(65536) == b""  # closed by the server (gunicorn's keepalive: 5 s), not by this client
        waited = time.monotonic() - t0
    assert 4 <= waited < 10, waited


def test_the_workers_settings_view_answers_as_gunicorns_config() -> None:
    from gunicorn.config import Config

    cfg = Config()
    cfg.set("keepalive", 7)
    cfg.set("forwarded_allow_ips", "10.0.0.1,127.0.0.1")
    cfg.set("limit_request_line", 1234)
    view = Settings(cfg)
    for name in cfg.settings:
        assert getattr(view, name) == getattr(cfg, name), name
    assert (view.keepalive, view.limit_request_line, view.is_ssl, view.sendfile) == (7, 1234, cfg.is_ssl, cfg.sendfile)
    # methods and other properties are the Config's own
    assert view.forwarded_allow_networks() == cfg.forwarded_allow_networks()
    assert view.settings is cfg.settings and view.env == cfg.env


def test_static_files_sent_inline_are_the_files(start_server: Any) -> None:
    # Flask hands gunicorn a file wrapper, which gunicorn sends with sendfile(): inline, the file is read into
    # the collected answer instead. Twice on one connection, so the kept-alive path follows it too.
    from tests.support.paths import REPO_ROOT

    server = start_server({})
    static = REPO_ROOT / "src" / "giropops_senhas" / "static"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        for nome in ("app.js", "estilo.css", "app.js"):
            s.sendall(f"GET /static/{nome} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                assert chunk, data
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(x for x in head.split(b"\r\n") if x.lower().startswith(b"content-length:"))[15:])
            while len(body) < length:
                chunk = s.recv(65536)
                assert chunk, body
                body += chunk
            assert head.startswith(b"HTTP/1.1 200") and body == (static / nome).read_bytes()
