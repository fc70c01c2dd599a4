"""Property: for any stack of layers, the squashed view holds exactly the files ``umoci unpack`` leaves on disk.

umoci applies layers (whiteouts, opaque directories) the way the OCI image spec says; it is the
reference here.  Layers are generated with names that never change kind (``d*`` are directories,
``f*.txt`` files), whiteouts first in each layer as the spec's "lower layers only" rule requires.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from giropops.oci.transport import open_image, write_image
from giropops.sbom.filesystem import Filesystem, Interest, read_layer
from tests.support.sbom_images import Entry, layer_from_entries, opaque, whiteout, write_docker_archive
from tests.support.services import require_binary

DIRS = st.lists(st.sampled_from(["d0", "d1", "d2"]), min_size=0, max_size=2)
FILE = st.builds(lambda ds, f: "/".join([*ds, f]), DIRS, st.sampled_from(["f0.txt", "f1.txt", "f2.txt"]))
DIR = st.builds(lambda ds, d: "/".join([*ds, d]), DIRS, st.sampled_from(["d0", "d1", "d2"]))

OP = st.one_of(
    st.tuples(st.just("file"), FILE, st.binary(min_size=0, max_size=8)),
    st.tuples(st.just("whiteout"), st.one_of(FILE, DIR), st.just(b"")),
    st.tuples(st.just("opaque"), DIR, st.just(b"")),
)
LAYERS = st.lists(st.lists(OP, min_size=1, max_size=8), min_size=1, max_size=3)


def build(ops: list[tuple[str, str, bytes]]) -> bytes:
    removals = [op for op in ops if op[0] != "file"]
    files = {path: data for kind, path, data in ops if kind == "file"}
    removed = {path for _, path, _ in removals}
    entries: list[Entry] = []
    for kind, path, _ in removals:
        entries.append(whiteout(path) if kind == "whiteout" else opaque(path))
    for path, data in files.items():
        if any(path == r or path.startswith(r + "/") for r in removed):
            continue  # a path whited out and re-created in one layer: the spec leaves that to writers
        entries.append(Entry(path, data))
    return layer_from_entries(entries)


def umoci_files(layers: list[bytes], tmp: Path) -> dict[str, bytes]:
    tar = write_docker_archive(tmp / "img.tar", layers)
    write_image(open_image(f"archive://{tar}"), f"oci-dir://{tmp / 'layout'}:t")
    subprocess.run(
        [require_binary("umoci"), "unpack", "--image", f"{tmp / 'layout'}:t", str(tmp / "bundle")],
        check=True,
        capture_output=True,
    )
    root = tmp / "bundle" / "rootfs"
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            full = Path(dirpath) / name
            out[str(full.relative_to(root))] = full.read_bytes()
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(LAYERS)
def test_squash_equals_umoci_unpack(stack: list[list[tuple[str, str, bytes]]]) -> None:
    layers = [build(ops) for ops in stack]
    interest = Interest(["**/*.txt"])
    fs = Filesystem([read_layer(io.BytesIO(b), f"sha256:{i:064d}", interest) for i, b in enumerate(layers)])
    ours = {p: fs.read(p) for p in fs.glob("**/*.txt")}
    with tempfile.TemporaryDirectory() as tmp:
        assert ours == umoci_files(layers, Path(tmp))
