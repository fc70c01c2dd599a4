"""Strict base64 as Go decodes it, and the little DER reading cosign's key checks need.

Python's ``base64.b64decode(validate=True)`` accepts surplus ``=`` padding, which Go's
``StdEncoding`` rejects; a signature that Go refuses must not verify here either.
Go skips CR and LF inside base64 (cosign annotations wrapped at 76 columns rely on that).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

_STD_B64 = re.compile(rb"^[A-Za-z0-9+/]*={0,2}$")


def b64decode_strict(data: str | bytes, what: str = "base64 data") -> bytes:
    """Standard base64 with padding; CR/LF ignored; anything else invalid raises ValueError."""
    raw = data.encode("ascii", "replace") if isinstance(data, str) else bytes(data)
    raw = raw.replace(b"\r", b"").replace(b"\n", b"")
    if len(raw) % 4 != 0 or not _STD_B64.match(raw):
        raise ValueError(f"{what} is not valid standard base64")
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"{what} is not valid standard base64: {exc}") from exc


def b64_value(v: object, what: str, fail: Callable[[str], Exception], missing: str) -> bytes:
    """``v`` decoded by ``b64decode_strict``; ``fail(missing)`` when it is no string, ``fail(reason)`` when
    it does not decode (each caller's error class and prefix)."""
    if not isinstance(v, str):
        raise fail(missing)
    try:
        return b64decode_strict(v, what)
    except ValueError as exc:
        raise fail(str(exc)) from exc


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class DERElement:
    tag: int
    content: bytes
    end: int  # offset just past this element in the buffer it was read from


def der_read(buf: bytes, pos: int = 0) -> DERElement:
    """One TLV (single-byte tags, definite lengths): all that key containers use."""
    if pos + 2 > len(buf):
        raise ValueError("DER: truncated header")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("DER: multi-byte tags are not supported")
    first = buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(buf):
            raise ValueError("DER: bad length")
        length = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    if pos + length > len(buf):
        raise ValueError("DER: truncated content")
    return DERElement(tag, buf[pos : pos + length], pos + length)


def der_children(content: bytes) -> list[DERElement]:
    out: list[DERElement] = []
    pos = 0
    while pos < len(content):
        el = der_read(content, pos)
        out.append(el)
        pos = el.end
    return out
