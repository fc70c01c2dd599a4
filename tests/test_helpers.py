"""The small helpers every area shares: atomic writes, bounded reads, the cache directory, SOURCE_DATE_EPOCH."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from giropops.cachedir import cache_root
from giropops.epoch import EpochError, source_date_epoch
from giropops.errors import ConfigError
from giropops.fileio import FOLLOW_UMASK, atomic_write, read_bounded


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"old")
    atomic_write(target, b"new", 0o640)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_write_can_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "f", b"x", FOLLOW_UMASK)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o640


def test_a_failed_atomic_write_leaves_the_old_file_and_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_read_bounded_names_the_file_and_the_limit(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_bytes(b"x" * 11)
    assert read_bounded(f, 11, "policy file", ConfigError) == b"x" * 11
    with pytest.raises(ConfigError, match=r"^policy file .*policy\.yaml is larger than 10 bytes$"):
        read_bounded(f, 10, "policy file", ConfigError)
    with pytest.raises(ConfigError, match=r"^cannot read policy file .*missing: No such file"):
        read_bounded(tmp_path / "missing", 10, "policy file", ConfigError)


def test_the_cache_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GIROPOPS_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("GIROPOPS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "giropops"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "giropops"


def test_source_date_epoch_one_reading_one_error() -> None:
    assert source_date_epoch({}) is None
    assert source_date_epoch({"SOURCE_DATE_EPOCH": " "}) is None
    assert source_date_epoch({"SOURCE_DATE_EPOCH": "86400"}) == 86400
    with pytest.raises(EpochError, match="SOURCE_DATE_EPOCH must be a non-negative integer") as info:
        source_date_epoch({"SOURCE_DATE_EPOCH": "-1"})
    assert info.value.exit_code == 64 and isinstance(info.value, ConfigError)
