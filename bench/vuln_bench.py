"""Vulnerability database and scan benchmark (issue 19: speed, measured against goals and a peer).

Measures, on the shared advisories (../shared/vulndata):
  * ``db import`` of every file (the OSV JSON lines and CISA's KEV catalog) into a new database, in a
    child process: wall time, CPU time, database size, peak RSS (goals: 30 s, 300 MB);
  * the matching curve: ``scan`` of synthetic inventories of 100, 1,000 and 10,000 real package
    names and versions drawn from the advisories themselves (Debian 12 source packages and the seven
    language ecosystems), against the full database, each with a fresh ``VulnDB`` (no in-process
    cache, page cache warm): the cost per package stays flat when matching scales with packages, not
    advisories; the query plan of the per-package lookup is printed (an index search, never a scan);
  * ``giropops cves`` on the giropops-senhas image (built with ``giropops build``), a new process each
    time: cold (empty SBOM layer cache) and warm (goal 0.2 s);
  * ``giropops cves`` on the large bench image (``--large-image PATH``, else bench/large_image.py's
    builder when it is there), cold and warm (goal 1 s);
  * ``giropops cves`` on a realistic SBOM (this machine's dpkg database plus the app's Python
    requirements), with the peer of the same run: the proof tests' naive in-memory matcher
    (``--no-peer`` skips it: it takes ~20 s to load).

Every wall time is printed with the CPU time beside it: on a shared machine the wall time is noisy.
The child processes run without PYTHONDONTWRITEBYTECODE, as an installed giropops does (compiled
modules cached), and ``src`` is byte-compiled first (``compileall``, what ``pip install`` does), so that
no timed run measures the compiler.
Run: .venv/bin/python bench/vuln_bench.py [--large-image PATH] [--rounds N] [--no-peer]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VULNDATA = REPO.parent / "shared" / "vulndata"
PY = sys.executable
IMPORT_GOAL_S, IMPORT_GOAL_MB = 30.0, 300.0
APP_WARM_GOAL_S, LARGE_WARM_GOAL_S = 0.2, 1.0
CURVE = (100, 1_000, 10_000)

IMPORT_CHILD = """
import resource, sys, time
from pathlib import Path
from giropops.vuln.db.importer import import_paths
t, c = time.perf_counter(), time.process_time()
r = import_paths(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
print(time.perf_counter() - t, time.process_time() - c, r.records, r.imported, r.skipped, r.unchanged,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, r.kev)
"""

REQUIREMENTS = [("Flask", "3.0.3"), ("Werkzeug", "3.0.3"), ("Jinja2", "3.1.4"), ("MarkupSafe", "2.1.5"),
                ("itsdangerous", "2.2.0"), ("click", "8.1.7"), ("blinker", "1.8.2"), ("redis", "5.0.4"),
                ("prometheus-client", "0.20.0"), ("gunicorn", "22.0.0"), ("packaging", "24.0"),
                ("pip", "24.0"), ("setuptools", "65.5.0")]

# OSV ecosystem -> SBOM package type of the synthetic inventories (one distribution: Debian 12)
CURVE_ECOSYSTEMS = {"Debian:12": "deb", "PyPI": "python", "npm": "npm", "Go": "golang", "Maven": "maven",
                    "RubyGems": "gem", "crates.io": "cargo", "NuGet": "nuget"}
PURL_TYPES = {"deb": "deb/debian", "python": "pypi", "npm": "npm", "golang": "golang", "maven": "maven",
              "gem": "gem", "cargo": "cargo", "nuget": "nuget"}


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def timed_child(cmd: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env or child_env(), cwd=REPO, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


# --------------------------------------------------------------------------- import


def import_all(db: Path) -> None:
    files = sorted(VULNDATA.glob("*.osv.jsonl.gz")) + sorted(VULNDATA.glob("*kev*.json.gz"))
    res = subprocess.run([PY, "-c", IMPORT_CHILD, str(db), *map(str, files)], capture_output=True, text=True,
                         check=True, env=child_env())
    seconds, cpu, records, imported, skipped, unchanged, rss_kb, *kev = res.stdout.strip().split(maxsplit=7)
    wall, rss = float(seconds), int(rss_kb) / 1024
    print(f"db import: {len(files)} files, {records} records ({imported} written, {unchanged} older duplicates, "
          f"{skipped} skipped); KEV {' '.join(kev)}")
    print(f"  time {wall:.1f} s wall, {float(cpu):.1f} s CPU (goal {IMPORT_GOAL_S:.0f} s, ratio "
          f"{wall / IMPORT_GOAL_S:.2f}; CPU ratio {float(cpu) / IMPORT_GOAL_S:.2f})")
    print(f"  peak RSS {rss:.0f} MB (goal {IMPORT_GOAL_MB:.0f} MB, ratio {rss / IMPORT_GOAL_MB:.2f}); "
          f"database {db.stat().st_size / 1e6:.1f} MB")


# --------------------------------------------------------------------------- matching curve


def candidates(db: Path) -> dict[str, list[tuple[str, list[str]]]]:
    """Per ecosystem: (package name, versions the advisories name for it), in name order."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out: dict[str, list[tuple[str, list[str]]]] = {}
    for eco in CURVE_ECOSYSTEMS:
        versions: dict[str, set[str]] = {}
        rows = conn.execute(
            "SELECT f.name, f.versions, i.introduced, i.fixed, i.last_affected FROM affected f"
            " LEFT JOIN interval i ON i.affected = f.pk WHERE f.ecosystem = ?", (eco,))
        for name, listed, *bounds in rows:
            vs = versions.setdefault(name, set())
            vs.update(v for v in bounds if v and v != "0")
            vs.update(v for v in listed.split("\n") if v)
        out[eco] = sorted((n, sorted(vs)) for n, vs in versions.items() if vs)
    conn.close()
    return out


def synthetic_sbom(pools: dict[str, list[tuple[str, list[str]]]], n: int, seed: int = 19) -> object:
    """``n`` packages drawn round-robin across the ecosystems (real names, versions the advisories name)."""
    from giropops.sbom.model import SBOM, Distro, Package, Subject

    rng = random.Random(seed)
    shuffled = {eco: rng.sample(pool, len(pool)) for eco, pool in pools.items()}
    packages: list[Package] = []
    index = 0
    while len(packages) < n and any(index < len(p) for p in shuffled.values()):
        for eco, pool in shuffled.items():
            if index < len(pool) and len(packages) < n:
                name, versions = pool[index]
                version = rng.choice(versions)
                ptype = CURVE_ECOSYSTEMS[eco]
                packages.append(Package(name=name, version=version, type=ptype,
                                        purl=f"pkg:{PURL_TYPES[ptype]}/{name}@{version}"))
        index += 1
    return SBOM(Subject(f"synthetic:{n}"), Distro("debian", "12"), tuple(packages))


def curve(db: Path, rounds: int) -> None:
    from giropops.vuln.db.store import VulnDB
    from giropops.vuln.match import scan

    pools = candidates(db)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    advisories = conn.execute("SELECT COUNT(*) FROM advisory").fetchone()[0]
    entries = conn.execute("SELECT COUNT(*) FROM affected").fetchone()[0]
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT f.pk FROM affected f JOIN advisory a ON a.pk = f.advisory"
        " LEFT JOIN interval i ON i.affected = f.pk WHERE f.ecosystem = ? AND f.name = ? ORDER BY f.pk",
        ("Debian:12", "openssl")).fetchall()
    conn.close()
    print(f"matching curve: full database ({advisories} advisories, {entries} affected entries), synthetic "
          f"inventories over {len(CURVE_ECOSYSTEMS)} ecosystems, fresh VulnDB per run, median of {rounds}")
    print("  lookup plan: " + "; ".join(str(r[3]) for r in plan))
    print(f"  {'packages':>8} {'wall':>9} {'CPU':>9} {'CPU/package':>12} {'findings':>9} {'CPU/finding':>12} "
          f"{'advisories read':>16}")
    per_package: list[float] = []
    per_finding: list[float] = []
    for n in CURVE:
        sbom = synthetic_sbom(pools, n)
        walls, cpus = [], []
        findings = read = 0
        for _ in range(rounds):
            with VulnDB(db) as vdb:
                t, c = time.perf_counter(), time.process_time()
                result = scan(sbom, vdb)  # type: ignore[arg-type]
                walls.append(time.perf_counter() - t)
                cpus.append(time.process_time() - c)
                findings = len(result.findings)
                read = sum(len(v) for v in vdb._cache.values())
        count = len(sbom.packages)  # type: ignore[attr-defined]
        per_package.append(med(cpus) / count)
        per_finding.append(med(cpus) / max(findings, 1))
        print(f"  {count:>8} {med(walls):>8.3f}s {med(cpus):>8.3f}s {med(cpus) / count * 1e6:>10.0f}us "
              f"{findings:>9} {med(cpus) / max(findings, 1) * 1e6:>10.0f}us {read:>16}")
    print(f"  CPU per package at {CURVE[-1]} / at {CURVE[0]} packages: {per_package[-1] / per_package[0]:.2f} "
          "(about 1: the cost follows the packages, not the advisories); per finding "
          f"{per_finding[-1] / per_finding[0]:.2f} (the larger inventories draw more vulnerable packages: the "
          "work follows the findings)")


