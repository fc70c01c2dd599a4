"""Registries that never answer, or answer a byte at a time: the command ends with the deadline error.

A loopback proxy in front of the real registry hangs or dribbles; the CLI runs with a short
``--timeout``.  No wall time is asserted: pytest-timeout bounds the tests, and each must end
with one error line naming the deadline (or the speed floor), a non-zero exit and nothing written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from giropops.errors import RegistryError
from giropops.oci.registry import RegistryOptions, RetryPolicy, write_registry
from tests.oci.registry.conftest import ref_for
from tests.support.faultproxy import Fault, FaultProxy, blob_get, manifest_get
from tests.support.images import MemImage, MemLayer
from tests.support.services import Registry

pytestmark = pytest.mark.timeout(120)


def giropops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "giropops", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=100, env={**os.environ})


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("giropops: error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


@pytest.fixture
def pushed(registry: Registry, repo: str) -> str:
    # incompressible, so the blob is as large on the wire as here
    img = MemImage([MemLayer({"data": os.urandom(256 * 1024)})])
    write_registry(img, ref_for(registry.host, repo))
    return repo


def test_a_registry_that_never_answers(registry: Registry, pushed: str, tmp_path: Path) -> None:
    with FaultProxy(registry.port, [Fault(manifest_get, times=None, hang=True)]) as proxy:
        proc = giropops("inspect", "--timeout", "2", f"registry://{proxy.host}/{pushed}:latest")
    line = one_error_line(proc)
    assert "deadline" in line and proxy.host in line


def test_a_registry_that_sends_a_byte_at_a_time(registry: Registry, pushed: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FaultProxy(registry.port, [Fault(manifest_get, times=None, dribble=0.1)]) as proxy:
        proc = giropops("copy", "--timeout", "2", f"registry://{proxy.host}/{pushed}:latest", f"oci-dir://{out}:x")
    line = one_error_line(proc)
    assert "deadline" in line
    assert any(what.endswith("dribbled") for _, _, what in proxy.log)
    assert not out.exists()


def test_a_blob_below_the_minimum_speed(registry: Registry, pushed: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with FaultProxy(registry.port, [Fault(blob_get, times=None, dribble_body=0.02)]) as proxy:
        proc = giropops("copy", "--timeout", "2", f"registry://{proxy.host}/{pushed}:latest", f"oci-dir://{out}:x")
    line = one_error_line(proc)
    assert "slower than 10 KiB/s" in line
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_timeout_must_be_a_positive_number() -> None:
    proc = giropops("inspect", "--timeout", "0", "registry://127.0.0.1:9/x:latest")
    assert proc.returncode == 64
    assert "positive number of seconds" in proc.stderr and "Traceback" not in proc.stderr


def test_a_push_to_a_registry_that_stops_answering(registry: Registry, repo: str) -> None:
    img = MemImage([MemLayer({"data": os.urandom(4096)})])
    options = RegistryOptions(retry=RetryPolicy(timeout=1.0))

    def uploads(method: str, path: str) -> bool:
        return method in ("POST", "PUT", "PATCH")

    with FaultProxy(registry.port, [Fault(uploads, times=None, hang=True)]) as proxy:
        with pytest.raises(RegistryError, match="deadline") as caught:
            write_registry(img, ref_for(proxy.host, repo), options)
    assert "\n" not in str(caught.value)
    assert any(what == "hung" for _, _, what in proxy.log)


def test_a_connection_closed_by_a_finalizer_while_its_thread_holds_the_watchdog_lock_does_not_deadlock() -> None:
    """urllib3 closes pooled connections from a garbage-collection finalizer, which runs on whatever thread
    allocates next — the watchdog's own thread included, while it holds its lock.  ``forget`` (called by
    ``close``) must then neither block nor corrupt the table (seen as a suite that hung in a push)."""
    import threading

    from giropops.oci.registry.deadline import Watch, _Watchdog

    wd = _Watchdog()
    conn = object()
    wd._watches[id(conn)] = Watch(conn, None)  # type: ignore[arg-type]
    done = threading.Event()

    def finalizer_inside_the_lock() -> None:
        with wd._lock:
            wd.forget(conn)  # what _Tracked.close does when GC runs it on this thread
        done.set()

    threading.Thread(target=finalizer_inside_the_lock, daemon=True).start()
    assert done.wait(5), "forget() blocked on the lock its own thread holds"
    assert wd.get(conn) is None  # and the connection is forgotten all the same
