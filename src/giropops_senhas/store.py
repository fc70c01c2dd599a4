"""Where generated passwords are kept: Redis when configured, else an embedded in-process store.

Both keep only the latest ``historico`` passwords (the original app's Redis list grew forever) and give each one
an id from a counter that only grows, so an id names one password for as long as it is listed.

Redis configuration comes from the environment (:func:`redis_config_from_env`): ``REDIS_URL``, or the original
app's ``REDIS_HOST`` with ``REDIS_PORT`` (default 6379) and ``REDIS_PASSWORD``.  With none of them the app uses
:class:`EmbeddedStore`.  With Redis configured but unreachable every store call raises
:class:`StoreUnavailable` within about a second (short socket timeouts, one reconnect attempt), which the app
turns into a 503; the connection pool reconnects by itself once Redis answers again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.retry import Retry

HISTORICO_PADRAO = 10
LISTA = "giropops-senhas:senhas"
CONTADOR = "giropops-senhas:id"
_CHAVES = {"id", "senha"}

# One round trip, atomic: next id, push the entry as a JSON object, trim to the bound.  ARGV[1] is the password
# already encoded as a JSON string by Python, so every entry is exactly what the API sends for it.
_ADICIONAR = """
local id = redis.call('INCR', KEYS[2])
redis.call('LPUSH', KEYS[1], '{"id":' .. id .. ',"senha":' .. ARGV[1] .. '}')
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return id
"""



class ConfigError(ValueError):
    """The environment names a store the app cannot use as written (e.g. a non-numeric ``REDIS_PORT``)."""


class StoreUnavailable(Exception):
    """The configured store did not answer; the request can be retried later (HTTP 503)."""


@dataclass(frozen=True)
class SenhaGuardada:
    id: int
    senha: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "senha": self.senha}


class PasswordStore(Protocol):
    """The two operations the app needs, plus a readiness probe."""

    kind: str
    """``"redis"`` or ``"embedded"`` — reported by ``/readyz``."""

    description: str
    """Where the passwords live, safe to log (no password)."""

    def add(self, senha: str) -> SenhaGuardada: ...

    def latest(self, limite: int) -> list[SenhaGuardada]: ...

    def latest_json(self, limite: int) -> bytes:
        """``latest(limite)`` as the JSON array ``GET /api/senhas`` sends (a store may have it pre-encoded)."""

    def check(self) -> None:
        """Return if the store answers; raise :class:`StoreUnavailable` otherwise."""


class EmbeddedStore:
    """In-process store: thread-safe, lost on restart, and private to one process.

    ``giropops-senhas`` therefore runs a single worker process (with threads) when this store is in use.
    """

    kind = "embedded"
    description = "embutido (em memória, neste processo)"

    def __init__(self, historico: int = HISTORICO_PADRAO) -> None:
        self._senhas: deque[SenhaGuardada] = deque(maxlen=historico)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, senha: str) -> SenhaGuardada:
        with self._lock:
            guardada = SenhaGuardada(next(self._ids), senha)
            self._senhas.appendleft(guardada)
        return guardada

    def latest(self, limite: int) -> list[SenhaGuardada]:
        with self._lock:
            return list(itertools.islice(self._senhas, limite))

    def latest_json(self, limite: int) -> bytes:
        return json.dumps([s.as_json() for s in self.latest(limite)], separators=(",", ":")).encode()

    def check(self) -> None:
        return None


@dataclass(frozen=True)
class RedisConfig:
    """How to reach Redis: either a URL or host/port/password (kept apart so a password needs no escaping)."""

    url: str | None = None
    host: str | None = None
    port: int = 6379
    password: str | None = field(default=None, repr=False)

    @property
    def description(self) -> str:
        if self.url is not None:
            parts = urlsplit(self.url)
            netloc = parts.hostname or ""
            if parts.port is not None:
                netloc = f"{netloc}:{parts.port}"
            return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        return f"redis://{self.host}:{self.port}"

    def pool(self, **options: Any) -> redis.ConnectionPool:
        if self.url is not None:
            return redis.ConnectionPool.from_url(self.url, **options)
        return redis.ConnectionPool(host=self.host or "localhost", port=self.port, password=self.password, **options)


def redis_config_from_env(env: Mapping[str, str]) -> RedisConfig | None:
    """``REDIS_URL`` wins; else ``REDIS_HOST`` (+ ``REDIS_PORT``, ``REDIS_PASSWORD``); else ``None``."""
    url = env.get("REDIS_URL", "").strip()
    if url:
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            scheme = urlsplit(url).scheme
            raise ConfigError(f"REDIS_URL must start with redis://, rediss:// or unix:// (got {scheme!r})")
        try:
            urlsplit(url).port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as e:
            raise ConfigError(f"REDIS_URL has an invalid port: {e}") from None
        return RedisConfig(url=url)
    host = env.get("REDIS_HOST", "").strip()
    if not host:
        return None
    port_text = env.get("REDIS_PORT", "").strip() or "6379"
    if not (port_text.isascii() and port_text.isdecimal() and 0 < int(port_text) < 65536):
        raise ConfigError(f"REDIS_PORT must be a TCP port number from 1 to 65535 (got {port_text!r})")
    password = env.get("REDIS_PASSWORD") or None
    return RedisConfig(host=host, port=int(port_text), password=password)


class RedisStore:
    """Redis list ``giropops-senhas:senhas`` of ``{"id":N,"senha":"..."}`` entries, newest first, trimmed on push.

    Entries are stored as the API's JSON so that ``GET /api/senhas`` checks and joins them instead of
    re-encoding ten objects on the hottest read path.

    Each thread keeps its own redis-py connection and sends commands on it directly: one command per request
    needs no pool lock, no retry machinery and no client-side bookkeeping, which is most of redis-py's cost
    per command.  A command that fails because the connection broke (a Redis restart closes every pooled
    socket) is sent once more on a fresh connection; anything else is :class:`StoreUnavailable` at once.
    """

    kind = "redis"

    def __init__(self, config: RedisConfig, historico: int = HISTORICO_PADRAO, timeout: float = 1.0) -> None:
        self.description = config.description
        self._historico = historico
        self._pool = config.pool(
            socket_connect_timeout=timeout / 2,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._local = threading.local()
        self._sha = hashlib.sha1(_ADICIONAR.encode(), usedforsecurity=False).hexdigest()

    def _conexao(self) -> Any:
        # redis-py's Connection is untyped; Any keeps mypy's strict mode from flagging every call on it.
        conexao = getattr(self._local, "conexao", None)
        if conexao is None:
            conexao = self._local.conexao = self._pool.make_connection()
        return conexao

    def _comando(self, *args: str | bytes | int) -> Any:
        conexao = self._conexao()
        for tentativa in (1, 2):
            try:
                conexao.send_command(*args)
                return conexao.read_response()
            except ResponseError as e:  # the command failed; the connection is fine
                raise StoreUnavailable(f"Redis ({self.description}): {e}") from e
            except RedisConnectionError as e:
                conexao.disconnect()
                if tentativa == 2:
                    raise StoreUnavailable(f"Redis ({self.description}): {e}") from e
            except RedisError as e:  # a timeout: the reply may still come, so the connection is dropped
                conexao.disconnect()
                raise StoreUnavailable(f"Redis ({self.description}): {e}") from e
        raise AssertionError("unreachable")

    def add(self, senha: str) -> SenhaGuardada:
        args = (2, LISTA, CONTADOR, json.dumps(senha), self._historico)
        try:
            novo_id = self._comando("EVALSHA", self._sha, *args)
        except StoreUnavailable as e:
            if not isinstance(e.__cause__, NoScriptError):
                raise
            novo_id = self._comando("EVAL", _ADICIONAR, *args)  # also caches the script for EVALSHA
        return SenhaGuardada(int(novo_id), senha)

    def _entradas(self, limite: int) -> tuple[bytes, list[SenhaGuardada]]:
        """The listed entries as one JSON array, and as objects; only well-formed entries are kept."""
        brutas = cast("list[bytes]", self._comando("LRANGE", LISTA, 0, limite - 1))
        # Fast path: everything this app wrote parses as one array of exactly as many valid objects.
        junto = b"[" + b",".join(brutas) + b"]"
        try:
            itens = json.loads(junto)
        except ValueError:
            itens = None
        if isinstance(itens, list) and len(itens) == len(brutas):
            guardadas = [_guardada(item) for item in itens]
            if None not in guardadas:
                return junto, cast("list[SenhaGuardada]", guardadas)
        # Slow path: something else is under our key; skip it rather than send it on.
        boas: list[bytes] = []
        objetos: list[SenhaGuardada] = []
        for bruta in brutas:
            try:
                guardada = _guardada(json.loads(bruta))
            except ValueError:
                continue
            if guardada is not None:
                boas.append(bruta)
                objetos.append(guardada)
        return b"[" + b",".join(boas) + b"]", objetos

    def latest(self, limite: int) -> list[SenhaGuardada]:
        return self._entradas(limite)[1]

    def latest_json(self, limite: int) -> bytes:
        return self._entradas(limite)[0]

    def check(self) -> None:
        self._comando("PING")

    def close(self) -> None:
        conexao = getattr(self._local, "conexao", None)
        if conexao is not None:
            conexao.disconnect()
        self._pool.disconnect()


def _guardada(item: object) -> SenhaGuardada | None:
    if (
        type(item) is dict
        and item.keys() == _CHAVES
        and type(item["id"]) is int
        and type(item["senha"]) is str
    ):
        return SenhaGuardada(item["id"], item["senha"])
    return None


def store_from_env(env: Mapping[str, str], historico: int = HISTORICO_PADRAO) -> PasswordStore:
    config = redis_config_from_env(env)
    if config is None:
        return EmbeddedStore(historico)
    return RedisStore(config, historico)
