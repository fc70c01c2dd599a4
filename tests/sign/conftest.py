"""Keys generated once per session: scrypt at cosign's cost is the slow part of key handling."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from giropops.sign.keys import write_key_pair


@dataclass(frozen=True)
class KeyPair:
    private: Path
    public: Path
    password: bytes


@pytest.fixture(scope="session")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    d = tmp_path_factory.mktemp("keys")
    paths, _ = write_key_pair(d / "cosign", b"giropops-test")
    return KeyPair(paths.private, paths.public, b"giropops-test")


@pytest.fixture(scope="session")
def keypair2(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    d = tmp_path_factory.mktemp("keys2")
    paths, _ = write_key_pair(d / "other", b"")
    return KeyPair(paths.private, paths.public, b"")
