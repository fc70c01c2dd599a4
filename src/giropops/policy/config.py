"""The policy file: which policies run and their thresholds.

::

    # every key is optional; what is left out keeps its default
    no_data: pass            # pass (default) | fail: whether "no data" fails the run
    policies:
      fixable-vulnerabilities:        # no critical/high vulnerability that has a fix
        enabled: true
        severities: [critical, high]
        max: 0                        # fail when more than this many
      non-root: {enabled: true}       # the image runs as a non-root user
      base-up-to-date: {enabled: true}  # no refresh of the base image pending
      signed: {enabled: true}         # a signature that verifies with --key
      sbom-attestation: {enabled: true, verify: true}  # an SPDX/CycloneDX attestation (verified with --key if given)
      no-copyleft:                    # no package under one of these licences
        enabled: true
        licenses: [GPL-2.0, GPL-3.0, ...]   # SPDX ids; '-only', '-or-later', '+' and '.0' are ignored
      no-known-exploited: {enabled: false}  # no vulnerability in CISA's KEV catalog (off unless enabled;
                                            # needs the catalog: 'giropops db import|update')

Unknown keys, unknown policies and wrongly typed values are a ``ConfigError`` naming them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from giropops import jsonio
from giropops.errors import ConfigError, quote_for_error
from giropops.fileio import read_bounded

POLICY_NAMES = (
    "fixable-vulnerabilities",
    "non-root",
    "base-up-to-date",
    "signed",
    "sbom-attestation",
    "no-copyleft",
    "no-known-exploited",
)
#: Run unless the policy file disables them; the others only when it enables them.
DEFAULT_ENABLED = frozenset(POLICY_NAMES) - {"no-known-exploited"}
SEVERITIES = ("critical", "high", "medium", "low", "negligible", "unspecified")
#: Strong and weak copyleft licences (SPDX ids, version-normalised), as Docker Scout's default list has them.
DEFAULT_COPYLEFT = (
    "AGPL-1.0", "AGPL-3.0", "GPL-1.0", "GPL-2.0", "GPL-3.0", "LGPL-2.0", "LGPL-2.1", "LGPL-3.0",
    "CDDL-1.0", "CDDL-1.1", "CPAL-1.0", "EPL-1.0", "EPL-2.0", "EUPL-1.1", "EUPL-1.2", "MPL-1.1", "MPL-2.0",
    "OSL-3.0", "SSPL-1.0",
)
MAX_POLICY_BYTES = 256 * 1024


@dataclass(frozen=True)
class PolicyConfig:
    enabled: frozenset[str] = DEFAULT_ENABLED
    severities: tuple[str, ...] = ("critical", "high")
    max_fixable: int = 0
    licenses: tuple[str, ...] = DEFAULT_COPYLEFT
    verify_sbom: bool = True  # with --key, the SBOM attestation must verify
    no_data_fails: bool = False
    source: str = "built-in defaults"


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false")
    return value


def _only_keys(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    bad = set(obj) - allowed
    if bad:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, bad)))} "
                          f"(known: {', '.join(sorted(allowed))})")


def parse_config(text: str, source: str) -> PolicyConfig:
    doc = jsonio.load_yaml(text, source, error=ConfigError)
    cfg = PolicyConfig(source=source)
    if doc is None:
        return cfg
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{source}: a policy file is a mapping with 'policies'")
    _only_keys(doc, {"policies", "no_data"}, source)
    no_data = doc.get("no_data", "pass")
    if no_data not in ("pass", "fail"):
        raise ConfigError(f"{source}: no_data must be 'pass' or 'fail', not {quote_for_error(no_data)}")
    cfg = replace(cfg, no_data_fails=no_data == "fail")
    policies = doc.get("policies") or {}
    if not isinstance(policies, Mapping):
        raise ConfigError(f"{source}: 'policies' must map policy names to settings")
    enabled = set(DEFAULT_ENABLED)
    for name, settings in policies.items():
        where = f"{source}: policies.{name}"
        if name not in POLICY_NAMES:
            raise ConfigError(f"{where}: unknown policy (known: {', '.join(POLICY_NAMES)})")
        if settings is None:
            settings = {}
        if isinstance(settings, bool):
            settings = {"enabled": settings}
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{where}: expected a mapping (or true/false)")
        allowed = {"enabled"}
        if name == "fixable-vulnerabilities":
            allowed |= {"severities", "max"}
        elif name == "no-copyleft":
            allowed |= {"licenses"}
        elif name == "sbom-attestation":
            allowed |= {"verify"}
        _only_keys(settings, allowed, where)
        if _bool(settings.get("enabled", True), f"{where}.enabled"):
            enabled.add(name)
        else:
            enabled.discard(name)
        if "severities" in settings:
            sev = settings["severities"]
            if not isinstance(sev, list) or not sev or any(s not in SEVERITIES for s in sev):
                raise ConfigError(f"{where}.severities must be a non-empty list of {', '.join(SEVERITIES)}")
            cfg = replace(cfg, severities=tuple(sev))
        if "max" in settings:
            mx = settings["max"]
            if not isinstance(mx, int) or isinstance(mx, bool) or mx < 0:
                raise ConfigError(f"{where}.max must be a non-negative integer")
            cfg = replace(cfg, max_fixable=mx)
        if "licenses" in settings:
            lic = settings["licenses"]
            if not isinstance(lic, list) or not all(isinstance(x, str) and x.strip() for x in lic):
                raise ConfigError(f"{where}.licenses must be a list of licence ids")
            cfg = replace(cfg, licenses=tuple(x.strip() for x in lic))
        if "verify" in settings:
            cfg = replace(cfg, verify_sbom=_bool(settings["verify"], f"{where}.verify"))
    return replace(cfg, enabled=frozenset(enabled))


def load_config(path: Path | None) -> PolicyConfig:
    if path is None:
        return PolicyConfig()
    data = read_bounded(path, MAX_POLICY_BYTES, "policy file", ConfigError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"policy file {path} is not UTF-8") from exc
    return parse_config(text, str(path))
