"""``giropops demo`` from start to end: the steps in order, each one's lines handed to a ``Report``.

The caller (``giropops.cli.demo``) gives a ``Report`` that prints, a progress, and how to get the key's
password; this module decides what happens and what is said, and writes ``summary.json``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from giropops.builder.cache import Cache
from giropops.demo import render, runtime, steps
from giropops.errors import DatabaseNotReadyError
from giropops.oci.transport import ArchiveSpec
from giropops.progress import Progress
from giropops.sbom import SBOM, sbom_for
from giropops.vuln.db import ensure
from giropops.vuln.report.view import counts_text

STEPS = 6


class Report(Protocol):
    """Where the demo's words go: a numbered step title, then lines under it."""

    def step(self, title: str) -> None: ...

    def line(self, text: str) -> None: ...


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path
    spec: Path
    tag: str
    db_path: Path
    db_given: bool = False  # --db named it: the hints repeat it
    compare: bool = True
    run: bool = True
    port: int = 5000
    stop_command: str = "giropops demo --stop"
    fetch: ensure.EnsureOptions = field(default_factory=ensure.EnsureOptions)  # how the scan gets its data


@dataclass(frozen=True)
class Outcome:
    ours: steps.Side
    conventional: steps.Side | None
    keys: steps.KeyPair
    running: runtime.Running | None


def _built_line(built: steps.DemoBuild) -> str:
    return (f"{built.digest}  {built.layers} layers, {render.mb(built.compressed_size)} compressed, "
            f"{built.os_packages} OS packages"
            + (f", {len(built.reused_layers)} layers from cache" if built.reused_layers else ""))


def scan_step(report: Report, sbom: SBOM, opts: DemoOptions, paths: steps.DemoPaths,
              progress: Progress) -> tuple[steps.ScanSummary | None, str | None]:
    """Step 3: the scan (after fetching the data the image needs, as every scan does), or why it could
    not run (the counts are then unknown, not zero)."""
    db_path, db_flag = opts.db_path, f" --db {opts.db_path}" if opts.db_given else ""
    try:
        fetched = steps.prepare_db(db_path, [sbom], opts.fetch, progress)
        fetched_line = ensure.fetch_note(fetched)
        if fetched_line:
            report.line(fetched_line)
        if fetched.refresh_error:
            report.line(f"warning: {fetched.refresh_error}; scanning with the data already there")
        scanned = steps.scan_sbom(sbom, db_path, paths.cves)
    except DatabaseNotReadyError as exc:
        not_scanned = str(exc)
        report.line(f"SCAN NOT RUN: {not_scanned.replace(str(db_path), render.home(db_path))}")
        report.line("the vulnerability counts below are unknown, not zero")
        if db_flag:
            report.line(f"fill it with:  giropops db update{db_flag}   (offline: giropops db import{db_flag} FILES)")
        if opts.fetch.offline:
            report.line(f"(offline: --offline or ${ensure.OFFLINE_ENV} forbids downloading it)")
        return None, not_scanned
    if scanned.stale:
        report.line(f"warning: {scanned.stale}")
    report.line(f"{scanned.total} vulnerabilities: {counts_text(scanned.counts)}"
                f" (details: {paths.cves}; table: giropops cves archive://{paths.archive})")
    return scanned, None


def run_step(report: Report, paths: steps.DemoPaths, tag: str, wanted_port: int) -> runtime.Running | None:
    """Step 6: an engine found by probing; podman failing for a host reason gets one retry with the demo's
    own containers.conf; no engine at all says what to install."""
    probe = runtime.probe_engine()
    if probe.engine is None:
        why = "; ".join(probe.problems) or "neither podman nor docker is installed"
        report.line(f"skipped: no working container engine ({why})")
        report.line(runtime.ENGINE_INSTALL_HINT)
        report.line(f"or load it where there is one:  podman load -i {paths.archive}")
        return None
    engine = probe.engine
    port = wanted_port if wanted_port and runtime.port_free(wanted_port) else runtime.free_port()
    if wanted_port and port != wanted_port:
        report.line(f"port {wanted_port} is busy; using {port}")
    try:
        running = runtime.run_app(paths, engine, tag, port)
    except runtime.EngineUnusable as exc:
        if engine.name != "podman" or not runtime.podman_host_problem(str(exc)):
            report.line(f"skipped: {engine.name} cannot run containers here: {exc}")
            return None
        conf = runtime.write_podman_conf(paths)
        report.line(f"podman failed for a host reason ({exc})")
        report.line(f"retrying once with the demo's own {conf} (CONTAINERS_CONF: no default ulimits, "
                    "cgroupfs, runc)")
        try:
            running = runtime.run_app(paths, engine, tag, port,
                                      env={**os.environ, "CONTAINERS_CONF": str(conf.resolve())})
        except runtime.EngineUnusable as again:
            report.line(f"skipped: podman cannot run containers here even so: {again}")
            report.line(runtime.PODMAN_HINT)
            return None
    report.line(f"{engine.name}: container {running.container} serves {running.url} "
                + ("(Redis " + running.store + ")" if running.store != "embedded"
                   else "(embedded store: no redis-server binary here)"))
    return running


