"""generate-key-pair, sign and verify as whole commands against a local registry, timed.

No cosign binary can be installed here, so the peers are what bounds each command from below:
the interpreter starting giropops at all (``giropops version``), one scrypt at cosign's cost (what
opening or writing ``cosign.key`` must pay), and skopeo fetching the same ``.sig`` manifest (one
registry round trip by a compiled tool).  Best of ``--rounds`` runs each; ratios printed.

    .venv/bin/python bench/sign_bench.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.sign.test_image_layout import make_layout  # noqa: E402
from tests.support.services import Registry, require_binary  # noqa: E402

from giropops.oci.registry import RegistryClient  # noqa: E402


def best(label: str, fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    t = min(times)
    print(f"{label:<44} {t * 1000:8.1f} ms  (best of {rounds})")
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    env = {**os.environ, "COSIGN_PASSWORD": "bench-password"}
    gp = [sys.executable, "-m", "giropops"]
    skopeo = require_binary("skopeo")

    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        reg = Registry(tmp / "registry")
        reg.start()
        try:
            make_layout(tmp / "layout", "img")
            image = f"{reg.host}/bench/app:1"
            subprocess.run([skopeo, "copy", "--quiet", "--dest-tls-verify=false", f"oci:{tmp / 'layout'}:img",
                            f"docker://{image}"], check=True)
            _, _, digest = RegistryClient(reg.host).get_manifest("bench/app", "1")

            def run(*a: str, cwd: Path = tmp) -> None:
                subprocess.run([*gp, *a], check=True, env=env, cwd=cwd, capture_output=True)

            keys = tmp / "keys"
            keys.mkdir()

            def gen() -> None:
                run("generate-key-pair", "--force", cwd=keys)

            baseline = best("giropops version (interpreter + CLI start)", lambda: run("version"), args.rounds)
            salt = os.urandom(32)
            scrypt = best("one scrypt N=65536 r=8 p=1 (in process)",
                          lambda: hashlib.scrypt(b"pw", salt=salt, n=65536, r=8, p=1, maxmem=2**28, dklen=32),
                          args.rounds)
            t_gen = best("giropops generate-key-pair", gen, args.rounds)
            t_sign = best("giropops sign (by tag, registry)",
                          lambda: run("sign", "--key", str(keys / "cosign.key"), image), args.rounds)
            t_verify = best("giropops verify (registry)",
                            lambda: run("verify", "--key", str(keys / "cosign.pub"), image), args.rounds)
            sig_tag = f"docker://{reg.host}/bench/app:sha256-{digest.hex}.sig"
            t_skopeo = best("skopeo inspect --raw of the .sig manifest",
                            lambda: subprocess.run([skopeo, "inspect", "--tls-verify=false", "--raw", sig_tag],
                                                   check=True, capture_output=True), args.rounds)
        finally:
            reg.stop()

    print()
    print(f"generate-key-pair / (startup + scrypt):  {t_gen / (baseline + scrypt):5.2f}")
    print(f"sign / (startup + scrypt):               {t_sign / (baseline + scrypt):5.2f}")
    print(f"verify / startup:                        {t_verify / baseline:5.2f}")
    print(f"verify / skopeo inspect of .sig:         {t_verify / t_skopeo:5.2f}")
    print(f"scrypt share of sign:                    {scrypt / t_sign:5.0%}")


if __name__ == "__main__":
    main()
