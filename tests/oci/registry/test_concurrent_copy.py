"""Pulls fetch layers concurrently, within a bound, and a bad layer stops the whole copy cleanly.

A counting proxy in front of the real registry delays every blob GET a little, so that requests
sent together are in flight together, and records the most it saw at once.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pty
import subprocess
import sys
import tarfile
import threading

import pytest

from giropops.errors import BlobError
from giropops.oci.copygzip import gzip_for_push
from giropops.oci.copypool import Cancel, Cancelled, run_jobs, write_tar
from giropops.oci.image import Image
from giropops.oci.layout import BlobSource
from giropops.oci.model import Digest
from giropops.oci.reference import Reference
from giropops.oci.registry import write_registry
from giropops.oci.transport import write_image
from giropops.progress import NO_PROGRESS
from tests.support.faultproxy import Fault, FaultProxy, blob_get
from tests.support.oci_images import random_image
from tests.support.services import Registry, require_binary

LAYERS = 8


def giropops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "giropops", *args], capture_output=True, text=True, timeout=120)


def skopeo(*args: str) -> str:
    proc = subprocess.run([require_binary("skopeo"), *args], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def pushed(registry: Registry) -> tuple[Image, str]:
    img = random_image(1900, layers=LAYERS, size=300_000)
    # no blob-info cache: a module fixture runs before the per-test cache directory is set
    write_registry(img, Reference.parse(f"{registry.host}/concurrent/img:1"), blob_cache=None)
    return img, "concurrent/img:1"


def slow_blobs(registry: Registry, *first: Fault) -> FaultProxy:
    return FaultProxy(registry.port, [*first, Fault(blob_get, times=None, delay=0.3)], counted=blob_get)


@pytest.mark.parametrize("dest", ["archive://{d}/out.tar", "oci-dir://{d}/out"])
def test_a_pull_has_several_layer_gets_in_flight_and_never_more_than_jobs(registry, pushed, tmp_path, dest):
    img, name = pushed
    with slow_blobs(registry) as proxy:
        proc = giropops("copy", "-q", "--jobs", "3", f"{proxy.host}/{name}", dest.format(d=tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(img.digest)
    assert 2 <= proxy.max_in_flight <= 3
    assert proxy.max_connections <= 3
    fetched = [path for method, path, _ in proxy.log if method == "GET" and "/blobs/" in path]
    assert len(fetched) == LAYERS + 1  # every layer and the config, each once
    # another tool reads what was written (every blob, checked against its digest) and finds our image
    src = f"oci-archive:{tmp_path}/out.tar" if dest.startswith("archive") else f"oci:{tmp_path}/out"
    skopeo("copy", "-q", src, f"dir:{tmp_path}/by-skopeo")
    assert (tmp_path / "by-skopeo" / "manifest.json").read_bytes() == img.raw_manifest


def test_progress_on_a_terminal_ends_each_layer_once_with_its_own_line(registry, pushed, tmp_path):
    img, name = pushed
    master, slave = pty.openpty()
    try:
        with slow_blobs(registry) as proxy:
            proc = subprocess.run(
                [sys.executable, "-m", "giropops", "copy", f"{proxy.host}/{name}", f"archive://{tmp_path}/p.tar"],
                stdout=subprocess.PIPE, stderr=slave, timeout=120,
            )
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)
    assert proc.returncode == 0
    shown = b"".join(chunks).decode(errors="replace")
    # each finished line is what follows the last "clear line" before its newline
    finished = [line.rsplit("\x1b[2K", 1)[-1] for line in shown.replace("\r\n", "\n").split("\n")]
    done = [line for line in finished if line.endswith(": done")]
    assert sorted(done) == sorted(f"layer {d.digest.short}: done" for d in img.manifest.layers)


def test_jobs_1_fetches_one_layer_at_a_time(registry, pushed, tmp_path):
    _, name = pushed
    with slow_blobs(registry) as proxy:
        proc = giropops("copy", "-q", "--jobs", "1", f"{proxy.host}/{name}", f"archive://{tmp_path}/one.tar")
    assert proc.returncode == 0, proc.stderr
    assert proxy.max_in_flight == 1


@pytest.mark.parametrize("dest", ["archive://{d}/out.tar", "oci-dir://{d}/out"])
def test_a_corrupt_layer_in_the_middle_fails_the_pull_and_leaves_nothing(registry, pushed, tmp_path, dest):
    img, name = pushed
    bad = img.manifest.layers[LAYERS // 2].digest
    corrupt = Fault(lambda method, path: method == "GET" and path.endswith(f"/blobs/{bad}"), times=None,
                    corrupt=True)
    out = tmp_path / "dest"
    out.mkdir()
    with slow_blobs(registry, corrupt) as proxy:
        proc = giropops("copy", "-q", "--jobs", "4", f"{proxy.host}/{name}", dest.format(d=out))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(bad) in lines[0] and "does not match its digest" in lines[0]
    assert list(out.iterdir()) == []  # no archive, no layout, no temporary file


@pytest.mark.parametrize("dest", ["archive://{d}/out.tar", "oci-dir://{d}/out"])
def test_a_failed_layer_cuts_off_a_transfer_that_hangs(registry, pushed, tmp_path, dest):
    # One layer's GET never gets an answer (the request deadline is 300 s); another layer is corrupt.
    # The corrupt one fails the copy, which must stop the hanging transfer instead of waiting for it.
    img, name = pushed
    bad, stuck = img.manifest.layers[2].digest, img.manifest.layers[5].digest
    faults = [
        Fault(lambda method, path: method == "GET" and path.endswith(f"/blobs/{bad}"), times=None,
              corrupt=True, delay=0.5),  # fails once the stuck GET is surely in flight
        Fault(lambda method, path: method == "GET" and path.endswith(f"/blobs/{stuck}"), times=None, hang=True),
    ]
    out = tmp_path / "dest"
    out.mkdir()
    with FaultProxy(registry.port, faults) as proxy:
        # the subprocess timeout only turns a hang into a failure; nothing here measures time
        proc = giropops("copy", "-q", "--jobs", "8", f"{proxy.host}/{name}", dest.format(d=out))
        hung = [path for _m, path, what in proxy.log if what == "hung"]
    assert hung == [f"/v2/{name.split(':')[0]}/blobs/{stuck}"]
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "does not match its digest" in lines[0], proc.stderr
    assert list(out.iterdir()) == []


def test_a_push_uploads_several_layers_at_once_and_never_more_than_jobs(registry, pushed, tmp_path):
    img, _ = pushed
    write_image(img, f"oci-dir://{tmp_path}/src:s")

    def upload(method: str, path: str) -> bool:
        return method == "PUT" and "/blobs/uploads/" in path

    with FaultProxy(registry.port, [Fault(upload, times=None, delay=0.3)], counted=upload) as proxy:
        proc = giropops("copy", "-q", "--jobs", "3", f"oci-dir://{tmp_path}/src:s",
                        f"{proxy.host}/concurrent/pushed:1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(img.digest)
    assert 2 <= proxy.max_in_flight <= 3
    assert len([p for m, p, _ in proxy.log if upload(m, p)]) == LAYERS + 1  # each layer and the config once


def test_jobs_out_of_range_is_a_usage_error(tmp_path):
    for jobs in ("0", "17"):
        proc = giropops("copy", "--jobs", jobs, "registry.example/x:1", f"archive://{tmp_path}/x.tar")
        assert proc.returncode == 64
        assert "--jobs must be between 1 and 16" in proc.stderr
    assert not (tmp_path / "x.tar").exists()


def test_the_jobs_default_and_bound_are_one_everywhere():
    # the literals kept apart so that `giropops --help` need not import the copy machinery
    from giropops.cli import copy as cli_copy
    from giropops.oci import copypool
    from giropops.oci.registry import remote
    from giropops.oci.transport import TransportOptions

    assert TransportOptions().jobs == remote.PUSH_PARALLELISM == copypool.DEFAULT_JOBS == 4
    assert cli_copy._MAX_JOBS == copypool.MAX_JOBS


# --- the pieces -----------------------------------------------------------------------------------


def _source(data: bytes, label: str = "layer") -> BlobSource:
    digest = Digest.of(data)
    return BlobSource(digest, len(data), None, lambda: io.BytesIO(data), label)


def _info(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mtime = 0
    ti.mode = 0o755 if directory else 0o644
    if directory:
        ti.type = tarfile.DIRTYPE
    else:
        ti.size = size
    return ti


def test_write_tar_is_byte_for_byte_what_tarfile_writes(tmp_path):
    blobs = [bytes([i]) * n for i, n in enumerate((1, 511, 512, 513, 3 * 1024 * 1024 + 7))]
    long_name = "blobs/" + "x" * 150  # longer than a ustar name: PAX extended header
    members: list[tuple[tarfile.TarInfo, bytes | BlobSource]] = [(_info("blobs", directory=True), b"")]
    for i, data in enumerate(blobs):
        members.append((_info(f"blobs/{i}", len(data)), _source(data)))
    members.append((_info(long_name, 5), b"hello"))
    members.append((_info("index.json", 2), b"{}"))
    ours = tmp_path / "ours.tar"
    with open(ours, "wb") as f:
        size = write_tar(f.fileno(), members, NO_PROGRESS, jobs=3)
    theirs = tmp_path / "theirs.tar"
    with tarfile.open(theirs, "w", format=tarfile.PAX_FORMAT) as t:
        for info, content in members:
            data = content if isinstance(content, bytes) else blobs[int(info.name.rsplit("/", 1)[1])]
            t.addfile(info, io.BytesIO(data) if info.isreg() else None)
    assert ours.read_bytes() == theirs.read_bytes()
    assert size == theirs.stat().st_size


def test_write_tar_refuses_a_blob_that_is_not_its_declared_size(tmp_path):
    data = b"a" * 1000
    short = BlobSource(Digest.of(data), 1001, None, lambda: io.BytesIO(data), "layer")
    long = BlobSource(Digest.of(data), 999, None, lambda: io.BytesIO(data), "layer")
    for src, word in ((short, "shorter"), (long, "longer")):
        with open(tmp_path / "x.tar", "wb") as f, pytest.raises(BlobError, match=word):
            write_tar(f.fileno(), [(_info("b", src.size), src)], NO_PROGRESS, jobs=2)


def test_the_first_failure_stops_the_running_tasks_and_is_the_one_raised():
    started = threading.Barrier(3)
    stopped: list[str] = []

    def failing(cancel: Cancel) -> None:
        started.wait(timeout=30)
        raise ValueError("layer 2 is bad")

    def long_running(cancel: Cancel) -> None:
        started.wait(timeout=30)
        try:
            for _ in range(3000):  # at most ~30 s; a cancel ends it at the next check
                cancel.check()
                threading.Event().wait(0.01)
        except Cancelled:
            stopped.append("cancelled")
            raise
        stopped.append("ran to the end")

    with pytest.raises(ValueError, match="layer 2 is bad"):
        run_jobs([long_running, failing, long_running], jobs=3)
    assert stopped == ["cancelled", "cancelled"]


def test_gzip_for_push_is_gzip_of_the_input_and_deterministic():
    data = b"".join(f"line {i} of a text-like layer\n".encode() for i in range(200_000)) + bytes(range(256)) * 999
    results = []
    for _ in range(2):
        opener, digest, size = gzip_for_push(io.BufferedReader(io.BytesIO(data)))  # type: ignore[arg-type]
        with opener() as f:
            blob = f.read()
        results.append(blob)
        assert len(blob) == size
        assert digest.hex == hashlib.sha256(blob).hexdigest()
        assert gzip.decompress(blob) == data  # the stdlib's reader checks CRC and length too
        assert size < len(data) // 4
    assert results[0] == results[1]


def test_the_pool_event_lets_every_waiter_through_once_set():
    import threading

    from giropops.oci.copypool import Event

    event, passed = Event(), []
    waiters = [threading.Thread(target=lambda i=i: (event.wait(), passed.append(i))) for i in range(4)]
    for t in waiters:
        t.start()
    assert not event.is_set() and passed == []
    event.set()
    event.set()  # a second set is no error
    for t in waiters:
        t.join(10)
    assert sorted(passed) == [0, 1, 2, 3]
    event.wait()  # set already: returns at once


def test_the_pool_condition_wakes_one_waiter_per_notify_and_all_on_notify_all():
    import threading

    from giropops.oci.copypool import Condition

    cv, ready, woken = Condition(), [0], []

    def waiter(i: int) -> None:
        with cv:
            ready[0] += 1
            cv.wait()
            woken.append(i)

    threads = [threading.Thread(target=waiter, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    while True:
        with cv:
            if ready[0] == 3:
                break
    with cv:
        cv.notify()
    threads_alive = lambda: sum(t.is_alive() for t in threads)  # noqa: E731
    for _ in range(1000):
        if threads_alive() == 2:
            break
        threading.Event().wait(0.01)
    assert len(woken) == 1
    with cv:
        cv.notify_all()
    for t in threads:
        t.join(10)
    assert sorted(woken) == [0, 1, 2]
