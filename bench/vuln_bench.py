"""Vulnerability database and scan benchmark.

Measures, on the shared advisories (../shared/vulndata):
  * import of every file into a new database: wall time, database size, peak RSS (in a child process);
  * ``giropops cves`` on a realistic SBOM (this machine's dpkg database, a bookworm system, plus the
    giropops-senhas Python requirements) with the full database: cold (a new process, as a user runs it)
    and warm (repeated scans in one process, database pages cached);
  * ``giropops cves`` on the real giropops-senhas image (built with ``giropops build``), cold and warm.

Goals (issue 5): import < 60 s, scan < 1 s, peak memory < 300 MB.  Prints numbers and goal ratios.
Wall times suffer when the machine is shared; CPU times are printed beside them.
Run: .venv/bin/python bench/vuln_bench.py
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VULNDATA = REPO.parent / "shared" / "vulndata"
PY = sys.executable

IMPORT_CHILD = """
import resource, sys, time
from pathlib import Path
from giropops.vuln.db.importer import import_paths
t = time.perf_counter()
r = import_paths(Path(sys.argv[1]), sorted(Path(sys.argv[2]).glob("*.osv.jsonl.gz")))
print(time.perf_counter() - t, r.records, r.imported, r.skipped,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

REQUIREMENTS = [("Flask", "3.0.3"), ("Werkzeug", "3.0.3"), ("Jinja2", "3.1.4"), ("MarkupSafe", "2.1.5"),
                ("itsdangerous", "2.2.0"), ("click", "8.1.7"), ("blinker", "1.8.2"), ("redis", "5.0.4"),
                ("prometheus-client", "0.20.0"), ("gunicorn", "22.0.0"), ("packaging", "24.0"),
                ("pip", "24.0"), ("setuptools", "65.5.0")]


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


def senhas_image(tmp: Path) -> str:
    """The real giropops-senhas image, built by ``giropops build`` from this repository's giropops.yaml."""
    archive = tmp / "senhas.tar"
    subprocess.run([PY, "-m", "giropops", "build", "-f", str(REPO / "giropops.yaml"), "-t",
                    "localhost/giropops-senhas:bench", "--output", f"archive://{archive}:giropops-senhas:bench"],
                   check=True, capture_output=True, cwd=REPO)
    return f"archive://{archive}"


def main() -> None:
    files = sorted(VULNDATA.glob("*.osv.jsonl.gz"))
    if not files:
        sys.exit(f"no vulndata at {VULNDATA}")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite3"
        res = subprocess.run([PY, "-c", IMPORT_CHILD, str(db), str(VULNDATA)], capture_output=True, text=True,
                             check=True)
        seconds, records, imported, skipped, rss_kb = res.stdout.split()
        import_s, import_rss = float(seconds), int(rss_kb) / 1024
        size_mb = db.stat().st_size / 1e6
        print(f"import: {len(files)} files, {records} records ({imported} written, {skipped} skipped)")
        print(f"  time {import_s:.1f} s (goal 60 s, ratio {import_s / 60:.2f})")
        print(f"  database {size_mb:.1f} MB")
        print(f"  peak RSS {import_rss:.0f} MB (goal 300 MB, ratio {import_rss / 300:.2f})")

        sbom = Path(tmp) / "sbom.json"
        n = realistic_sbom(sbom)
        cold: list[float] = []
        cold_cpu: list[float] = []
        scan_rss = 0.0
        for _ in range(3):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run([PY, "-m", "giropops", "cves", f"sbom://{sbom}", "--db", str(db), "--format", "json",
                            "--output", str(Path(tmp) / "out.json")], check=True)
            cold.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cold_cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            scan_rss = max(scan_rss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
        findings = json.loads((Path(tmp) / "out.json").read_text())["summary"]["total"]

        from giropops.vuln.db.store import VulnDB
        from giropops.vuln.match import scan
        from giropops.vuln.scan import sbom_for

        sb = sbom_for(f"sbom://{sbom}")
        warm: list[float] = []
        warm_cpu: list[float] = []
        for _ in range(5):
            with VulnDB(db) as vdb:  # a fresh provider: no in-process advisory cache, OS page cache warm
                t, c = time.perf_counter(), time.process_time()
                scan(sb, vdb)
                warm.append(time.perf_counter() - t)
                warm_cpu.append(time.process_time() - c)
        print(f"cves: {n} packages, {findings} findings")
        print(f"  cold (new process, incl. interpreter start) median {statistics.median(cold):.2f} s "
              f"(goal 1 s, ratio {statistics.median(cold):.2f}); CPU time median {statistics.median(cold_cpu):.2f} s")
        print(f"  warm (matching only, page cache warm) median {statistics.median(warm):.3f} s, "
              f"CPU {statistics.median(warm_cpu):.3f} s")
        print(f"  peak RSS of the cves process {scan_rss:.0f} MB")

        image = senhas_image(Path(tmp))
        image_runs: list[float] = []
        for _ in range(4):  # the first run has an empty SBOM layer cache (cold), the others reuse it (warm)
            t = time.perf_counter()
            subprocess.run([PY, "-m", "giropops", "cves", image, "--db", str(db), "--format", "json", "--output",
                            str(Path(tmp) / "img.json")], check=True, env={**os.environ,
                                                                           "XDG_CACHE_HOME": str(Path(tmp) / "c")})
            image_runs.append(time.perf_counter() - t)
        img_doc = json.loads((Path(tmp) / "img.json").read_text())
        print(f"giropops cves on the giropops-senhas image (giropops build; {img_doc['packages']} packages, "
              f"{img_doc['summary']['total']} findings), new process each time, SBOM generation included:")
        print(f"  cold {image_runs[0]:.2f} s, warm median {statistics.median(image_runs[1:]):.2f} s "
              f"(goal 1 s, ratio {statistics.median(image_runs[1:]):.2f})")

        # Peer in the same run: the proof tests' independent matcher (raw OSV JSON in memory,
        # python-debian / packaging version objects, OSV's event-walking pseudo-code).
        sys.path.insert(0, str(REPO))
        from tests.vuln.oracle import Oracle

        t = time.perf_counter()
        oracle = Oracle(files)
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        oracle.expect(sb)
        match_s = time.perf_counter() - t
        ours = statistics.median(warm)
        print(f"peer (naive in-memory matcher): load {load_s:.1f} s, match {match_s:.2f} s; "
              f"ratio peer match / our warm scan = {match_s / ours:.2f} (and we need no load step)")


if __name__ == "__main__":
    main()
