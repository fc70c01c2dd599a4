"""bench/app_wrk.py still runs end to end (a second per route): it measures, it never asserts a speed."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support.paths import REPO_ROOT
from tests.support.services import require_binary


def test_benchmark_runs_against_both_peers() -> None:
    require_binary("wrk")
    require_binary("redis-server")
    r = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "app_wrk.py"), "--duration", "1", "--warmup", "1",
         "--connections", "4"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    linhas = r.stdout.splitlines()
    for servidor in ("giropops-senhas", "original, Flask dev server", "original, gunicorn 4 sync workers"):
        for rota in ("POST /api/gerar-senha", "GET /api/senhas"):
            medida = [x for x in linhas if servidor in x and rota in x and "req/s" in x]
            assert medida, (servidor, rota, r.stdout)
            assert re.search(r"errors 0\b", medida[0]), medida[0]
    assert sum("throughput x" in x for x in linhas) == 4
