"""Redis configured but down: 503s (HTML and JSON), /healthz 200, /readyz 503, and recovery on its own."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.services import RedisServer

JSON = "application/json"


def assert_all_up(client: FlaskClient) -> None:
    r = client.post("/api/gerar-senha", json={"tamanho": 12})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert client.get("/api/senhas").status_code == 200
    assert client.get("/").status_code == 200
    assert client.post("/", data={"tamanho": "12"}).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def assert_all_down(client: FlaskClient) -> None:
    for r in (client.post("/api/gerar-senha", json={"tamanho": 12}), client.get("/api/senhas")):
        assert r.status_code == 503
        assert r.content_type == JSON
        assert "indisponível" in r.get_json()["erro"]
        assert r.headers["Retry-After"].isdigit()
    for r in (client.get("/"), client.post("/", data={"tamanho": "12"})):
        assert r.status_code == 503
        assert r.content_type.startswith("text/html")
        pagina = r.get_data(as_text=True)
        assert 'id="indisponivel"' in pagina and "indisponível" in pagina
        assert 'id="senha"' not in pagina  # nothing generated is shown when it could not be stored
        assert r.headers["Retry-After"].isdigit()
    assert client.get("/healthz").status_code == 200
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.get_json()["status"] == "indisponivel"
    assert r.get_json()["armazenamento"] == "redis"
    # Bad input is still a 400: validation does not need the store.
    assert client.post("/api/gerar-senha", json={"tamanho": 2}).status_code == 400


def test_outage_and_recovery(client: FlaskClient, redis_server: RedisServer) -> None:
    assert_all_up(client)

    redis_server.stop()
    assert_all_down(client)
    assert_all_down(client)  # and again: pooled connections were dropped, new ones are refused

    redis_server.start()  # same port, empty (no persistence)
    assert_all_up(client)
    assert len(client.get("/api/senhas").get_json()) == 2


def test_metrics_still_answer_during_an_outage(client: FlaskClient, redis_server: RedisServer) -> None:
    redis_server.stop()
    assert client.post("/api/gerar-senha", json={"tamanho": 12}).status_code == 503
    r = client.get("/metrics")
    assert r.status_code == 200
    texto = r.get_data(as_text=True)
    assert 'http_requests_total{method="POST",route="/api/gerar-senha",status="503"} 1.0' in texto
    assert "senha_gerada_total 0.0" in texto
