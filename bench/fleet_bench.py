"""Fleet benchmark: 200 images on one shared base in a local registry (issue 15).

    .venv/bin/python bench/fleet_bench.py [--images 200]

Builds a base layer (a Debian 12 ``status.d`` with 120 packages and ~8 MB of files) and, per
image, a small application layer (a Flask distribution of one of five versions and a file of
its own); pushes them to a ``docker-registry`` on a free loopback port; writes synthetic
advisories for the base's packages and for Flask.  Then, each scan in a new process with an
empty layer cache and index (as a runner starts):

* ``scan`` of one image vs ``scan`` of all of them: wall time ratio (goal <= 5: cost follows
  unique layers, not images) and peak RSS ratio (goal: does not grow with the number of images);
* ``affected ID`` over the 200-image index, in process: median latency (goal < 100 ms);
* ``index rematch`` of 200 images vs one: median time ratio (goal <= 10).

Nothing here asserts a time; it prints the numbers and the ratios.

Seen on the 2-core shared machine (2026-12): scan 1 image 0.5 s, 200 images 8.1 s (ratio ~16: the
base is read once, 201 layers for 200 images, but every image is still catalogued on its squashed
filesystem, ~25 ms for the 120-package dpkg database, plus ~10 ms to store it); peak RSS 43 vs 47 MiB;
``affected`` 13 ms; ``rematch`` 31 ms vs 162 ms (ratio ~5).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.images import MemImage, MemLayer  # noqa: E402
from tests.support.services import Registry  # noqa: E402

from giropops.oci.reference import Reference  # noqa: E402
from giropops.oci.registry import write_registry  # noqa: E402
from giropops.vuln.db.importer import import_paths  # noqa: E402

SITE = "usr/local/lib/python3.11/site-packages"
FLASK = ["1.1.4", "2.0.3", "2.2.5", "2.3.3", "3.0.0"]
OS_RELEASE = b'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'


def base_layer(packages: int, payload: int) -> MemLayer:
    rng = random.Random(15)
    files: dict[str, bytes] = {"etc/os-release": OS_RELEASE}
    for i in range(packages):
        files[f"var/lib/dpkg/status.d/pkg{i}"] = (
            f"Package: pkg{i}\nStatus: install ok installed\nVersion: 1.{i % 7}.{i % 5}-1\nSource: src{i}\n"
            f"Architecture: amd64\nDescription: package {i}\n").encode()
        files[f"usr/share/pkg{i}/data.bin"] = rng.randbytes(payload // packages)
    return MemLayer(files)


def advisories(packages: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(packages):
        for j in range(10):  # ten advisories per source package, half of them hitting the installed version
            out.append({"id": f"CVE-2099-{i * 10 + j + 10000}", "modified": "2026-01-01T00:00:00Z",
                        "affected": [{"package": {"ecosystem": "Debian:12", "name": f"src{i}"},
                                      "ranges": [{"type": "ECOSYSTEM", "events": [
                                          {"introduced": "0"}, {"fixed": f"1.{(i % 7) + (j % 2) * 2 - 1}.9-1"}]}]}]})
    out.append({"id": "GHSA-flas-k000-0001", "aliases": ["CVE-2099-0001"], "modified": "2026-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "PyPI", "name": "flask"},
                              "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"},
                                                                          {"fixed": "2.3.0"}]}]}]})
    return out


CHILD = """
import sys
from giropops.cli.main import main
code = main(sys.argv[1:])
with open("/proc/self/status") as f:  # VmHWM: this process's own peak (getrusage counts the parent's, pre-exec)
    peak = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
sys.stderr.write(f"VmHWM {peak}\\n")
sys.exit(code)
"""


def run_scan(argv: list[str], cache: Path) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) of the scanning process alone, and its summary line (table format)."""
    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, "scan", *argv], env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"scan failed with exit code {proc.returncode}: {proc.stderr.strip()[-500:]}")
    peak = int(next(line.split()[1] for line in proc.stderr.splitlines() if line.startswith("VmHWM ")))
    return elapsed, peak, proc.stdout.splitlines()[-1]


