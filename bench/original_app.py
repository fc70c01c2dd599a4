"""The original giropops-senhas app, as the course ships it, to measure against (bench/app_wrk.py).

Kept faithful on purpose — random.choices, an unbounded Redis list, a module-level counter, no validation —
so the benchmark compares the fixed app with what it replaces.  Never used outside bench/.
"""

import os
import random
import string

import redis
from flask import Flask, jsonify, request
from prometheus_client import Counter, generate_latest

app = Flask(__name__)

r = redis.StrictRedis(
    host=os.environ.get("REDIS_HOST", "127.0.0.1"),
    port=int(os.environ.get("REDIS_PORT", "6379")),
    password="",
    decode_responses=True,
)

senha_gerada_counter = Counter("senha_gerada", "Contador de senhas geradas")


def criar_senha(tamanho, incluir_numeros, incluir_caracteres_especiais):
    caracteres = string.ascii_letters
    if incluir_numeros:
        caracteres += string.digits
    if incluir_caracteres_especiais:
        caracteres += string.punctuation
    return "".join(random.choices(caracteres, k=tamanho))


@app.route("/api/gerar-senha", methods=["POST"])
def gerar_senha_api():
    dados = request.get_json()
    tamanho = int(dados.get("tamanho", 8))
    incluir_numeros = dados.get("incluir_numeros", False)
    incluir_caracteres_especiais = dados.get("incluir_caracteres_especiais", False)
    senha = criar_senha(tamanho, incluir_numeros, incluir_caracteres_especiais)
    r.lpush("senhas", senha)
    senha_gerada_counter.inc()
    return jsonify({"senha": senha})


@app.route("/api/senhas", methods=["GET"])
def listar_senhas():
    senhas = r.lrange("senhas", 0, 9)
    resposta = [{"id": index + 1, "senha": senha} for index, senha in enumerate(senhas)]
    return jsonify(resposta)


@app.route("/metrics")
def metrics():
    return generate_latest()


if __name__ == "__main__":
    # The original's way: Flask's development server.
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")), debug=False)
