"""Where giropops caches: ``$GIROPOPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/giropops``, else ``~/.cache/giropops``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "cache_root"]

ENV_VAR = "GIROPOPS_CACHE_DIR"


def xdg_cache_home() -> Path:
    """``$XDG_CACHE_HOME``, else ``~/.cache``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) if xdg else Path.home() / ".cache"


def cache_root() -> Path:
    """The cache directory every giropops cache lives in (each one in its own subdirectory or file)."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else xdg_cache_home() / "giropops"