def median_time(fn: object, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--packages", type=int, default=120)
    ap.add_argument("--base-mb", type=float, default=8.0)
    ap.add_argument("--repeat", type=int, default=2, help="scan timings: the best of this many runs")
    ap.add_argument("--keep", default=None, metavar="DIR", help="work in DIR (kept) instead of a temporary one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="giropops-fleet-bench-") as tmp_name:
        tmp = Path(args.keep) if args.keep else Path(tmp_name)
        reg = Registry(tmp / "registry")
        reg.start()
        try:
            bench(reg, tmp, args.images, args.packages, int(args.base_mb * 1e6), args.repeat)
        finally:
            reg.stop()


def bench(reg: Registry, tmp: Path, count: int, packages: int, payload: int, repeat: int) -> None:
    base = base_layer(packages, payload)
    print(f"base layer: {packages} packages, {base.size / 1e6:.1f} MB compressed; {count} images")
    t = time.perf_counter()
    for i in range(count):
        app = MemLayer({f"app/{i}.txt": str(i).encode(),
                        f"{SITE}/flask-{FLASK[i % 5]}.dist-info/METADATA":
                            f"Metadata-Version: 2.1\nName: flask\nVersion: {FLASK[i % 5]}\n".encode()})
        write_registry(MemImage([base, app]), Reference.parse(f"{reg.host}/bench/app-{i % 10}:v{i}"))
    print(f"pushed in {time.perf_counter() - t:.1f} s")
    db = tmp / "vulndb.sqlite3"
    adv = tmp / "adv.osv.jsonl.gz"
    with gzip.open(adv, "wt") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in advisories(packages)))
    import_paths(db, [adv])

    one_index, all_index = tmp / "one.sqlite3", tmp / "all.sqlite3"
    t1 = tn = float("inf")
    for attempt in range(repeat):  # the best of a few runs: the machine is shared
        for f in (one_index, all_index):
            for extra in ("", "-wal", "-shm"):
                Path(f"{f}{extra}").unlink(missing_ok=True)
        a, rss1, rows1 = run_scan([f"{reg.host}/bench/app-0:v0", "--index", str(one_index), "--db", str(db)],
                                  tmp / f"cache-one-{attempt}")
        b, rssn, rowsn = run_scan([reg.host, "--repository", "^bench/", "--workers", "4", "--index",
                                   str(all_index), "--db", str(db)], tmp / f"cache-all-{attempt}")
        t1, tn = min(t1, a), min(tn, b)
    assert rows1.startswith("1 images: 1 catalogued (2 layers read)"), rows1
    assert rowsn.startswith(f"{count} images: {count} catalogued"), rowsn
    layers = int(rowsn.split("(")[1].split()[0])
    print(f"scan 1 image:    {t1:6.2f} s, peak RSS {rss1 / 1024:6.1f} MiB")
    print(f"scan {count} images: {tn:6.2f} s, peak RSS {rssn / 1024:6.1f} MiB, {layers} layers read")
    print(f"  each further image: {(tn - t1) / (count - 1) * 1000:.0f} ms")
    print(f"  ratio all/one time {tn / t1:.2f} (goal <= 5)   memory {rssn / rss1:.2f} (goal: ~1)")

    from giropops.fleet.index import open_index
    from giropops.fleet.query import affected, rematch
    from giropops.vuln.db.store import VulnDB

    with VulnDB(db) as vdb:
        idx_all, idx_one = open_index(str(all_index)), open_index(str(one_index))
        try:
            hits = affected(idx_all, vdb, "CVE-2099-0001")
            lat = median_time(lambda: affected(idx_all, vdb, "CVE-2099-0001"))
            print(f"affected CVE-2099-0001: {len({h.image.digest for h in hits})} images, median {lat * 1000:.1f} ms"
                  f" (goal < 100 ms)")
            lat2 = median_time(lambda: affected(idx_all, vdb, "CVE-2099-10000"))
            print(f"affected CVE-2099-10000 (base package): median {lat2 * 1000:.1f} ms (goal < 100 ms)")
        finally:
            idx_all.close()
            idx_one.close()
    idx_all, idx_one = open_index(str(all_index)), open_index(str(one_index))
    r1 = median_time(lambda: _rematch(db, idx_one, rematch), 3)
    rn = median_time(lambda: _rematch(db, idx_all, rematch), 3)
    print(f"rematch 1 image: {r1 * 1000:.1f} ms, {count} images: {rn * 1000:.1f} ms, ratio {rn / r1:.2f} (goal <= 10)")
    idx_all.close()
    idx_one.close()


def _rematch(db: Path, index: object, rematch: object) -> None:
    from giropops.vuln.db.store import VulnDB

    with VulnDB(db) as vdb:  # a fresh database handle: nothing cached from an earlier run
        rematch(index, vdb)  # type: ignore[operator]


if __name__ == "__main__":
    main()
