"""Read OSV records from files, directories, ``all.zip`` exports and JSON lines (plain or gzip).

The importer is all-or-nothing at two levels: a record is validated whole
(``osv.parse_record``) and skipped with a reported reason when it is hostile
or broken; an unreadable *source* (a corrupt zip or gzip, a missing file)
aborts the whole import, and because it runs inside ``store.rebuild`` the
database in use is never half-changed.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from giropops import jsonio
from giropops.errors import VulnError, clip_for_error
from giropops.progress import NO_PROGRESS, Progress
from giropops.vuln.db import exploits, store
from giropops.vuln.db.osv import RecordError, parse_record

MAX_RECORD_BYTES = 8 * 1024 * 1024  # one OSV record; the largest real ones are ~1 MB
MAX_JSON_FILE_BYTES = 256 * 1024 * 1024  # a .json file holding a list of records
MAX_PROBLEMS_KEPT = 1000
_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")


class AdvisoryImportError(VulnError):
    """A source cannot be read at all; nothing was imported."""


class NoRecordsError(AdvisoryImportError):
    """Every source was readable but none held a valid OSV record; nothing was imported."""


@dataclass(frozen=True)
class Problem:
    source: str  # file, "file:line" or "zip!member"
    reason: str
    record_id: str | None = None


@dataclass
class ImportReport:
    sources: int = 0
    records: int = 0
    imported: int = 0
    unchanged: int = 0  # an equal or newer record with the same id was already there
    skipped: int = 0
    notes: int = 0
    problems: list[Problem] = field(default_factory=list)
    kev: str | None = None  # "catalog 2025.08.25, 1404 CVEs" when a KEV catalog was imported
    epss: str | None = None  # "scores of 2025-08-25 (model v2025.03.14), 270000 CVEs"

    def problem(self, p: Problem, counts_as_skip: bool = True) -> None:
        if counts_as_skip:
            self.skipped += 1
        else:
            self.notes += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(p)


def _bounded_lines(stream: IO[bytes], where: str, report: ImportReport) -> Iterator[tuple[int, bytes]]:
    """Lines of at most MAX_RECORD_BYTES; longer ones are reported and skipped without being held in memory."""
    lineno = 0
    while True:
        line = stream.readline(MAX_RECORD_BYTES + 1)
        if not line:
            return
        lineno += 1
        if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
            while True:  # drain the rest of the oversized line
                rest = stream.readline(1024 * 1024)
                if not rest or rest.endswith(b"\n"):
                    break
            report.records += 1
            report.problem(Problem(f"{where}:{lineno}", f"record longer than {MAX_RECORD_BYTES} bytes"))
            continue
        if line.strip():
            yield lineno, line


def _records_of_json(data: bytes, where: str, report: ImportReport) -> Iterator[tuple[str, Any]]:
    try:
        doc = jsonio.loads(data, "record")
    except jsonio.DocumentError as exc:
        report.records += 1
        report.problem(Problem(where, str(exc)[:200]))
        return
    if isinstance(doc, list):
        for i, rec in enumerate(doc):
            yield f"{where}[{i}]", rec
    else:
        yield where, doc


def _zip_records(path: Path, report: ImportReport) -> Iterator[tuple[str, Any]]:
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir() or not info.filename.endswith(".json"):
                    continue
                where = f"{path.name}!{clip_for_error(info.filename)}"
                if info.file_size > MAX_RECORD_BYTES:
                    report.records += 1
                    report.problem(Problem(where, f"member larger than {MAX_RECORD_BYTES} bytes"))
                    continue
                with zf.open(info) as member:
                    data = member.read(MAX_RECORD_BYTES + 1)  # the header may lie about the size
                if len(data) > MAX_RECORD_BYTES:
                    report.records += 1
                    report.problem(Problem(where, f"member larger than {MAX_RECORD_BYTES} bytes"))
                    continue
                yield from _records_of_json(data, where, report)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise AdvisoryImportError(f"cannot read zip {path}: {exc}") from exc


def _jsonl_records(path: Path, report: ImportReport) -> Iterator[tuple[str, Any]]:
    try:
        raw: IO[bytes] = (
            cast(IO[bytes], gzip.open(path, "rb")) if path.name.endswith(".gz") else open(path, "rb")
        )
        with raw:
            for lineno, line in _bounded_lines(raw, path.name, report):
                try:
                    yield f"{path.name}:{lineno}", jsonio.loads(line, "record")
                except jsonio.DocumentError as exc:
                    report.records += 1
                    report.problem(Problem(f"{path.name}:{lineno}", str(exc)[:200]))
    except (gzip.BadGzipFile, zlib.error, EOFError, OSError) as exc:
        raise AdvisoryImportError(f"cannot read {path}: {exc}") from exc


def _json_file_records(path: Path, report: ImportReport) -> Iterator[tuple[str, Any]]:
    try:
        size = path.stat().st_size
        if size > MAX_JSON_FILE_BYTES:
            report.records += 1
            report.problem(Problem(path.name, f"file larger than {MAX_JSON_FILE_BYTES} bytes"))
            return
        data = path.read_bytes()
    except OSError as exc:
        raise AdvisoryImportError(f"cannot read {path}: {exc}") from exc
    yield from _records_of_json(data, path.name, report)


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files to read, in a stable order; directories are walked for OSV-looking files."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                name = child.name
                if child.is_file() and (name.endswith((".json", ".zip", ".csv", ".csv.gz"))
                                        or name.endswith(_JSONL_SUFFIXES)):
                    out.append(child)
        elif path.is_file():
            out.append(path)
        else:
            raise AdvisoryImportError(f"no such file or directory: {path}")
    return out


def records_of(path: Path, report: ImportReport) -> Iterator[tuple[str, Any]]:
    name = path.name
    if name.endswith(".zip"):
        return _zip_records(path, report)
    if name.endswith(_JSONL_SUFFIXES):
        return _jsonl_records(path, report)
    if name.endswith((".json", ".json.gz")):
        if name.endswith(".gz"):
            return _jsonl_records(path, report)
        return _json_file_records(path, report)
    raise AdvisoryImportError(f"{path}: unknown file type (expected .json, .jsonl, .jsonl.gz or .zip)")


def import_into(writer: store.Writer, files: Iterable[Path], report: ImportReport, source_tag: str | None = None,
                progress: Progress = NO_PROGRESS) -> None:
    for path in files:
        report.sources += 1
        if import_exploit_data(writer, path, report, source_tag):
            continue
        key = f"import:{path}"
        progress.start(key, f"importing {path.name}")
        for where, raw in records_of(path, report):
            report.records += 1
            try:
                advisory, notes = parse_record(raw)
            except RecordError as exc:
                rid = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
                rid = clip_for_error(rid) if rid is not None else None
                report.problem(Problem(where, str(exc), rid))
                continue
            for note in notes:
                report.problem(Problem(where, note, advisory.id), counts_as_skip=False)
            if writer.put(advisory, source_tag or f"file:{path.name}"):
                report.imported += 1
            else:
                report.unchanged += 1
        progress.finish(key, f"{report.imported} records so far")


def import_exploit_data(writer: store.Writer, path: Path, report: ImportReport, source_tag: str | None = None) -> bool:
    """Import ``path`` when it is a CISA KEV catalog or a FIRST EPSS CSV (``exploits``); False otherwise."""
    if exploits.looks_like_kev(path):
        catalog = exploits.read_kev(path)
        writer.put_kev(catalog, source_tag or f"file:{path.name}")
        report.kev = f"catalog {catalog.version}, {len(catalog.entries)} CVEs"
        return True
    if exploits.looks_like_epss(path):
        feed = exploits.read_epss(path)
        writer.put_epss(feed, source_tag or f"file:{path.name}")
        report.epss = f"scores of {feed.score_date} (model {feed.model_version}), {len(feed.scores)} CVEs"
        return True
    return False


def import_paths(db_path: Path, paths: Iterable[Path], progress: Progress = NO_PROGRESS,
                 lock_timeout: float = store.DEFAULT_LOCK_TIMEOUT,
                 on_wait: Callable[[str], None] | None = None) -> ImportReport:
    """Import every record under ``paths`` into the database at ``db_path`` in one atomic step.

    The database's lock is held from reading the old file to the rename: a concurrent import
    waits (``on_wait`` is told) and then imports on top of this one's result.
    """
    paths = list(paths)
    files = expand(paths)
    report = ImportReport()
    with store.rebuild(db_path, lock_timeout, on_wait) as writer:
        import_into(writer, files, report, progress=progress)
        if report.imported + report.unchanged == 0:
            # raised inside the rebuild: the database in use (or none) stays exactly as it was
            why = f" (first problem: {report.problems[0].source}: {report.problems[0].reason})" \
                if report.problems else ""
            raise NoRecordsError(f"no valid OSV record in {', '.join(str(p) for p in paths)}: "
                                 f"{report.records} read, {report.skipped} skipped{why}")
    return report
