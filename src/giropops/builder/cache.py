"""Downloads cached by checksum, and small keyed caches for derived results.

Blobs live under ``<cache>/blobs/sha256/<hex>``: a blob is only ever stored
after its SHA-256 matched what a signed index promised, and it is checked
again when read, so a corrupted cache is a cache miss, never a bad image.
The cache directory is ``$GIROPOPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/giropops``,
else ``~/.cache/giropops``.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from giropops import jsonio
from giropops.builder.errors import IntegrityError, RepositoryError
from giropops.cachedir import cache_root
from giropops.fileio import atomic_write
from giropops.progress import NO_PROGRESS, Progress

USER_AGENT = "giropops-build/0.1"
CHUNK = 1 << 20


def default_cache_dir() -> Path:
    return cache_root()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data, 0o600)


def fetch(url: str, limit: int, what: str, timeout: float = 60.0, strict: bool = True) -> bytes:
    """GET ``url`` into memory, refusing more than ``limit`` bytes (hostile servers).

    With ``strict=False`` up to ``limit + 1`` bytes are returned for the caller to judge.
    """
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            data: bytes = resp.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise RepositoryError(f"{what}: {url} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise RepositoryError(f"{what}: cannot fetch {url}: {exc}") from exc
    if strict and len(data) > limit:
        raise RepositoryError(f"{what}: {url} is larger than the {limit}-byte limit")
    return data


class Cache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else default_cache_dir()

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / "sha256" / sha256

    def get_blob(self, sha256: str) -> bytes | None:
        path = self.blob_path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if hashlib.sha256(data).hexdigest() != sha256:
            path.unlink(missing_ok=True)  # corrupted cache entry: fetch again
            return None
        return data

    def put_blob(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not path.exists():
            _write_atomic(path, data)
        return digest

    def fetch_verified(
        self,
        url: str,
        sha256: str,
        size: int | None,
        what: str,
        progress: Progress = NO_PROGRESS,
    ) -> bytes:
        """The bytes at ``url`` that hash to ``sha256``, from the cache when present."""
        cached = self.get_blob(sha256)
        if cached is not None:
            return cached
        # One byte more than promised is enough to know the server sends too much.
        limit = size if size is not None else 1 << 31
        progress.start(url, what, size)
        data = fetch(url, limit, what, strict=size is None)
        progress.finish(url, f"{len(data)} bytes")
        if size is not None and len(data) != size:
            more = "more than" if len(data) > size else f"{len(data)} bytes, not"
            raise IntegrityError(f"{what}: {url} is {more} the {size} bytes the signed index says")
        got = hashlib.sha256(data).hexdigest()
        if got != sha256:
            raise IntegrityError(
                f"{what}: {url} does not match the SHA-256 in the signed index (expected {sha256}, got {got})"
            )
        self.put_blob(data)
        return data

    # Small JSON documents keyed by a hash of their inputs (resolutions, layer metadata).
    def get_json(self, kind: str, key: str) -> Any:
        path = self.root / kind / f"{key}.json"
        try:
            return jsonio.loads(path.read_bytes(), str(path))
        except (FileNotFoundError, jsonio.DocumentError):
            return None

    def put_json(self, kind: str, key: str, obj: Any) -> None:
        _write_atomic(self.root / kind / f"{key}.json", json.dumps(obj, sort_keys=True).encode())


def key_of(*parts: Any) -> str:
    """A cache key: SHA-256 of the canonical JSON of ``parts``."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
