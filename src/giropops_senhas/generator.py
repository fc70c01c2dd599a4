"""Password generation with the operating system's CSPRNG.

The distribution: a password of length ``n`` is drawn **uniformly from the set of all strings of length n over
the union alphabet that contain at least one character of every selected class** (letters always; digits and
punctuation when asked for).  This is done by rejection sampling at two levels:

1. each character is one byte from :func:`secrets.token_bytes` kept only when it is below the largest multiple
   of the alphabet size that fits in a byte (``256 - 256 % len(alphabet)``), then reduced modulo the alphabet
   size — so every character of the union is equally likely, with no modulo bias;
2. a password missing one of the selected classes is thrown away whole and drawn again.

Rejecting the whole string (instead of patching a missing class into some position) keeps every valid string
exactly as likely as every other: patching would over-represent strings that hold exactly one character of a
class.  The expected number of draws is small (about 1.8 for length 8 with all three classes, tending to 1 as
the length grows), and ``tests/app/test_generator.py`` checks the character and per-position frequencies
against the exact expected distribution with a chi-square test that fails for biased generators.
"""

from __future__ import annotations

import functools
import secrets
import string
from dataclasses import dataclass

LETRAS = string.ascii_letters
NUMEROS = string.digits
ESPECIAIS = string.punctuation


@dataclass(frozen=True)
class Classes:
    """The character classes a password must draw from (and contain at least one of each)."""

    incluir_numeros: bool = False
    incluir_caracteres_especiais: bool = False

    @property
    def grupos(self) -> tuple[str, ...]:
        grupos = [LETRAS]
        if self.incluir_numeros:
            grupos.append(NUMEROS)
        if self.incluir_caracteres_especiais:
            grupos.append(ESPECIAIS)
        return tuple(grupos)

    @property
    def alfabeto(self) -> str:
        return "".join(self.grupos)


@functools.cache
def _tabelas(alfabeto: str) -> tuple[bytes, bytes]:
    """For :func:`_caracteres_uniformes`: the byte -> character map (``alfabeto[byte % n]``) and the bytes to
    drop (``>= 256 - 256 % n``: they would make the first ``256 % n`` characters more likely)."""
    n = len(alfabeto)
    limite = 256 - 256 % n
    mapa = bytes(ord(alfabeto[byte % n]) for byte in range(256))
    return mapa, bytes(range(limite, 256))


def _caracteres_uniformes(alfabeto: str, tamanho: int) -> bytes:
    """``tamanho`` ASCII characters, each uniform over ``alfabeto``, from one or a few ``getrandom`` calls.

    Each random byte below the limit becomes ``alfabeto[byte % n]``; the others are dropped — done by
    ``bytes.translate`` (drop, then map) in C instead of a Python loop over the bytes."""
    mapa, rejeitados = _tabelas(alfabeto)
    saida = b""
    while len(saida) < tamanho:
        falta = tamanho - len(saida)
        # Ask for enough bytes that one call almost always suffices (acceptance is limite/256 >= 1/2).
        saida += secrets.token_bytes(falta + falta // 2 + 8).translate(mapa, rejeitados)
    return saida[:tamanho]


@functools.cache
def _grupos_bytes(grupos: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(grupo.encode("ascii") for grupo in grupos)


def _tem_todos(caracteres: bytes, grupos: tuple[str, ...]) -> bool:
    # A group is present when deleting its characters shortens the password.
    tamanho = len(caracteres)
    for grupo in _grupos_bytes(grupos):
        if len(caracteres.translate(None, grupo)) == tamanho:
            return False
    return True


def gerar_senha(tamanho: int, classes: Classes) -> str:
    """A password of exactly ``tamanho`` characters, uniform over the valid strings (see the module docstring).

    The caller validates ``tamanho``; it must be at least the number of selected classes.
    """
    grupos = classes.grupos
    if tamanho < len(grupos):
        raise ValueError(f"tamanho {tamanho} is shorter than the {len(grupos)} required character classes")
    alfabeto = classes.alfabeto
    while True:
        caracteres = _caracteres_uniformes(alfabeto, tamanho)
        if _tem_todos(caracteres, grupos):
            return caracteres.decode("ascii")
