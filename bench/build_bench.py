"""Build speed: giropops build (cold, warm, after an app change) vs debootstrap + python3 + pip, one run.

    .venv/bin/python bench/build_bench.py [--skip-conventional]

Cold = empty cache (every .deb, index and wheel downloaded); warm = same inputs again; app change = one
line added to the app's code (only the top layer is rebuilt).  The conventional build is debootstrap
minbase + python3 + pip inside the root + the app, tarred and gzipped into an image.  Goals (issue 7):
the app image < 24 MB compressed (aim 16 MB); a warm rebuild after an app change < 2 s.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.builder.conftest import app_copy  # noqa: E402
from tests.builder.conventional import conventional_rootfs, image_of_rootfs, uncompressed_size  # noqa: E402

from giropops.builder.builder import Builder  # noqa: E402
from giropops.builder.cache import Cache  # noqa: E402
from giropops.builder.output import write_output  # noqa: E402
from giropops.builder.spec import load_spec  # noqa: E402


def timed_build(spec_path: Path, cache: Cache, out: Path) -> tuple[float, int, int, int]:
    t0 = time.perf_counter()
    result = Builder(cache).build(load_spec(spec_path))
    write_output(result.image, f"archive://{out}", ["localhost/giropops-senhas:bench"])
    elapsed = time.perf_counter() - t0
    return elapsed, result.image.compressed_size, uncompressed_size(result.image), len(result.reused_layers)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-conventional", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="giropops-bench-") as tmp_s:
        tmp = Path(tmp_s)
        spec = app_copy(tmp / "project")
        cache = Cache(tmp / "cache")
        cold, size, usize, _ = timed_build(spec, cache, tmp / "a.tar")
        warm, _, _, reused_warm = timed_build(spec, cache, tmp / "b.tar")
        init = tmp / "project" / "src" / "giropops_senhas" / "__init__.py"
        init.write_text(init.read_text() + "\n# bench: an app change\n")
        change, _, _, reused_change = timed_build(spec, cache, tmp / "c.tar")

        print(f"giropops-senhas image: {size / 1e6:.1f} MB compressed, {usize / 1e6:.1f} MB uncompressed")
        print(f"{'build':<28}{'giropops':>10}")
        print(f"{'cold (empty cache)':<28}{cold:>9.2f}s")
        print(f"{'warm (same inputs)':<28}{warm:>9.2f}s   ({reused_warm} cached layers)")
        print(f"{'rebuild after app change':<28}{change:>9.2f}s   ({reused_change} cached layers)")
        if args.skip_conventional:
            return 0
        t0 = time.perf_counter()
        root = conventional_rootfs(tmp / "rootfs", ROOT)
        conv_image = image_of_rootfs(root)
        write_output(conv_image, f"archive://{tmp / 'conv.tar'}", ["localhost/conventional:bench"])
        conv = time.perf_counter() - t0
        shutil.copy(init, root / "app" / "giropops_senhas" / "__init__.py")
        t0 = time.perf_counter()
        conv_image = image_of_rootfs(root)  # one layer: an app change re-tars the whole root
        write_output(conv_image, f"archive://{tmp / 'conv2.tar'}", ["localhost/conventional:bench"])
        conv_change = time.perf_counter() - t0
        csize = conv_image.compressed_size
        print(f"\n{'':<28}{'giropops':>10}{'debootstrap+pip':>18}{'ratio':>8}")
        print(f"{'cold build':<28}{cold:>9.2f}s{conv:>17.2f}s{conv / cold:>7.1f}x")
        print(f"{'rebuild after app change':<28}{change:>9.2f}s{conv_change:>17.2f}s{conv_change / change:>7.1f}x")
        print(f"{'compressed size':<28}{size / 1e6:>8.1f}MB{csize / 1e6:>16.1f}MB{csize / size:>7.1f}x")
        cu = uncompressed_size(conv_image)
        print(f"{'uncompressed size':<28}{usize / 1e6:>8.1f}MB{cu / 1e6:>16.1f}MB{cu / usize:>7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
