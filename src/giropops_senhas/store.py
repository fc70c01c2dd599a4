"""Where generated passwords are kept: Redis when configured, else an embedded in-process store.

Both keep the original app's contract: the passwords, newest first, each with ``id`` = its position in the list
(1 = the newest), exactly what the original's ``GET /api/senhas`` sends.  In Redis they live where the original
put them — the list ``senhas`` of plain password strings (``LPUSH``) — so an existing deployment's passwords are
listed and the original and this app can share one Redis.  Unlike the original (whose list grew forever) both
keep only the latest ``historico`` passwords: every push also trims the list, which trims a longer list left
by the original on the first password stored.

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
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.retry import Retry

HISTORICO_PADRAO = 10
LISTA = "senhas"
"""The original app's Redis key: a list of plain password strings, newest first."""
_LPUSH = b"*3\r\n$5\r\nLPUSH\r\n$%d\r\n%s\r\n" % (len(LISTA), LISTA.encode())  # RESP: the command, the key



class ConfigError(ValueError):
    """The environment names a store the app cannot use as written (e.g. a non-numeric ``REDIS_PORT``)."""


class StoreUnavailable(Exception):
    """The configured store did not answer; the request can be retried later (HTTP 503)."""


@dataclass(frozen=True)
class SenhaGuardada:
    """A listed password; ``id`` is its position in the list (1 = the newest), as the original app numbers them.

    An id therefore names a place in the list, not a password: the next password stored moves every one down.
    """

    id: int
    senha: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "senha": self.senha}


def _como_json(senhas: list[SenhaGuardada]) -> bytes:
    """The JSON array ``GET /api/senhas`` sends: ``[{"id":1,"senha":"..."},...]``, compact."""
    return json.dumps([s.as_json() for s in senhas], separators=(",", ":")).encode()


_texto_json = json.encoder.encode_basestring_ascii  # the string encoder json.dumps uses (ensure_ascii)


def _brutas_como_json(brutas: list[bytes]) -> bytes:
    """``_como_json`` of the passwords read from Redis (numbered by position, non-UTF-8 entries skipped), written
    directly: the same bytes as ``json.dumps``, without a ``SenhaGuardada`` and a dict per password."""
    partes = []
    for indice, bruta in enumerate(brutas, 1):
        try:
            senha = bruta.decode()
        except UnicodeDecodeError:
            continue  # not text, so not a password: skipped (see RedisStore)
        partes.append(f'{{"id":{indice},"senha":{_texto_json(senha)}}}')
    return ("[" + ",".join(partes) + "]").encode()


class PasswordStore(Protocol):
    """The two operations the app needs, plus a readiness probe."""

    kind: str
    """``"redis"`` or ``"embedded"`` — reported by ``/readyz``."""

    description: str
    """Where the passwords live, safe to log (no password)."""

    def add(self, senha: str) -> None:
        """Store ``senha`` as the newest password (listed with id 1 until the next one), keeping the bound."""

    def latest(self, limite: int) -> list[SenhaGuardada]:
        """The newest ``limite`` passwords, newest first, each with its position in the list as ``id``."""

    def latest_json(self, limite: int) -> bytes:
        """``latest(limite)`` as the JSON array ``GET /api/senhas`` sends."""

    def check(self) -> None:
        """Return if the store answers; raise :class:`StoreUnavailable` otherwise."""


