"""The hot routes have one handler and one validator: the WSGI shortcut and the Flask views call the same code,
so an invalid body is validated once and its 400 is the same bytes whichever path answers it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from giropops_senhas import app as app_module
from giropops_senhas.validation import Pedido

JSON = "application/json"


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every body the API validator is given (the real validator still runs)."""
    seen: list[bytes] = []
    real = app_module.pedido_da_api

    def counting(e_json: bool, corpo: bytes) -> Pedido:
        seen.append(corpo)
        return real(e_json, corpo)

    monkeypatch.setattr(app_module, "pedido_da_api", counting)
    return seen


@pytest.mark.parametrize("body", [b'{"tamanho": 7}', b"{", b'{"tamanho": 12, "x": 1}', b'{"tamanho": 12}'])
def test_a_body_is_validated_once(embedded_client: FlaskClient, validations: list[bytes], body: bytes) -> None:
    r = embedded_client.post("/api/gerar-senha", data=body, content_type=JSON)
    assert r.status_code in (200, 400)
    assert validations == [body]


@pytest.mark.parametrize("body", [b'{"tamanho": 7}', b"{", b'{"tamanho": "doze"}', b"[]"])
def test_the_shortcut_s_400_is_flask_s(embedded_app: Flask, body: bytes) -> None:
    client = embedded_app.test_client()
    rapido = client.post("/api/gerar-senha", data=body, content_type=JSON)
    # an application/*+json media type is JSON for Flask but not for the shortcut: Flask's view answers it
    flask = client.post("/api/gerar-senha", data=body, content_type="application/senha+json")
    assert rapido.status_code == flask.status_code == 400
    assert rapido.get_data() == flask.get_data()
    assert list(rapido.headers.items()) == list(flask.headers.items())
    erro: Any = rapido.get_json()
    assert erro["erro"]
