"""``giropops db import|update|status``: the local vulnerability database."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from giropops.cli import exitcodes
from giropops.cli.progress import TerminalProgress
from giropops.units import human_size
from giropops.vuln.db import importer, store, update

STALE_AFTER = store.STALE_AFTER


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", type=Path, default=None, metavar="PATH",
        help=f"vulnerability database file (default: ${store.ENV_VAR} or the user's cache directory)",
    )


def add_lock_timeout_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lock-timeout", type=float, default=store.DEFAULT_LOCK_TIMEOUT, metavar="SECONDS",
        help="how long to wait for another giropops process writing the same database "
             f"(default {store.DEFAULT_LOCK_TIMEOUT:g})",
    )


def _waiting(message: str) -> None:
    print(f"giropops: {message}", file=sys.stderr, flush=True)


def db_path(args: argparse.Namespace) -> Path:
    return args.db if args.db is not None else store.default_path()


def warn_if_stale(db: store.VulnDB) -> None:
    """The one-line warning every scanning command gives on a database older than a week."""
    warning = db.stale_warning()
    if warning:
        print(f"giropops: warning: {warning}", file=sys.stderr)


def open_scan_db(path: Path) -> store.VulnDB:
    """The database a scan reads: it must exist (``DatabaseNotReadyError`` otherwise).  Whether it covers
    the image's ecosystems is checked by the scan itself; call ``warn_if_stale`` once the scan worked."""
    return store.VulnDB(path)


def register(sub: Any) -> None:
    parser = sub.add_parser("db", help="manage the local vulnerability database (OSV advisories)")
    dbsub = parser.add_subparsers(dest="db_command", metavar="SUBCOMMAND", parser_class=type(parser),
                                  help="import, update or status ('giropops db SUBCOMMAND --help')")
    parser.set_defaults(func=lambda args: _help(parser))

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
                          help=f"ecosystem to fetch (repeatable; default: those already in the database, else "
                               f"{', '.join(update.DEFAULT_ECOSYSTEMS)})")
    p_update.add_argument("--url", default=None, metavar="URL",
                          help=f"base URL of the OSV exports (default: ${update.BASE_URL_ENV} or the public bucket)")
    add_lock_timeout_option(p_update)
    p_update.set_defaults(func=run_update)

    p_status = dbsub.add_parser("status", help="ecosystems, record counts, age of the data")
    add_db_option(p_status)
    p_status.set_defaults(func=run_status)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return exitcodes.USAGE


def _print_report(report: importer.ImportReport, show: int) -> None:
    print(f"records read: {report.records}, imported: {report.imported}, "
          f"already present: {report.unchanged}, skipped: {report.skipped}")
    listed = [p for p in report.problems][:show]
    for p in listed:
        rid = f" ({p.record_id})" if p.record_id else ""
        print(f"  skipped {p.source}{rid}: {p.reason}", file=sys.stderr)
    if len(report.problems) > len(listed):
        print(f"  ... and {report.skipped + report.notes - len(listed)} more", file=sys.stderr)


def run_import(args: argparse.Namespace) -> int:
    path = db_path(args)
    report = importer.import_paths(path, args.paths, progress=TerminalProgress(),
                                   lock_timeout=args.lock_timeout, on_wait=_waiting)
    _print_report(report, args.show_skipped)
    print(f"database: {path}")
    return exitcodes.OK


def run_update(args: argparse.Namespace) -> int:
    path = db_path(args)
    result = update.update(path, args.ecosystem, args.url, progress=TerminalProgress(),
                           lock_timeout=args.lock_timeout, on_wait=_waiting)
    for eco in result.not_modified:
        print(f"{eco}: not modified")
    for eco in result.fetched:
        print(f"{eco}: downloaded")
    if result.swapped:
        _print_report(result.report, 20)
    print(f"database: {path}")
    return exitcodes.OK


def _age(timestamp: str | None, now: datetime) -> timedelta | None:
    return store.age_of(timestamp, now)


def run_status(args: argparse.Namespace) -> int:
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
    age = _age(st.newest_modified, now)
    if age is None or age > STALE_AFTER:
        days = "unknown" if age is None else f"{age.days} days"
        print(f"warning: the newest advisory is {days} old; run 'giropops db update'", file=sys.stderr)
    return exitcodes.OK
