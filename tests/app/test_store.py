"""The stores (Redis and embedded), their bound, and how the environment chooses between them."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import redis

from giropops_senhas.app import create_app
from giropops_senhas.store import (
    ConfigError,
    EmbeddedStore,
    RedisConfig,
    RedisStore,
    StoreUnavailable,
    redis_config_from_env,
    store_from_env,
)
from tests.support.services import RedisServer


def test_redis_store_keeps_the_latest_newest_first_numbered_by_position(redis_server: RedisServer) -> None:
    store = RedisStore(RedisConfig(url=redis_server.url), historico=3)
    for i in range(5):
        store.add(f"senha-{i}")
    assert [(s.id, s.senha) for s in store.latest(10)] == [(1, "senha-4"), (2, "senha-3"), (3, "senha-2")]
    assert [(s.id, s.senha) for s in store.latest(2)] == [(1, "senha-4"), (2, "senha-3")]
    # Stored as the original stores them: plain strings in the list "senhas", and no other key.
    direto = redis.Redis.from_url(redis_server.url)
    assert direto.keys("*") == [b"senhas"]
    assert direto.lrange("senhas", 0, -1) == [b"senha-4", b"senha-3", b"senha-2"]
    direto.close()


def test_redis_store_lists_what_the_original_wrote(redis_server: RedisServer) -> None:
    direto = redis.Redis.from_url(redis_server.url, decode_responses=True)
    for i in range(25):  # the original's list, never trimmed
        direto.lpush("senhas", f"do-original-{i}")
    store = RedisStore(RedisConfig(url=redis_server.url))
    esperado = [(i + 1, s) for i, s in enumerate(direto.lrange("senhas", 0, 9))]
    assert [(s.id, s.senha) for s in store.latest(10)] == esperado
    assert esperado[0] == (1, "do-original-24") and esperado[-1] == (10, "do-original-15")
    store.add("nova")
    assert direto.lrange("senhas", 0, -1) == ["nova", *(f"do-original-{i}" for i in range(24, 15, -1))]
    direto.close()


def test_two_stores_on_one_redis_share_the_list_as_workers_do(redis_server: RedisServer) -> None:
    a = RedisStore(RedisConfig(url=redis_server.url))
    b = RedisStore(RedisConfig(url=redis_server.url))
    a.add("de-a")
    b.add("de-b")
    assert [s.senha for s in a.latest(10)] == ["de-b", "de-a"]
    assert a.latest_json(10) == b.latest_json(10) == b'[{"id":1,"senha":"de-b"},{"id":2,"senha":"de-a"}]'


def test_latest_json_escapes_what_needs_escaping(redis_server: RedisServer) -> None:
    store = RedisStore(RedisConfig(url=redis_server.url))
    for senha in ('a"b\\c', "</script>", "ção", '{"id":9,"senha":"x"}'):
        store.add(senha)
    assert json.loads(store.latest_json(10)) == [
        {"id": 1, "senha": '{"id":9,"senha":"x"}'},
        {"id": 2, "senha": "ção"},
        {"id": 3, "senha": "</script>"},
        {"id": 4, "senha": 'a"b\\c'},
    ]
    assert [s.as_json() for s in store.latest(10)] == json.loads(store.latest_json(10))


def test_latest_json_is_what_json_dumps_writes(redis_server: RedisServer) -> None:
    # written by hand for speed: the bytes json.dumps gives for the same list, for any text a password can be
    store = RedisStore(RedisConfig(url=redis_server.url), historico=12)
    senhas = ["\x00\x1f\x7f", "\u2028\u2029", "😀𝄞", "a\r\n*1\r\n$4\r\nPING\r\n", "\\\"/", "é" * 40, "", "plain"]
    for senha in senhas:
        store.add(senha)
    direto = redis.Redis.from_url(redis_server.url)
    # stored as given (the LPUSH is framed by hand: a password is one bulk string, whatever it holds)
    assert direto.lrange("senhas", 0, -1) == [s.encode() for s in reversed(senhas)]
    direto.lpush("senhas", b"\xff")  # not text: skipped, its position kept as a gap in the ids
    direto.close()
    esperado = [{"id": i, "senha": s} for i, s in enumerate(reversed(senhas), 2)]
    assert store.latest_json(12) == json.dumps(esperado, separators=(",", ":")).encode()
    assert store.latest_json(3) == json.dumps(esperado[:2], separators=(",", ":")).encode()
    assert store.latest_json(1) == b"[]"


def test_entries_that_are_not_utf8_text_are_skipped(redis_server: RedisServer) -> None:
    store = RedisStore(RedisConfig(url=redis_server.url))
    store.add("boa")
    direto = redis.Redis.from_url(redis_server.url)
    direto.lpush("senhas", b"\x80", b"texto", b"\xf0\x9f")  # stray continuation byte, truncated sequence
    direto.close()
    assert [(s.id, s.senha) for s in store.latest(10)] == [(2, "texto"), (4, "boa")]
    assert store.latest_json(10) == b'[{"id":2,"senha":"texto"},{"id":4,"senha":"boa"}]'
    assert [(s.id, s.senha) for s in store.latest(2)] == [(2, "texto")]


def test_a_senhas_key_of_another_type_is_store_unavailable(redis_server: RedisServer) -> None:
    direto = redis.Redis.from_url(redis_server.url)
    direto.hset("senhas", "campo", "valor")
    direto.close()
    store = RedisStore(RedisConfig(url=redis_server.url))
    with pytest.raises(StoreUnavailable, match="WRONGTYPE"):
        store.latest(10)
    with pytest.raises(StoreUnavailable, match="WRONGTYPE"):
        store.add("x")
    store.check()  # the connection itself is fine


def test_a_failed_push_leaves_the_connection_in_step(redis_server: RedisServer) -> None:
    # LPUSH and LTRIM go in one write and both fail on a hash: both replies must be read, or the next command
    # on this connection would get the stale LTRIM error as its answer.
    direto = redis.Redis.from_url(redis_server.url)
    direto.hset("senhas", "campo", "valor")
    store = RedisStore(RedisConfig(url=redis_server.url), historico=2)
    with pytest.raises(StoreUnavailable, match="WRONGTYPE"):
        store.add("x")
    direto.delete("senhas")
    direto.close()
    for senha in ("a", "b", "c"):
        store.add(senha)
    assert [(s.id, s.senha) for s in store.latest(10)] == [(1, "c"), (2, "b")]


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
    assert [s.id for s in ultimas] == list(range(1, 11))
    # The ten newest: from each thread, its last passwords, newest first.
    por_thread: dict[str, list[int]] = {}
    for s in ultimas:
        n, i = s.senha.split("-")
        por_thread.setdefault(n, []).append(int(i))
    for indices in por_thread.values():
        assert indices == list(range(199, 199 - len(indices), -1))

    store.add("mais")
    depois = store.latest(10)
    assert [(s.id, s.senha) for s in depois] == [(1, "mais")] + [(s.id + 1, s.senha) for s in ultimas[:9]]


def test_embedded_store_has_the_redis_stores_semantics(redis_server: RedisServer) -> None:
    embutido = EmbeddedStore(historico=4)
    no_redis = RedisStore(RedisConfig(url=redis_server.url), historico=4)
    for i in range(7):
        embutido.add(f"s{i}")
        no_redis.add(f"s{i}")
        for limite in (1, 3, 10):
            assert embutido.latest(limite) == no_redis.latest(limite)
            assert embutido.latest_json(limite) == no_redis.latest_json(limite)
    assert [s.senha for s in embutido.latest(10)] == ["s6", "s5", "s4", "s3"]


def test_embedded_app_works_and_says_so() -> None:
    app = create_app({"ENV": {}})
    client = app.test_client()
    for i in range(12):
        assert client.post("/api/gerar-senha", json={"tamanho": 8 + i}).status_code == 200
    lista = client.get("/api/senhas").get_json()
    assert [len(item["senha"]) for item in lista] == list(range(19, 9, -1))
    assert [item["id"] for item in lista] == list(range(1, 11))
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
