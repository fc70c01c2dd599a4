"""What is wrong with an image: OSV advisories matched against its SBOM, the way Docker Scout reports them.

Map of the package (dependencies point one way: versions <- db <- match <- report):

  versions/     one comparator per scheme (deb, apk, pep440, semver) behind ``VersionScheme``
  db/           SQLite store (``store``), OSV validation (``osv``), import (``importer``), feed update (``update``)
  matchers/     one small class per ecosystem: what to search for a package, never SQL
  match.py      the common rules: is this version affected, and why; one ``Finding`` per vulnerability
  severity.py   CVSS (computed), GHSA level, Debian urgency -> critical/high/medium/low/unspecified
  report/       filters and OpenVEX, Scout's text layout, packages, JSON (docs/cves-json.md), SARIF, Markdown
  scan.py       IMAGE -> SBOM (``giropops.sbom.sbom_for``) and the image facts reports need
  quickview.py  the image and its base image;  compare.py  two images side by side
"""

# the public modules and packages
__all__ = [
    "compare",
    "db",
    "match",
    "matchers",
    "model",
    "quickview",
    "report",
    "scan",
    "severity",
    "versions",
]
