"""The Flask application: the original giropops-senhas routes, validated, measured and locked down.

Routes (the original's contract, kept): ``GET``/``POST /`` (the pt-BR page), ``POST /api/gerar-senha``,
``GET /api/senhas``, ``GET /metrics``; added: ``GET /healthz`` (the process answers) and ``GET /readyz`` (the
store answers too).

The hottest two — ``POST /api/gerar-senha`` with a JSON body and ``GET /api/senhas`` — are answered by a small
WSGI shortcut in front of Flask (``_Atalho``) calling the same handlers as the Flask views (``gerar_resposta``,
``senhas_resposta``), so both paths give the same bytes by construction and a body is validated once; everything
else (other media types, bodies Flask must read, a store that fails) is Flask's.

Served by ``giropops-senhas``, a plain request of those two routes does not even take WSGI: the worker
(worker.py) parses it and calls ``_Envelope.direto`` (the app's ``giropops_direto`` attribute), which runs the
same handlers through ``_Atalho.responder`` and adds the same headers and metrics as the WSGI path.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from .generator import Classes, gerar_senha
from .metrics import CONTENT_TYPE, Metrics
from .store import HISTORICO_PADRAO, PasswordStore, StoreUnavailable, store_from_env
from .validation import (
    FORM_TAMANHO_MAX,
    FORM_TAMANHO_MIN,
    MAX_CORPO,
    TAMANHO_PADRAO,
    ErroDeValidacao,
    Pedido,
    pedido_da_api,
    pedido_do_formulario,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("giropops_senhas")

LISTADAS = 10
RETRY_AFTER = "5"

# No inline script or style anywhere: every asset is a file under /static on this origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
AVISO_EMBUTIDO = (
    "sem Redis configurado (REDIS_URL ou REDIS_HOST): as senhas ficam na memória deste processo "
    "e se perdem ao reiniciar"
)
_MENSAGENS_HTTP = {
    404: "rota não encontrada",
    405: "método não permitido",
    413: f"corpo grande demais: no máximo {MAX_CORPO} bytes",
}
DIRETO = "giropops_direto"
"""The app's attribute holding ``_Envelope.direto``: worker.py's ``DIRECT`` names it too (without importing
this module, which the server's master process must not)."""
_ROTA = "giropops_senhas.rota"
_FALHA = "giropops_senhas.falha"
_METODOS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Sent with every response; added at the WSGI layer, where it costs one list.extend.
_CABECALHOS = list(SECURITY_HEADERS.items())
_SEM_CACHE = ("Cache-Control", "no-store")


class _Envelope:
    """WSGI middleware: security headers on every response, ``no-store`` on all but static files (pages and
    answers carry passwords), and the request count and latency by method, route template and status.

    ``direto`` is the same envelope around ``_Atalho.responder`` for the server's own fast path (worker.py):
    the worker hands it a request it has parsed and gets the whole answer back, no WSGI in between."""

    def __init__(self, app: WSGIApplication, metrics: Metrics, atalho: _Atalho) -> None:
        self.app = app
        self.metrics = metrics
        self.atalho = atalho

    def direto(
        self, metodo: str, caminho: str, tipo: str | None, corpo: bytes
    ) -> tuple[str, list[tuple[str, str]], bytes] | dict[str, Any]:
        """Answer a request the server has wholly read and parsed itself: ``(status, headers, body)`` as the
        WSGI path would send them (same handler, same headers, counted in the same metrics), or a mapping of
        environ entries when the WSGI app must answer (empty: not a route of the shortcut; else the store's
        failure, so the store is not asked twice)."""
        inicio = time.perf_counter()
        try:
            resposta = self.atalho.responder(metodo, caminho, tipo, corpo)
        except StoreUnavailable as e:
            return {_FALHA: e}
        if resposta is None:
            return {}
        rota, status, dados = resposta
        cabecalhos = [*_JSON, ("Content-Length", str(len(dados))), *_CABECALHOS, _SEM_CACHE]
        self.metrics.observe(metodo, rota, status, time.perf_counter() - inicio)
        return _STATUS[status], cabecalhos, dados

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        inicio = time.perf_counter()
        estado: list[str] = []

        def responder(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.extend(_CABECALHOS)
            if not environ.get("PATH_INFO", "").startswith("/static/"):
                headers.append(_SEM_CACHE)
            estado.append(status)
            return start_response(status, headers, exc_info)

        corpo = self.app(environ, responder)
        metodo = environ.get("REQUEST_METHOD", "")
        self.metrics.observe(
            metodo if metodo in _METODOS else "OTHER",
            environ.get(_ROTA, "<sem rota>"),
            int(estado[-1][:3]) if estado else 500,
            time.perf_counter() - inicio,
        )
        return corpo


_JSON = [("Content-Type", "application/json")]
_STATUS = {200: "200 OK", 400: "400 BAD REQUEST"}


def gerar_resposta(store: PasswordStore, metrics: Metrics, e_json: bool, corpo: bytes) -> tuple[int, bytes]:
    """The one handler of ``POST /api/gerar-senha``: validate once, generate, keep; the status and JSON body.

    ``StoreUnavailable`` goes to the caller (Flask's error handler answers it)."""
    try:
        pedido = pedido_da_api(e_json, corpo)
    except ErroDeValidacao as e:
        # as Flask's jsonify writes it (compact, in order, UTF-8, a final newline)
        return 400, (json.dumps(e.as_json(), ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    senha = gerar_senha(pedido.tamanho, pedido.classes)
    store.add(senha)
    metrics.senha_gerada.inc()
    # The hottest route: one json.dumps of a string instead of a general-purpose JSON response.
    return 200, b'{"senha":%s}' % json.dumps(senha).encode()


def senhas_resposta(store: PasswordStore) -> bytes:
    """The one handler of ``GET /api/senhas``: the latest passwords as JSON."""
    return store.latest_json(LISTADAS)
_TIPOS_JSON = frozenset({"application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"})


class _Atalho:
    """WSGI middleware: the two hot API routes without Flask's per-request machinery.

    ``POST /api/gerar-senha`` with a JSON body of known length, and ``GET /api/senhas``, are answered here by the
    Flask views' own handlers (measured: Flask's request context, routing and response object are a large share
    of the app's own CPU per request).  Everything else — another method or path, a body that is missing, too
    long, chunked or short, a media type this check does not know — goes to Flask unchanged (with the body it
    read put back).  A store that fails here is not asked again: the exception rides along in the environ and
    Flask's error handler answers it.
    """

    def __init__(self, app: WSGIApplication, store: PasswordStore, metrics: Metrics, limite: int) -> None:
        self.app = app
        self.store = store
        self.metrics = metrics
        self.limite = limite  # bodies up to this many bytes are read here; longer ones are Flask's (413)

    def responder(self, metodo: str, caminho: str, tipo: str | None, corpo: bytes) -> tuple[str, int, bytes] | None:
        """``(route, status, body)`` for a request of the two hot routes whose body (``corpo``) is all there,
        or None when it is Flask's (another route, a media type this check does not know, an empty body).
        ``StoreUnavailable`` goes to the caller."""
        if metodo == "GET" and caminho == "/api/senhas":
            return "/api/senhas", 200, senhas_resposta(self.store)
        if (
            metodo == "POST"
            and caminho == "/api/gerar-senha"
            and tipo is not None
            and tipo.lower() in _TIPOS_JSON
            and 0 < len(corpo) <= self.limite
        ):
            status, resposta = gerar_resposta(self.store, self.metrics, True, corpo)
            return "/api/gerar-senha", status, resposta
        return None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if _FALHA in environ:  # the server's fast path met a store that fails: Flask answers it
            return self.app(environ, start_response)
        metodo = environ.get("REQUEST_METHOD")
        caminho = environ.get("PATH_INFO")
        if metodo == "GET" and caminho == "/api/senhas":
            try:
                corpo = senhas_resposta(self.store)
            except StoreUnavailable as e:
                environ[_FALHA] = e
                return self.app(environ, start_response)
            environ[_ROTA] = "/api/senhas"
            return self._json(start_response, 200, corpo)
        if metodo == "POST" and caminho == "/api/gerar-senha":
            return self._gerar(environ, start_response)
        return self.app(environ, start_response)

    @staticmethod
    def _json(start_response: StartResponse, status: int, corpo: bytes) -> list[bytes]:
        start_response(_STATUS[status], [*_JSON, ("Content-Length", str(len(corpo)))])
        return [corpo]

    def _gerar(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        tamanho = environ.get("CONTENT_LENGTH", "")
        if (
            environ.get("CONTENT_TYPE", "").lower() not in _TIPOS_JSON
            or not (tamanho.isascii() and tamanho.isdecimal() and len(tamanho) <= len(str(self.limite)))
            or not 0 < int(tamanho) <= self.limite
            or "HTTP_TRANSFER_ENCODING" in environ
        ):
            return self.app(environ, start_response)
        corpo = environ["wsgi.input"].read(int(tamanho))
        if len(corpo) != int(tamanho):  # a short body is Flask's to answer
            environ["wsgi.input"] = io.BytesIO(corpo)
            return self.app(environ, start_response)
        try:
            status, resposta = gerar_resposta(self.store, self.metrics, True, corpo)
        except StoreUnavailable as e:
            environ[_FALHA] = e
            environ["wsgi.input"] = io.BytesIO(corpo)
            return self.app(environ, start_response)
        environ[_ROTA] = "/api/gerar-senha"
        return self._json(start_response, status, resposta)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app.

    ``config`` may hold ``STORE`` (a :class:`~giropops_senhas.store.PasswordStore` to use), ``ENV`` (the
    mapping to read ``REDIS_*`` from, default ``os.environ``), ``HISTORICO`` (how many passwords a new store
    keeps, default 10) and any Flask setting.
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_CORPO
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_CORPO
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    if config:
        app.config.update(config)

    store: PasswordStore = app.config.get("STORE") or store_from_env(
        app.config.get("ENV", os.environ), app.config.get("HISTORICO", HISTORICO_PADRAO)
    )
    metrics = Metrics()
    app.extensions["giropops_senhas"] = {"store": store, "metrics": metrics}
    ultimo_aviso = [0.0]

    @app.before_request
    def _rota() -> None:
        # The route template (not the path) labels the metrics, so unknown paths cannot grow the label set.
        rule = request.url_rule
        request.environ[_ROTA] = rule.rule if rule is not None else "<sem rota>"
        falha = request.environ.pop(_FALHA, None)
        if falha is not None:  # the fast path met it (see _Atalho): answered by the error handler below
            raise falha

    limite = min(MAX_CORPO, app.config.get("MAX_CONTENT_LENGTH") or MAX_CORPO)
    atalho = _Atalho(app.wsgi_app, store, metrics, limite)
    envelope = _Envelope(atalho, metrics, atalho)
    app.wsgi_app = envelope  # type: ignore[method-assign]
    setattr(app, DIRETO, envelope.direto)  # for the server's fast path (worker.py)

    def _indisponivel(erro: StoreUnavailable) -> None:
        agora = time.monotonic()
        if agora - ultimo_aviso[0] > 10:
            ultimo_aviso[0] = agora
            log.warning("password store unavailable: %s", erro)

    @app.errorhandler(StoreUnavailable)
    def _store_fora(erro: StoreUnavailable) -> tuple[Response | str, int, dict[str, str]]:
        _indisponivel(erro)
        if request.path.startswith("/api/"):
            corpo = {"erro": "armazenamento de senhas indisponível; tente novamente em instantes", "campo": None}
            return jsonify(corpo), 503, {"Retry-After": RETRY_AFTER}
        return _pagina(503)

    @app.errorhandler(HTTPException)
    def _http(erro: HTTPException) -> WerkzeugResponse | HTTPException:
        if not request.path.startswith("/api/"):
            return erro
        resposta = erro.get_response()
        mensagem = _MENSAGENS_HTTP.get(resposta.status_code, erro.name)
        if resposta.status_code == 405:
            permitidos = getattr(erro, "valid_methods", None) or ()
            mensagem += ": use " + ", ".join(sorted(m for m in permitidos if m != "OPTIONS"))
        resposta.set_data(app.json.dumps({"erro": mensagem, "campo": None}))
        resposta.content_type = "application/json"
        return resposta

    def _pagina(
        status: int = 200,
        pedido: Pedido | None = None,
        senha: str | None = None,
        erro: ErroDeValidacao | None = None,
    ) -> tuple[str, int, dict[str, str]]:
        senhas = []
        if status != 503:
            try:
                senhas = store.latest(LISTADAS)
            except StoreUnavailable as e:
                _indisponivel(e)
                status = 503
        indisponivel = status == 503
        html = render_template(
            "index.html",
            tamanho=pedido.tamanho if pedido else TAMANHO_PADRAO,
            incluir_numeros=pedido.classes.incluir_numeros if pedido else False,
            incluir_caracteres_especiais=pedido.classes.incluir_caracteres_especiais if pedido else False,
            tamanho_min=FORM_TAMANHO_MIN,
            tamanho_max=FORM_TAMANHO_MAX,
            senha=None if indisponivel else senha,
            senhas=senhas,
            erro=erro,
            indisponivel=indisponivel,
            armazenamento=store.kind,
        )
        return html, status, ({"Retry-After": RETRY_AFTER} if indisponivel else {})

    @app.route("/", methods=["GET", "POST"])
    def index() -> tuple[str, int, dict[str, str]]:
        if request.method == "GET":
            return _pagina()
        try:
            pedido = pedido_do_formulario(request.form)
        except ErroDeValidacao as e:
            # Keep the user's checkboxes; the slider falls back to the default.
            return _pagina(400, _pedido_parcial(request.form), erro=e)
        senha = gerar_senha(pedido.tamanho, pedido.classes)
        store.add(senha)
        metrics.senha_gerada.inc()
        return _pagina(200, pedido, senha=senha)

    @app.post("/api/gerar-senha")
    def api_gerar_senha() -> tuple[Response, int]:
        status, corpo = gerar_resposta(store, metrics, request.is_json, request.get_data(cache=False))
        return Response(corpo, mimetype="application/json"), status

    @app.get("/api/senhas")
    def api_senhas() -> Response:
        return Response(senhas_resposta(store), mimetype="application/json")

    @app.get("/metrics")
    def metrics_view() -> Response:
        return Response(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        corpo: dict[str, Any] = {"armazenamento": store.kind, "descricao": store.description}
        try:
            store.check()
        except StoreUnavailable as e:
            corpo.update(status="indisponivel", erro=str(e))
            return jsonify(corpo), 503
        corpo["status"] = "pronto"
        if store.kind == "embedded":
            corpo["aviso"] = AVISO_EMBUTIDO
        return jsonify(corpo), 200

    return app


def _pedido_parcial(form: Mapping[str, str]) -> Pedido:
    return Pedido(
        TAMANHO_PADRAO,
        Classes(
            incluir_numeros=form.get("incluir_numeros") == "on",
            incluir_caracteres_especiais=form.get("incluir_caracteres_especiais") == "on",
        ),
    )
