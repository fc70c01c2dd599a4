"""Where giropops caches: ``$GIROPOPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/giropops``, else ``~/.cache/giropops``.

One lookup for every cache (SBOM layer records, blob-info, build cache, ...). Kept in a module of its
own, with nothing but ``os`` and ``pathlib`` imported, so that a short command (a warm push) can find
its cache without importing the package that owns it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "cache_root", "default_cache_dir", "xdg_cache_home"]

ENV_VAR = "GIROPOPS_CACHE_DIR"


def xdg_cache_home() -> Path:
    """``$XDG_CACHE_HOME``, else ``~/.cache``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) if xdg else Path.home() / ".cache"


def cache_root() -> Path:
    """The cache directory every giropops cache lives in (each one in its own subdirectory or file)."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else xdg_cache_home() / "giropops"


def default_cache_dir() -> Path:
    """The same directory as :func:`cache_root` (the name the SBOM and blob-info caches first used)."""
    return cache_root()