class EmbeddedStore:
    """In-process store with the Redis store's semantics: thread-safe, lost on restart, and private to one process.

    ``giropops-senhas`` therefore runs a single worker process (with threads) when this store is in use.
    """

    kind = "embedded"
    description = "embutido (em memória, neste processo)"

    def __init__(self, historico: int = HISTORICO_PADRAO) -> None:
        self._senhas: deque[str] = deque(maxlen=historico)
        self._lock = threading.Lock()

    def add(self, senha: str) -> None:
        with self._lock:
            self._senhas.appendleft(senha)

    def latest(self, limite: int) -> list[SenhaGuardada]:
        with self._lock:
            senhas = list(itertools.islice(self._senhas, limite))
        return [SenhaGuardada(indice + 1, senha) for indice, senha in enumerate(senhas)]

    def latest_json(self, limite: int) -> bytes:
        return _como_json(self.latest(limite))

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
    """The original app's Redis list ``senhas``: plain password strings, newest first, trimmed on every push.

    ``add`` pushes and trims in one round trip (``LPUSH`` and ``LTRIM`` written together, both replies read);
    not atomic, and need not be: every trim keeps the newest ``historico`` entries whatever ran in between, and a
    reader sees at most one extra entry beyond the bound, which ``latest`` does not ask for (a Lua script did the
    same atomically at several times Redis's CPU per call). ``latest`` is one ``LRANGE`` and numbers
    the entries by their position in the list, as the original did.  The list may hold data this app did not
    write (the original app, or anything else with access to Redis): an entry that is not UTF-8 text cannot be a
    password and is skipped — it is not sent on, and the entries after it keep their position in the list as
    their id (so ids can have a gap there).  The original would answer such data with a 500.  A key ``senhas``
    that is not a list makes Redis refuse the command, which is :class:`StoreUnavailable` (503), never a 500.

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
        self._pacotes: dict[tuple[tuple[str | bytes | int, ...], ...], Any] = {}  # fixed commands, packed once

    def _conexao(self) -> Any:
        # redis-py's Connection is untyped; Any keeps mypy's strict mode from flagging every call on it.
        conexao = getattr(self._local, "conexao", None)
        if conexao is None:
            conexao = self._local.conexao = self._pool.make_connection()
        return conexao

    def _comando(self, *args: str | bytes | int) -> Any:
        """A command whose arguments are fixed (``LRANGE`` of a limit, ``PING``): packed once, then reused."""
        return self._comandos((args,), fixo=True)[0]

    def _comandos(self, comandos: tuple[tuple[str | bytes | int, ...], ...], fixo: bool = False) -> list[Any]:
        """Send the commands in one write, read every reply (so the connection stays in step), then raise the
        first error there was."""
        conexao = self._conexao()
        return self._enviar(conexao, self._pacote(conexao, comandos, fixo), len(comandos))

    def _pacote(self, conexao: Any, comandos: tuple[tuple[str | bytes | int, ...], ...], fixo: bool) -> Any:
        pacote = self._pacotes.get(comandos) if fixo else None
        if pacote is None:
            pacote = conexao.pack_commands(comandos)
            if fixo and len(self._pacotes) < 16:
                self._pacotes[comandos] = pacote
        return pacote

    def _enviar(self, conexao: Any, pacote: Any, quantos: int) -> list[Any]:
        for tentativa in (1, 2):
            try:
                conexao.send_packed_command(pacote)
                respostas: list[Any] = []
                erro: ResponseError | None = None
                for _ in range(quantos):
                    try:
                        respostas.append(conexao.read_response())
                    except ResponseError as e:  # the command failed; the connection is fine
                        erro = erro or e
                        respostas.append(e)
                if erro is not None:
                    raise StoreUnavailable(f"Redis ({self.description}): {erro}") from erro
                return respostas
            except RedisConnectionError as e:
                conexao.disconnect()
                if tentativa == 2:
                    raise StoreUnavailable(f"Redis ({self.description}): {e}") from e
            except RedisError as e:  # a timeout: the reply may still come, so the connection is dropped
                conexao.disconnect()
                raise StoreUnavailable(f"Redis ({self.description}): {e}") from e
        raise AssertionError("unreachable")

    def add(self, senha: str) -> None:
        # LPUSH and LTRIM in one write: the LTRIM and the head of the LPUSH are packed once, the password is
        # encoded as the connection encodes every argument, and framed as RESP frames a bulk string.
        conexao = self._conexao()
        corte = self._pacote(conexao, (("LTRIM", LISTA, 0, self._historico - 1),), fixo=True)
        dado = conexao.encoder.encode(senha)
        pacote = b"".join((_LPUSH, b"$%d\r\n" % len(dado), dado, b"\r\n", *corte))
        self._enviar(conexao, [pacote], 2)

    def latest(self, limite: int) -> list[SenhaGuardada]:
        brutas = self._brutas(limite)
        senhas: list[SenhaGuardada] = []
        for indice, bruta in enumerate(brutas):
            try:
                senhas.append(SenhaGuardada(indice + 1, bruta.decode()))
            except UnicodeDecodeError:
                continue  # not text, so not a password: skipped (see the class docstring)
        return senhas

    def _brutas(self, limite: int) -> list[bytes]:
        return cast("list[bytes]", self._comando("LRANGE", LISTA, 0, limite - 1))

    def latest_json(self, limite: int) -> bytes:
        return _brutas_como_json(self._brutas(limite))

    def check(self) -> None:
        self._comando("PING")

    def close(self) -> None:
        conexao = getattr(self._local, "conexao", None)
        if conexao is not None:
            conexao.disconnect()
        self._pool.disconnect()


def store_from_env(env: Mapping[str, str], historico: int = HISTORICO_PADRAO) -> PasswordStore:
    config = redis_config_from_env(env)
    if config is None:
        return EmbeddedStore(historico)
    return RedisStore(config, historico)
