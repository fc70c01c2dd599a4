"""``--policy FILE``: an attestation's in-toto statement checked against a Rego policy, as cosign does.

The engine is regorus (Microsoft's Rego interpreter in Rust, MIT) through its Python bindings, installed
with the ``policy`` extra.  Like cosign, the statement (``_type``, ``predicateType``, ``subject``,
``predicate``) is the policy's ``input`` and ``data.signature.allow`` must be true; a ``deny`` set in the
same package adds its messages to the refusal.  Policies in OPA 1.0 syntax and in the older v0 syntax
(``allow { ... }``, as cosign's documentation writes them) are both accepted.  CUE policies are not.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from giropops.errors import ConfigError, UsageError
from giropops.fileio import read_bounded
from giropops.sign.errors import PolicyViolationError

MAX_POLICY_BYTES = 1024 * 1024
QUERY_ALLOW = "data.signature.allow"
QUERY_DENY = "data.signature.deny"


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """regorus writes parser warnings straight to file descriptor 2; the library must not print."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _first_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.strip().startswith(("|", "-->"))]
    for ln in lines:
        if ln.startswith("error:"):
            return ln.removeprefix("error:").strip()
    return lines[0] if lines else type(exc).__name__


class RegoPolicy:
    def __init__(self, source: str, name: str = "policy.rego") -> None:
        try:
            import regorus
        except ImportError as exc:
            raise ConfigError("--policy needs the Rego engine: install giropops with the 'policy' extra "
                              "(regorus bindings)") from exc
        self._regorus = regorus
        self.name = name
        self.source = source
        self._v0 = False
        try:
            self._engine()
        except RuntimeError as exc:
            self._v0 = True
            try:
                self._engine()
            except RuntimeError:
                raise UsageError(f"{name}: invalid Rego policy: {_first_line(exc)}") from exc

    @classmethod
    def load(cls, path: Path) -> RegoPolicy:
        raw = read_bounded(path, MAX_POLICY_BYTES, "policy", UsageError)
        if path.suffix == ".cue":
            raise UsageError(f"{path}: CUE policies are not supported; write the policy in Rego")
        try:
            text = raw.decode()
        except UnicodeDecodeError as exc:
            raise UsageError(f"policy {path} is not UTF-8 text") from exc
        return cls(text, path.name)

    def _engine(self) -> Any:
        engine = self._regorus.Engine()
        if self._v0:
            engine.set_rego_v0(True)
        with _native_stderr_silenced():
            engine.add_policy(self.name, self.source)
        if "signature" not in {p.removeprefix("data.") for p in engine.get_packages()}:
            raise UsageError(f"{self.name}: the policy must be in package 'signature' (as cosign's)")
        return engine

    def check(self, statement: Any, what: str = "attestation") -> None:
        """Raise PolicyViolationError unless ``data.signature.allow`` is true for this statement."""
        engine = self._engine()
        try:
            engine.set_input(statement)
            allow = engine.eval_rule(QUERY_ALLOW)
            deny = engine.eval_rule(QUERY_DENY) if "deny" in self.source else None
        except RuntimeError as exc:
            raise PolicyViolationError(f"{what}: policy {self.name} failed to evaluate: {_first_line(exc)}") from exc
        reasons = sorted(str(d) for d in deny) if isinstance(deny, Iterable) and not isinstance(deny, str) else []
        if allow is True and not reasons:
            return
        detail = f": {'; '.join(reasons)}" if reasons else " (data.signature.allow is not true)"
        raise PolicyViolationError(f"{what} does not satisfy policy {self.name}{detail}")
