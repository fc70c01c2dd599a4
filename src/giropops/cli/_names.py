"""Names the command line shows in help texts and choices, copied from the library modules that own them.

Importing those modules for ``giropops COMMAND --help`` would import most of the library (the
vulnerability database, the report renderers, the signing code); a command imports them when it
runs.  ``tests/test_cli_names.py`` checks that every name here equals the library's.
"""

from __future__ import annotations

# giropops.vuln.model
STATUSES = ("fixed", "affected", "will_not_fix", "fix_deferred", "end_of_life", "not_affected",
            "under_investigation", "unknown")
SEVERITY_SOURCES = ("vendor", "cvss")
# giropops.vuln.report.Format, in order
REPORT_FORMATS = ("text", "packages", "json", "sarif", "markdown", "cyclonedx", "spdx", "gitlab")
# giropops.vuln.db.store / ensure / update
DB_ENV_VAR = "GIROPOPS_DB"
DEFAULT_LOCK_TIMEOUT = 600.0
OFFLINE_ENV = "GIROPOPS_OFFLINE"
FRESHNESS_ENV = "GIROPOPS_DB_FRESHNESS"
OSV_URL_ENV = "GIROPOPS_OSV_URL"
DEFAULT_ECOSYSTEMS = ("Alpine", "Chainguard", "Debian", "PyPI", "Wolfi")
KNOWN_ECOSYSTEMS = ("AlmaLinux", "Alpine", "Chainguard", "crates.io", "Debian", "Go", "Maven", "npm", "NuGet", "PyPI",
                    "RubyGems", "Wolfi")
# giropops.sign.dsse.PREDICATE_TYPES, its keys
PREDICATE_TYPE_NAMES = ("custom", "slsaprovenance", "slsaprovenance02", "slsaprovenance1", "spdx", "spdxjson",
                        "cyclonedx", "cyclonedxxml", "link", "vuln", "openvex")
# giropops.sign.certs.GITHUB_CLAIMS, its keys
GITHUB_CLAIM_NAMES = ("trigger", "sha", "name", "repository", "ref")
# giropops.policy.evaluate
PASS, FAIL, NODATA = "pass", "fail", "nodata"
# giropops.reco.catalog.ENV_VAR
RECO_CATALOG_ENV = "GIROPOPS_RECO_CATALOG"
# giropops.demo
DEMO_DEFAULT_TAG = "localhost/giropops-senhas:demo"
DEMO_STEPS = 6