# --------------------------------------------------------------------------- cves on images


def senhas_image(tmp: Path) -> str:
    """The real giropops-senhas image, built by ``giropops build`` from this repository's giropops.yaml."""
    from giropops.sbom.results import SETTLE_SECONDS

    archive = tmp / "senhas.tar"
    subprocess.run([PY, "-m", "giropops", "build", "-f", str(REPO / "giropops.yaml"), "-t",
                    "localhost/giropops-senhas:bench", "--output", f"archive://{archive}:giropops-senhas:bench"],
                   check=True, capture_output=True, cwd=REPO)
    # A file changed less than SETTLE_SECONDS ago is read again by every run (sbom.proofs, sbom.results: a
    # later write in the same timestamp tick could not be told apart), so no run is warm before then: the
    # runs would measure the settle window, not the warm path.  An image is not scanned that fast after
    # its build outside a benchmark.
    time.sleep(SETTLE_SECONDS + 0.2)
    return f"archive://{archive}"


def large_image(explicit: Path | None) -> str | None:
    if explicit is not None:
        return f"archive://{explicit}"
    builder = REPO / "bench" / "large_image.py"
    if not builder.is_file():
        return None
    sys.path.insert(0, str(REPO))
    from bench import large_image as li  # type: ignore[attr-defined]

    build: Callable[[Path], Path] = li.build
    return f"archive://{build(li.DEFAULT_WORKDIR)}"


