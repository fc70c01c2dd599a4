"""Where giropops keeps its caches: one lookup for every cache (SBOM layer records, blob-info, ...).

``giropops.sbom.cache.default_cache_dir`` (where it lived first) answers through this one.

Kept in a module of its own, with nothing but ``os`` and ``pathlib`` imported, so that a
short command (a warm push) can find its cache without importing the package that owns it.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "GIROPOPS_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$GIROPOPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/giropops``, else ``~/.cache/giropops``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "giropops"
