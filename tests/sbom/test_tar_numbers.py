"""The numeric fields of a tar header (octal, NUL- or space-padded, GNU base-256) as tar defines them."""

from __future__ import annotations

import pytest

from giropops.errors import SBOMError
from giropops.sbom.tarstream import _octal


@pytest.mark.parametrize(("field", "value"), [
    (b"0000644\x00", 0o644),
    (b"00000001234 ", 0o1234),
    (b" 17 \x00", 0o17),
    (b"12\x0034\x00\x00", 0o12),  # the number ends at the first NUL
    (b"\x0012345", 0),
    (b"\x00" * 8, 0),
    (b"        ", 0),
    (b"\x80\x00\x00\x00\x00\x00\x01\x00", 256),  # GNU base-256
])
def test_numbers(field: bytes, value: int) -> None:
    assert _octal(field, "layer", 0) == value


@pytest.mark.parametrize("field", [b"0000648\x00", b"12 34\x00\x00\x00", b"abc\x00\x00\x00\x00\x00"])
def test_what_is_not_an_octal_number_is_a_corrupt_header(field: bytes) -> None:
    with pytest.raises(SBOMError, match="corrupt tar header at offset 512"):
        _octal(field, "layer", 512)
