"""The worker's fast path (``worker.py``: ``simple_request``, ``AnswerHead``, the app's ``DIRETO`` entry).

A request of a narrow, plain form is answered by the app's own entry and written by the worker instead of
gunicorn's parser and ``Response``.  These tests hold that it changes nothing a client can see: which requests
take it (the form is a strict subset of what gunicorn accepts), the answer's bytes (the same as gunicorn's path
gives for the same request, Date aside), keep-alive and close, metrics, the store failing, and the access log
that turns it off.
"""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.http.errors import InvalidResponseHeader, InvalidResponseHeaderName
from gunicorn.http.parser import RequestParser
from gunicorn.http.wsgi import Response

from giropops_senhas.app import DIRETO, create_app
from giropops_senhas.worker import DIRECT, AnswerHead, simple_request
from tests.app.test_metrics import amostras
from tests.support.services import RedisServer

GET = b"GET /api/senhas HTTP/1.1\r\nHost: 127.0.0.1:5000\r\n\r\n"
POST = b"POST /api/gerar-senha HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
CORPO = b'{"tamanho": 16}'
# the same requests in a form the fast path leaves to gunicorn (a field it does not know)
GET_GUNICORN = b"GET /api/senhas HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nX-Outro: 1\r\n\r\n"
POST_GUNICORN = POST.replace(b"Host: x\r\n", b"Host: x\r\nX-Outro: 1\r\n")
DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (GET, ("GET", "/api/senhas", None, b"", False)),
        (POST % len(CORPO) + CORPO, ("POST", "/api/gerar-senha", "application/json", CORPO, False)),
        (
            b"GET /healthz HTTP/1.1\r\nhost: x\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\nConnection: Close\r\n\r\n",
            ("GET", "/healthz", None, b"", True),
        ),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", ("GET", "/", None, b"", False)),
    ],
)
def test_plain_requests_take_the_fast_path(data: bytes, expected: tuple[Any, ...]) -> None:
    assert simple_request(data) == expected
    assert simple_request(bytearray(data)) == expected  # as the worker holds a request still arriving


@pytest.mark.parametrize(
    "data",
    [
        b"GET /api/senhas HTTP/1.1\r\nHost: x\r\n",  # no end of head
        b"GET /api/senhas HTTP/1.0\r\nHost: x\r\n\r\n",  # HTTP/1.0 keeps alive differently
        b"HEAD /api/senhas HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PUT /api/senhas HTTP/1.1\r\nHost: x\r\n\r\n",
        b"get /api/senhas HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/senhas?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",  # a query
        b"GET /api/%73enhas HTTP/1.1\r\nHost: x\r\n\r\n",  # something to unquote
        b"GET http://x/api/senhas HTTP/1.1\r\nHost: x\r\n\r\n",  # absolute form
        b"GET  /api/senhas HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/senhas HTTP/1.1\r\n\r\n",  # no Host
        b"GET /api/senhas HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",  # twice
        b"GET /api/senhas HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",  # a field it does not know
        b"GET /api/senhas HTTP/1.1\r\nHost: x\r\nX_Outro: 1\r\n\r\n",
        b"GET /api/senhas HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET /api/senhas HTTP/1.1\r\nHost:x\r\n\r\n",
        b"GET /api/senhas HTTP/1.1\r\nHost: x \r\n\r\n",  # blanks around the value
        b"GET /api/senhas HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",  # obsolete folding
        b"GET /api/senhas HTTP/1.1\r\nHost: x\r\nAccept: \xe9\r\n\r\n",  # not ASCII
        b"GET /api/senhas HTTP/1.1\r\nHost: x\x00y\r\n\r\n",
        b"GET /api/senhas HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n",
        b"GET /api/senhas HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",  # a GET with a length
        b"GET /api/senhas HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n",  # pipelined
        POST % 16 + CORPO,  # a byte missing
        POST % 14 + CORPO,  # a byte too many (pipelined)
        (POST % len(CORPO)).replace(b"Content-Length: 15", b"Content-Length: 015") + CORPO,
        (POST % len(CORPO)).replace(b"Content-Length: 15", b"Content-Length: +15") + CORPO,
        (POST % len(CORPO)).replace(b"Content-Length: 15\r\n", b"") + CORPO,  # no length
        POST % 2 + b"{}" + b"\r\n",
        b"POST /api/gerar-senha HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /api/gerar-senha HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
        b"GET /" + b"a" * 4100 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # longer than any limit allows
    ],
)
def test_anything_else_is_gunicorns_to_parse(data: bytes) -> None:
    assert simple_request(data) is None
    assert simple_request(bytearray(data)) is None


