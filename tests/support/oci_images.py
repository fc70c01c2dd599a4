"""Tiny real images for tests: a statically linked C program, random layers, hand-made tarballs.

Expected values in tests are computed here with ``hashlib``/``tarfile`` directly,
never with the code under test.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import subprocess
import tarfile
from pathlib import Path

from giropops.oci import mutate
from giropops.oci.empty import empty_image
from giropops.oci.image import Image
from giropops.oci.model import Platform
from tests.support.services import require_binary

HELLO_C = r"""
#include <stdio.h>
int main(int argc, char **argv) {
    printf("hello from giropops");
    for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
    return 0;
}
"""


def build_static_hello(workdir: Path) -> Path:
    """Compile a static binary that prints ``hello from giropops ARGS``."""
    gcc = require_binary("gcc")
    src = workdir / "hello.c"
    src.write_text(HELLO_C)
    out = workdir / "hello"
    subprocess.run([gcc, "-static", "-Os", "-s", "-o", str(out), str(src)], check=True)
    return out


def tar_bytes(files: dict[str, bytes], mode: int = 0o644, extra: list[tarfile.TarInfo] | None = None) -> bytes:
    """A tar with the given regular files (sorted, owner 0, mtime 0)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name in sorted(files):
            data = files[name]
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = mode
            t.addfile(ti, io.BytesIO(data))
        for ti in extra or []:
            t.addfile(ti)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hello_image(binary: Path, platform: Platform | None = None) -> Image:
    layer = mutate.layer_from_tar(tar_bytes({"hello": binary.read_bytes()}, mode=0o755))
    img = mutate.append_layers(empty_image(platform), [layer])
    img = mutate.with_config(img, entrypoint=["/hello"], env=["PATH=/"], labels={"org.example": "hello"})
    return mutate.canonicalize(img, 0)


def random_image(seed: int, layers: int = 2, size: int = 4096, platform: Platform | None = None) -> Image:
    rnd = random.Random(seed)
    tars = [tar_bytes({f"file-{seed}-{i}": rnd.randbytes(size)}) for i in range(layers)]
    img = mutate.append_layers(empty_image(platform), [mutate.layer_from_tar(t) for t in tars])
    return mutate.canonicalize(img, 0)


def read_json_member(tar_path: Path, name: str) -> object:
    with tarfile.open(tar_path) as t:
        f = t.extractfile(name)
        assert f is not None
        return json.load(f)
