"""``giropops sbom`` vs ``trivy image --format cyclonedx`` on the same image tarballs, in one run.

The test images of ``tests/sbom`` are built first (real Debian packages, a
debootstrap minbase, wheels in a venv, whiteouts, an apk database).  For each,
both tools write a CycloneDX SBOM of the same docker-archive tarball:

* cold: an empty cache for both (``TRIVY_CACHE_DIR`` / ``GIROPOPS_CACHE_DIR``);
* warm: the same command again with the cache the cold run filled.

Each measurement is the best wall time of ``--rounds`` runs (who goes first
alternates) and the peak RSS of the child process (``wait4``'s ``ru_maxrss``).
Ratios are giropops / trivy: below 1.0 we are faster or leaner.

    .venv/bin/python bench/sbom_vs_trivy.py [--rounds 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.support import sbom_images as im  # noqa: E402


@dataclass
class Sample:
    seconds: float
    max_rss_kb: int


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
    return Sample(elapsed, usage.ru_maxrss)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep the built images here (default: a temporary directory)")
    args = parser.parse_args()
    giropops = shutil.which("giropops", path=str(Path(sys.executable).parent)) or "giropops"
    trivy = im.trivy_binary()
    with tempfile.TemporaryDirectory(prefix="sbom-bench-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print("building test images ...", flush=True)
        images = build_images(work)
        print(
            f"\n{'image':<12} {'size':>7} | {'trivy cold':>10} {'ours cold':>10} {'ratio':>6} | "
            f"{'trivy warm':>10} {'ours warm':>10} {'ratio':>6} | {'warm/trivy cold':>15} | "
            f"{'trivy MB':>8} {'ours MB':>8} {'ratio':>6}"
        )
        for image in images:
            out = Path(tmp) / "out.json"
            best: dict[str, Sample] = {}

            def keep(key: str, s: Sample, best: dict[str, Sample] = best) -> None:
                old = best.get(key)
                if old is None or s.seconds < old.seconds:
                    best[key] = Sample(s.seconds, max(s.max_rss_kb, old.max_rss_kb if old else 0))
                else:
                    old.max_rss_kb = max(old.max_rss_kb, s.max_rss_kb)

            for r in range(args.rounds):
                trivy_cache = Path(tmp) / f"trivy-cache-{image.name}-{r}"
                our_cache = Path(tmp) / f"giropops-cache-{image.name}-{r}"
                trivy_argv = [trivy, "image", "--input", str(image.tar), "--format", "cyclonedx", "-o", str(out),
                              "--quiet"]
                our_argv = [giropops, "sbom", f"archive://{image.tar}", "--format", "cyclonedx-json", "-o", str(out)]
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
                f"{trivy_mem:>8.1f} {our_mem:>8.1f} {our_mem / trivy_mem:>6.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