def test_the_app_offers_the_entry_the_worker_looks_for() -> None:
    assert DIRETO == DIRECT
    assert callable(getattr(create_app({"ENV": {}}), DIRECT))


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/senhas", b""),
        ("POST", "/api/gerar-senha", b'{"tamanho": 12}'),
        ("POST", "/api/gerar-senha", b'{"tamanho": 7}'),
        ("POST", "/api/gerar-senha", b"{"),
        ("POST", "/api/gerar-senha", b'{"tamanho": 12, "x": 1}'),
    ],
)
def test_the_direct_answer_is_the_wsgi_answer(method: str, path: str, body: bytes) -> None:
    app = create_app({"ENV": {}})
    client = app.test_client()
    tipo = "application/json" if method == "POST" else None
    wsgi = client.open(path, method=method, data=body or None, content_type=tipo)
    answer = getattr(app, DIRECT)(method, path, tipo, body)
    assert isinstance(answer, tuple)
    status, headers, payload = answer
    assert status == wsgi.status
    if wsgi.status_code == 200 and method == "POST":  # a new password each time: its length only
        assert len(json.loads(payload)["senha"]) == len(wsgi.get_json()["senha"]) == 12
        assert headers == list(wsgi.headers.items())
    else:
        assert (headers, payload) == (list(wsgi.headers.items()), wsgi.get_data())


@pytest.mark.parametrize(
    ("method", "path", "tipo", "body"),
    [
        ("GET", "/", None, b""),
        ("GET", "/api/senhas/", None, b""),
        ("POST", "/api/senhas", "application/json", b"{}"),
        ("POST", "/api/gerar-senha", None, b'{"tamanho": 12}'),  # no media type: Flask's 400
        ("POST", "/api/gerar-senha", "application/senha+json", b'{"tamanho": 12}'),  # JSON for Flask only
        ("POST", "/api/gerar-senha", "application/json", b""),
        ("POST", "/api/gerar-senha", "application/json", b"{" * 5000),  # over the limit: Flask's 413
    ],
)
def test_requests_the_direct_entry_does_not_take_are_left_to_wsgi(
    method: str, path: str, tipo: str | None, body: bytes
) -> None:
    app = create_app({"ENV": {}})
    assert getattr(app, DIRECT)(method, path, tipo, body) == {}
    assert app.extensions["giropops_senhas"]["store"].latest(10) == []  # nothing generated or kept


def _gunicorn_answer(request: bytes, status: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """What gunicorn's own Response writes for this request and answer."""
    cfg = Config()
    request_obj = next(iter(RequestParser(cfg, [request], ("127.0.0.1", 5555))))
    a, b = socket.socketpair()
    with a, b:
        resposta = Response(request_obj, a, cfg)
        resposta.start_response(status, list(headers))
        resposta.write(body)
        resposta.close()
        a.shutdown(socket.SHUT_WR)
        dados = b""
        while chunk := b.recv(65536):
            dados += chunk
    return dados


@pytest.mark.parametrize("close", [False, True])
def test_the_answer_head_is_gunicorns(close: bool) -> None:
    app = create_app({"ENV": {}})
    direto = getattr(app, DIRECT)
    head = AnswerHead()
    for method, path, body in (("GET", "/api/senhas", b""), ("POST", "/api/gerar-senha", b'{"tamanho": 2}')):
        answer = direto(method, path, "application/json", body)
        assert isinstance(answer, tuple)
        status, headers, payload = answer
        request = (f"{method} {path} HTTP/1.1\r\nHost: x\r\n").encode()
        if close:
            request += b"Connection: close\r\n"
        request += b"Content-Length: %d\r\n\r\n" % len(body) + body
        ours = head(status, headers, len(payload), close) + payload
        theirs = _gunicorn_answer(request, status, headers, payload)
        assert DATE.sub(b"\r\nDate: -\r\n", ours) == DATE.sub(b"\r\nDate: -\r\n", theirs)
        assert DATE.search(ours) and ((b"Connection: close" in ours) is close)


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ([("Content-Length", "2"), ("Bad Name", "x")], InvalidResponseHeaderName),
        ([("Content-Length", "2"), ("X-Ok", "a\r\nb")], InvalidResponseHeader),
        ([("Content-Length", "2"), ("X-Ok", " padded ")], InvalidResponseHeader),  # gunicorn would rewrite it
        ([("Content-Length", "2"), ("Connection", "close")], InvalidResponseHeader),  # gunicorn would drop it
        ([("Content-Length", "3")], InvalidResponseHeader),
        ([("Content-Length", "2"), ("Content-Length", "2")], InvalidResponseHeader),
        ([("Content-Type", "application/json")], InvalidResponseHeader),  # no length
    ],
)
def test_a_header_gunicorn_would_refuse_or_rewrite_is_refused(headers: list[tuple[str, str]], error: type) -> None:
    with pytest.raises(error):
        AnswerHead()("200 OK", headers, 2)


