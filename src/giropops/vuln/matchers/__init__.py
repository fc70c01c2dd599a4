"""One matcher per ecosystem, keyed like ``catalogers/`` and ``versions/``.

Composer (PHP) packages are inventoried but not matched: there is no Packagist
advisory data in the database yet.
"""

from __future__ import annotations

from giropops.vuln.matchers.apk import ApkMatcher
from giropops.vuln.matchers.cargo import CargoMatcher
from giropops.vuln.matchers.deb import DebMatcher
from giropops.vuln.matchers.gem import GemMatcher
from giropops.vuln.matchers.golang import GoMatcher
from giropops.vuln.matchers.interface import AdvisoryProvider, Matcher, Query
from giropops.vuln.matchers.maven import MavenMatcher
from giropops.vuln.matchers.npm import NpmMatcher
from giropops.vuln.matchers.nuget import NuGetMatcher
from giropops.vuln.matchers.python import PythonMatcher
from giropops.vuln.matchers.rpm import RpmMatcher

DEFAULT_MATCHERS: tuple[Matcher, ...] = (
    DebMatcher(), ApkMatcher(), PythonMatcher(), NpmMatcher(), GoMatcher(), MavenMatcher(), GemMatcher(),
    CargoMatcher(), NuGetMatcher(), RpmMatcher(),
)

__all__ = ["DEFAULT_MATCHERS", "AdvisoryProvider", "ApkMatcher", "CargoMatcher", "DebMatcher", "GemMatcher",
           "GoMatcher", "Matcher", "MavenMatcher", "NpmMatcher", "NuGetMatcher", "PythonMatcher", "Query",
           "RpmMatcher",
           "feed_name"]



def feed_name(ecosystem: str) -> str:
    """The OSV export folder holding ``ecosystem``'s advisories: the name before any ``:release``
    (``Debian:12`` -> ``Debian``, ``Alpine:v3.19`` -> ``Alpine``, ``PyPI`` -> ``PyPI``)."""
    return ecosystem.split(":", 1)[0]
