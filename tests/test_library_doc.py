"""docs/library.md's code blocks run as written, in order, in an empty directory, and do what the text says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_the_library_guide_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = BLOCK.findall((REPO_ROOT / "docs" / "library.md").read_text(encoding="utf-8"))
    assert len(blocks) == 4
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIROPOPS_CACHE_DIR", str(tmp_path / "cache"))
    namespace: dict[str, object] = {"__name__": "library_doc"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, "docs/library.md", "exec"), namespace)  # noqa: S102 - the guide's own code
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("copied sha256:")
    assert lines[1] == "[('zlib1g', '1:1.1.3-1', 'zlib')]"
    assert lines[2] == "[('CVE-2003-0107', 'zlib1g', '1:1.1.4-10')]"
    assert lines[3] == "1 signature verified"
    assert (tmp_path / "app.spdx.json").read_bytes().startswith(b"{")
