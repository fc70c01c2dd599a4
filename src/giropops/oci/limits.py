"""How much an image may make us write to disk: a budget checked before the first byte is written.

Sizes come from hostile input (a registry's or a layout's descriptors, a gzip
stream), so nothing is written on their word alone:

* the blobs an image declares must fit in ``GIROPOPS_MAX_IMAGE_SIZE`` (default
  64 GB) and in the free space of the destination's file system; the verifying
  reader (``blob.py``) then makes sure no blob sends more than it declared;
* a whole archive compressed with gzip or zstd is decompressed into a temporary
  file of at most ``GIROPOPS_MAX_IMAGE_SIZE`` bytes, and at most
  ``GIROPOPS_MAX_EXPANSION`` (default 100) times its compressed size — small
  archives may always expand to ``EXPANSION_FLOOR`` (64 MiB), as tar padding
  alone gives a tiny archive a large ratio.

Both variables take a number of bytes with an optional unit (``500M``, ``2G``,
``1.5T``: decimal; ``Ki``/``Mi``/``Gi``/``Ti``: binary).
"""

from __future__ import annotations

import os
import re

from giropops.errors import ArchiveError, ConfigError
from giropops.units import human_size

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from pathlib import Path

MAX_IMAGE_ENV = "GIROPOPS_MAX_IMAGE_SIZE"
MAX_EXPANSION_ENV = "GIROPOPS_MAX_EXPANSION"
DEFAULT_MAX_IMAGE_BYTES = 64 * 1000**3
DEFAULT_MAX_EXPANSION = 100.0
EXPANSION_FLOOR = 64 << 20

_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3, "t": 1000**4, "tb": 1000**4,
    "ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20, "gi": 1 << 30, "gib": 1 << 30,
    "ti": 1 << 40, "tib": 1 << 40,
}
_SIZE = r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$"  # compiled by re when a size is first read


def parse_size(text: str, what: str) -> int:
    m = re.match(_SIZE, text)
    unit = _UNITS.get(m.group(2).lower()) if m else None
    if m is None or unit is None:
        raise ConfigError(f"{what}: {text[:40]!r} is not a size (e.g. 500M, 2G, 1Ti or a number of bytes)")
    return int(float(m.group(1)) * unit)


def max_image_bytes() -> int:
    text = os.environ.get(MAX_IMAGE_ENV)
    return parse_size(text, MAX_IMAGE_ENV) if text else DEFAULT_MAX_IMAGE_BYTES


def max_expansion() -> float:
    text = os.environ.get(MAX_EXPANSION_ENV)
    if not text:
        return DEFAULT_MAX_EXPANSION
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value >= 1:  # also refuses NaN
        raise ConfigError(f"{MAX_EXPANSION_ENV}: {text[:40]!r} is not a ratio of at least 1")
    return value


def decompressed_limit(compressed_size: int) -> int:
    """How many bytes a whole compressed archive of ``compressed_size`` bytes may expand to."""
    return min(max_image_bytes(), max(EXPANSION_FLOOR, int(compressed_size * max_expansion())))


def check_disk_budget(declared: int, where: Path, what: str) -> None:
    """Refuse to write ``declared`` bytes (what an image's descriptors claim) into the directory ``where``."""
    limit = max_image_bytes()
    if declared > limit:
        raise ArchiveError(
            f"{what} declares {human_size(declared)} ({declared} bytes) of blobs, more than the "
            f"{human_size(limit)} limit (raise it with {MAX_IMAGE_ENV})"
        )
    try:
        st = os.statvfs(where)  # what shutil.disk_usage says, without importing shutil (and bz2, lzma)
        free = st.f_bavail * st.f_frsize
    except OSError:
        return  # the write itself will say what is wrong with ``where``
    if declared > free:
        raise ArchiveError(
            f"{what} declares {human_size(declared)} ({declared} bytes) of blobs, more than the "
            f"{human_size(free)} free in {where}"
        )