def run_demo(opts: DemoOptions, report: Report, progress: Progress, password: Callable[[bool], bytes],
             cache: Cache | None = None) -> Outcome:
    """Every step; ``password(generating)`` gives the key's password when step 5 needs it."""
    paths = steps.DemoPaths(opts.workdir)
    spec, tag = opts.spec, opts.tag
    cache = cache or Cache()
    summary: dict[str, Any] = {"workdir": str(opts.workdir), "spec": str(spec), "tag": tag}

    report.step(f"build: {spec.name} -> {tag} (daemonless: packages unpacked, wheels installed by the builder)")
    ours = steps.build(spec, tag, paths.archive, paths.layout, cache, progress)
    report.line(_built_line(ours))
    report.line(f"wrote {paths.archive} ({render.mb(ours.archive_size)}) and the OCI layout {paths.layout}")

    report.step("sbom: what is inside the image")
    sboms = steps.write_sboms(paths.archive, paths.spdx, paths.cyclonedx, progress)
    report.line(f"{sboms.packages} packages ({sboms.count('deb')} deb, {sboms.count('python')} python); "
                f"no shell, apt or dpkg" if not sboms.tools() else
                f"{sboms.packages} packages; it has {', '.join(sboms.tools())}")
    report.line(f"wrote {paths.spdx} (SPDX 2.3) and {paths.cyclonedx} (CycloneDX 1.6)")

    report.step(f"scan: OSV advisories in {render.home(opts.db_path)}")
    scanned, not_scanned = scan_step(report, sboms.sbom, opts, paths, progress)
    state = steps.db_state(opts.db_path)  # after the scan step: its fetch may have made the database
    summary["database"] = {"path": str(opts.db_path), "present": state.present, "stale": state.stale,
                           "newest_advisory": state.newest, "scanned": scanned is not None,
                           "error": not_scanned}
    ours_side = steps.side_of("giropops", ours, sboms.sbom, scanned)

    report.step("compare: the conventional python:3.11-slim-style image, built the same way")
    conventional_spec = steps.conventional_spec_for(spec) if opts.compare else None
    conv_side: steps.Side | None = None
    if conventional_spec is None:
        report.line("skipped" + ("" if not opts.compare else f" (no {steps.CONVENTIONAL_SPEC} beside {spec.name})"))
    else:
        conv = steps.build(conventional_spec, steps.CONVENTIONAL_TAG, paths.conventional_archive, None,
                           cache, progress, context=spec.parent)  # it builds the app beside giropops.yaml
        conv_sbom = sbom_for(ArchiveSpec(paths.conventional_archive), progress=progress)
        conv_scan = None
        if scanned is not None:
            steps.prepare_db(opts.db_path, [conv_sbom], opts.fetch, progress)  # its ecosystems too, if others
            conv_scan = steps.scan_sbom(conv_sbom, opts.db_path)
        conv_side = steps.side_of("conventional", conv, conv_sbom, conv_scan)
        report.line(f"{conventional_spec.relative_to(spec.parent)}: {render.mb(conv.archive_size)}, "
                    f"{conv_side.packages} packages, {render.vulns(conv_side)} vulnerabilities"
                    + (" (cached build)" if len(conv.reused_layers) >= 2 else ""))
        report.line(f"giropops-senhas: {render.less(ours.archive_size, conv.archive_size)} smaller, "
                    f"{render.less(ours_side.packages, conv_side.packages)} fewer packages"
                    + (f", {render.less(ours_side.total_vulnerabilities or 0, conv_side.total_vulnerabilities or 0)}"
                       " fewer vulnerabilities" if scanned is not None else ""))
    summary["images"] = {"giropops": ours_side.to_json(),
                         "conventional": conv_side.to_json() if conv_side is not None else None}

    report.step("sign + verify: cosign-compatible, offline, in the OCI layout")
    generating = not paths.private_key.exists() and not paths.public_key.exists()
    secret = password(generating)
    keys = steps.ensure_key_pair(paths, secret)
    report.line(("generated " if keys.generated else "using ") + f"{keys.private} and {keys.public}")
    signed = steps.sign_and_verify(paths.layout, tag, keys, secret)
    report.line(f"signed {signed.digest} ({signed.signatures} signature); verified with {keys.public}: OK")
    report.line(f"check it yourself:  giropops verify --key {keys.public} '{signed.target}'")
    summary["signature"] = {"key": str(keys.public), "digest": signed.digest, "verified": signed.verified,
                            "target": signed.target}

    report.step("run: the image in a container engine, with Redis")
    running: runtime.Running | None = None
    if not opts.run:
        report.line("skipped (--no-run)")
    else:
        running = run_step(report, paths, tag, opts.port)
        if running is not None:
            try:
                status = runtime.check_serving(running.url)
            except steps.DemoError:
                runtime.stop(paths, dict(running.engine_env) or None)
                raise
            report.line(f"checked: GET {running.url}/ -> HTTP {status}")
            report.line(f"stop it with:  {opts.stop_command}")
    summary["running"] = running.to_json() if running is not None else None
    steps.write_summary(paths, summary)
    return Outcome(ours_side, conv_side, keys, running)
