"""One matcher per ecosystem, keyed like ``catalogers/`` and ``versions/``."""

from __future__ import annotations

from giropops.vuln.matchers.apk import ApkMatcher
from giropops.vuln.matchers.deb import DebMatcher
from giropops.vuln.matchers.interface import AdvisoryProvider, Matcher, Query
from giropops.vuln.matchers.python import PythonMatcher

DEFAULT_MATCHERS: tuple[Matcher, ...] = (DebMatcher(), ApkMatcher(), PythonMatcher())

__all__ = ["DEFAULT_MATCHERS", "AdvisoryProvider", "ApkMatcher", "DebMatcher", "Matcher", "PythonMatcher", "Query"]
