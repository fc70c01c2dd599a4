"""``giropops cache df|prune``: what giropops keeps in its cache directory, and removing it.

The areas, under ``$GIROPOPS_CACHE_DIR`` (else ``$XDG_CACHE_HOME/giropops``, else ``~/.cache/giropops``):
``sbom-layers`` (per-layer catalog records, ``sbom.cache``; bounded by ``$GIROPOPS_SBOM_CACHE_MAX_BYTES``),
``blobs`` (the build cache's downloaded base layers), ``reco`` (image profiles of ``recommendations``),
``sbom-proofs`` (which local files were proven to hold which layers, ``sbom.proofs``), ``sbom-results``
(whole SBOMs of unchanged archives, ``sbom.results``), ``spdx-license-keys.json`` (a single file: the SPDX
license and exception keys read once from the license index, ``sbom.licenses``), ``blob-info-v2`` (which
compressed blobs each pushed layer became, and where: ``oci.registry.blobinfo``), ``push-replay-v1`` (what
a push of an archive concluded, replayed by the next one: ``oci.registry.replay``), and
the vulnerability database (``$GIROPOPS_DB`` or its default path; shown, never pruned).

``sbom-layers/.ledger`` (the layer records' total size, and their writers' lock) is bookkeeping, not cache:
not counted by ``df`` nor in what a prune frees; a prune removes it with the records, which resets it (the next
store rebuilds it from what is there).

Pruning removes files inside those areas (or the area's file) only; symbolic links are removed, never followed.
A whole prune also removes the blob-info store giropops used before ``blob-info-v2`` (``blob-info-v1.sqlite`` and
SQLite's ``-wal``/``-shm`` files beside it), which nothing reads any more; ``df`` shows it while it is there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from giropops.sbom.cache import LEDGER, default_cache_dir
from giropops.vuln.db import store

#: ``giropops.sbom.licenses``'s table of SPDX keys: a file in the cache directory, not a directory.
SPDX_KEYS = "spdx-license-keys.json"
BLOB_INFO = "blob-info-v2"
#: ``giropops.oci.registry.replay.DIR_NAME`` (not imported here: the registry package is not needed for df).
PUSH_REPLAY = "push-replay-v1"
PRUNABLE = ("sbom-layers", "blobs", "reco", "sbom-proofs", "sbom-results", SPDX_KEYS, BLOB_INFO, PUSH_REPLAY)
#: The blob-info store of earlier releases (one SQLite file and its WAL side files): unused, pruned with the rest.
OLD_BLOB_INFO = "blob-info-v1.sqlite"
OLD_BLOB_INFO_FILES = (OLD_BLOB_INFO, OLD_BLOB_INFO + "-wal", OLD_BLOB_INFO + "-shm")
OLD_BLOB_INFO_AREA = OLD_BLOB_INFO + " (no longer used)"
#: What ``giropops cache prune --sboms`` removes: every cache an SBOM is made from, and nothing else.
SBOM_AREAS = ("sbom-layers", "sbom-proofs", "sbom-results", SPDX_KEYS)


@dataclass(frozen=True)
class Area:
    name: str
    path: Path
    files: int
    size: int
    prunable: bool


def _bookkeeping(top: Path) -> Path | None:
    """The file of an area that is not cache (``sbom-layers``' ledger): removed, never counted."""
    return top / LEDGER if top.name == "sbom-layers" else None


def _usage(path: Path) -> tuple[int, int]:
    files = size = 0
    if path.is_file() and not path.is_symlink():
        return 1, path.stat().st_size
    skip = _bookkeeping(path)
    for directory, _dirs, names in os.walk(path):
        for name in names:
            if skip is not None and Path(directory) / name == skip:
                continue
            try:
                st = (Path(directory) / name).lstat()
            except OSError:
                continue
            files += 1
            size += st.st_size
    return files, size


def usage(root: Path | None = None) -> list[Area]:
    base = root if root is not None else default_cache_dir()
    out = []
    for name in PRUNABLE:
        files, size = _usage(base / name)
        out.append(Area(name, base / name, files, size, True))
    old = [base / n for n in OLD_BLOB_INFO_FILES if (base / n).is_file() or (base / n).is_symlink()]
    if old:
        out.append(Area(OLD_BLOB_INFO_AREA, base / OLD_BLOB_INFO, len(old), sum(p.lstat().st_size for p in old), True))
    db = store.default_path()
    files, size = _usage(db) if db.exists() else (0, 0)
    out.append(Area("vulnerability database", db, files, size, False))
    return out


def prune(root: Path | None = None, areas: tuple[str, ...] = PRUNABLE) -> dict[str, int]:
    """Remove every file (and then the empty directories) of ``areas``; bytes freed per area."""
    base = root if root is not None else default_cache_dir()
    freed: dict[str, int] = {}
    for name in areas:
        if name not in PRUNABLE:
            raise ValueError(f"not a prunable cache area: {name}")
        top = base / name
        total = 0
        if top.is_symlink():
            top.unlink()
            freed[name] = 0
            continue
        if top.is_file():  # an area that is one file
            try:
                size = top.lstat().st_size
                top.unlink()
            except OSError:
                size = 0
            freed[name] = size
            continue
        skip = _bookkeeping(top)
        for directory, dirs, names in os.walk(top, topdown=False):
            for n in names:
                path = Path(directory) / n
                try:
                    size = path.lstat().st_size
                    path.unlink()
                except OSError:
                    continue
                if path != skip:
                    total += size
            for d in dirs:
                sub = Path(directory) / d
                try:
                    if sub.is_symlink():
                        sub.unlink()
                    else:
                        sub.rmdir()
                except OSError:
                    pass
        freed[name] = total
    if areas == PRUNABLE:
        old = 0
        for n in OLD_BLOB_INFO_FILES:
            path = base / n
            try:
                if path.is_dir() and not path.is_symlink():
                    continue  # not what an earlier release wrote: left alone
                size = path.lstat().st_size
                path.unlink()
            except OSError:
                continue
            old += size
        if old:
            freed[OLD_BLOB_INFO_AREA] = old
    return freed
