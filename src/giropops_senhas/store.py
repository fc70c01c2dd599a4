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
from redis.exceptions import RedisError
from redis.retry import Retry

HISTORICO_PADRAO = 10
LISTA = "giropops-senhas:senhas"
CONTADOR = "giropops-senhas:id"

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

    def client(self, **options: Any) -> redis.Redis:
        if self.url is not None:
            return redis.Redis.from_url(self.url, **options)
        return redis.Redis(host=self.host or "localhost", port=self.port, password=self.password, **options)


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
    """

    kind = "redis"

    def __init__(self, config: RedisConfig, historico: int = HISTORICO_PADRAO, timeout: float = 1.0) -> None:
        self.description = config.description
        self._historico = historico
        self._client = config.client(
            decode_responses=False,
            socket_connect_timeout=timeout / 2,
            socket_timeout=timeout,
            # One immediate retry: a pooled connection broken by a Redis restart is replaced transparently.
            retry=Retry(NoBackoff(), 1),
            health_check_interval=0,
        )
        self._adicionar = self._client.register_script(_ADICIONAR)

    def add(self, senha: str) -> SenhaGuardada:
        try:
            novo_id = self._adicionar(keys=[LISTA, CONTADOR], args=[json.dumps(senha), self._historico])
        except RedisError as e:
            raise StoreUnavailable(f"Redis ({self.description}): {e}") from e
        return SenhaGuardada(int(novo_id), senha)

    def _entradas(self, limite: int) -> list[tuple[bytes, SenhaGuardada]]:
        try:
            brutas = cast("list[bytes]", self._client.lrange(LISTA, 0, limite - 1))
        except RedisError as e:
            raise StoreUnavailable(f"Redis ({self.description}): {e}") from e
        entradas = []
        for bruta in brutas:
            # Anything under our key that this app did not write is skipped rather than sent on.
            try:
                dados = json.loads(bruta)
            except ValueError:
                continue
            if (
                isinstance(dados, dict)
                and dados.keys() == {"id", "senha"}
                and type(dados["id"]) is int
                and isinstance(dados["senha"], str)
            ):
                entradas.append((bruta, SenhaGuardada(dados["id"], dados["senha"])))
        return entradas

    def latest(self, limite: int) -> list[SenhaGuardada]:
        return [guardada for _, guardada in self._entradas(limite)]

    def latest_json(self, limite: int) -> bytes:
        return b"[" + b",".join(bruta for bruta, _ in self._entradas(limite)) + b"]"

    def check(self) -> None:
        try:
            self._client.ping()
        except RedisError as e:
            raise StoreUnavailable(f"Redis ({self.description}): {e}") from e

    def close(self) -> None:
        self._client.close()


def store_from_env(env: Mapping[str, str], historico: int = HISTORICO_PADRAO) -> PasswordStore:
    config = redis_config_from_env(env)
    if config is None:
        return EmbeddedStore(historico)
    return RedisStore(config, historico)
