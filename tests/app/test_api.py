"""The JSON API's contract, on a real redis-server, and every way a request can be wrong."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

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


def test_charset_parameter_on_the_content_type_is_accepted(client: FlaskClient) -> None:
    r = client.post("/api/gerar-senha", data=b'{"tamanho": 10}', content_type="application/json; charset=utf-8")
    assert r.status_code == 200
    assert len(r.get_json()["senha"]) == 10


def test_list_is_newest_first_with_stable_ids_and_only_the_latest_ten(
    client: FlaskClient, redis_server: RedisServer
) -> None:
    assert client.get("/api/senhas").get_json() == []
    geradas = [gerar(client, {"tamanho": 8 + i % 5, "incluir_numeros": True})["senha"] for i in range(15)]
    r = client.get("/api/senhas")
    assert r.status_code == 200
    assert r.content_type == JSON
    lista = r.get_json()
    assert [item["senha"] for item in lista] == geradas[::-1][:10]
    assert [item["id"] for item in lista] == list(range(15, 5, -1))
    assert all(list(item) == ["id", "senha"] for item in lista)

    # The bound holds in Redis itself, not only in what the API shows.
    direto = redis.Redis.from_url(redis_server.url)
    assert direto.llen("giropops-senhas:senhas") == 10
    direto.close()


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
    ("tamanho-string", JSON, b'{"tamanho": "12"}', TAMANHO),
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
