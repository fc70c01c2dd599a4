"""A private podman for tests: its own storage, config and (optionally) API service.

Podman on these machines needs ``default_ulimits = []`` and the cgroupfs
manager in containers.conf, runc as the runtime, and storage kept away from
everyone else's: ``Podman(tmp)`` sets all of that up in ``tmp`` and uses the
``vfs`` driver so that removing the directory needs no unmounting.

    pod = Podman(tmp_path)
    pod.run("load", "-i", str(tarball))
    out = pod.run("run", "--rm", "image:tag").stdout
    with pod.service() as sock:        # Docker Engine API on a unix socket
        ...                            # DOCKER_HOST=unix://{sock}
    pod.cleanup()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.services import require_binary, stop


class Podman:
    def __init__(self, workdir: Path) -> None:
        self.binary = require_binary("podman")
        require_binary("runc")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.graphroot = workdir / "graph"
        self.runroot = workdir / "run"
        self.tmpdir = workdir / "tmp"
        for d in (self.graphroot, self.runroot, self.tmpdir):
            d.mkdir(exist_ok=True)
        self.containers_conf = workdir / "containers.conf"
        self.containers_conf.write_text(
            "[containers]\ndefault_ulimits = []\n\n"
            f'[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\nevents_logger = "file"\n'
            f'tmp_dir = "{self.tmpdir}"\n'
        )
        self.storage_conf = workdir / "storage.conf"
        self.storage_conf.write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{self.graphroot}"\nrunroot = "{self.runroot}"\n'
        )
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(self.containers_conf),
            "CONTAINERS_STORAGE_CONF": str(self.storage_conf),
            "TMPDIR": str(self.tmpdir),
        }

    def run(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """``podman ARGS``; ``run`` subcommands get ``--runtime runc`` automatically."""
        argv = [self.binary, *args]
        if args and args[0] == "run":
            argv = [self.binary, "run", "--runtime", "runc", *args[1:]]
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    @contextlib.contextmanager
    def service(self) -> Iterator[Path]:
        """``podman system service`` on a private unix socket; yields the socket path."""
        sock = self.workdir / "api.sock"
        log = open(self.workdir / "service.log", "wb")
        proc = subprocess.Popen(
            [self.binary, "system", "service", "--time=0", f"unix://{sock}"],
            env=self.env, stdout=log, stderr=log,
        )
        try:
            deadline = time.monotonic() + 30
            while not sock.exists():
                if proc.poll() is not None:
                    raise RuntimeError(f"podman system service exited: {(self.workdir / 'service.log').read_text()}")
                if time.monotonic() > deadline:
                    raise RuntimeError("podman system service did not create its socket")
                time.sleep(0.05)
            yield sock
        finally:
            stop(proc)
            log.close()

    def cleanup(self) -> None:
        self.run("rm", "-a", "-f", "-t", "0", check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)
