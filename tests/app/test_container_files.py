"""Dockerfile and compose.yaml: they cannot be built here (no Docker engine), so their promises are read.

What is checked is what would break silently: the app's dependencies drifting from pyproject.toml, a shell
command in the distroless stage (it has no shell), root, pip left in the image, compose wiring.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import yaml

from tests.support.paths import REPO_ROOT


def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages as lists of (INSTRUCTION, arguments), continuation lines joined."""
    texto = (REPO_ROOT / "Dockerfile").read_text()
    texto = re.sub(r"\\\n", " ", texto)
    saida: list[list[tuple[str, str]]] = []
    for linha in texto.splitlines():
        linha = linha.strip()
        if not linha or linha.startswith("#"):
            continue
        instrucao, _, args = linha.partition(" ")
        if instrucao.upper() == "FROM":
            saida.append([])
        if saida:
            saida[-1].append((instrucao.upper(), args.strip()))
    return saida


def app_dependencies_in_pyproject() -> set[str]:
    texto = (REPO_ROOT / "pyproject.toml").read_text()
    deps = tomllib.loads(texto)["project"]["dependencies"]
    bloco = texto.split("# app", 1)[1].split("# toolkit", 1)[0]
    return {d for d in deps if f'"{d}"' in bloco}


def test_dockerfile_installs_exactly_the_app_dependencies() -> None:
    build = stages()[0]
    instalados: set[str] = set()
    for instrucao, args in build:
        if instrucao == "RUN" and "pip install" in args and "--no-deps" not in args:
            instalados |= {a for a in shlex.split(args)[2:] if not a.startswith("-")}
    assert instalados == app_dependencies_in_pyproject()
    assert {"flask>=3.0", "gunicorn>=24", "redis>=5", "prometheus-client>=0.20"} <= instalados


def test_dockerfile_is_multi_stage_on_wolfi_and_distroless_at_the_end() -> None:
    build, final = stages()
    texto = (REPO_ROOT / "Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=cgr.dev/chainguard/python" in texto
    assert build[0][1].startswith("${PYTHON_IMAGE}:${PYTHON_TAG}-dev AS build")
    assert final[0][1] == "${PYTHON_IMAGE}:${PYTHON_TAG}"
    instrucoes = [i for i, _ in final]
    # The final image has no shell: any RUN (or shell-form CMD/ENTRYPOINT) there would fail to run.
    assert "RUN" not in instrucoes
    for instrucao, args in final:
        if instrucao in ("ENTRYPOINT", "CMD"):
            assert args.startswith("["), args
        if instrucao == "HEALTHCHECK":
            assert "CMD [" in args, args
    usuario = dict(final)["USER"]
    assert usuario.split(":")[0] not in ("0", "root")
    assert dict(final)["ENTRYPOINT"] == '["/app/venv/bin/giropops-senhas"]'
    assert ("COPY", "--from=build /app/venv /app/venv") in final
    # pip is removed from the virtualenv before it is copied.
    assert any(i == "RUN" and "pip uninstall -y pip" in a for i, a in build)


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    linhas = [x for x in (REPO_ROOT / ".dockerignore").read_text().splitlines() if x and not x.startswith("#")]
    assert linhas[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!src/"} <= set(linhas)


def test_compose_runs_the_app_with_redis() -> None:
    compose = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
    app = compose["services"]["app"]
    redis = compose["services"]["redis"]
    assert app["build"] == "."
    assert app["environment"]["REDIS_HOST"] == "redis"
    assert "5000:5000" in app["ports"]
    assert "redis" in app["depends_on"]
    assert app["read_only"] is True and "/tmp" in app["tmpfs"]
    assert app["cap_drop"] == ["ALL"]
    assert redis["image"].startswith("cgr.dev/chainguard/redis")


def test_files_exist_where_docker_expects_them() -> None:
    for nome in ("Dockerfile", "compose.yaml", ".dockerignore"):
        assert (REPO_ROOT / nome).is_file(), nome
    assert Path(REPO_ROOT / "src" / "giropops_senhas" / "serve.py").is_file()
