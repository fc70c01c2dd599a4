"""Deeply nested JSON in what signing reads: a validly signed 100k-deep cosign payload, a deep predicate."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from giropops.oci.model import Descriptor, Digest
from giropops.sign.attached import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE
from giropops.sign.encoding import b64encode
from giropops.sign.errors import PayloadMalformedError
from giropops.sign.image import _attach
from giropops.sign.keys import SigningKey
from giropops.sign.storage import SIG_SUFFIX, LayoutStore
from tests.sign.test_image_layout import make_layout

DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000


def giropops(*args: str, password: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"}
    if password is not None:
        env["COSIGN_PASSWORD"] = password.decode()
    return subprocess.run([sys.executable, "-m", "giropops", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode not in (0, 2), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("giropops: error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


def test_signed_payload_100k_deep(tmp_path: Path, keypair) -> None:
    root = tmp_path / "layout"
    make_layout(root, "app:1")
    store = LayoutStore(root, "app:1")
    subject = store.subject()
    key = SigningKey.load(keypair.private, keypair.password)
    # a payload that is correctly signed by the trusted key, but is 100,000 objects deep
    signature = b64encode(key.sign(DEEP_OBJECT))
    layer = Descriptor(SIMPLE_SIGNING_MEDIA_TYPE, Digest.of(DEEP_OBJECT), len(DEEP_OBJECT),
                       {SIGNATURE_ANNOTATION: signature})
    _attach(store, subject, SIG_SUFFIX, DEEP_OBJECT, layer)
    proc = giropops("verify", "--key", str(keypair.public), f"oci-dir://{root}:app:1")
    assert proc.returncode == PayloadMalformedError.exit_code
    assert "nested too deeply" in one_error_line(proc)


def test_attest_predicate_100k_deep(tmp_path: Path, keypair) -> None:
    root = tmp_path / "layout"
    make_layout(root, "app:1")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    pred = tmp_path / "vex.json"
    pred.write_bytes(DEEP_OBJECT)
    proc = giropops("attest", "--key", str(keypair.private), "--type", "openvex", "--predicate", str(pred),
                    f"oci-dir://{root}:app:1", password=keypair.password)
    assert "nested too deeply" in one_error_line(proc)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
