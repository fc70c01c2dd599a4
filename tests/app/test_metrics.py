"""/metrics: the original's counter, request counts and latency histograms, linted by promtool."""

from __future__ import annotations

import re
import subprocess

from flask.testing import FlaskClient

from tests.support.services import require_binary


def promtool_check(texto: str) -> None:
    promtool = require_binary("promtool")
    r = subprocess.run([promtool, "check", "metrics"], input=texto, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"promtool: {r.stdout}{r.stderr}"
    assert not r.stdout.strip() and not r.stderr.strip(), f"promtool lint: {r.stdout}{r.stderr}"


def amostras(texto: str) -> dict[str, float]:
    """{'name{labels}': value} from an exposition, labels sorted by name (exporters order them differently)."""
    saida = {}
    for linha in texto.splitlines():
        if linha and not linha.startswith("#"):
            serie, valor = linha.rsplit(" ", 1)
            nome, _, resto = serie.partition("{")
            labels = sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', resto))
            chave = nome + ("{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" if labels else "")
            saida[chave] = float(valor)
    return saida


def test_metrics_count_passwords_requests_and_latency(client: FlaskClient) -> None:
    for tamanho in (8, 12, 16):
        assert client.post("/api/gerar-senha", json={"tamanho": tamanho}).status_code == 200
    assert client.post("/", data={"tamanho": "10"}).status_code == 200
    assert client.post("/api/gerar-senha", json={"tamanho": 2}).status_code == 400
    assert client.get("/api/senhas").status_code == 200
    assert client.get("/nao/existe/1").status_code == 404
    assert client.get("/nao/existe/2").status_code == 404

    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.content_type.startswith("text/plain")
    texto = r.get_data(as_text=True)
    promtool_check(texto)
    m = amostras(texto)

    assert m["senha_gerada_total"] == 4
    assert "# TYPE senha_gerada_total counter" in texto or "# TYPE senha_gerada counter" in texto
    assert m['http_requests_total{method="POST",route="/api/gerar-senha",status="200"}'] == 3
    assert m['http_requests_total{method="POST",route="/api/gerar-senha",status="400"}'] == 1
    assert m['http_requests_total{method="POST",route="/",status="200"}'] == 1
    assert m['http_requests_total{method="GET",route="/api/senhas",status="200"}'] == 1
    # Unknown paths share one label value: a scanner cannot grow the series.
    assert m['http_requests_total{method="GET",route="<sem rota>",status="404"}'] == 2
    assert not [k for k in m if "/nao/existe" in k]

    serie = 'method="POST",route="/api/gerar-senha",status="200"'
    assert m[f"http_request_duration_seconds_count{{{serie}}}"] == 3
    assert m[f'http_request_duration_seconds_bucket{{le="+Inf",{serie}}}'] == 3
    assert m[f"http_request_duration_seconds_sum{{{serie}}}"] > 0
    limites = ["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf"]
    buckets = [m[f'http_request_duration_seconds_bucket{{le="{le}",{serie}}}'] for le in limites]
    assert buckets == sorted(buckets)  # cumulative


def test_each_app_counts_its_own(client: FlaskClient, embedded_client: FlaskClient) -> None:
    # Two apps in one process (tests, or several create_app calls) never share a registry.
    client.post("/api/gerar-senha", json={})
    texto = embedded_client.get("/metrics").get_data(as_text=True)
    assert re.search(r"^senha_gerada_total 0\.0$", texto, re.M)
