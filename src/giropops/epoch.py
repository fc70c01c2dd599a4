"""``SOURCE_DATE_EPOCH`` (reproducible-builds.org): the one reading of it, and its one error."""

from __future__ import annotations

import os
from collections.abc import Mapping

from giropops.errors import ConfigError, quote_for_error

__all__ = ["EpochError", "source_date_epoch"]


class EpochError(ConfigError):
    """``SOURCE_DATE_EPOCH`` is set to something that is not a number of seconds: a usage error."""

    exit_code = 64


def source_date_epoch(environ: Mapping[str, str] | None = None) -> int | None:
    """Seconds since 1970 from ``SOURCE_DATE_EPOCH``; None when it is unset or empty."""
    env = os.environ if environ is None else environ
    text = env.get("SOURCE_DATE_EPOCH", "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise EpochError(f"SOURCE_DATE_EPOCH must be a non-negative integer, got {quote_for_error(text)}")
    return int(text)
