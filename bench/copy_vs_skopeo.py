"""Copy a ~150 MB image registry -> archive and archive -> registry, with giropops and with skopeo.

Both tools run in the same process tree against the same local registry
(``docker-registry`` on loopback) and the same input, one after the other,
alternating who goes first over ``--rounds`` rounds; the best time of each is
reported with the ratio giropops/skopeo (below 1.0: we are faster), and the least CPU time
(user + system, of the process and its children) each needed.  Pulls run once
more with ``--jobs 1`` (one layer at a time) to show what fetching layers concurrently gives,
and both again through a loopback proxy that answers every blob GET 100 ms late (a registry
across a network, where layers in flight at once matter).

Pushes run in series into a fresh registry per tool and round: cold (nothing
there), then ``--warm-repeats`` times each: warm into the same repository (another
tag: every blob is there already), warm into another repository of the same
registry (a new one each time: every blob can be mounted).  Two sources: the
archive giropops writes (gzip layers, pushed as they are) and a docker-archive
written by skopeo (layers stored uncompressed, as ``docker save`` writes them:
both tools gzip them on push, and remember in their blob-info caches what each
layer became).  giropops' cache lives in a
temporary ``GIROPOPS_CACHE_DIR``; skopeo keeps its default one, warm for both
after the first push.  A warm giropops push of the unchanged archive is replayed from the
record its cold push left (``giropops.cli._replay``: HEADs, or mounts, then the recorded manifest),
without opening the archive; skopeo opens the archive each time.

    .venv/bin/python bench/copy_vs_skopeo.py [--size-mb 150] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.faultproxy import Fault, FaultProxy, blob_get  # noqa: E402
from tests.support.services import Registry, require_binary  # noqa: E402

from giropops.oci import mutate  # noqa: E402
from giropops.oci.empty import empty_image  # noqa: E402
from giropops.oci.image import Image  # noqa: E402
from giropops.oci.transport import write_image  # noqa: E402


def build_image(size_mb: int, workdir: Path) -> Image:
    """Four layers: half random bytes (incompressible), half text-like (compressible), as real images are."""
    rnd = random.Random(150)
    layers = []
    per_layer = size_mb * 1024 * 1024 // 4
    words = [rnd.randbytes(rnd.randint(3, 12)).hex().encode() for _ in range(5000)]
    for i in range(4):
        tar_path = workdir / f"layer{i}.tar"
        with tarfile.open(tar_path, "w") as t:
            for j in range(8):
                name = workdir / f"f{i}-{j}"
                with open(name, "wb") as f:
                    if i % 2 == 0:
                        f.write(rnd.randbytes(per_layer // 8))
                    else:
                        written = 0
                        while written < per_layer // 8:
                            chunk = b" ".join(rnd.choices(words, k=4096)) + b"\n"
                            f.write(chunk)
                            written += len(chunk)
                t.add(name, arcname=f"data/{i}/{j}.bin")
                name.unlink()
        layers.append(mutate.layer_from_tar(tar_path))
        tar_path.unlink()
    img = mutate.append_layers(empty_image(), layers)
    return mutate.canonicalize(mutate.with_config(img, cmd=["/bin/true"]), 0)


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child processes) of ``fn``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warm-repeats", type=int, default=3, help="warm pushes of each kind per round (default 3)")
    args = ap.parse_args()
    skopeo = require_binary("skopeo")
    giropops = [sys.executable, "-m", "giropops"]
    # Byte-compile once, as an installed package is: with PYTHONDONTWRITEBYTECODE set (it is on the
    # shared machines) every run would compile each module it imports again, ~0.1 s of every copy.
    run([sys.executable, "-m", "compileall", "-q", str(REPO_ROOT / "src")])
    with tempfile.TemporaryDirectory(prefix="bench-copy-") as tmp:
        work = Path(tmp)
        os.environ["GIROPOPS_CACHE_DIR"] = str(work / "giropops-cache")  # ours, and inherited by every run
        (work / "registry").mkdir()
        reg = Registry(work / "registry")
        reg.start()
        proxies = contextlib.ExitStack()
        try:
            print(f"building a ~{args.size_mb} MB image ...", flush=True)
            img = build_image(args.size_mb, work)
            size = sum(layer.size for layer in img.layers())
            src_archive = work / "src.tar"
            write_image(img, f"archive://{src_archive}:bench/src:1")
            write_image(img, f"registry://{reg.host}/bench/src:1")
            print(f"image: {len(img.layers())} layers, {size / 1e6:.1f} MB compressed", flush=True)
            src = f"{reg.host}/bench/src:1"
            plain_archive = work / "plain.tar"
            run([skopeo, "copy", "-q", "--src-tls-verify=false", f"docker://{src}",
                 f"docker-archive:{plain_archive}:bench/src:1"])
            # (operation, source label, skopeo's archive transport, direction)
            cases = [
                ("registry -> archive", "", "docker-archive", "pull"),
                ("registry -> archive", "", "oci-archive", "pull"),
                ("registry -> archive", "--jobs 1", "oci-archive", "pull"),  # ours one layer at a time
                # every blob GET answered 100 ms late (a registry across a network): layers in flight at once
                # is what wins there; the proxy forwards whole bodies, the same for both tools
                ("registry+100ms -> archive", "", "oci-archive", "pull"),
                ("registry+100ms -> archive", "--jobs 1", "oci-archive", "pull"),
                ("archive -> registry", "giropops (gzip)", "docker-archive", "push"),
                ("archive -> registry", "giropops (gzip)", "oci-archive", "push"),
                ("archive -> registry", "skopeo (tar)", "docker-archive", "push"),
            ]
            warmth = ("cold", "warm, same repo", "warm, other repo")
            results: dict[tuple[str, str, str, str], dict[str, list[tuple[float, float]]]] = {}
            for label, source, fmt, direction in cases:
                for w in (("",) if direction == "pull" else warmth):
                    results[(label, source, fmt, w)] = {"giropops": [], "skopeo": []}
            slow = proxies.enter_context(FaultProxy(reg.port, [Fault(blob_get, times=None, delay=0.1)]))
            for r in range(args.rounds):
                order = ["giropops", "skopeo"] if r % 2 == 0 else ["skopeo", "giropops"]
                for label, source, fmt, direction in cases:
                    for tool in order:
                        if direction == "pull":
                            key = (label, source, fmt, "")
                            out = work / f"{tool}-{fmt}-{r}.tar"
                            pull_src = src if "+100ms" not in label else f"{slow.host}/bench/src:1"
                            if tool == "giropops":
                                cmd = [*giropops, "copy", "-q", *source.split(), f"registry://{pull_src}",
                                       f"archive://{out}"]
                            else:
                                cmd = [skopeo, "copy", "-q", "--src-tls-verify=false", f"docker://{pull_src}",
                                       f"{fmt}:{out}:bench/src:1"]
                            results[key][tool].append(timed(lambda c=cmd: run(c)))
                            out.unlink()
                            continue
                        archive = plain_archive if source.startswith("skopeo") else src_archive
                        # a fresh registry per series, so that the cold push finds nothing to mount or skip
                        push_dir = work / f"push-{tool}-{fmt}-{source[:7]}-{r}"
                        push_dir.mkdir()
                        target = Registry(push_dir)
                        target.start()
                        try:
                            # a warm push is a few tens of ms: several per round (another tag, another
                            # repository each time) so that one unlucky scheduling does not decide the row
                            dests = [("cold", f"{target.host}/bench/{tool}:1")]
                            for k in range(args.warm_repeats):
                                dests += [("warm, same repo", f"{target.host}/bench/{tool}:{k + 2}"),
                                          ("warm, other repo", f"{target.host}/bench/{tool}-other{k}:1")]
                            for w, dest in dests:
                                if tool == "giropops":
                                    cmd = [*giropops, "copy", "-q", f"archive://{archive}", f"registry://{dest}"]
                                else:
                                    cmd = [skopeo, "copy", "-q", "--dest-tls-verify=false", f"{fmt}:{archive}",
                                           f"docker://{dest}"]
                                results[(label, source, fmt, w)][tool].append(timed(lambda c=cmd: run(c)))
                        finally:
                            target.stop()
        finally:
            proxies.close()
            reg.stop()
    print(f"\n{'operation':<27}{'source archive':<17}{'skopeo reads':<16}{'registry':<18}"
          f"{'giropops':>10}{'skopeo':>10}{'ratio':>8} | {'cpu ours':>9}{'skopeo':>9}{'ratio':>7}")
    for (label, source, fmt, w), times in results.items():
        ours, theirs = min(t for t, _c in times["giropops"]), min(t for t, _c in times["skopeo"])
        ours_cpu, theirs_cpu = min(c for _t, c in times["giropops"]), min(c for _t, c in times["skopeo"])
        print(f"{label:<27}{source or '-':<17}{fmt:<16}{w or '-':<18}{ours:>9.3f}s{theirs:>9.3f}s{ours / theirs:>8.2f}"
              f" | {ours_cpu:>8.3f}s{theirs_cpu:>8.3f}s{ours_cpu / max(theirs_cpu, 1e-3):>7.2f}")
    print("(best of each over the rounds; ratio = giropops / skopeo, below 1.0 means faster; cpu = user + sys.")
    print(" giropops writes/reads one tarball that is both a docker and an OCI archive; skopeo's docker-archive")
    print(" stores layers uncompressed, its oci-archive keeps the compressed blobs as we do.")
    print(f" warm: the same archive pushed again into the same registry, another tag or another repository,"
          f" {args.warm_repeats} of each per round;")
    print(" pulls fetch --jobs 4 layers at once by default, skopeo up to 6)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
