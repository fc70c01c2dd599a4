"""The copy/pull/push and inspect commands, end to end in a subprocess."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from giropops.oci.archive import write_archive
from giropops.oci.memory import build_index
from giropops.oci.model import Platform
from tests.support.oci_images import random_image, tar_bytes
from tests.support.services import require_binary

AMD = Platform.parse("linux/amd64")
ARM = Platform.parse("linux/arm64/v8")


def giropops(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "giropops", *args], capture_output=True, text=True, timeout=120,
                          **kw)


def skopeo_json(*args: str):
    proc = subprocess.run([require_binary("skopeo"), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def multi(tmp_path_factory) -> tuple[Path, object, object, object]:
    amd = random_image(80, layers=2, platform=AMD)
    arm = random_image(81, layers=1, platform=ARM)
    idx = build_index([(amd, None), (arm, None)])
    path = tmp_path_factory.mktemp("multi") / "multi.tar"
    write_archive(idx, path, "example.com/multi:1")
    return path, idx, amd, arm


def test_copy_round_trip_keeps_digests_and_is_quiet_off_a_tty(multi, tmp_path):
    path, _idx, _amd, arm = multi
    proc = giropops("copy", "--platform", "linux/arm64", f"archive://{path}", f"oci-dir://{tmp_path}/lay:arm")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(arm.digest)
    assert proc.stderr == ""  # not a terminal: no progress
    assert skopeo_json("inspect", f"oci:{tmp_path}/lay:arm")["Digest"] == str(arm.digest)
    proc = giropops("copy", f"oci-dir://{tmp_path}/lay:arm", f"archive://{tmp_path}/arm.tar:example.com/arm:1")
    assert proc.returncode == 0, proc.stderr
    assert skopeo_json("inspect", f"oci-archive:{tmp_path}/arm.tar")["Digest"] == str(arm.digest)


def test_all_platforms_copies_the_index(multi, tmp_path):
    path, idx, amd, arm = multi
    proc = giropops("copy", "--all-platforms", f"archive://{path}", f"oci-dir://{tmp_path}/all:multi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(idx.digest)
    raw = skopeo_json("inspect", "--raw", f"oci:{tmp_path}/all:multi")
    assert [m["digest"] for m in raw["manifests"]] == [str(amd.digest), str(arm.digest)]
    # Without --all-platforms: this machine's platform only.
    proc = giropops("copy", f"archive://{path}", f"oci-dir://{tmp_path}/one")
    host = Platform.host()
    want = amd if host.architecture == "amd64" else arm
    assert proc.stdout.strip() == str(want.digest)


def test_inspect_json_matches_independent_sources(tmp_path):
    t1 = tar_bytes({"one": b"1" * 3000})
    t2 = tar_bytes({"two": b"2" * 5000})
    from giropops.oci import mutate
    from giropops.oci.empty import EMPTY_IMAGE

    img = mutate.append_layers(EMPTY_IMAGE, [mutate.layer_from_tar(t1), mutate.layer_from_tar(t2)])
    img = mutate.with_config(img, user="app", entrypoint=["/app"], cmd=["serve"], env=["A=b"], working_dir="/w",
                             exposed_ports=["8080"], labels={"l": "v"})
    path = tmp_path / "img.tar"
    write_archive(mutate.canonicalize(img, 0), path, "example.com/i:1")
    proc = giropops("inspect", "--format", "json", f"archive://{path}")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    sk = skopeo_json("inspect", f"oci-archive:{path}")
    raw_manifest = subprocess.run([require_binary("skopeo"), "inspect", "--raw", f"oci-archive:{path}"],
                                  capture_output=True, check=True).stdout
    manifest = json.loads(raw_manifest)
    assert info["digest"] == sk["Digest"]
    assert [layer["digest"] for layer in info["layers"]] == sk["Layers"]
    assert info["compressedSize"] == manifest["config"]["size"] + sum(x["size"] for x in manifest["layers"])
    assert info["uncompressedSize"] == len(t1) + len(t2)
    assert [layer["uncompressedSize"] for layer in info["layers"]] == [len(t1), len(t2)]
    cfg = info["config"]
    assert (cfg["user"], cfg["entrypoint"], cfg["cmd"], cfg["env"], cfg["workingDir"], cfg["exposedPorts"],
            cfg["labels"]) == ("app", ["/app"], ["serve"], ["A=b"], "/w", ["8080/tcp"], {"l": "v"})
    assert len(info["history"]) == 2
    raw = giropops("inspect", "--raw", f"archive://{path}")
    assert raw.stdout.encode() == raw_manifest
    text = giropops("inspect", f"archive://{path}").stdout
    assert sk["Digest"] in text and "8080/tcp" in text and "A=b" in text


def test_inspect_index_lists_every_platform(multi):
    path, idx, _amd, arm = multi
    info = json.loads(giropops("inspect", "--format", "json", "--platform", "linux/arm64", f"archive://{path}").stdout)
    assert info["digest"] == str(idx.digest)
    assert info["platforms"] == ["linux/amd64", "linux/arm64/v8"]
    assert info["image"]["digest"] == str(arm.digest)
    text = giropops("inspect", f"archive://{path}").stdout
    assert "linux/amd64" in text and "linux/arm64/v8" in text
    bad = giropops("inspect", "--platform", "linux/s390x", f"archive://{path}")
    assert bad.returncode == 1 and "no manifest for platform linux/s390x" in bad.stderr


def test_progress_is_drawn_on_a_terminal_and_silenced_by_quiet(multi, tmp_path):
    path, *_ = multi

    def run_with_tty_stderr(*args: str) -> str:
        master, slave = pty.openpty()
        try:
            proc = subprocess.run([sys.executable, "-m", "giropops", *args], stdout=subprocess.PIPE, stderr=slave,
                                  timeout=120)
            assert proc.returncode == 0
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
            return b"".join(chunks).decode(errors="replace")
        finally:
            os.close(master)
            if slave != -1:
                os.close(slave)

    shown = run_with_tty_stderr("copy", f"archive://{path}", f"oci-dir://{tmp_path}/p1")
    assert "layer " in shown and "done" in shown
    quiet = run_with_tty_stderr("copy", "--quiet", f"archive://{path}", f"oci-dir://{tmp_path}/p2")
    assert quiet == ""


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["pull", "archive://x.tar", "oci-dir://y"], "pull takes a registry reference"),
        (["push", "archive://x.tar", "oci-dir://y"], "push takes a registry reference"),
        (["copy", "--platform", "a/b/c/d", "archive://x.tar", "oci-dir://y"], "invalid platform"),
        (["copy", "--platform", "linux/amd64", "--all-platforms", "archive://x.tar", "oci-dir://y"], "exclude"),
    ],
)
def test_usage_errors_exit_64(args, needle, tmp_path):
    proc = giropops(*args, cwd=tmp_path)
    assert proc.returncode == 64, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert os.listdir(tmp_path) == []


def test_missing_source_and_unknown_scheme(tmp_path):
    proc = giropops("copy", f"archive://{tmp_path}/absent.tar", f"oci-dir://{tmp_path}/o")
    assert proc.returncode == 1 and "does not exist" in proc.stderr
    proc = giropops("copy", "ftp://x", f"oci-dir://{tmp_path}/o")
    assert proc.returncode == 1 and "unknown scheme 'ftp://'" in proc.stderr
    assert os.listdir(tmp_path) == []


# -- ending without the interpreter's teardown (cli.copy.exit_now) ---------------------------------------------

_EXIT_CHILD = """
import atexit, sys, threading
from giropops.cli.copy import exit_now
case = sys.argv[1]
sys.stdout.write("buffered, no newline")  # still in the buffer when exit_now is called
if case == "atexit":
    atexit.register(lambda: sys.stdout.write(" / atexit ran"))
if case == "thread":
    done = threading.Event()
    def late():
        done.wait(0.3)
        sys.stdout.write(" / thread finished")
    threading.Thread(target=late).start()
exit_now(7)
"""


@pytest.mark.parametrize(("case", "tail"),
                         [("plain", ""), ("atexit", " / atexit ran"), ("thread", " / thread finished")])
def test_exit_now_flushes_and_leaves_pending_work_to_the_normal_exit(case: str, tail: str) -> None:
    proc = subprocess.run([sys.executable, "-c", _EXIT_CHILD, case], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout == "buffered, no newline" + tail
