"""Strict parsing of the two ways to ask for a password: the JSON API and the HTML form.

Bounds (documented in README.md, "The app"):

- API ``POST /api/gerar-senha``: ``tamanho`` is a whole number from 8 to 128 (default 8 when absent), sent as a
  JSON integer (``12``) or, as the original app's ``int(dados.get('tamanho', 8))`` accepted and its clients may
  send, as a JSON string of 1 to 4 ASCII digits (``"12"``) — nothing else: no sign, space, point or exponent, and
  never a boolean or a float (``12.0``); the flags are JSON ``true``/``false`` (default ``false`` when absent);
  the body is one JSON object, ``Content-Type`` ``application/json``; any other member is rejected, so a
  misspelt flag cannot silently weaken a password.
- Form ``POST /``: ``tamanho`` is a decimal integer from 8 to 32 (the slider's range, default 8 when absent);
  a checkbox is either absent or ``on``.

Every failure is a :class:`ErroDeValidacao` that names the field and what it accepts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .generator import Classes

API_TAMANHO_MIN = 8
API_TAMANHO_MAX = 128
FORM_TAMANHO_MIN = 8
FORM_TAMANHO_MAX = 32
TAMANHO_PADRAO = 8
FLAGS = ("incluir_numeros", "incluir_caracteres_especiais")
CAMPOS_API = ("tamanho", *FLAGS)
# A request body bigger than this is refused before it is read (werkzeug answers 413).
MAX_CORPO = 4096


@dataclass(frozen=True)
class Pedido:
    """A validated request for a password."""

    tamanho: int
    classes: Classes


@dataclass
class ErroDeValidacao(Exception):
    """A request that cannot be served as sent; ``as_json`` is the 400 body."""

    mensagem: str
    campo: str | None = None
    aceito: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.mensagem

    def as_json(self) -> dict[str, Any]:
        return {"erro": self.mensagem, "campo": self.campo, "aceito": self.aceito}


def _erro_tamanho(minimo: int, maximo: int, problema: str) -> ErroDeValidacao:
    return ErroDeValidacao(
        f"tamanho {problema}: deve ser um número inteiro de {minimo} a {maximo}",
        "tamanho",
        {"tipo": "inteiro", "minimo": minimo, "maximo": maximo},
    )


def _aceito_corpo() -> dict[str, Any]:
    return {
        "tipo": "objeto JSON",
        "content_type": "application/json",
        "campos": {
            "tamanho": {"tipo": "inteiro", "minimo": API_TAMANHO_MIN, "maximo": API_TAMANHO_MAX,
                        "padrao": TAMANHO_PADRAO},
            "incluir_numeros": {"tipo": "booleano", "padrao": False},
            "incluir_caracteres_especiais": {"tipo": "booleano", "padrao": False},
        },
    }


def pedido_da_api(content_type_json: bool, corpo: bytes) -> Pedido:
    """Validate the body of ``POST /api/gerar-senha``.

    ``content_type_json`` is whether the request declared a JSON media type; the body is parsed here (not by
    Flask) so that every way it can be wrong — empty, not UTF-8, not JSON, nested too deep, an integer too long
    for Python's int parser — ends up as the same kind of 400.
    """
    if not content_type_json:
        raise ErroDeValidacao("Content-Type deve ser application/json", None, _aceito_corpo())
    if not corpo.strip():
        raise ErroDeValidacao("corpo vazio: envie um objeto JSON", None, _aceito_corpo())
    try:
        dados = json.loads(corpo)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError, UnicodeDecodeError and int('9' * 5000)'s digit limit.
        raise ErroDeValidacao("o corpo não é JSON válido", None, _aceito_corpo()) from None
    if not isinstance(dados, dict):
        raise ErroDeValidacao("o corpo deve ser um objeto JSON", None, _aceito_corpo())
    for nome in dados:
        if nome not in CAMPOS_API:
            raise ErroDeValidacao(
                f"campo desconhecido: {nome[:64]!r}", nome[:64], {"campos": list(CAMPOS_API)}
            )

    tamanho = dados.get("tamanho", TAMANHO_PADRAO)
    if isinstance(tamanho, str) and _digitos(tamanho):
        tamanho = int(tamanho)  # the original's clients may send "12"
    # bool is a subclass of int: true must not mean a length of 1.
    if isinstance(tamanho, bool) or not isinstance(tamanho, int):
        raise _erro_tamanho(API_TAMANHO_MIN, API_TAMANHO_MAX, f"inválido ({_tipo_json(tamanho)})")
    if not API_TAMANHO_MIN <= tamanho <= API_TAMANHO_MAX:
        raise _erro_tamanho(API_TAMANHO_MIN, API_TAMANHO_MAX, "fora do intervalo")

    flags: dict[str, bool] = {}
    for nome in FLAGS:
        valor = dados.get(nome, False)
        if not isinstance(valor, bool):
            raise ErroDeValidacao(
                f"{nome} inválido ({_tipo_json(valor)}): deve ser true ou false",
                nome,
                {"tipo": "booleano", "padrao": False},
            )
        flags[nome] = valor
    return Pedido(tamanho, Classes(**flags))


def pedido_do_formulario(form: Mapping[str, str]) -> Pedido:
    """Validate the fields of ``POST /`` (an HTML form: every value is a string)."""
    bruto = form.get("tamanho")
    if bruto is None:
        tamanho = TAMANHO_PADRAO
    else:
        texto = bruto.strip()
        if not _digitos(texto):
            raise _erro_tamanho(FORM_TAMANHO_MIN, FORM_TAMANHO_MAX, "inválido")
        tamanho = int(texto)
        if not FORM_TAMANHO_MIN <= tamanho <= FORM_TAMANHO_MAX:
            raise _erro_tamanho(FORM_TAMANHO_MIN, FORM_TAMANHO_MAX, "fora do intervalo")
    flags: dict[str, bool] = {}
    for nome in FLAGS:
        valor = form.get(nome)
        if valor not in (None, "on"):
            raise ErroDeValidacao(
                f"{nome} inválido: uma caixa de seleção vale 'on' ou fica ausente", nome, {"valores": ["on"]}
            )
        flags[nome] = valor == "on"
    return Pedido(tamanho, Classes(**flags))


def _digitos(texto: str) -> bool:
    """1 to 4 ASCII decimal digits and nothing else (``isdecimal()`` alone accepts other scripts' digits)."""
    return 1 <= len(texto) <= 4 and texto.isascii() and texto.isdecimal()


def _tipo_json(valor: object) -> str:
    if valor is None:
        return "null"
    if isinstance(valor, bool):
        return "booleano"
    if isinstance(valor, int):
        return "inteiro"
    if isinstance(valor, float):
        return "número decimal"
    if isinstance(valor, str):
        return "texto"
    if isinstance(valor, list):
        return "lista"
    return "objeto"
