"""The pt-BR HTML page: the form, errors shown on the page, escaping, local assets and security headers."""

from __future__ import annotations

import html
import re
import string
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient

from giropops_senhas.store import PasswordStore


class Pagina(HTMLParser):
    """Collects what the tests look at: tags with their attributes, inline scripts/styles, text."""

    def __init__(self, texto: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_scripts = 0
        self.style_elements = 0
        self._em_script = False
        self.texto: list[str] = []
        self.feed(texto)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "script":
            self._em_script = "src" not in a
        if tag == "style":
            self.style_elements += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._em_script = False

    def handle_data(self, data: str) -> None:
        if self._em_script and data.strip():
            self.inline_scripts += 1
        self.texto.append(data)

    def find(self, tag: str, **attrs: str) -> dict[str, str | None]:
        for t, a in self.tags:
            if t == tag and all(a.get(k) == v for k, v in attrs.items()):
                return a
        raise AssertionError(f"no <{tag} {attrs}>")

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.texto).split())


def lista(pagina: str) -> list[tuple[int, str]]:
    """(id, password) of the page's list, in order."""
    itens = re.findall(r'<li data-id="(\d+)"><span class="id">#\d+</span> <code>(.*?)</code></li>', pagina, re.S)
    return [(int(i), html.unescape(s)) for i, s in itens]


