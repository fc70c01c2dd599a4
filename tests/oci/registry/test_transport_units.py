"""Pure parts of the retry policy (the behaviour against a real registry is in test_faults.py)."""

from __future__ import annotations

from giropops.oci.registry.transport import RetryPolicy, parse_retry_after


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    # RFC 9110 example date; "now" pinned 30 s before it.
    now = 784111777.0 - 30
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now=now) == 30.0
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now=now + 100) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-3") is None


def test_backoff_doubles_and_is_capped_and_retry_after_is_capped() -> None:
    policy = RetryPolicy(attempts=10, backoff=0.5, max_sleep=3.0)
    assert [policy.delay(n, None) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(0, 2.0) == 2.0
    assert policy.delay(0, 86400.0) == 3.0  # a hostile Retry-After cannot park us for a day


def test_referrers_tag_schema() -> None:
    from giropops.oci.model import Digest
    from giropops.oci.registry import referrers_tag

    assert referrers_tag(Digest("sha256", "ab" * 32)) == "sha256-" + "ab" * 32
    long = referrers_tag(Digest("sha512", "cd" * 64))
    assert long == ("sha512-" + "cd" * 64)[:128] and len(long) == 128
