"""The names ``giropops.cli._names`` copies for help texts and choices (so that ``--help`` imports no
library module) are the library's own."""

from __future__ import annotations

from giropops.cli import _names
from giropops.policy.evaluate import FAIL, NODATA, PASS
from giropops.reco import catalog
from giropops.sign import certs, dsse
from giropops.vuln import model
from giropops.vuln.db import ensure, store, update
from giropops.vuln.report import Format


def test_the_copies_equal_the_library_names() -> None:
    assert _names.STATUSES == model.STATUSES
    assert _names.SEVERITY_SOURCES == model.SEVERITY_SOURCES
    assert _names.REPORT_FORMATS == tuple(f.value for f in Format)
    assert _names.DB_ENV_VAR == store.ENV_VAR
    assert _names.DEFAULT_LOCK_TIMEOUT == store.DEFAULT_LOCK_TIMEOUT
    assert _names.OFFLINE_ENV == ensure.OFFLINE_ENV
    assert _names.FRESHNESS_ENV == ensure.FRESHNESS_ENV
    assert _names.OSV_URL_ENV == update.BASE_URL_ENV
    assert _names.DEFAULT_ECOSYSTEMS == update.DEFAULT_ECOSYSTEMS
    assert _names.KNOWN_ECOSYSTEMS == update.KNOWN_ECOSYSTEMS
    assert _names.PREDICATE_TYPE_NAMES == tuple(dsse.PREDICATE_TYPES)
    assert _names.GITHUB_CLAIM_NAMES == tuple(certs.GITHUB_CLAIMS)
    assert (_names.PASS, _names.FAIL, _names.NODATA) == (PASS, FAIL, NODATA)
    assert _names.RECO_CATALOG_ENV == catalog.ENV_VAR


def test_the_demo_names_equal_the_demo_package_names() -> None:
    from giropops import demo

    assert (_names.DEMO_DEFAULT_TAG, _names.DEMO_STEPS) == (demo.DEFAULT_TAG, demo.STEPS)
