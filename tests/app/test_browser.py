"""A real browser on the real server: Debian's chromium, headless, driven by Playwright (never a downloaded one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

from tests.support.services import RedisServer, require_binary

HEADLESS_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    chromium = require_binary("chromium")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=HEADLESS_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class Vigia:
    """Everything the page says in the console, its errors, and every URL it asks for."""

    def __init__(self, page: Page) -> None:
        self.console: list[str] = []
        self.pedidos: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        page.on("request", self._pedido)

    def _console(self, msg: ConsoleMessage) -> None:
        self.console.append(f"{msg.type}: {msg.text}")

    def _pedido(self, req: Request) -> None:
        self.pedidos.append(req.url)


def test_generate_reveal_copy_and_list(
    browser: Browser, start_server: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    server = start_server({"REDIS_URL": redis_server.url, "WORKERS": "2"})
    context = browser.new_context(locale="pt-BR")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    vigia = Vigia(page)

    page.goto(server.url + "/")
    assert page.title().startswith("Giropops Senhas")
    # The stylesheet loaded under the CSP (the heading has the brand colour) ...
    cor = page.eval_on_selector("h1", "e => getComputedStyle(e).color")
    assert cor in ("rgb(91, 60, 196)", "rgb(143, 116, 255)"), cor
    # ... and so did the script: moving the slider updates the number next to it.
    page.eval_on_selector("#tamanho", "e => { e.value = '20'; e.dispatchEvent(new Event('input')); }")
    assert page.text_content("#tamanho-valor") == "20"
    page.check("#incluir_numeros")
    page.check("#incluir_caracteres_especiais")
    with page.expect_navigation():
        page.click("#gerar")

    campo = page.locator("#senha")
    assert campo.get_attribute("type") == "password"
    assert page.is_visible("#mostrar") and page.is_visible("#copiar")
    page.click("#mostrar")
    assert campo.get_attribute("type") == "text"
    assert page.get_attribute("#mostrar", "aria-pressed") == "true"
    assert page.text_content("#mostrar span") == "Ocultar"
    senha = campo.input_value()
    assert len(senha) == 20

    primeiro = page.locator("#senhas li").first
    assert primeiro.locator("code").text_content() == senha
    assert page.get_attribute("#tamanho", "value") == "20"
    assert page.is_checked("#incluir_numeros")

    page.screenshot(path=str(tmp_path / "pagina.png"), full_page=True)
    page.click("#copiar")
    page.wait_for_function("document.getElementById('estado').textContent.length > 0")
    assert page.text_content("#estado") == "Senha copiada."
    assert page.evaluate("navigator.clipboard.readText()") == senha

    page.click("#mostrar")
    assert campo.get_attribute("type") == "password"
    campo.press("Enter")  # nothing happens: the password stays on the page
    assert campo.input_value() == senha

    # No CSP violation, no error, no warning — and nothing fetched from anywhere but the app.
    assert vigia.console == [], vigia.console
    assert vigia.pedidos and all(u.startswith(server.url + "/") for u in vigia.pedidos), vigia.pedidos

    # A form error is shown on the page, in Portuguese, without breaking anything.
    page.eval_on_selector("#tamanho", "e => { e.min = '1'; e.value = '3'; }")
    with page.expect_navigation():
        page.click("#gerar")
    assert "tamanho fora do intervalo" in (page.text_content("#erro") or "")
    # The only thing the console says now is that the page came with a 400.
    assert vigia.console == ["error: Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"]
    page.screenshot(path=str(tmp_path / "pagina-erro.png"), full_page=True)
    context.close()


def test_page_works_with_the_embedded_store(browser: Browser, start_server: Any) -> None:
    server = start_server({})
    page = browser.new_page()
    vigia = Vigia(page)
    page.goto(server.url + "/")
    assert "embutido" in (page.text_content("footer") or "")
    with page.expect_navigation():
        page.click("#gerar")
    page.click("#mostrar")
    senha = page.locator("#senha").input_value()
    assert len(senha) == 8
    assert page.locator("#senhas li code").first.text_content() == senha
    page.close()
    assert vigia.console == [], vigia.console