def test_get_renders_the_form_in_portuguese(client: FlaskClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.content_type == "text/html; charset=utf-8"
    p = Pagina(r.get_data(as_text=True))
    assert p.find("html")["lang"] == "pt-BR"
    faixa = p.find("input", type="range")
    assert (faixa["name"], faixa["min"], faixa["max"], faixa["value"]) == ("tamanho", "8", "32", "8")
    assert p.find("input", name="incluir_numeros")["type"] == "checkbox"
    assert p.find("input", name="incluir_caracteres_especiais")["type"] == "checkbox"
    assert p.find("form")["method"] == "post"
    assert "Gerar senha" in p.text
    assert "Nenhuma senha gerada ainda" in p.text
    # No password is shown before one is asked for (the original showed the latest one to every visitor).
    assert not [a for a in p.all("input") if a.get("id") == "senha"]


def test_post_generates_shows_masked_and_lists_it_first(client: FlaskClient) -> None:
    client.post("/", data={"tamanho": "10"})
    r = client.post("/", data={"tamanho": "20", "incluir_numeros": "on", "incluir_caracteres_especiais": "on"})
    assert r.status_code == 200
    pagina = r.get_data(as_text=True)
    p = Pagina(pagina)
    campo = p.find("input", id="senha")
    assert campo["type"] == "password"
    senha = campo["value"]
    assert senha is not None and len(senha) == 20
    assert set(senha) & set(string.digits) and set(senha) & set(string.punctuation)
    itens = lista(pagina)
    assert itens[0] == (1, senha)  # the newest is #1, as the original numbers the list
    assert itens[1][0] == 2 and len(itens[1][1]) == 10
    # The form keeps what was asked for.
    assert p.find("input", type="range")["value"] == "20"
    assert "checked" in p.find("input", name="incluir_numeros")
    assert p.find("button", id="mostrar") is not None
    assert p.find("button", id="copiar") is not None
    # ...and the API sees the same list.
    assert [(i["id"], i["senha"]) for i in client.get("/api/senhas").get_json()] == itens


def test_unchecked_boxes_mean_letters_only(client: FlaskClient) -> None:
    r = client.post("/", data={"tamanho": "32"})
    senha = Pagina(r.get_data(as_text=True)).find("input", id="senha")["value"]
    assert senha is not None and len(senha) == 32 and set(senha) <= set(string.ascii_letters)


def test_missing_tamanho_is_the_original_default(client: FlaskClient) -> None:
    r = client.post("/", data={})
    senha = Pagina(r.get_data(as_text=True)).find("input", id="senha")["value"]
    assert senha is not None and len(senha) == 8


@pytest.mark.parametrize("tamanho", ["abc", "", "7", "33", "-8", "8.0", "1e1", "0x10", "٣٢", "9" * 50])
def test_bad_tamanho_is_shown_on_the_page(client: FlaskClient, tamanho: str) -> None:
    r = client.post("/", data={"tamanho": tamanho, "incluir_numeros": "on"})
    assert r.status_code == 400
    assert r.content_type.startswith("text/html")
    p = Pagina(r.get_data(as_text=True))
    alerta = p.find("div", id="erro")
    assert alerta["role"] == "alert"
    assert "tamanho" in p.text and "8 a 32" in p.text
    assert "checked" in p.find("input", name="incluir_numeros")  # the user's choice survives the error
    assert client.get("/api/senhas").get_json() == []


@pytest.mark.parametrize("campo", ["incluir_numeros", "incluir_caracteres_especiais"])
@pytest.mark.parametrize("valor", ["sim", "true", "1", ""])
def test_bad_checkbox_value_is_shown_on_the_page(client: FlaskClient, campo: str, valor: str) -> None:
    r = client.post("/", data={"tamanho": "12", campo: valor})
    assert r.status_code == 400
    p = Pagina(r.get_data(as_text=True))
    assert p.find("div", id="erro")
    assert campo in p.text
    assert client.get("/api/senhas").get_json() == []


def test_stored_passwords_are_escaped(app: Flask) -> None:
    store: PasswordStore = app.extensions["giropops_senhas"]["store"]
    store.add('<script>alert("x")</script>&amp;')
    pagina = app.test_client().get("/").get_data(as_text=True)
    assert "<script>alert" not in pagina
    assert lista(pagina)[0][1] == '<script>alert("x")</script>&amp;'


def test_no_inline_script_style_or_handler_and_only_local_assets(client: FlaskClient) -> None:
    client.post("/", data={"tamanho": "12"})
    p = Pagina(client.get("/").get_data(as_text=True) + client.post("/", data={"tamanho": "9"}).get_data(as_text=True))
    assert p.inline_scripts == 0
    assert p.style_elements == 0
    for tag, attrs in p.tags:
        assert "style" not in attrs, tag
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for a in ("src", "href", "action"):
            valor = attrs.get(a)
            if valor is not None:
                assert valor.startswith("/") and not valor.startswith("//"), (tag, a, valor)
    assets = [a["src"] for a in p.all("script")] + [a["href"] for a in p.all("link")]
    assert len(assets) >= 3
    for url in assets:
        assert url is not None
        r = client.get(url)
        assert r.status_code == 200, url
        # No reference to another origin (an SVG's namespace URI is a name, not a fetch).
        corpo = r.get_data(as_text=True).replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "http://" not in corpo and "https://" not in corpo and "url(" not in corpo, url


def test_static_assets_have_the_right_types(client: FlaskClient) -> None:
    tipos = {"estilo.css": "text/css", "app.js": "text/javascript", "favicon.svg": "image/svg+xml"}
    for nome, tipo in tipos.items():
        r = client.get(f"/static/{nome}")
        assert r.status_code == 200
        assert r.content_type.split(";")[0] == tipo


SEGURANCA = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@pytest.mark.parametrize("caminho", ["/", "/api/senhas", "/static/app.js", "/healthz", "/metrics", "/nada"])
def test_security_headers_everywhere(client: FlaskClient, caminho: str) -> None:
    r = client.get(caminho)
    for nome, valor in SEGURANCA.items():
        assert r.headers.get(nome) == valor, (caminho, nome)
    csp = r.headers["Content-Security-Policy"]
    diretivas = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert diretivas["default-src"] == ["'none'"]
    assert diretivas["script-src"] == ["'self'"]
    assert diretivas["style-src"] == ["'self'"]
    assert diretivas["frame-ancestors"] == ["'none'"]
    assert diretivas["base-uri"] == ["'none'"]
    assert diretivas["form-action"] == ["'self'"]
    # Headers are sent once, not duplicated by an error handler or a second layer.
    assert len(r.headers.getlist("Content-Security-Policy")) == 1
    if caminho.startswith("/static/"):
        assert "no-store" not in r.headers.get("Cache-Control", "")
    else:
        assert r.headers["Cache-Control"] == "no-store"


def test_embedded_store_is_named_on_the_page(embedded_client: FlaskClient) -> None:
    assert "embutido" in Pagina(embedded_client.get("/").get_data(as_text=True)).text
