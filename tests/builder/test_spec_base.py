"""``base:`` is read by the transport's grammar: what ``giropops copy`` reads, a build accepts as a base."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from giropops.builder.errors import SpecError
from giropops.builder.spec import parse_spec
from giropops.oci.reference import Reference
from giropops.oci.transport import ArchiveSpec, FSSpec, OCIDirSpec, RegistrySpec


def test_scratch_is_no_base() -> None:
    assert parse_spec({"base": "scratch"}).base is None
    assert parse_spec({"cmd": ["x"]}).base is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("python:3.12-slim", RegistrySpec),
        ("registry://127.0.0.1:5000/base:1", RegistrySpec),
        ("archive://base.tar:app:1", ArchiveSpec),
        ("oci-dir://layout", OCIDirSpec),
        ("fs://rootfs", FSSpec),
    ],
)
def test_every_image_source_is_a_base(text: str, kind: type) -> None:
    assert isinstance(parse_spec({"base": text}).base, kind)


def test_a_bare_reference_is_the_registry_image() -> None:
    base = parse_spec({"base": "python:3.12-slim"}).base
    assert isinstance(base, RegistrySpec) and base.ref == Reference.parse("docker.io/library/python:3.12-slim")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("oci-archive://base.tar", "unknown scheme 'oci-archive://'"),
        ("docker-archive://base.tar", "unknown scheme 'docker-archive://'"),
        ("sbom://app.spdx.json", "must be an image"),
        ("Not A Ref", "invalid image reference"),
        ("archive://", "needs a path"),
    ],
)
def test_what_the_transport_refuses_a_base_refuses(text: str, needle: str) -> None:
    with pytest.raises(SpecError, match=needle) as info:
        parse_spec({"base": text})
    assert "'base'" in str(info.value)


def test_an_existing_file_given_bare_says_which_scheme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "base.tar").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match=re.escape("did you mean 'archive://./base.tar'")):
        parse_spec({"base": "./base.tar"})
