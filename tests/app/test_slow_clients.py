"""Slow clients must not freeze the server (issue 14, item 6).

Sixty-four connections send a request head a byte at a time; meanwhile ``/healthz`` and
``POST /api/gerar-senha`` must each answer within a second, again and again — with the embedded store
(one process) and with Redis (several processes).  The burst is bounded: the test closes its connections,
and the server closes on its own a connection whose request head takes longer than ``HEAD_TIMEOUT``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from giropops_senhas.worker import HEAD_TIMEOUT
from tests.app.conftest import http
from tests.support.services import RedisServer

SLOW = 64
BURST_SECONDS = 8.0
PROBE_TIMEOUT = 1.0


class SlowHeaders:
    """``SLOW`` loopback connections, each sending a partial request head one byte every 0.2 s."""

    def __init__(self, port: int, count: int = SLOW, seconds: float = BURST_SECONDS) -> None:
        self.port, self.count, self.seconds = port, count, seconds
        self.opened = 0
        self.closed_by_server = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SlowHeaders:
        self._thread.start()
        deadline = time.monotonic() + 10
        while self.opened < self.count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.opened == self.count, f"only {self.opened} of {self.count} slow connections opened"
        time.sleep(0.5)  # every connection has sent its first bytes and sits on the server
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(timeout=self.seconds + 30)
        assert not self._thread.is_alive()

    def _run(self) -> None:
        socks: list[socket.socket] = []
        try:
            for _ in range(self.count):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                socks.append(s)
                self.opened += 1
            end = time.monotonic() + self.seconds
            alive = list(socks)
            while alive and time.monotonic() < end:
                for s in list(alive):
                    try:
                        s.sendall(b"a")
                    except OSError:  # the server gave up on it
                        alive.remove(s)
                        self.closed_by_server += 1
                time.sleep(0.2)
        finally:
            for s in socks:
                s.close()


def _probe(url: str) -> None:
    t0 = time.monotonic()
    status, _, _ = http("GET", url + "/healthz", timeout=PROBE_TIMEOUT)
    assert status == 200
    body = json.dumps({"tamanho": 16}).encode()
    status, _, answer = http("POST", url + "/api/gerar-senha", body, {"Content-Type": "application/json"},
                             timeout=PROBE_TIMEOUT)
    assert status == 200 and len(json.loads(answer)["senha"]) == 16
    assert time.monotonic() - t0 < 2 * PROBE_TIMEOUT


def _answers_during_a_burst(server: Any) -> None:
    with SlowHeaders(server.port) as burst:
        probes = 0
        end = time.monotonic() + BURST_SECONDS - 2
        while time.monotonic() < end:
            _probe(server.url)  # raises (socket timeout) if the server does not answer within a second
            probes += 1
            time.sleep(0.1)
        assert probes >= 10
    assert burst.opened == SLOW
    _probe(server.url)  # and after it
    assert "Traceback" not in server.log() and "[ERROR]" not in server.log(), server.log()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    yield redis_server.url


def test_slow_headers_do_not_freeze_the_embedded_store_server(start_server: Any) -> None:
    _answers_during_a_burst(start_server({}))


def test_slow_headers_do_not_freeze_the_redis_server(start_server: Any, redis_url: str) -> None:
    _answers_during_a_burst(start_server({"REDIS_URL": redis_url}))


def test_a_request_head_slower_than_the_limit_is_cut_off(start_server: Any) -> None:
    server = start_server({})
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        t0 = time.monotonic()
        answer = b""
        while time.monotonic() - t0 < HEAD_TIMEOUT + 5:
            try:
                s.sendall(b"a")
                s.settimeout(0.5)
                chunk = s.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
        waited = time.monotonic() - t0
    assert HEAD_TIMEOUT - 1 <= waited < HEAD_TIMEOUT + 3, waited
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
    _probe(server.url)


def test_pipelined_and_kept_alive_requests_still_work(start_server: Any) -> None:
    # The head is read before a thread takes the connection: requests sent in one packet, or one after
    # another on a kept-alive connection, must all be answered, in order.
    server = start_server({})
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    body = json.dumps({"tamanho": 20}).encode()
    post = (b"POST /api/gerar-senha HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(request + post + request)
        data = b""
        while data.count(b'{"status":"ok"}') < 2:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
        assert data.count(b"HTTP/1.1 200") == 3 and data.index(b'"senha"') < data.rindex(b'{"status":"ok"}')
        # A body in two pieces, a moment apart.
        s.sendall(post[:-5])
        time.sleep(0.3)
        s.sendall(post[-5:])
        data = b""
        while b'"senha"' not in data:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")


def test_an_endless_request_head_is_refused(start_server: Any) -> None:
    server = start_server({})
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        for _ in range(70):  # 70 x 1 KiB: more than the 64 KiB a head may have, and no end
            s.sendall(b"X-Filler: " + b"a" * 1012 + b"\r\n")
        while chunk := s.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 431"), answer
    _probe(server.url)


def test_expect_100_continue_is_not_held_back(start_server: Any) -> None:
    # The client sends its body only after "100 Continue": waiting for that body first would deadlock.
    server = start_server({})
    body = json.dumps({"tamanho": 12}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"POST /api/gerar-senha HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert s.recv(4096).startswith(b"HTTP/1.1 100")
        s.sendall(body)
        data = b""
        while b'"senha"' not in data:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
