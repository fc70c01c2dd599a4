"""Generated passwords: length, classes, alphabet, and a statistical check that a biased generator cannot pass.

The target distribution (generator.py's docstring): uniform over all strings of the requested length over the
union alphabet that hold at least one character of every selected class.  The expected frequencies below are
computed here by inclusion–exclusion, independently of the generator, and compared with chi-square tests:

- characters: how often each of the alphabet's characters appears, over all positions;
- positions: for each position, how often it holds a character of each class.

Thresholds are fixed: the chi-square quantile for a one-sided tail of 1e-6 (Wilson–Hilferty), so a correct
generator fails one of these checks about once in a million runs, while the deliberately biased generators at
the end (modulo bias, required characters in fixed places, patching a missing class into a random position)
land far beyond it.
"""

from __future__ import annotations

import itertools
import math
import random
import string
from collections import Counter
from collections.abc import Callable

import pytest

from giropops_senhas.generator import ESPECIAIS, LETRAS, NUMEROS, Classes, gerar_senha

Gerador = Callable[[int, Classes], str]

COMBINACOES = [Classes(n, e) for n, e in itertools.product((False, True), repeat=2)]


def grupos_esperados(classes: Classes) -> list[str]:
    grupos = [string.ascii_letters]
    if classes.incluir_numeros:
        grupos.append(string.digits)
    if classes.incluir_caracteres_especiais:
        grupos.append(string.punctuation)
    return grupos


@pytest.mark.parametrize("classes", COMBINACOES, ids=str)
@pytest.mark.parametrize("tamanho", [3, 8, 12, 32, 128])
def test_length_classes_and_alphabet(tamanho: int, classes: Classes) -> None:
    grupos = grupos_esperados(classes)
    permitidos = set("".join(grupos))
    proibidos = set(string.digits + string.punctuation) - permitidos
    for _ in range(200):
        senha = gerar_senha(tamanho, classes)
        assert len(senha) == tamanho
        assert set(senha) <= permitidos
        assert not set(senha) & proibidos
        for grupo in grupos:
            assert set(senha) & set(grupo), (senha, grupo)


def test_the_module_classes_are_the_originals() -> None:
    assert (LETRAS, NUMEROS, ESPECIAIS) == (string.ascii_letters, string.digits, string.punctuation)


def test_too_short_for_the_classes_is_refused() -> None:
    with pytest.raises(ValueError, match="shorter"):
        gerar_senha(2, Classes(True, True))


# --- the statistics -----------------------------------------------------------------------------------------

def validas(tamanho: int, tamanhos_grupos: list[int]) -> int:
    """How many strings of ``tamanho`` over the union contain every group (inclusion–exclusion)."""
    total = sum(tamanhos_grupos)
    soma = 0
    for k in range(len(tamanhos_grupos) + 1):
        for fora in itertools.combinations(tamanhos_grupos, k):
            soma += (-1) ** k * (total - sum(fora)) ** tamanho
    return soma


def prob_por_caractere(tamanho: int, grupos: list[str]) -> list[float]:
    """P(a given position holds one given character of group i), for each group i."""
    tamanhos = [len(g) for g in grupos]
    todas = validas(tamanho, tamanhos)
    probs = []
    for i in range(len(grupos)):
        # Fix one position to a character of group i: the other tamanho-1 positions must cover the rest.
        total = sum(tamanhos)
        outros = [t for j, t in enumerate(tamanhos) if j != i]
        soma = 0
        for k in range(len(outros) + 1):
            for fora in itertools.combinations(outros, k):
                soma += (-1) ** k * (total - sum(fora)) ** (tamanho - 1)
        probs.append(soma / todas)
    return probs


def limite_qui_quadrado(gl: int, z: float = 4.753) -> float:
    """Chi-square quantile with ``gl`` degrees of freedom at upper tail 1e-6 (z = 4.753), Wilson–Hilferty."""
    a = 2 / (9 * gl)
    return float(gl * (1 - a + z * math.sqrt(a)) ** 3)


