"""What a newcomer trips over in ``giropops build``: empty specs, and progress that counts packages."""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from giropops.builder.cache import Cache


def _env(build_cache: Cache) -> dict[str, str]:
    return {**os.environ, "GIROPOPS_CACHE_DIR": str(build_cache.root)}


@pytest.mark.parametrize(("text", "why"), [
    ("", "is empty"),
    ("\n# only a comment\n", "is empty"),
    ("---\n{}\n", "is empty"),
    ("debian:\ncontents: {}\nlabels: {}\n", "is empty"),  # keys without values: nothing either
])
def test_an_empty_or_key_less_spec_is_an_error_not_an_empty_image(text: str, why: str, tmp_path: Path,
                                                                   build_cache: Cache) -> None:
    spec = tmp_path / "giropops.yaml"
    spec.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "giropops", "build", "-t", "localhost/x:1", "--output",
                           f"archive://{tmp_path / 'x.tar'}"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False, env=_env(build_cache))
    assert proc.returncode == 64, proc.stdout
    (line,) = proc.stderr.splitlines()
    assert line.startswith("giropops: error: spec file ") and why in line and "debian" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["giropops.yaml"]


def test_package_progress_counts_packages_not_bytes(tmp_path: Path, build_cache: Cache) -> None:
    """On a terminal, the Debian step counts packages ("1/1 packages"), never "1 B/1 B"."""
    # The step is only drawn when the layer is built: a cache of its own (the session's downloads hard-linked,
    # without its finished layers), so that an earlier test that built the same layer cannot hide it.
    cache = Cache(tmp_path / "cache")
    if build_cache.root.is_dir():
        shutil.copytree(build_cache.root, cache.root, copy_function=os.link, ignore=shutil.ignore_patterns("layers"))
    (tmp_path / "giropops.yaml").write_text("debian:\n  suites: [bookworm]\n  packages: [netbase]\n")
    parent, child = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "giropops", "build", "-t", "localhost/netbase:1",
                                 "--output", f"archive://{tmp_path / 'n.tar'}"], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=child, stdin=subprocess.DEVNULL,
                                env=_env(cache))
        os.close(child)
        chunks = []
        while True:
            try:
                data = os.read(parent, 65536)
            except OSError:  # EIO: the child side is closed
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=600) == 0
        assert proc.stdout is not None
        proc.stdout.close()
    finally:
        os.close(parent)
    drawn = b"".join(chunks).decode(errors="replace")
    lines = [seg for seg in re.split(r"[\r\n]", drawn) if "Debian packages" in seg]
    assert lines, drawn[-2000:]
    assert any(re.search(r"\d+/\d+ packages", seg) for seg in lines), lines
    assert not any(re.search(r"\d+ B/\d+ B", seg) for seg in lines), lines
