"""How long giropops waits for a registry: the process-wide defaults that ``--timeout`` changes.

Kept apart from the registry client (no imports) so the CLI can set them without paying
for importing an HTTP stack.  ``RetryPolicy`` reads them when a request starts.
"""

from __future__ import annotations

#: Seconds one registry request may take in all: connecting, every retry and the waits between
#: them, and reading a small body (manifest, tag list, token).  Uploads get more: their size at
#: the minimum speed.
DEFAULT_REQUEST_TIMEOUT = 300.0
#: Blob transfers must average at least this many bytes per second over each window...
MIN_BLOB_RATE = 10 * 1024
#: ... of this many seconds (or the request timeout when that is shorter).
RATE_WINDOW = 30.0

_request_timeout = DEFAULT_REQUEST_TIMEOUT


def request_timeout() -> float:
    return _request_timeout


def set_request_timeout(seconds: float) -> None:
    """Change the default for every registry request from now on (the CLI's ``--timeout``)."""
    global _request_timeout
    if not seconds > 0:
        raise ValueError(f"a timeout must be positive, not {seconds}")
    _request_timeout = float(seconds)