def estatisticas(gerador: Gerador, tamanho: int, classes: Classes, amostras: int) -> dict[str, tuple[float, float]]:
    """{name: (chi-square statistic, fixed threshold)} for the character and the position tests."""
    grupos = grupos_esperados(classes)
    probs = prob_por_caractere(tamanho, grupos)
    grupo_de = {c: i for i, g in enumerate(grupos) for c in g}
    caracteres: Counter[str] = Counter()
    por_posicao = [[0] * len(grupos) for _ in range(tamanho)]
    for _ in range(amostras):
        senha = gerador(tamanho, classes)
        caracteres.update(senha)
        for pos, c in enumerate(senha):
            por_posicao[pos][grupo_de[c]] += 1

    qui_c = 0.0
    for i, grupo in enumerate(grupos):
        esperado = amostras * tamanho * probs[i]
        qui_c += sum((caracteres[c] - esperado) ** 2 / esperado for c in grupo)
    gl_c = sum(len(g) for g in grupos) - 1

    qui_p = 0.0
    for pos in range(tamanho):
        for i, grupo in enumerate(grupos):
            esperado = amostras * len(grupo) * probs[i]
            qui_p += (por_posicao[pos][i] - esperado) ** 2 / esperado
    gl_p = tamanho * (len(grupos) - 1)

    saida = {"caracteres": (qui_c, limite_qui_quadrado(gl_c))}
    if gl_p:
        saida["posicoes"] = (qui_p, limite_qui_quadrado(gl_p))
    return saida


def test_expected_probabilities_sum_to_one() -> None:
    # A check of the test's own arithmetic: each position holds exactly one character.
    for tamanho, classes in itertools.product((3, 8, 12), COMBINACOES):
        grupos = grupos_esperados(classes)
        probs = prob_por_caractere(tamanho, grupos)
        assert math.isclose(sum(len(g) * p for g, p in zip(grupos, probs, strict=True)), 1.0)
    # ...and one value checked by hand: length 3, all classes, one character of each in any order.
    assert validas(3, [52, 10, 32]) == 6 * 52 * 10 * 32


CASOS = [(8, Classes(True, True)), (8, Classes(True, False)), (12, Classes(False, True)), (16, Classes())]


@pytest.mark.parametrize(("tamanho", "classes"), CASOS, ids=lambda x: str(x))
def test_generator_is_unbiased(tamanho: int, classes: Classes) -> None:
    for nome, (qui, limite) in estatisticas(gerar_senha, tamanho, classes, 20_000).items():
        assert qui < limite, f"{nome}: chi-square {qui:.1f} >= {limite:.1f}"


# --- biased generators the check must reject ----------------------------------------------------------------

def vies_modulo(rng: random.Random) -> Gerador:
    """Bytes reduced modulo the alphabet size, without rejection: the first 256 % n characters are favoured."""

    def gerar(tamanho: int, classes: Classes) -> str:
        alfabeto = classes.alfabeto
        while True:
            senha = "".join(alfabeto[rng.randrange(256) % len(alfabeto)] for _ in range(tamanho))
            if all(set(senha) & set(g) for g in classes.grupos):
                return senha

    return gerar


def vies_posicoes_fixas(rng: random.Random) -> Gerador:
    """One character of each class first, the rest uniform, never shuffled (a common shortcut)."""

    def gerar(tamanho: int, classes: Classes) -> str:
        inicio = [rng.choice(g) for g in classes.grupos]
        return "".join(inicio + [rng.choice(classes.alfabeto) for _ in range(tamanho - len(inicio))])

    return gerar


def vies_remendo(rng: random.Random) -> Gerador:
    """Uniform draw, then each missing class patched into a random free position: too many single digits."""

    def gerar(tamanho: int, classes: Classes) -> str:
        senha = [rng.choice(classes.alfabeto) for _ in range(tamanho)]
        livres = list(range(tamanho))
        rng.shuffle(livres)
        for grupo in classes.grupos:
            if not set(senha) & set(grupo):
                senha[livres.pop()] = rng.choice(grupo)
        return "".join(senha)

    return gerar


@pytest.mark.parametrize("fabrica", [vies_modulo, vies_posicoes_fixas, vies_remendo], ids=lambda f: f.__name__)
def test_biased_generators_fail_the_check(fabrica: Callable[[random.Random], Gerador]) -> None:
    gerador = fabrica(random.Random(20261128))  # seeded: this test's outcome is fixed
    reprovado = []
    for tamanho, classes in CASOS[:2]:
        for nome, (qui, limite) in estatisticas(gerador, tamanho, classes, 20_000).items():
            if qui >= limite:
                reprovado.append((tamanho, nome, round(qui), round(limite)))
    assert reprovado, f"{fabrica.__name__} passed a check meant to catch it"


def test_the_check_accepts_a_seeded_correct_generator() -> None:
    # The same rejection sampling over random.Random: passing here shows the thresholds are not too tight for
    # a correct generator, reproducibly (the CSPRNG test above cannot be seeded).
    rng = random.Random(7)

    def correto(tamanho: int, classes: Classes) -> str:
        while True:
            senha = "".join(rng.choice(classes.alfabeto) for _ in range(tamanho))
            if all(set(senha) & set(g) for g in classes.grupos):
                return senha

    for tamanho, classes in CASOS:
        for nome, (qui, limite) in estatisticas(correto, tamanho, classes, 20_000).items():
            assert qui < limite, (tamanho, classes, nome, qui, limite)
