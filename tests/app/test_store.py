"""The stores (Redis and embedded), their bound, and how the environment chooses between them."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import redis

from giropops_senhas.app import create_app
from giropops_senhas.store import (
    CONTADOR,
    LISTA,
    ConfigError,
    EmbeddedStore,
    RedisConfig,
    RedisStore,
    StoreUnavailable,
    redis_config_from_env,
    store_from_env,
)
from tests.support.services import RedisServer


def test_redis_store_keeps_the_latest_newest_first_with_growing_ids(redis_server: RedisServer) -> None:
    store = RedisStore(RedisConfig(url=redis_server.url), historico=3)
    ids = [store.add(f"senha-{i}").id for i in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    assert [(s.id, s.senha) for s in store.latest(10)] == [(5, "senha-4"), (4, "senha-3"), (3, "senha-2")]
    assert [s.id for s in store.latest(2)] == [5, 4]
    direto = redis.Redis.from_url(redis_server.url)
    assert direto.llen(LISTA) == 3
    assert int(direto.get(CONTADOR) or 0) == 5
    direto.close()


def test_two_stores_on_one_redis_share_the_list_as_workers_do(redis_server: RedisServer) -> None:
    a = RedisStore(RedisConfig(url=redis_server.url))
    b = RedisStore(RedisConfig(url=redis_server.url))
    a.add("de-a")
    b.add("de-b")
    assert [s.senha for s in a.latest(10)] == ["de-b", "de-a"]
    assert a.latest_json(10) == b.latest_json(10) == b'[{"id":2,"senha":"de-b"},{"id":1,"senha":"de-a"}]'


def test_entries_not_written_by_the_app_are_skipped(redis_server: RedisServer) -> None:
    store = RedisStore(RedisConfig(url=redis_server.url))
    store.add("boa")
    direto = redis.Redis.from_url(redis_server.url)
    direto.lpush(
        LISTA,
        "senha-solta-do-app-antigo",
        '{"id": 7}',
        "{nao json}",
        '{"id":8,"senha":"a"},{"id":9,"senha":"b"}',  # two objects in one entry would make the list too long
        '{"id":"10","senha":"c"}',
    )
    direto.close()
    assert [s.senha for s in store.latest(10)] == ["boa"]
    assert store.latest_json(10) == b'[{"id":1,"senha":"boa"}]'


def test_redis_host_port_password_from_the_environment(tmp_path: Path) -> None:
    # The original's variables, with a password that needs escaping in a URL.
    senha = "p@ss:w/rd#1"
    server = RedisServer(tmp_path, password=senha)
    server.start()
    try:
        env = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(server.port), "REDIS_PASSWORD": senha}
        store = store_from_env(env)
        assert store.kind == "redis"
        assert senha not in store.description
        store.add("x")
        assert [s.senha for s in store.latest(1)] == ["x"]

        errada = store_from_env({**env, "REDIS_PASSWORD": "errada"})
        with pytest.raises(StoreUnavailable):
            errada.add("y")
        app = create_app({"ENV": {**env, "REDIS_PASSWORD": "errada"}})
        assert app.test_client().get("/api/senhas").status_code == 503
        assert app.test_client().get("/readyz").status_code == 503
    finally:
        server.stop()


def test_embedded_store_is_bounded_and_thread_safe() -> None:
    store = EmbeddedStore(historico=10)
    def escrever(n: int) -> None:
        for i in range(200):
            store.add(f"{n}-{i}")

    threads = [threading.Thread(target=escrever, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ultimas = store.latest(50)
    assert len(ultimas) == 10
    assert [s.id for s in ultimas] == list(range(1600, 1590, -1))
    assert store.add("mais").id == 1601


def test_embedded_app_works_and_says_so() -> None:
    app = create_app({"ENV": {}})
    client = app.test_client()
    for i in range(12):
        assert client.post("/api/gerar-senha", json={"tamanho": 8 + i}).status_code == 200
    lista = client.get("/api/senhas").get_json()
    assert [len(item["senha"]) for item in lista] == list(range(19, 9, -1))
    assert [item["id"] for item in lista] == list(range(12, 2, -1))
    r = client.get("/readyz")
    assert r.status_code == 200
    corpo = r.get_json()
    assert corpo["armazenamento"] == "embedded"
    assert "REDIS_URL" in corpo["aviso"] and "REDIS_HOST" in corpo["aviso"]


@pytest.mark.parametrize(
    ("env", "esperado"),
    [
        ({}, None),
        ({"REDIS_HOST": "  "}, None),
        ({"REDIS_HOST": "redis-service"}, RedisConfig(host="redis-service", port=6379)),
        (
            {"REDIS_HOST": "r", "REDIS_PORT": "6380", "REDIS_PASSWORD": "s"},
            RedisConfig(host="r", port=6380, password="s"),
        ),
        ({"REDIS_URL": "redis://:s@r:1/2", "REDIS_HOST": "ignored"}, RedisConfig(url="redis://:s@r:1/2")),
        ({"REDIS_URL": "unix:///run/redis.sock"}, RedisConfig(url="unix:///run/redis.sock")),
    ],
)
def test_redis_configuration_from_the_environment(env: dict[str, str], esperado: RedisConfig | None) -> None:
    assert redis_config_from_env(env) == esperado


@pytest.mark.parametrize(
    "env",
    [
        {"REDIS_HOST": "r", "REDIS_PORT": "abc"},
        {"REDIS_HOST": "r", "REDIS_PORT": "0"},
        {"REDIS_HOST": "r", "REDIS_PORT": "70000"},
        {"REDIS_URL": "http://r:6379"},
        {"REDIS_URL": "redis://r:notaport"},
    ],
)
def test_bad_redis_configuration_is_a_config_error(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        redis_config_from_env(env)


def test_description_never_shows_the_password() -> None:
    assert RedisConfig(url="redis://user:segredo@r:6379/0").description == "redis://r:6379/0"
    assert RedisConfig(host="r", port=1, password="segredo").description == "redis://r:1"
    assert "segredo" not in repr(RedisConfig(host="r", port=1, password="segredo"))
