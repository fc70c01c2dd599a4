"""``giropops demo``: from source to a running, scanned, signed image in one command.

Each step prints one or two lines of what it did; long steps draw progress on a
terminal; the run ends with a summary table (also written as ``summary.json``).
The steps themselves are ``giropops.pipeline``.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from giropops import pipeline
from giropops.build.cache import Cache
from giropops.cli.db import add_fetch_options, ensure_options, fetch_note
from giropops.cli.progress import TerminalProgress
from giropops.errors import DatabaseNotReadyError, UsageError
from giropops.oci.reference import Reference
from giropops.sign.errors import WrongPasswordError
from giropops.vuln.db import ensure
from giropops.vuln.db import store as dbstore

PASSWORD_ENV = "COSIGN_PASSWORD"  # noqa: S105 - the variable's name, not a password
STEPS = 6


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", help="build, SBOM, scan, compare, sign, verify and run giropops-senhas in one go",
        description="The main job: build the giropops-senhas image without a daemon, write its SBOM, scan it, "
                    "compare it with the conventional python:3.11-slim-style image, sign and verify it, and run "
                    "it (with Redis) when a container engine works here.",
    )
    p.add_argument("--workdir", type=Path, default=Path("giropops-demo"), metavar="DIR",
                   help="where every artefact goes (default: ./giropops-demo)")
    p.add_argument("--spec", type=Path, default=None, metavar="FILE",
                   help="the app's build spec (default: giropops.yaml here or in a parent directory)")
    p.add_argument("--db", type=Path, default=None, metavar="PATH",
                   help=f"vulnerability database (default: ${dbstore.ENV_VAR} or the user's cache directory)")
    add_fetch_options(p)
    p.add_argument("--tag", default=pipeline.DEFAULT_TAG, metavar="REF",
                   help=f"name of the built image (default: {pipeline.DEFAULT_TAG})")
    p.add_argument("--no-run", action="store_true", help="do not load and run the image in a container engine")
    p.add_argument("--no-compare", action="store_true", help="skip the conventional image")
    p.add_argument("--port", type=int, default=5000, metavar="N",
                   help="port of the running app on 127.0.0.1 (default 5000; 0 or a busy port: a free one)")
    p.add_argument("--stop", action="store_true",
                   help="stop the container and redis-server an earlier demo in --workdir started, and exit")
    p.set_defaults(func=run)


class _TransientProgress(TerminalProgress):
    """Progress drawn on one line that the next step line replaces: the step lines are the record."""

    def finish(self, key: str, message: str | None = None) -> None:
        self._tasks.pop(key, None)
        self._units.pop(key, None)
        self.clear()

    def note(self, message: str) -> None:
        if self.enabled:
            self.stream.write(f"\r\x1b[2K{message}")
            self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


class _Out:
    """Step lines on stdout, flushed so they interleave with progress drawn on stderr."""

    def __init__(self, progress: _TransientProgress) -> None:
        self.n = 0
        self.progress = progress

    def step(self, title: str) -> None:
        self.n += 1
        self.progress.clear()
        print(f"[{self.n}/{STEPS}] {title}", flush=True)

    def line(self, text: str) -> None:
        self.progress.clear()
        print(f"      {text}", flush=True)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _password(out: _Out, generating: bool) -> bytes:
    env = os.environ.get(PASSWORD_ENV)
    if env is not None:
        return env.encode()
    if sys.stdin.isatty():
        first = getpass.getpass("Enter password for private key: ")
        if generating and getpass.getpass("Enter password for private key again: ") != first:
            raise UsageError("passwords do not match")
        return first.encode()
    out.line(f"warning: {PASSWORD_ENV} is not set and there is no terminal to ask: the key uses an EMPTY password")
    return b""


def _home(path: Path) -> str:
    """``~/...`` for paths under the home directory: shorter, and what the user would type."""
    try:
        return "~/" + str(path.resolve().relative_to(Path.home().resolve()))
    except ValueError:
        return str(path)


def _pct(new: int, old: int) -> str:
    return f"-{(old - new) * 100 / old:.0f}%" if old else ""


def _less(new: int, old: int) -> str:
    return f"{(old - new) * 100 / old:.0f}%" if old else "n/a"


def _vulns(side: pipeline.Side | None) -> str:
    if side is None:
        return "-"
    if side.vulnerabilities is None:
        return "NOT SCANNED"
    return f"{side.total_vulnerabilities} ({pipeline.counts_line(side.vulnerabilities)})"


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _stop_command(workdir: Path) -> str:
    """A stop command that works without an activated virtualenv: this installation's own ``giropops``."""
    script = Path(sys.executable).parent / "giropops"
    exe = str(script) if script.is_file() else f"{sys.executable} -m giropops"
    try:
        rel = os.path.relpath(script, Path.cwd())
        if script.is_file() and not rel.startswith(".."):
            exe = rel if "/" in rel else f"./{rel}"
    except ValueError:
        pass
    return f"{exe} demo --stop --workdir {shlex.quote(str(workdir))}"