def cves_runs(label: str, image: str, db: Path, tmp: Path, rounds: int, goal: float) -> None:
    slug = "".join(ch if ch.isalnum() else "-" for ch in label)
    env = {**child_env(), "XDG_CACHE_HOME": str(tmp / f"cache-{slug}")}
    out = tmp / f"{slug}.json"
    cmd = [PY, "-m", "giropops", "cves", image, "--db", str(db), "--skip-db-update", "--format", "json",
           "--output", str(out)]
    cold = timed_child(cmd, env)  # empty SBOM layer cache
    warm = [timed_child(cmd, env) for _ in range(rounds)]
    doc = json.loads(out.read_text())
    wall, cpu = med([w for w, _ in warm]), med([c for _, c in warm])
    print(f"giropops cves on {label} ({doc['packages']} packages, {doc['summary']['total']} findings), "
          "new process each time, SBOM included:")
    print(f"  cold {cold[0]:.2f} s (CPU {cold[1]:.2f} s); warm median {wall:.3f} s, CPU {cpu:.3f} s "
          f"(goal {goal} s, ratio {wall / goal:.2f}; CPU ratio {cpu / goal:.2f})")


def floor() -> None:
    walls = [timed_child([PY, "-c", "pass"])[0] for _ in range(3)]
    version = [timed_child([PY, "-m", "giropops", "--version"]) for _ in range(3)]
    print(f"floor: python -c pass {med(walls):.3f} s; giropops --version {med([w for w, _ in version]):.3f} s "
          f"(CPU {med([c for _, c in version]):.3f} s)")


