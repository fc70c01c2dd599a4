"""``giropops db import|update|status``: the local vulnerability database."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from giropops.cli import _names, exitcodes
from giropops.cli._groups import add_group
from giropops.cli._registry import add_registry_options, transport_options
from giropops.errors import UsageError, VulnError

if TYPE_CHECKING:  # the database code is imported by the functions that use it, not by --help
    from collections.abc import Sequence
    from datetime import datetime, timedelta

    from giropops.sbom.model import SBOM
    from giropops.vuln.db import ensure, importer, store


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", type=Path, default=None, metavar="PATH",
        help=f"vulnerability database file (default: ${_names.DB_ENV_VAR} or the user's cache directory)",
    )


def add_lock_timeout_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lock-timeout", type=float, default=_names.DEFAULT_LOCK_TIMEOUT, metavar="SECONDS",
        help="how long to wait for another giropops process writing the same database "
             f"(default {_names.DEFAULT_LOCK_TIMEOUT:g})",
    )


def _waiting(message: str) -> None:
    print(f"giropops: {message}", file=sys.stderr, flush=True)


def db_path(args: argparse.Namespace) -> Path:
    from giropops.vuln.db import store

    return args.db if args.db is not None else store.default_path()


def warn_if_stale(db: store.VulnDB | str | None) -> None:
    """The one-line warning every scanning command gives on a database older than a week (given the
    database, or the warning taken from it earlier so that it can be said after the output is written)."""
    from giropops.vuln.db import store

    warning = db.stale_warning() if isinstance(db, store.VulnDB) else db
    if warning:
        print(f"giropops: warning: {warning}", file=sys.stderr)


def add_fetch_options(parser: argparse.ArgumentParser) -> None:
    """How a scan gets its data (``giropops.vuln.db.ensure``): fetch what is missing, refresh what is old."""
    parser.add_argument("--offline", action="store_true", default=None,
                        help=f"never download vulnerability data (also ${_names.OFFLINE_ENV}=1); a missing "
                             "database or ecosystem is then an error naming 'giropops db import FILES'")
    parser.add_argument("--skip-db-update", action="store_true",
                        help="scan with the database as it is: fetch nothing, refresh nothing")
    parser.add_argument("--db-freshness", default=None, metavar="DURATION",
                        help="refresh the data fetched for the image's ecosystems when last checked longer ago "
                             f"than this (30m, 12h, 1d; default ${_names.FRESHNESS_ENV} or 1d; 0: every scan)")
    parser.add_argument("--db-url", default=None, metavar="URL",
                        help=f"base URL of the OSV exports to fetch from (default: ${_names.OSV_URL_ENV} "
                             "or the public exports)")


def add_scan_db_options(parser: argparse.ArgumentParser) -> None:
    add_db_option(parser)
    add_fetch_options(parser)


def ensure_options(args: argparse.Namespace) -> ensure.EnsureOptions:
    from giropops.vuln.db import ensure

    freshness = (ensure.parse_duration(args.db_freshness, "--db-freshness") if args.db_freshness is not None
                 else ensure.freshness_from_env())
    return ensure.EnsureOptions(
        offline=bool(args.offline) or ensure.offline_from_env(), skip_update=args.skip_db_update,
        freshness=freshness, source=args.db_url,
    )


def prepare_scan_db(args: argparse.Namespace, sboms: Sequence[SBOM | None]) -> Path:
    """Before a scan: fetch the ecosystems ``sboms`` need when the database lacks them, refresh old ones
    (one line on stderr for each thing done); returns the database's path."""
    from giropops.cli.progress import TerminalProgress
    from giropops.vuln.db import ensure
    from giropops.vuln.match import needed_ecosystems

    path = db_path(args)
    result = ensure.ensure_ready(path, needed_ecosystems(sboms), ensure_options(args),
                                 progress=TerminalProgress(), on_wait=_waiting)
    report_ensure(result)
    return path


def report_ensure(result: ensure.EnsureResult) -> None:
    from giropops.vuln.db.ensure import fetch_note

    note = fetch_note(result)
    if note:
        print(f"giropops: {note}", file=sys.stderr)
    if result.refresh_error:
        print(f"giropops: warning: {result.refresh_error}; scanning with the data already there",
              file=sys.stderr)


def open_scan_db(path: Path) -> store.VulnDB:
    """The database a scan reads: it must exist (``DatabaseNotReadyError`` otherwise).  Whether it covers
    the image's ecosystems is checked by the scan itself; call ``warn_if_stale`` once the scan worked."""
    from giropops.vuln.db import store

    return store.VulnDB(path)


