"""Where giropops caches: ``$GIROPOPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/giropops``, else ``~/.cache/giropops``.

One lookup for every cache (SBOM layer records, blob-info, build cache, ...). Kept in a module of its
own, with nothing but ``os`` imported (and ``pathlib`` when a ``Path`` is asked for), so that a short
command (a warm push, a warm SBOM) can find its cache without importing the package that owns it.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy knows it

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["ENV_VAR", "cache_root", "cache_root_text", "default_cache_dir", "xdg_cache_home"]

ENV_VAR = "GIROPOPS_CACHE_DIR"


def xdg_cache_home() -> Path:
    """``$XDG_CACHE_HOME``, else ``~/.cache``."""
    from pathlib import Path

    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) if xdg else Path.home() / ".cache"


def cache_root() -> Path:
    """The cache directory every giropops cache lives in (each one in its own subdirectory or file)."""
    from pathlib import Path

    return Path(cache_root_text())


def cache_root_text() -> str:
    """``cache_root()`` as a string, for a warm ``giropops sbom`` that needs nothing of ``pathlib``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    xdg = os.environ.get("XDG_CACHE_HOME")
    return os.path.join(xdg if xdg else os.path.join(os.path.expanduser("~"), ".cache"), "giropops")


def default_cache_dir() -> Path:
    """The same directory as :func:`cache_root` (the name the SBOM and blob-info caches first used)."""
    return cache_root()