# --------------------------------------------------------------------------- realistic SBOM and the peer


def realistic_sbom(path: Path) -> int:
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${source:Package}\t${source:Version}\n"],
                         capture_output=True, text=True, check=True).stdout
    components: list[dict[str, object]] = [{"type": "operating-system", "name": "debian", "version": "12"}]
    for line in out.splitlines():
        name, version, src, src_version = line.split("\t")
        components.append({"type": "library", "name": name, "version": version,
                           "purl": f"pkg:deb/debian/{name}@{version}?upstream={src}%40{src_version}"})
    for name, version in REQUIREMENTS:
        components.append({"type": "library", "name": name, "version": version,
                           "purl": f"pkg:pypi/{name.lower()}@{version}"})
    path.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5",
                                "metadata": {"component": {"type": "container", "name": "giropops-senhas:bench"}},
                                "components": components}))
    return len(components) - 1


def realistic(db: Path, tmp: Path, rounds: int, peer: bool) -> None:
    from giropops.vuln.db.store import VulnDB
    from giropops.vuln.match import scan
    from giropops.vuln.scan import sbom_for

    sbom_path = tmp / "sbom.json"
    n = realistic_sbom(sbom_path)
    cmd = [PY, "-m", "giropops", "cves", f"sbom://{sbom_path}", "--db", str(db), "--skip-db-update",
           "--format", "json", "--output", str(tmp / "out.json")]
    runs = [timed_child(cmd) for _ in range(rounds)]
    findings = json.loads((tmp / "out.json").read_text())["summary"]["total"]
    sb = sbom_for(f"sbom://{sbom_path}")
    warm, warm_cpu = [], []
    for _ in range(rounds):
        with VulnDB(db) as vdb:
            t, c = time.perf_counter(), time.process_time()
            scan(sb, vdb)
            warm.append(time.perf_counter() - t)
            warm_cpu.append(time.process_time() - c)
    print(f"giropops cves on a realistic SBOM ({n} packages: this machine's dpkg database + the app's "
          f"requirements, {findings} findings):")
    print(f"  new process median {med([w for w, _ in runs]):.3f} s (CPU {med([c for _, c in runs]):.3f} s); "
          f"matching alone {med(warm):.3f} s (CPU {med(warm_cpu):.3f} s)")
    if not peer:
        return
    # Peer in the same run: the proof tests' independent matcher (raw OSV JSON in memory,
    # python-debian / packaging version objects, OSV's event-walking pseudo-code).
    sys.path.insert(0, str(REPO))
    from tests.vuln.oracle import Oracle

    t = time.perf_counter()
    oracle = Oracle(sorted(VULNDATA.glob("*.osv.jsonl.gz")))
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    oracle.expect(sb)
    match_s = time.perf_counter() - t
    print(f"  peer (naive in-memory matcher): load {load_s:.1f} s, match {match_s:.2f} s; "
          f"peer match / our matching = {match_s / med(warm):.1f} (and we need no load step)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--large-image", type=Path, default=None, metavar="TAR",
                        help="docker-archive of the large bench image (default: bench/large_image.py builds it)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-peer", action="store_true", help="skip the naive matcher (its load takes ~20 s)")
    parser.add_argument("--db", type=Path, default=None,
                        help="use this database (already filled from vulndata) instead of importing")
    args = parser.parse_args()
    if not VULNDATA.is_dir():
        sys.exit(f"no vulndata at {VULNDATA}")
    compileall.compile_dir(str(REPO / "src"), quiet=1)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        db = args.db
        if db is None:
            db = tmp / "bench.sqlite3"
            import_all(db)
        curve(db, args.rounds)
        floor()
        cves_runs("the giropops-senhas image", senhas_image(tmp), db, tmp, args.rounds, APP_WARM_GOAL_S)
        large = large_image(args.large_image)
        if large is None:
            print("large image: none (give --large-image TAR, or add bench/large_image.py)")
        else:
            cves_runs("the large bench image", large, db, tmp, args.rounds, LARGE_WARM_GOAL_S)
        realistic(db, tmp, args.rounds, not args.no_peer)


if __name__ == "__main__":
    main()