def register(sub: Any) -> None:
    dbsub = add_group(sub, "db", "manage the local vulnerability database (OSV advisories)", "db_command",
                      "import, update or status ('giropops db SUBCOMMAND --help')")

    p_import = dbsub.add_parser("import", help="import OSV records from files, directories, all.zip or JSON lines")
    add_db_option(p_import)
    p_import.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                          help="OSV files to import: RECORD.json, a directory of them, an OSV export all.zip, "
                               "or JSON lines (.jsonl, .jsonl.gz)")
    p_import.add_argument("--show-skipped", type=int, default=20, metavar="N",
                          help="list at most N skipped records (default 20)")
    add_lock_timeout_option(p_import)
    p_import.set_defaults(func=run_import)

    p_update = dbsub.add_parser("update", help="download ecosystems from the OSV exports (conditional, atomic)")
    add_db_option(p_update)
    p_update.add_argument("--ecosystem", action="append", default=None, metavar="NAME",
                          help=f"ecosystem to fetch (repeatable; one of {', '.join(_names.KNOWN_ECOSYSTEMS)}; "
                               f"default: those already in the database, else {', '.join(_names.DEFAULT_ECOSYSTEMS)})")
    p_update.add_argument("--url", default=None, metavar="URL",
                          help=f"base URL of the OSV exports (default: ${_names.OSV_URL_ENV} or the public bucket)")
    p_update.add_argument("--from", dest="from_ref", default=None, metavar="REF",
                          help="pull the database published with 'giropops db push' from a registry instead")
    p_update.add_argument("--key", default=None, metavar="PUB",
                          help="with --from: refuse the database unless its cosign signature verifies with PUB")
    add_registry_options(p_update)  # for --from: --insecure, --username, --password-stdin
    p_update.add_argument("--kev-url", default=None, metavar="URL",
                          help="CISA KEV catalog JSON (plain or .gz) to fetch (default: $GIROPOPS_KEV_URL, else "
                               "CISA's, unless --url names an OSV mirror)")
    p_update.add_argument("--epss-url", default=None, metavar="URL",
                          help="FIRST EPSS daily CSV (.csv or .csv.gz) to fetch (default: $GIROPOPS_EPSS_URL, else "
                               "FIRST's current file, unless --url names an OSV mirror)")
    add_lock_timeout_option(p_update)
    p_update.set_defaults(func=run_update)

    p_push = dbsub.add_parser("push", help="publish the database to a registry as an OCI artifact")
    add_db_option(p_push)
    p_push.add_argument("ref", metavar="REF", help="where to push it, e.g. registry.example.com/security/vulndb:latest")
    p_push.add_argument("--key", default=None, metavar="KEY",
                        help="sign the artifact with this cosign private key (password from $COSIGN_PASSWORD)")
    add_registry_options(p_push)
    p_push.set_defaults(func=run_push)

    p_status = dbsub.add_parser("status", help="ecosystems, record counts, age of the data")
    add_db_option(p_status)
    p_status.set_defaults(func=run_status)


def _print_report(report: importer.ImportReport, show: int) -> None:
    print(f"records read: {report.records}, imported: {report.imported}, "
          f"already present: {report.unchanged}, skipped: {report.skipped}")
    if report.kev:
        print(f"known exploited (CISA KEV): {report.kev}")
    if report.epss:
        print(f"EPSS: {report.epss}")
    listed = [p for p in report.problems][:show]
    for p in listed:
        rid = f" ({p.record_id})" if p.record_id else ""
        print(f"  skipped {p.source}{rid}: {p.reason}", file=sys.stderr)
    if len(report.problems) > len(listed):
        print(f"  ... and {report.skipped + report.notes - len(listed)} more", file=sys.stderr)


def run_import(args: argparse.Namespace) -> int:
    from giropops.cli.progress import TerminalProgress
    from giropops.vuln.db import importer

    path = db_path(args)
    report = importer.import_paths(path, args.paths, progress=TerminalProgress(),
                                   lock_timeout=args.lock_timeout, on_wait=_waiting)
    _print_report(report, args.show_skipped)
    print(f"database: {path}")
    return exitcodes.OK


def run_update(args: argparse.Namespace) -> int:
    from giropops.cli.progress import TerminalProgress
    from giropops.vuln.db import ensure, update

    path = db_path(args)
    if args.from_ref is not None:
        return _update_from(args, path)
    if args.key is not None:
        raise UsageError("--key only applies with --from REF")
    result = update.update(path, args.ecosystem, args.url, progress=TerminalProgress(),
                           lock_timeout=args.lock_timeout, on_wait=_waiting)
    ensure.record_checks(path, [*result.fetched, *result.not_modified, *result.unchanged])
    for eco in result.not_modified:
        print(f"{eco}: not modified")
    for eco in result.unchanged:
        print(f"{eco}: downloaded, same file as imported before: not imported again")
    for eco in result.fetched:
        print(f"{eco}: downloaded")
    if result.fetched:
        _print_report(result.report, 20)
    _update_exploits(args, path)
    print(f"database: {path}")
    return exitcodes.OK


