"""The JSON API's contract, on a real redis-server, and every way a request can be wrong."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from giropops_senhas.app import create_app
from giropops_senhas.store import StoreUnavailable
from tests.support.services import RedisServer

JSON = "application/json"


def gerar(client: FlaskClient, payload: Any) -> Any:
    r = client.post("/api/gerar-senha", json=payload)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def test_the_original_request_works_unchanged(client: FlaskClient) -> None:
    # The request from the original's README, byte for byte.
    r = client.post(
        "/api/gerar-senha",
        data='{"tamanho": 12, "incluir_numeros": true, "incluir_caracteres_especiais": true}',
        content_type=JSON,
    )
    assert r.status_code == 200
    assert r.content_type == JSON
    corpo = r.get_json()
    assert list(corpo) == ["senha"]
    senha = corpo["senha"]
    assert len(senha) == 12
    assert set(senha) & set(string.digits) and set(senha) & set(string.punctuation)
    assert set(senha) & set(string.ascii_letters)


def test_defaults_are_the_originals(client: FlaskClient) -> None:
    senha = gerar(client, {})["senha"]
    assert len(senha) == 8
    assert set(senha) <= set(string.ascii_letters)


@pytest.mark.parametrize("tamanho", [8, 9, 64, 127, 128])
def test_every_length_in_bounds_is_served(client: FlaskClient, tamanho: int) -> None:
    assert len(gerar(client, {"tamanho": tamanho})["senha"]) == tamanho


@pytest.mark.parametrize(("tamanho", "esperado"), [("12", 12), ("8", 8), ("128", 128), ("0012", 12), ("032", 32)])
def test_tamanho_as_a_string_of_digits_works_as_in_the_original(
    client: FlaskClient, tamanho: str, esperado: int
) -> None:
    # The original did int(dados.get('tamanho', 8)), so its clients may send "tamanho": "12".
    r = client.post(
        "/api/gerar-senha",
        data=b'{"tamanho": "%s", "incluir_numeros": true}' % tamanho.encode(),
        content_type=JSON,
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    senha = r.get_json()["senha"]
    assert len(senha) == esperado
    assert set(senha) & set(string.digits)


def test_charset_parameter_on_the_content_type_is_accepted(client: FlaskClient) -> None:
    r = client.post("/api/gerar-senha", data=b'{"tamanho": 10}', content_type="application/json; charset=utf-8")
    assert r.status_code == 200
    assert len(r.get_json()["senha"]) == 10


def como_o_original(redis_server: RedisServer) -> list[dict[str, Any]]:
    """What the original's ``GET /api/senhas`` answers for what is in Redis now, computed here independently:
    ``LRANGE senhas 0 9`` by a raw client, numbered ``index + 1``."""
    direto = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        return [{"id": indice + 1, "senha": senha} for indice, senha in enumerate(direto.lrange("senhas", 0, 9))]
    finally:
        direto.close()


def test_list_is_newest_first_numbered_by_position_and_only_the_latest_ten(
    client: FlaskClient, redis_server: RedisServer
) -> None:
    assert client.get("/api/senhas").get_json() == []
    geradas = [gerar(client, {"tamanho": 8 + i % 5, "incluir_numeros": True})["senha"] for i in range(15)]
    r = client.get("/api/senhas")
    assert r.status_code == 200
    assert r.content_type == JSON
    lista = r.get_json()
    assert [item["senha"] for item in lista] == geradas[::-1][:10]
    # As in the original: id is the position in the list, 1 = the newest.
    assert [item["id"] for item in lista] == list(range(1, 11))
    assert all(list(item) == ["id", "senha"] for item in lista)
    assert lista == como_o_original(redis_server)

    # In Redis: the original's key and format (plain strings, newest first), nothing else — and the bound holds.
    direto = redis.Redis.from_url(redis_server.url, decode_responses=True)
    assert direto.keys("*") == ["senhas"]
    assert direto.lrange("senhas", 0, -1) == geradas[::-1][:10]
    direto.close()


def test_a_new_password_takes_id_1_and_moves_the_others_down(client: FlaskClient) -> None:
    a = gerar(client, {})["senha"]
    b = gerar(client, {})["senha"]
    assert client.get("/api/senhas").get_json() == [{"id": 1, "senha": b}, {"id": 2, "senha": a}]
    c = gerar(client, {})["senha"]
    assert client.get("/api/senhas").get_json() == [{"id": 1, "senha": c}, {"id": 2, "senha": b}, {"id": 3, "senha": a}]


# What an existing deployment of the original may hold: its passwords, and anything a user typed or a client sent.
DADOS_DO_ORIGINAL = [f"antiga-{i:02d}" for i in range(13)] + [
    '{"id": 7, "senha": "parece json"}',
    'aspas " e barra \\ invertida',
    "ção ü 密码 🔑",
    "",
    " espaços ",
]


def test_passwords_written_by_the_original_are_listed_as_the_original_lists_them(
    client: FlaskClient, original_client: FlaskClient, redis_server: RedisServer
) -> None:
    # Written the way the original writes them: LPUSH of plain strings onto "senhas", list never trimmed.
    direto = redis.Redis.from_url(redis_server.url, decode_responses=True)
    for senha in DADOS_DO_ORIGINAL:
        direto.lpush("senhas", senha)
    esperado = [{"id": i + 1, "senha": s} for i, s in enumerate(DADOS_DO_ORIGINAL[::-1][:10])]
    assert como_o_original(redis_server) == esperado
    assert original_client.get("/api/senhas").get_json() == esperado  # the original itself agrees
    assert client.get("/api/senhas").get_json() == esperado

    # The first password this app stores goes on top and trims the original's unbounded list to the bound.
    assert direto.llen("senhas") == len(DADOS_DO_ORIGINAL)
    nova = gerar(client, {"tamanho": 12})["senha"]
    assert direto.llen("senhas") == 10
    assert direto.lrange("senhas", 0, -1) == [nova, *DADOS_DO_ORIGINAL[::-1][:9]]
    esperado = [{"id": i + 1, "senha": s} for i, s in enumerate([nova, *DADOS_DO_ORIGINAL[::-1][:9]])]
    assert client.get("/api/senhas").get_json() == esperado == como_o_original(redis_server)
    assert original_client.get("/api/senhas").get_json() == esperado
    direto.close()


def test_the_original_and_this_app_can_share_one_redis(
    client: FlaskClient, original_client: FlaskClient, redis_server: RedisServer
) -> None:
    # A rolling upgrade: old and new instances behind one service, writing and reading the same list.
    geradas = []
    for i in range(12):
        quem = client if i % 2 else original_client
        r = quem.post("/api/gerar-senha", json={"tamanho": 10 + i, "incluir_numeros": True})
        assert r.status_code == 200
        geradas.append(r.get_json()["senha"])
        nossa = client.get("/api/senhas").get_json()
        assert nossa == original_client.get("/api/senhas").get_json() == como_o_original(redis_server)
        assert [item["senha"] for item in nossa] == geradas[::-1][:10]
    assert [len(item["senha"]) for item in client.get("/api/senhas").get_json()] == list(range(21, 11, -1))


def test_entries_that_are_not_text_are_skipped_keeping_positions(
    client: FlaskClient, redis_server: RedisServer
) -> None:
    direto = redis.Redis.from_url(redis_server.url)
    for bruta in (b"primeira", b"\xff\xfe", b"meio", b"\xed\xa0\x80", b"\xc3", "ção".encode(), b"ultima"):
        direto.lpush("senhas", bruta)
    direto.close()
    # Positions (1 = newest): ultima, ção, <c3>, <surrogate>, meio, <ff fe>, primeira.  What cannot be text is
    # left out; the rest keep their position in the list as id.
    assert client.get("/api/senhas").get_json() == [
        {"id": 1, "senha": "ultima"},
        {"id": 2, "senha": "ção"},
        {"id": 5, "senha": "meio"},
        {"id": 7, "senha": "primeira"},
    ]


def test_a_senhas_key_that_is_not_a_list_is_a_503_not_a_500(client: FlaskClient, redis_server: RedisServer) -> None:
    direto = redis.Redis.from_url(redis_server.url)
    direto.set("senhas", "não é uma lista")
    direto.close()
    assert client.get("/api/senhas").status_code == 503
    assert client.post("/api/gerar-senha", json={}).status_code == 503
    assert client.get("/").status_code == 503


def test_passwords_with_json_special_characters_round_trip(client: FlaskClient) -> None:
    # Quotes and backslashes are in string.punctuation: what the list returns must be exactly what was made.
    geradas = {gerar(client, {"tamanho": 128, "incluir_caracteres_especiais": True})["senha"] for _ in range(10)}
    assert any('"' in s or "\\" in s for s in geradas)
    assert {item["senha"] for item in client.get("/api/senhas").get_json()} == geradas


# --- bad requests ---------------------------------------------------------------------------------------------

TAMANHO = {"campo": "tamanho", "minimo": 8, "maximo": 128}
CORPO = {"campo": None}


def flag(nome: str) -> dict[str, Any]:
    return {"campo": nome}


RUINS: list[tuple[str, str | None, bytes, dict[str, Any]]] = [
    # (id, content type, body, what the error must say)
    ("no-content-type", None, b'{"tamanho": 12}', CORPO),
    ("text-plain", "text/plain", b'{"tamanho": 12}', CORPO),
    ("form-encoded", "application/x-www-form-urlencoded", b"tamanho=12", CORPO),
    ("empty-body", JSON, b"", CORPO),
    ("blank-body", JSON, b"  \n ", CORPO),
    ("not-json", JSON, b"{tamanho: 12}", CORPO),
    ("truncated-json", JSON, b'{"tamanho": 12', CORPO),
    ("not-utf8", JSON, b'{"tamanho": "\xff\xfe"}', CORPO),
    ("json-array", JSON, b"[12]", CORPO),
    ("json-string", JSON, b'"12"', CORPO),
    ("json-null", JSON, b"null", CORPO),
    ("json-number", JSON, b"12", CORPO),
    ("nested-too-deep", JSON, b"[" * 2000 + b"]" * 2000, CORPO),
    ("nan", JSON, b'{"tamanho": NaN}', TAMANHO),
    # A string of 1 to 4 ASCII digits is accepted (the original's int()); any other string is not.
    ("tamanho-string-float", JSON, b'{"tamanho": "12.0"}', TAMANHO),
    ("tamanho-string-letters", JSON, b'{"tamanho": "abc"}', TAMANHO),
    ("tamanho-string-leading-space", JSON, b'{"tamanho": " 12"}', TAMANHO),
    ("tamanho-string-trailing-newline", JSON, b'{"tamanho": "12\\n"}', TAMANHO),
    ("tamanho-string-plus", JSON, b'{"tamanho": "+12"}', TAMANHO),
    ("tamanho-string-negative", JSON, b'{"tamanho": "-12"}', TAMANHO),
    ("tamanho-string-empty", JSON, b'{"tamanho": ""}', TAMANHO),
    ("tamanho-string-hex", JSON, b'{"tamanho": "0x0c"}', TAMANHO),
    ("tamanho-string-exponent", JSON, b'{"tamanho": "1e1"}', TAMANHO),
    ("tamanho-string-underscore", JSON, b'{"tamanho": "1_2"}', TAMANHO),
    ("tamanho-string-fullwidth", JSON, '{"tamanho": "\uff11\uff12"}'.encode(), TAMANHO),
    ("tamanho-string-arabic-indic", JSON, '{"tamanho": "\u0661\u0662"}'.encode(), TAMANHO),
    ("tamanho-string-five-digits", JSON, b'{"tamanho": "00012"}', TAMANHO),
    ("tamanho-string-below", JSON, b'{"tamanho": "7"}', TAMANHO),
    ("tamanho-string-above", JSON, b'{"tamanho": "129"}', TAMANHO),
    ("tamanho-string-9999", JSON, b'{"tamanho": "9999"}', TAMANHO),
    ("tamanho-float", JSON, b'{"tamanho": 12.0}', TAMANHO),
    ("tamanho-fraction", JSON, b'{"tamanho": 12.5}', TAMANHO),
    ("tamanho-exponent", JSON, b'{"tamanho": 1e1}', TAMANHO),
    ("tamanho-true", JSON, b'{"tamanho": true}', TAMANHO),
    ("tamanho-false", JSON, b'{"tamanho": false}', TAMANHO),
    ("tamanho-null", JSON, b'{"tamanho": null}', TAMANHO),
    ("tamanho-list", JSON, b'{"tamanho": [12]}', TAMANHO),
    ("tamanho-object", JSON, b'{"tamanho": {"valor": 12}}', TAMANHO),
    ("tamanho-negative", JSON, b'{"tamanho": -12}', TAMANHO),
    ("tamanho-zero", JSON, b'{"tamanho": 0}', TAMANHO),
    ("tamanho-below", JSON, b'{"tamanho": 7}', TAMANHO),
    ("tamanho-above", JSON, b'{"tamanho": 129}', TAMANHO),
    ("tamanho-huge", JSON, b'{"tamanho": 1000000000}', TAMANHO),
    ("tamanho-googol", JSON, b'{"tamanho": ' + b"1" + b"0" * 100 + b"}", TAMANHO),
    ("tamanho-4000-digits", JSON, b'{"tamanho": ' + b"9" * 4000 + b"}", TAMANHO),
    ("unknown-field", JSON, b'{"tamanho": 12, "incluir_numero": true}', {"campo": "incluir_numero"}),
]
for _nome in ("incluir_numeros", "incluir_caracteres_especiais"):
    for _valor in (b'"true"', b'"on"', b"1", b"0", b"null", b"[]", b'{"v": true}'):
        RUINS.append((f"{_nome}-{_valor.decode()}", JSON, b'{"%s": %s}' % (_nome.encode(), _valor), flag(_nome)))


@pytest.mark.parametrize(("content_type", "corpo", "esperado"), [r[1:] for r in RUINS], ids=[r[0] for r in RUINS])
def test_bad_request_is_a_400_naming_the_field(
    client: FlaskClient, content_type: str | None, corpo: bytes, esperado: dict[str, Any]
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    r = client.post("/api/gerar-senha", data=corpo, headers=headers)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.content_type == JSON
    erro = json.loads(r.get_data())
    assert isinstance(erro["erro"], str) and erro["erro"]
    assert erro["campo"] == esperado["campo"]
    assert isinstance(erro["aceito"], dict)
    if esperado["campo"] == "tamanho":
        assert erro["aceito"] == {"tipo": "inteiro", "minimo": 8, "maximo": 128}
        assert "8" in erro["erro"] and "128" in erro["erro"]
    elif esperado["campo"] in ("incluir_numeros", "incluir_caracteres_especiais"):
        assert erro["aceito"]["tipo"] == "booleano"
        assert "true" in erro["erro"] and "false" in erro["erro"]
    elif esperado["campo"] is None:
        # Body-level errors describe the whole accepted body, ranges included.
        assert erro["aceito"]["campos"]["tamanho"] == {"tipo": "inteiro", "minimo": 8, "maximo": 128, "padrao": 8}
    # Nothing was generated or stored.
    assert client.get("/api/senhas").get_json() == []


def test_body_larger_than_the_limit_is_a_json_413(client: FlaskClient) -> None:
    corpo = json.dumps({"tamanho": 12, "x": "a" * 10_000}).encode()
    r = client.post("/api/gerar-senha", data=corpo, content_type=JSON)
    assert r.status_code == 413
    assert r.content_type == JSON
    assert r.get_json()["campo"] is None
    assert "4096" in r.get_json()["erro"]


def test_wrong_method_and_unknown_api_path_answer_json(client: FlaskClient) -> None:
    r = client.get("/api/gerar-senha")
    assert r.status_code == 405
    assert r.content_type == JSON
    assert "POST" in r.headers["Allow"]
    r = client.get("/api/nada")
    assert r.status_code == 404
    assert r.content_type == JSON
    assert set(r.get_json()) == {"erro", "campo"}


def test_health_endpoints(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.get_json()["status"] == "pronto"
    assert r.get_json()["armazenamento"] == "redis"
    assert "aviso" not in r.get_json()


# The two hot routes' successful answers are built by a WSGI shortcut in front of Flask (app._Atalho); every other
# request goes through Flask.  These pin that both paths answer alike and that the shortcut's hand-offs are exact.


def test_the_shortcut_and_flask_send_the_same_headers(client: FlaskClient) -> None:
    rapido = client.post("/api/gerar-senha", data=b'{"tamanho": 12}', content_type=JSON)
    # An application/*+json media type is JSON for Flask but not for the shortcut: Flask answers it.
    flask = client.post("/api/gerar-senha", data=b'{"tamanho": 12}', content_type="application/senha+json")
    assert rapido.status_code == flask.status_code == 200
    assert list(rapido.headers.items()) == list(flask.headers.items())
    assert len(rapido.get_json()["senha"]) == len(flask.get_json()["senha"]) == 12
    # GET is the shortcut's, HEAD is Flask's: same headers (and so the same Content-Length).
    get, head = client.get("/api/senhas"), client.head("/api/senhas")
    assert list(get.headers.items()) == list(head.headers.items())
    assert [s["senha"] for s in get.get_json()] == [flask.get_json()["senha"], rapido.get_json()["senha"]]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [(JSON, b'{"tamanho": 7}'), (JSON, b"{"), (JSON, b""), ("application/json; charset=utf-8", b'{"x": 1}')],
)
def test_a_request_the_shortcut_refuses_gets_flasks_400(client: FlaskClient, content_type: str, body: bytes) -> None:
    r = client.post("/api/gerar-senha", data=body, content_type=content_type)
    assert r.status_code == 400
    assert r.content_type == JSON
    assert r.get_json()["erro"]
    assert r.headers["Cache-Control"] == "no-store"


class _StoreFora:
    kind = "redis"
    description = "redis://fora:6379"

    def __init__(self) -> None:
        self.chamadas = 0

    def add(self, senha: str) -> None:
        self.chamadas += 1
        raise StoreUnavailable("Redis (redis://fora:6379): Connection refused")

    def latest(self, limite: int) -> list[Any]:
        self.chamadas += 1
        raise StoreUnavailable("Redis (redis://fora:6379): Connection refused")

    def latest_json(self, limite: int) -> bytes:
        self.chamadas += 1
        raise StoreUnavailable("Redis (redis://fora:6379): Connection refused")

    def check(self) -> None:
        raise StoreUnavailable("Redis (redis://fora:6379): Connection refused")


def test_a_store_failure_in_the_shortcut_is_answered_once_by_flask() -> None:
    store = _StoreFora()
    client = create_app({"STORE": store}).test_client()
    for r in (client.post("/api/gerar-senha", json={"tamanho": 12}), client.get("/api/senhas")):
        assert r.status_code == 503
        assert r.headers["Retry-After"] == "5"
        assert r.get_json()["erro"].startswith("armazenamento de senhas indisponível")
    assert store.chamadas == 2  # the store is asked once per request, not again by Flask
    metricas = client.get("/metrics").get_data(as_text=True)
    assert 'http_requests_total{method="POST",route="/api/gerar-senha",status="503"} 1.0' in metricas
    assert 'http_requests_total{method="GET",route="/api/senhas",status="503"} 1.0' in metricas


@pytest.mark.parametrize(("tamanho", "status"), [("4097", 413), ("9" * 5000, 400), ("0", 400), ("-1", 400)])
def test_a_content_length_the_shortcut_refuses_is_flasks_to_answer(
    embedded_app: Flask, tamanho: str, status: int
) -> None:
    environ = EnvironBuilder(path="/api/gerar-senha", method="POST", data=b"{}", content_type=JSON).get_environ()
    environ["CONTENT_LENGTH"] = tamanho
    resposta = Response.from_app(embedded_app, environ)
    assert resposta.status_code == status
    assert resposta.content_type == JSON
