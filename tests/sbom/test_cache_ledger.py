"""The layer cache's bound is kept by a ledger (``sbom-layers/.ledger``: total size and count of the records,
and the lock its writers take), not by a walk of every record after every store: a store under the bound
leaves records it does not know of alone; the store that takes the ledger over the bound walks and frees
down to the low-water mark; a missing or damaged ledger is rebuilt by one walk; concurrent writers keep it
equal to what is on disk (speed shows in bench/sbom_cache_bench.py; this is the behaviour behind it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from giropops.sbom.cache import LEDGER, LayerCache
from tests.sbom.test_cache_bound import on_disk, record, record_size


def plant(cache: LayerCache, name: str, size: int, used: float = 1.0) -> Path:
    """A record file the cache did not write (another giropops, a copy): only a walk can know of it."""
    path = cache.root / "elsewhere" / "sha256" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (used, used))
    return path


def test_a_store_under_the_bound_does_not_walk_the_records(tmp_path: Path) -> None:
    one = record_size(tmp_path)
    cache = LayerCache(tmp_path / "c", max_bytes=10 * one)
    cache.store(record(0), "fp")
    planted = plant(cache, "a" * 64, 20 * one)  # the oldest; with it the cache is three times over its bound
    for n in range(1, 10):
        cache.store(record(n), "fp")
    # a walk would have seen 30 records' worth against a bound of 10 and removed the planted file: none ran
    assert planted.exists() and on_disk(cache) == (30 * one, 11)
    assert cache.ledger() == (10 * one, 10)
    for n, (path, _, _) in enumerate(sorted(p for p in cache.records() if p[0] != planted)):
        os.utime(path, (1_000 + n, 1_000 + n))
    cache.store(record(10), "fp")  # the ledger crosses the bound: one walk, least recently used first
    assert not planted.exists()
    gone = [n for n in range(11) if cache.load(record(n).diff_id or "", "fp") is None]
    assert gone == [0, 1]  # down to 90 % of the bound, so the next stores do not walk again
    assert on_disk(cache) == (9 * one, 9) and cache.ledger() == (9 * one, 9)


def test_replacing_a_record_counts_its_size_once(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "c", max_bytes=10**9)
    cache.store(record(1, 1_000), "fp")
    cache.store(record(2, 1_000), "fp")
    cache.store(record(1, 1_000), "fp")  # the same layer again (two runs racing to cache it)
    assert cache.ledger() == on_disk(cache) and on_disk(cache)[1] == 2


@pytest.mark.parametrize("damage", ["missing", "garbage", "torn", "negative", "link", "directory"])
def test_a_missing_or_damaged_ledger_is_rebuilt_by_one_walk(tmp_path: Path, damage: str) -> None:
    one = record_size(tmp_path)
    cache = LayerCache(tmp_path / "c", max_bytes=10 * one)
    for n in range(3):
        cache.store(record(n), "fp")
    planted = plant(cache, "b" * 64, 20 * one)  # over the bound, which only a walk can see
    ledger = cache.root / LEDGER
    outside = tmp_path / "outside"
    outside.write_bytes(b"GIROPOPS-SBOM-LEDGER-1 0 0\n")
    if damage == "missing":
        ledger.unlink()
    elif damage == "garbage":
        ledger.write_bytes(b"\x00\xff not a ledger")
    elif damage == "torn":  # a shorter total written over a longer one, then a crash before the truncation
        ledger.write_bytes(b"GIROPOPS-SBOM-LEDGER-1 12 1\n0 3\n")
    elif damage == "negative":
        ledger.write_bytes(b"GIROPOPS-SBOM-LEDGER-1 -5 3\n")
    elif damage == "link":  # a link planted in its place: not followed, neither read nor written through
        ledger.unlink()
        ledger.symlink_to(outside)
    else:
        ledger.unlink()
        ledger.mkdir()
    assert cache.ledger() is None
    cache.store(record(3), "fp")
    assert not planted.exists()  # the rebuild walked, saw the cache over its bound and evicted
    assert outside.read_bytes() == b"GIROPOPS-SBOM-LEDGER-1 0 0\n"
    assert on_disk(cache) == (4 * one, 4)
    if damage == "directory":  # no ledger to be had: every store walks, as before, and the bound holds
        assert cache.ledger() is None
    else:
        assert cache.ledger() == (4 * one, 4) and not ledger.is_symlink()


WRITER = """
import sys
from giropops.sbom.cache import LayerCache
from giropops.sbom.filesystem import LayerRecords

root, first, count, bound = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cache = LayerCache(root, max_bytes=bound)
for n in range(first, first + count):
    rec = LayerRecords(f"sha256:{n:064x}")
    rec.contents["/var/lib/dpkg/status"] = bytes([n % 251]) * (500 + 37 * (n % 50))
    cache.store(rec, "fp")
"""


@pytest.mark.parametrize("bound", [10**9, 60_000])
def test_two_processes_storing_at_once_keep_the_ledger_true(tmp_path: Path, bound: int) -> None:
    cache = LayerCache(tmp_path / "c", max_bytes=bound)
    for n in range(100_000, 100_020):  # records there before; no ledger: the first store rebuilds it
        cache.store(record(n % 256, 1_000), f"old{n}")
    (cache.root / LEDGER).unlink()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "c"), str(first), "150", str(bound)])
               for first in (0, 1_000)]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    state = cache.ledger()
    assert state is not None
    truth = on_disk(cache)
    biggest = max(size for _, size, _ in cache.records())
    assert abs(state[0] - truth[0]) <= biggest and abs(state[1] - truth[1]) <= 1
    assert truth[0] <= bound
    if bound == 10**9:
        assert truth[1] == 320  # 20 before, 150 from each writer, none lost
    else:
        assert truth[1] < 100  # the bound made the writers evict


def test_a_ledger_locked_too_long_is_worked_around_by_a_walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    from giropops.sbom import cache as cache_module

    monkeypatch.setattr(cache_module, "LOCK_SECONDS", 0.05)
    one = record_size(tmp_path)
    cache = LayerCache(tmp_path / "c", max_bytes=10 * one)
    cache.store(record(0), "fp")
    planted = plant(cache, "c" * 64, 20 * one)
    holder = os.open(cache.root / LEDGER, os.O_RDWR)  # another process, stopped while it held the lock
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        cache.store(record(1), "fp")
        assert not planted.exists() and on_disk(cache) == (2 * one, 2)  # the bound held, by a walk
        cache.store(record(2), "fp")
        assert on_disk(cache) == (3 * one, 3)
    finally:
        os.close(holder)
    assert cache.ledger() == (one, 1)  # written by no one while it was held: the next walk recounts
    cache.evict()  # this cache does not wait for that lock again: it walked, the ledger is as it was
    assert cache.ledger() == (one, 1)
    LayerCache(tmp_path / "c", max_bytes=10 * one).evict()  # the next run takes the lock and recounts
    assert cache.ledger() == (3 * one, 3)
