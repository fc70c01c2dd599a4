"""``giropops sbom`` vs ``trivy image --format cyclonedx`` on the same image tarballs, in one run.

The test images of ``tests/sbom`` are built first (real Debian packages, a
debootstrap minbase, wheels in a venv, whiteouts, an apk database), then the
large polyglot image of ``bench/large_image.py`` (1 GB uncompressed, 45,000
files, gzip layers; ``--no-large`` leaves it out).  For each, both tools write
a CycloneDX SBOM of the same docker-archive tarball:

* cold: an empty cache for both (``TRIVY_CACHE_DIR`` / ``GIROPOPS_CACHE_DIR``);
* warm: the same command again with the cache the cold run filled.

Each measurement is the best wall time of ``--rounds`` runs (who goes first
alternates), the CPU time (user + sys) of that run and the peak RSS of the
child process (``wait4``'s ``ru_usage``).  Ratios are giropops / trivy: below
1.0 we are faster or leaner.  On a busy machine the wall times say little;
the CPU ratio says what the work costs.  For the large image the package
counts of both SBOMs are printed per purl type, side by side.

Trivy reads jars offline with an empty Java DB (``--offline-scan``, see
``tests/sbom/ecosys_support.empty_java_db``); that DB is put in its cache
directory before each cold run.

Bytecode is compiled first (``compileall`` of ``src``, what ``pip install`` does for a regular
install): with ``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__``, every cold run would
compile every module it imports and measure the compiler, not giropops.

``--importtime`` adds what a cold run of the first image imports (``python -X importtime``: the
largest self times and the total), the start-up part of a small image's cold time.

    .venv/bin/python bench/sbom_vs_trivy.py [--rounds 3] [--workdir DIR] [--no-large] [--large-workdir DIR]
                                            [--only NAMES] [--importtime]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

import large_image  # noqa: E402  (bench/ is on sys.path when this script runs)
from tests.sbom.ecosys_support import empty_java_db  # noqa: E402
from tests.support import sbom_images as im  # noqa: E402


@dataclass
class Sample:
    seconds: float
    max_rss_kb: int
    cpu: float = 0.0


def measure(argv: list[str], env: dict[str, str]) -> Sample:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {err[-2000:]}")
    if proc.stderr:
        proc.stderr.close()
    return Sample(elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime)


NAMES = ("distroless", "debootstrap", "venv", "whiteout", "apk")


def build_images(work: Path) -> list[im.BuiltImage]:
    tars = [work / f"{name}-image.tar" for name in NAMES]
    if all(t.is_file() for t in tars):  # --workdir of an earlier run: reuse its images
        return [im.BuiltImage(name, tar, ()) for name, tar in zip(NAMES, tars, strict=True)]
    debs = im.download_debs(work)
    distroless = im.build_distroless_layer(work, debs)
    venv = im.build_venv_layer(work, im.download_wheels(work))
    minbase = im.layer_from_dir(im.build_debootstrap_root(work), work / "minbase.tar")
    return [
        im.image(work, "distroless", [distroless]),
        im.image(work, "debootstrap", [minbase]),
        im.image(work, "venv", [distroless, venv]),
        im.image(work, "whiteout", [distroless, venv, im.build_whiteout_layer(work, debs)]),
        im.image(work, "apk", [im.build_apk_layer()]),
    ]


def purl_types(doc: dict[str, Any]) -> Counter[str]:
    """Components with a package URL, counted by purl type (nested components included)."""
    counts: Counter[str] = Counter()
    stack = list(doc.get("components") or [])
    while stack:
        c = stack.pop()
        stack.extend(c.get("components") or [])
        purl = c.get("purl")
        if purl:
            counts[purl[len("pkg:") :].split("/", 1)[0]] += 1
    return counts


def print_counts(trivy_out: Path, our_out: Path) -> None:
    theirs = purl_types(json.loads(trivy_out.read_text()))
    ours = purl_types(json.loads(our_out.read_text()))
    print(f"\n  packages by purl type   {'trivy':>6} {'ours':>6}")
    for kind in sorted(set(theirs) | set(ours)):
        print(f"  {kind:<22} {theirs[kind]:>6} {ours[kind]:>6}")
    print(f"  {'total':<22} {sum(theirs.values()):>6} {sum(ours.values()):>6}", flush=True)


def print_importtime(giropops: str, image: im.BuiltImage, tmp: Path) -> None:
    """The imports of one cold ``giropops sbom`` of ``image`` (``-X importtime``), largest self time first."""
    cache = tmp / "giropops-cache-importtime"
    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(cache)}
    argv = [sys.executable, "-X", "importtime", giropops, "sbom", f"archive://{image.tar}", "--format",
            "cyclonedx-json", "-o", str(tmp / "out.json")]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    shutil.rmtree(cache, ignore_errors=True)
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            rows.append((int(parts[0]), int(parts[1]), parts[2].strip()))
    ours = sum(own for own, _, name in rows if name.startswith("giropops"))
    print(f"\nimports of a cold sbom of {image.name} (-X importtime, us): {len(rows)} modules, self total "
          f"{sum(own for own, _, _ in rows)} (giropops.* {ours})")
    for own, cumulative, name in sorted(rows, reverse=True)[:12]:
        print(f"  {own:>6} self {cumulative:>7} cumulative  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep the built images here (default: a temporary directory)")
    parser.add_argument("--no-large", action="store_true", help="leave out the large polyglot image")
    parser.add_argument(
        "--large-workdir", type=Path, default=large_image.DEFAULT_WORKDIR, help="where bench/large_image.py keeps it"
    )
    parser.add_argument("--only", help="comma-separated image names to measure (e.g. large,distroless)")
    parser.add_argument("--importtime", action="store_true", help="print what a cold run of the first image imports")
    args = parser.parse_args()
    compileall.compile_dir(str(REPO_ROOT / "src"), quiet=1)
    giropops = shutil.which("giropops", path=str(Path(sys.executable).parent)) or "giropops"
    trivy = im.trivy_binary()
    with tempfile.TemporaryDirectory(prefix="sbom-bench-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print("building test images ...", flush=True)
        images = build_images(work)
        if not args.no_large:
            images.append(im.BuiltImage("large", large_image.build(args.large_workdir), ()))
        if args.only:
            wanted = set(args.only.split(","))
            images = [i for i in images if i.name in wanted]
        print(
            f"\n{'image':<12} {'size':>7} | {'trivy cold':>10} {'ours cold':>10} {'ratio':>6} | "
            f"{'trivy warm':>10} {'ours warm':>10} {'ratio':>6} | {'warm/trivy cold':>15} | "
            f"{'trivy MB':>8} {'ours MB':>8} {'ratio':>6} | {'cold cpu trivy':>14} {'ours':>6} {'ratio':>6}"
        )
        for image in images:
            out = Path(tmp) / "out.json"
            trivy_out, our_out = Path(tmp) / "trivy.json", Path(tmp) / "ours.json"
            best: dict[str, Sample] = {}

            def keep(key: str, s: Sample, best: dict[str, Sample] = best) -> None:
                old = best.get(key)
                if old is None or s.seconds < old.seconds:
                    best[key] = Sample(s.seconds, max(s.max_rss_kb, old.max_rss_kb if old else 0), s.cpu)
                else:
                    old.max_rss_kb = max(old.max_rss_kb, s.max_rss_kb)

            offline = image.name == "large"  # it has jars: Trivy's Java DB, empty, offline
            for r in range(args.rounds):
                trivy_cache = Path(tmp) / f"trivy-cache-{image.name}-{r}"
                our_cache = Path(tmp) / f"giropops-cache-{image.name}-{r}"
                if offline:
                    empty_java_db(trivy_cache)
                last = r == args.rounds - 1
                trivy_argv = [trivy, "image", "--input", str(image.tar), "--format", "cyclonedx", "-o",
                              str(trivy_out if last else out), "--quiet"]
                if offline:
                    trivy_argv += ["--skip-db-update", "--skip-java-db-update", "--offline-scan"]
                our_argv = [giropops, "sbom", f"archive://{image.tar}", "--format", "cyclonedx-json", "-o",
                            str(our_out if last else out)]
                trivy_env = {**os.environ, "TRIVY_CACHE_DIR": str(trivy_cache), "TRIVY_NO_PROGRESS": "true"}
                our_env = {**os.environ, "GIROPOPS_CACHE_DIR": str(our_cache)}
                order = [("trivy", trivy_argv, trivy_env), ("ours", our_argv, our_env)]
                if r % 2:
                    order.reverse()
                for phase in ("cold", "warm"):
                    for who, argv, env in order:
                        keep(f"{who} {phase}", measure(argv, env))
                shutil.rmtree(trivy_cache, ignore_errors=True)
                shutil.rmtree(our_cache, ignore_errors=True)
            size_mb = image.tar.stat().st_size / 1e6
            tc, oc = best["trivy cold"], best["ours cold"]
            tw, ow = best["trivy warm"], best["ours warm"]
            trivy_mem = max(tc.max_rss_kb, tw.max_rss_kb) / 1024
            our_mem = max(oc.max_rss_kb, ow.max_rss_kb) / 1024
            print(
                f"{image.name:<12} {size_mb:>6.1f}M | {tc.seconds:>9.3f}s {oc.seconds:>9.3f}s "
                f"{oc.seconds / tc.seconds:>6.2f} | {tw.seconds:>9.3f}s {ow.seconds:>9.3f}s "
                f"{ow.seconds / tw.seconds:>6.2f} | {ow.seconds / tc.seconds:>15.2f} | "
                f"{trivy_mem:>8.1f} {our_mem:>8.1f} {our_mem / trivy_mem:>6.2f} | "
                f"{tc.cpu:>13.2f}s {oc.cpu:>5.2f}s {oc.cpu / tc.cpu:>6.2f}",
                flush=True,
            )
            if image.name == "large":
                print_counts(trivy_out, our_out)
        if args.importtime and images:
            print_importtime(giropops, images[0], Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
