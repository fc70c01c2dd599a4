"""podman with a private store and the settings this kernel needs (runc, cgroupfs, no default ulimits)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.services import require_binary


class Podman:
    def __init__(self, workdir: Path) -> None:
        self.binary = require_binary("podman")
        require_binary("runc")
        workdir.mkdir(parents=True, exist_ok=True)
        conf = workdir / "containers.conf"
        conf.write_text('[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\n')
        storage = workdir / "storage.conf"
        storage.write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{workdir / "graph"}"\nrunroot = "{workdir / "run"}"\n'
        )
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf), "CONTAINERS_STORAGE_CONF": str(storage)}

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.binary, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def run_args(self) -> list[str]:
        return ["run", "--runtime", "runc"]

    def cleanup(self) -> None:
        self("rm", "-a", "-f", "-t", "0", check=False)
        self("system", "reset", "-f", check=False)
