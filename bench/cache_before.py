"""integ4's ``LayerCache.store``, for ``bench/sbom_cache_bench.py``'s "before" rows: write the record, then walk
the whole cache (a ``stat`` per record) and evict down to the bound.  Not used by giropops."""

from __future__ import annotations

import os

from giropops.fileio import atomic_write
from giropops.sbom.cache import LayerCache, encode
from giropops.sbom.filesystem import LayerRecords


def before_store(self: LayerCache, rec: LayerRecords, fingerprint: str, encoded: bytes | None = None) -> None:
    if rec.diff_id is None:
        return
    path = self._path(rec.diff_id, fingerprint)
    if path is None:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, encode(rec) if encoded is None else encoded, 0o600)
    except OSError:
        return
    records = self._records()
    total = sum(size for _, size, _ in records)
    for p, size, _ in sorted(records, key=lambda r: (r[0] == path, r[2])):
        if total <= self.max_bytes:
            break
        try:
            os.unlink(p)
        except OSError:
            continue
        total -= size