def _run_step(out: _Out, paths: pipeline.DemoPaths, tag: str, wanted_port: int) -> pipeline.Running | None:
    """Step 6: an engine found by probing; podman failing for a host reason gets one retry with the demo's
    own containers.conf; no engine at all says what to install."""
    probe = pipeline.probe_engine()
    if probe.engine is None:
        why = "; ".join(probe.problems) or "neither podman nor docker is installed"
        out.line(f"skipped: no working container engine ({why})")
        out.line(pipeline.ENGINE_INSTALL_HINT)
        out.line(f"or load it where there is one:  podman load -i {paths.archive}")
        return None
    engine = probe.engine
    port = wanted_port if wanted_port and pipeline.port_free(wanted_port) else pipeline.free_port()
    if wanted_port and port != wanted_port:
        out.line(f"port {wanted_port} is busy; using {port}")
    running: pipeline.Running | None = None
    try:
        running = pipeline.run_app(paths, engine, tag, port)
    except pipeline.EngineUnusable as exc:
        if engine.name != "podman" or not pipeline.podman_host_problem(str(exc)):
            out.line(f"skipped: {engine.name} cannot run containers here: {exc}")
            return None
        conf = pipeline.write_podman_conf(paths)
        out.line(f"podman failed for a host reason ({exc})")
        out.line(f"retrying once with the demo's own {conf} (CONTAINERS_CONF: no default ulimits, "
                 "cgroupfs, runc)")
        try:
            running = pipeline.run_app(paths, engine, tag, port,
                                       env={**os.environ, "CONTAINERS_CONF": str(conf.resolve())})
        except pipeline.EngineUnusable as again:
            out.line(f"skipped: podman cannot run containers here even so: {again}")
            out.line(pipeline.PODMAN_HINT)
            return None
    out.line(f"{engine.name}: container {running.container} serves {running.url} "
             + ("(Redis " + running.store + ")" if running.store != "embedded"
                else "(embedded store: no redis-server binary here)"))
    return running


