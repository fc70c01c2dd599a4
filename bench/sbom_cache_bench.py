"""The SBOM layer cache's bound, with a big cache: a store, and a cold ``giropops sbom``, before and after.

Before (integ4's ``LayerCache.store``, reproduced in ``bench/cache_before.py`` and run in the same process): every
store writes its record, then walks every record (a ``stat`` each) to enforce the size bound.  After (this
tree): the store adds its size to ``sbom-layers/.ledger`` under that file's lock, and walks only when the
ledger crosses the bound.  For caches of ``--sizes`` records (2-8 kB each, written directly in the cache's
layout; the bound is the default 2 GB, so no store here evicts), it prints:

* one store: median wall and CPU time of ``--stores`` stores of new records, before and after, and the ratio;
* a cold ``giropops sbom`` of a small image (one dpkg layer; its record, ``sbom-results`` and ``sbom-proofs``
  removed before each run) against that cache: median wall and CPU (user + sys of the child) of ``--rounds``
  runs, before and after, and the ratio.

    .venv/bin/python bench/sbom_cache_bench.py [--sizes 0,5000,20000] [--stores 30] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

sys.path.insert(0, str(REPO_ROOT / "bench"))

from cache_before import before_store  # noqa: E402  (bench/ is on sys.path when this script runs)
from tests.support.sbom_images import Entry, layer_from_entries, write_docker_archive  # noqa: E402

from giropops.sbom.cache import LayerCache, encode  # noqa: E402
from giropops.sbom.filesystem import LayerRecords  # noqa: E402

CHILD = '''
import sys
if sys.argv[1] == "before":
    sys.path.insert(0, sys.argv[2])
    from cache_before import before_store
    from giropops.sbom.cache import LayerCache
    LayerCache.store = before_store
from giropops.cli.main import main
sys.exit(main(sys.argv[3:]))
'''

STATUS = "".join(
    f"Package: pkg{i}\nStatus: install ok installed\nVersion: 1.{i}-1\nArchitecture: amd64\n\n" for i in range(40)
).encode()


def record(n: int) -> LayerRecords:
    rec = LayerRecords(f"sha256:{n:064x}")
    rec.entries = [(f"/usr/share/doc/p{n}/f{i}", "0", "", 100) for i in range(20)]
    rec.contents["/var/lib/dpkg/status"] = STATUS[: 1_000 + (n * 7919) % 5_000]
    return rec


def fill(cache_dir: Path, count: int) -> None:
    """``count`` records in the cache's own layout, as stores would have left them (written directly: quicker)."""
    layers = cache_dir / "sbom-layers" / ("f" * 16) / "sha256"
    layers.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        (layers / f"{n:064x}").write_bytes(encode(record(n)))


def time_stores(cache_dir: Path, first: int, stores: int, before: bool) -> tuple[float, float]:
    """(median wall, median CPU) seconds of one store of a new record."""
    cache = LayerCache(cache_dir)
    walls, cpus = [], []
    for n in range(first, first + stores):
        rec = record(n)
        data = encode(rec)
        w0, c0 = time.perf_counter(), time.process_time()
        if before:
            before_store(cache, rec, "f" * 16, data)
        else:
            cache.store(rec, "f" * 16, data)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def sbom_run(cache_dir: Path, image: Path, diff_hex: str, before: bool) -> tuple[float, float]:
    for area in ("sbom-results", "sbom-proofs"):
        shutil.rmtree(cache_dir / area, ignore_errors=True)
    for path in (cache_dir / "sbom-layers").glob(f"*/sha256/{diff_hex}"):
        path.unlink()
    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(cache_dir)}
    argv = [sys.executable, "-c", CHILD, "before" if before else "after", str(REPO_ROOT / "bench"),
            "sbom", f"archive://{image}", "-f", "list", "-o", os.devnull]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"giropops sbom failed: {proc.stderr.read().decode() if proc.stderr else status}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,5000,20000", help="records in the cache, comma-separated")
    parser.add_argument("--stores", type=int, default=30, help="stores timed per cache and variant")
    parser.add_argument("--rounds", type=int, default=5, help="cold sbom runs per cache and variant (0: none)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="giropops-cache-bench-") as tmp:
        work = Path(tmp)
        tar = write_docker_archive(work / "image.tar", [layer_from_entries([Entry("var/lib/dpkg/status", STATUS)])])
        from giropops.oci.archive import open_archive_image

        diff_hex = open_archive_image(tar).config.diff_ids[0].hex
        print(f"{'records':>8} {'variant':>7} {'store wall':>11} {'store CPU':>10} {'sbom wall':>10} {'sbom CPU':>9}")
        for size in sizes:
            rows: dict[bool, tuple[float, float, float, float]] = {}
            for before in (True, False):
                cache_dir = work / f"cache-{size}-{'before' if before else 'after'}"
                fill(cache_dir, size)
                wall, cpu = time_stores(cache_dir, 10**6, args.stores, before)
                runs = [sbom_run(cache_dir, tar, diff_hex, before) for _ in range(args.rounds)]
                s_wall = statistics.median(r[0] for r in runs) if runs else float("nan")
                s_cpu = statistics.median(r[1] for r in runs) if runs else float("nan")
                rows[before] = (wall, cpu, s_wall, s_cpu)
                print(f"{size:>8} {'before' if before else 'after':>7} {wall * 1e3:>9.2f}ms {cpu * 1e3:>8.2f}ms"
                      f" {s_wall * 1e3:>8.1f}ms {s_cpu * 1e3:>7.1f}ms")
                shutil.rmtree(cache_dir)
            b, a = rows[True], rows[False]
            print(f"{size:>8} {'ratio':>7} {a[0] / b[0]:>11.3f} {a[1] / max(b[1], 1e-9):>10.3f}"
                  f" {a[2] / b[2]:>10.3f} {a[3] / b[3]:>9.3f}   (after / before)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