def _update_from(args: argparse.Namespace, path: Path) -> int:
    if args.ecosystem or args.url:
        raise UsageError("--from REF pulls a whole published database: it takes no --ecosystem or --url")
    from giropops.oci.reference import Reference
    from giropops.oci.transport import registry_options
    from giropops.vuln.db import artifact

    trust = None
    if args.key is not None:
        from giropops.sign.attached import Trust
        from giropops.sign.keys import VerifyingKey

        trust = Trust(key=VerifyingKey.load(Path(args.key)))
    ref = Reference.parse(args.from_ref.removeprefix("registry://"))
    result = artifact.pull(path, ref, registry_options(transport_options(args)), trust,
                           lock_timeout=args.lock_timeout, on_wait=_waiting)
    signed = ", signature verified" if result.verified_signature else ""
    print(f"{result.reference}@{result.digest}: {result.advisories} advisories, built {result.built or 'unknown'}"
          f"{signed}")
    print(f"database: {path}")
    return exitcodes.OK


def run_push(args: argparse.Namespace) -> int:
    from giropops.oci.reference import Reference
    from giropops.oci.transport import registry_options
    from giropops.vuln.db import artifact

    ref = Reference.parse(args.ref.removeprefix("registry://"))
    key = None
    if args.key is not None:
        from giropops.cli._signing import load_signing_key

        key = load_signing_key(args.key)
    result = artifact.push(db_path(args), ref, registry_options(transport_options(args)), key)
    print(f"pushed {result.reference}@{result.digest} ({result.size} bytes, "
          f"{result.annotations[artifact.ANNOTATION_ADVISORIES]} advisories, built "
          f"{result.annotations[artifact.ANNOTATION_BUILT]}){', signed' if result.signed else ''}")
    return exitcodes.OK


def _update_exploits(args: argparse.Namespace, path: Path) -> None:
    """KEV and EPSS after the advisories; offline, a warning: the advisories are what a scan needs."""
    from giropops.cli.progress import TerminalProgress
    from giropops.vuln.db import exploit_feed

    try:
        got = exploit_feed.fetch(path, args.kev_url, args.epss_url, args.url, progress=TerminalProgress(),
                                 lock_timeout=args.lock_timeout, on_wait=_waiting)
    except VulnError as exc:
        print(f"giropops: warning: exploitation data not updated: {exc}", file=sys.stderr)
        return
    if got.kev:
        print(f"known exploited (CISA KEV): {got.kev}")
    if got.epss:
        print(f"EPSS: {got.epss}")
    for why in got.skipped:
        print(f"not fetched: {why}")


def _age(timestamp: str | None, now: datetime) -> timedelta | None:
    from giropops.vuln.db import store

    return store.age_of(timestamp, now)


def run_status(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from giropops.units import human_size
    from giropops.vuln.db import store

    path = db_path(args)
    with store.VulnDB(path) as db:
        st = db.status()
    now = datetime.now(UTC)
    print(f"database:   {st.path} ({human_size(st.size)}, schema {st.schema_version})")
    print(f"built:      {st.built_at or 'unknown'}")
    print(f"advisories: {st.advisories} ({st.withdrawn} withdrawn)")
    print(f"newest:     {st.newest_modified or 'none'}")
    print("ecosystems:")
    width = max((len(e.ecosystem) for e in st.ecosystems), default=10)
    for e in st.ecosystems:
        print(f"  {e.ecosystem:<{width}}  {e.advisories:>7} advisories  {e.packages:>6} packages")
    for f in st.feeds:
        print(f"feed {f.ecosystem}: fetched {f.fetched_at} from {f.url}")
    with store.VulnDB(path) as db:
        meta = db.exploit_meta()
    if meta.get("kev_version"):
        print(f"known exploited (CISA KEV): catalog {meta['kev_version']}, {meta.get('kev_count', '?')} CVEs "
              f"({meta.get('kev_source', '')})")
    if meta.get("epss_date"):
        print(f"EPSS: scores of {meta['epss_date']} (model {meta.get('epss_model', '?')}), "
              f"{meta.get('epss_count', '?')} CVEs ({meta.get('epss_source', '')})")
    age = _age(st.newest_modified, now)
    if age is None or age > store.STALE_AFTER:
        days = "unknown" if age is None else f"{age.days} days"
        print(f"warning: the newest advisory is {days} old; run 'giropops db update'", file=sys.stderr)
    return exitcodes.OK