def run(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir
    paths = pipeline.DemoPaths(workdir)
    if args.stop:
        stopped = pipeline.stop(paths)
        if stopped.container is None and stopped.redis_pid is None:
            print(f"nothing of a demo is running for {workdir}")
        if stopped.container:
            print(f"stopped and removed container {stopped.container}")
        if stopped.redis_pid:
            print(f"stopped redis-server (pid {stopped.redis_pid})")
        for note in stopped.notes:
            print(f"note: {note}", file=sys.stderr)
        return 0
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0-65535, got {args.port}")
    tag = str(Reference.parse(args.tag))
    spec = pipeline.find_spec(args.spec, Path.cwd())
    db_path: Path = args.db if args.db is not None else dbstore.default_path()
    db_flag = "" if args.db is None else f" --db {db_path}"
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {workdir}: {exc.strerror}") from exc
    progress = _TransientProgress()
    cache = Cache()
    out = _Out(progress)
    started = time.monotonic()
    summary: dict[str, Any] = {"workdir": str(workdir), "spec": str(spec), "tag": tag}

    # 1. build
    out.step(f"build: {spec.name} -> {tag} (daemonless: packages unpacked, wheels installed by the builder)")
    ours = pipeline.build(spec, tag, paths.archive, paths.layout, cache, progress)
    out.line(f"{ours.digest}  {ours.layers} layers, {_mb(ours.compressed_size)} compressed, "
             f"{ours.os_packages} OS packages" + (f", {len(ours.reused_layers)} layers from cache"
                                                   if ours.reused_layers else ""))
    out.line(f"wrote {paths.archive} ({_mb(ours.archive_size)}) and the OCI layout {paths.layout}")

    # 2. SBOM
    out.step("sbom: what is inside the image")
    sboms = pipeline.write_sboms(paths.archive, paths.spdx, paths.cyclonedx, progress)
    out.line(f"{sboms.packages} packages ({sboms.count('deb')} deb, {sboms.count('python')} python); "
             f"no shell, apt or dpkg" if not sboms.tools() else
             f"{sboms.packages} packages; it has {', '.join(sboms.tools())}")
    out.line(f"wrote {paths.spdx} (SPDX 2.3) and {paths.cyclonedx} (CycloneDX 1.6)")

    # 3. scan
    out.step(f"scan: OSV advisories in {_home(db_path)}")
    fetch = ensure_options(args)
    scanned: pipeline.ScanSummary | None = None
    not_scanned: str | None = None
    try:
        fetched = pipeline.prepare_db(db_path, [sboms.sbom], fetch, progress)
        fetched_line = fetch_note(fetched)
        if fetched_line:
            out.line(fetched_line)
        if fetched.refresh_error:
            out.line(f"warning: {fetched.refresh_error}; scanning with the data already there")
        scanned = pipeline.scan_sbom(sboms.sbom, db_path, paths.cves)
    except DatabaseNotReadyError as exc:
        not_scanned = str(exc)
        out.line(f"SCAN NOT RUN: {not_scanned.replace(str(db_path), _home(db_path))}")
        out.line("the vulnerability counts below are unknown, not zero")
        if db_flag:
            out.line(f"fill it with:  giropops db update{db_flag}   (offline: giropops db import{db_flag} FILES)")
        if fetch.offline:
            out.line(f"(offline: --offline or ${ensure.OFFLINE_ENV} forbids downloading it)")
    else:
        if scanned.stale:
            out.line(f"warning: {scanned.stale}")
        out.line(f"{scanned.total} vulnerabilities: {pipeline.counts_line(scanned.counts)}"
                 f" (details: {paths.cves}; table: giropops cves archive://{paths.archive})")
    state = pipeline.db_state(db_path)
    summary["database"] = {"path": str(db_path), "present": state.present, "stale": state.stale,
                           "newest_advisory": state.newest, "scanned": scanned is not None,
                           "error": not_scanned}
    ours_side = pipeline.side_of("giropops", ours, sboms.sbom, scanned)

    # 4. compare
    out.step("compare: the conventional python:3.11-slim-style image, built the same way")
    conventional_spec = None if args.no_compare else pipeline.conventional_spec_for(spec)
    conv_side: pipeline.Side | None = None
    if conventional_spec is None:
        out.line("skipped" + ("" if args.no_compare else f" (no {pipeline.CONVENTIONAL_SPEC} beside {spec.name})"))
    else:
        conv = pipeline.build(conventional_spec, pipeline.CONVENTIONAL_TAG, paths.conventional_archive, None,
                              cache, progress, context=spec.parent)  # it builds the app beside giropops.yaml
        conv_sbom = pipeline.sbom_of(paths.conventional_archive, progress)
        conv_scan = None
        if scanned is not None:
            pipeline.prepare_db(db_path, [conv_sbom], fetch, progress)  # its ecosystems too, if others
            conv_scan = pipeline.scan_sbom(conv_sbom, db_path)
        conv_side = pipeline.side_of("conventional", conv, conv_sbom, conv_scan)
        out.line(f"{conventional_spec.relative_to(spec.parent)}: {_mb(conv.archive_size)}, "
                 f"{conv_side.packages} packages, {_vulns(conv_side)} vulnerabilities"
                 + (" (cached build)" if len(conv.reused_layers) >= 2 else ""))
        out.line(f"giropops-senhas: {_less(ours.archive_size, conv.archive_size)} smaller, "
                 f"{_less(ours_side.packages, conv_side.packages)} fewer packages"
                 + (f", {_less(ours_side.total_vulnerabilities or 0, conv_side.total_vulnerabilities or 0)} "
                    "fewer vulnerabilities" if scanned is not None else ""))
    summary["images"] = {"giropops": ours_side.to_json(),
                         "conventional": conv_side.to_json() if conv_side is not None else None}

    # 5. sign + verify
    out.step("sign + verify: cosign-compatible, offline, in the OCI layout")
    generating = not paths.private_key.exists() and not paths.public_key.exists()
    password = _password(out, generating)
    keys = pipeline.ensure_key_pair(paths, password)
    out.line(("generated " if keys.generated else "using ") + f"{keys.private} and {keys.public}")
    try:
        signed = pipeline.sign_and_verify(paths.layout, tag, keys, password)
    except WrongPasswordError as exc:
        if keys.generated:
            raise
        given = (f"{PASSWORD_ENV} does not open it" if os.environ.get(PASSWORD_ENV) is not None
                 else f"{PASSWORD_ENV} is not set and the empty password does not open it"
                 if not sys.stdin.isatty() else "the password typed does not open it")
        raise WrongPasswordError(
            f"{keys.private} is the key an earlier demo made in {workdir}, and {given}: set {PASSWORD_ENV} to "
            f"the password it was made with, or delete {keys.private} and {keys.public} to make a new pair"
        ) from exc
    out.line(f"signed {signed.digest} ({signed.signatures} signature); verified with {keys.public}: OK")
    out.line(f"check it yourself:  giropops verify --key {keys.public} '{signed.target}'")
    summary["signature"] = {"key": str(keys.public), "digest": signed.digest, "verified": signed.verified,
                            "target": signed.target}

    # 6. run
    out.step("run: the image in a container engine, with Redis")
    running: pipeline.Running | None = None
    if args.no_run:
        out.line("skipped (--no-run)")
    else:
        running = _run_step(out, paths, tag, args.port)
        if running is not None:
            try:
                status = pipeline.check_serving(running.url)
            except pipeline.DemoError:
                pipeline.stop(paths, dict(running.engine_env) or None)
                raise
            out.line(f"checked: GET {running.url}/ -> HTTP {status}")
            out.line(f"stop it with:  {_stop_command(workdir)}")
    summary["running"] = running.to_json() if running is not None else None
    pipeline.write_summary(paths, summary)

    # summary
    progress.clear()
    print()
    rows: list[tuple[str, str, str, str]] = [("", "conventional", "giropops", "")]
    c = conv_side
    rows.append(("image size", _mb(c.archive_size) if c else "-", _mb(ours_side.archive_size),
                 _pct(ours_side.archive_size, c.archive_size) if c else ""))
    rows.append(("packages", str(c.packages) if c else "-", str(ours_side.packages),
                 _pct(ours_side.packages, c.packages) if c else ""))
    rows.append(("vulnerabilities", _vulns(c), _vulns(ours_side),
                 _pct(ours_side.total_vulnerabilities or 0, c.total_vulnerabilities or 0)
                 if c and c.vulnerabilities is not None and ours_side.vulnerabilities is not None else ""))
    rows.append(("shell/apt/dpkg", ", ".join(c.tools) if c else "-", ", ".join(ours_side.tools) or "none",
                 ""))
    print(_table(rows))
    print(f"signature: verified ({keys.public})")
    print(f"running:   {running.url}" if running else "running:   no (see step 6)")
    print(f"artefacts: {workdir}/ (summary.json)   time: {time.monotonic() - started:.0f} s")
    return 0
