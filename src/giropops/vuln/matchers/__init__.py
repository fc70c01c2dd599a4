"""One matcher per ecosystem, keyed like ``catalogers/`` and ``versions/``."""

from __future__ import annotations

from giropops.vuln.matchers.apk import ApkMatcher
from giropops.vuln.matchers.deb import DebMatcher
from giropops.vuln.matchers.interface import AdvisoryProvider, Matcher, Query
from giropops.vuln.matchers.python import PythonMatcher

DEFAULT_MATCHERS: tuple[Matcher, ...] = (DebMatcher(), ApkMatcher(), PythonMatcher())

__all__ = ["DEFAULT_MATCHERS", "AdvisoryProvider", "ApkMatcher", "DebMatcher", "Matcher", "PythonMatcher", "Query",
           "feed_name"]


def feed_name(ecosystem: str) -> str:
    """The OSV export folder holding ``ecosystem``'s advisories: the name before any ``:release``
    (``Debian:12`` -> ``Debian``, ``Alpine:v3.19`` -> ``Alpine``, ``PyPI`` -> ``PyPI``)."""
    return ecosystem.split(":", 1)[0]