def _exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send one request, read its whole answer (by its Content-Length)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"\r\nContent-Length: (\d+)\r\n", head + b"\r\n").group(1))  # type: ignore[union-attr]
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, body
        body += chunk
    assert len(body) == length
    return head + b"\r\n\r\n" + body


def test_answers_are_the_same_bytes_either_way(start_server: Any, redis_server: RedisServer) -> None:
    server = start_server({"REDIS_URL": redis_server.url, "WORKERS": "1"})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        # a new connection's first request on the fast path, then gunicorn's, then the fast path again
        for pedido in (POST % len(CORPO) + CORPO, POST_GUNICORN % len(CORPO) + CORPO):
            answer = _exchange(s, pedido)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: keep-alive" in answer
        rapido, lento, outra_vez = (_exchange(s, p) for p in (GET, GET_GUNICORN, GET))
        assert DATE.sub(b"\r\n", rapido) == DATE.sub(b"\r\n", lento) == DATE.sub(b"\r\n", outra_vez)
        senhas = json.loads(rapido.partition(b"\r\n\r\n")[2])
        assert [s["id"] for s in senhas] == [1, 2] and all(len(s["senha"]) == 16 for s in senhas)
        # the two POSTs: the same head, passwords of the asked length
        dois = [_exchange(s, p % len(CORPO) + CORPO) for p in (POST, POST_GUNICORN)]
        assert DATE.sub(b"\r\n", dois[0]).partition(b"\r\n\r\n")[0] == DATE.sub(b"\r\n", dois[1]).partition(
            b"\r\n\r\n"
        )[0]
        assert all(len(json.loads(a.partition(b"\r\n\r\n")[2])["senha"]) == 16 for a in dois)
        # a refused body: the same 400, byte for byte
        ruim = b'{"tamanho": 2}'
        erros = [_exchange(s, p % len(ruim) + ruim) for p in (POST, POST_GUNICORN)]
        assert erros[0].startswith(b"HTTP/1.1 400 BAD REQUEST\r\n")
        assert DATE.sub(b"\r\n", erros[0]) == DATE.sub(b"\r\n", erros[1])
        # Connection: close is answered, then the server closes
        fim = _exchange(s, GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        assert b"\r\nConnection: close\r\n" in fim
        assert s.recv(65536) == b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        m = amostras(_exchange(s, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").partition(b"\r\n\r\n")[2].decode())
    # every request counted, whichever path answered it
    assert m['http_requests_total{method="GET",route="/api/senhas",status="200"}'] >= 4
    assert m['http_requests_total{method="POST",route="/api/gerar-senha",status="200"}'] == 4
    assert m['http_requests_total{method="POST",route="/api/gerar-senha",status="400"}'] == 2
    assert m["senha_gerada_total"] == 4
    assert "Traceback" not in server.log()


def test_a_store_that_fails_on_the_fast_path_is_flasks_503(start_server: Any, redis_server: RedisServer) -> None:
    server = start_server({"REDIS_URL": redis_server.url, "WORKERS": "1"})
    redis_server.stop()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        for pedido in (GET, POST % len(CORPO) + CORPO):
            answer = _exchange(s, pedido)
            assert answer.startswith(b"HTTP/1.1 503 SERVICE UNAVAILABLE\r\n"), answer
            assert b"\r\nRetry-After: 5\r\n" in answer and b"\r\nCache-Control: no-store\r\n" in answer
            assert json.loads(answer.partition(b"\r\n\r\n")[2])["erro"].startswith("armazenamento")
    assert "password store unavailable" in server.log()
    assert "Traceback" not in server.log()


def test_an_access_log_turns_the_fast_path_off(start_server: Any) -> None:
    server = start_server({"ACCESS_LOG": "1"})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        assert _exchange(s, GET).startswith(b"HTTP/1.1 200 OK\r\n")
    server.stop()
    assert re.search(r'"GET /api/senhas HTTP/1\.1" 200 ', server.log()), server.log()


@pytest.mark.parametrize("body", [b'{"tamanho": 7}', b"{", b'{"tamanho": 12}'])
def test_the_direct_entry_validates_a_body_once(monkeypatch: pytest.MonkeyPatch, body: bytes) -> None:
    from giropops_senhas import app as app_module

    seen: list[bytes] = []
    real = app_module.pedido_da_api

    def counting(e_json: bool, corpo: bytes) -> Any:
        seen.append(corpo)
        return real(e_json, corpo)

    monkeypatch.setattr(app_module, "pedido_da_api", counting)
    answer = getattr(create_app({"ENV": {}}), DIRECT)("POST", "/api/gerar-senha", "application/json", body)
    assert isinstance(answer, tuple) and answer[0][:3] in ("200", "400")
    assert seen == [body]
