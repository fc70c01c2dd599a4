"""The GitHub Actions workflow forks run: its shape, and every ``giropops ...`` line parsed by our real CLI parser.

Renaming a flag or a command without updating ``.github/workflows/giropops.yml`` fails here, not in a fork's CI.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from giropops.cli.main import build_parser
from tests.support.paths import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "giropops.yml"
_COMMAND = re.compile(r"(?:^|\$\(|&&|\|\||;|\|)\s*(giropops\s(?:[^)\"']|\"[^\"]*\"|'[^']*')*)")


def load() -> dict[Any, Any]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(doc, dict)
    return doc


def steps() -> list[dict[str, Any]]:
    jobs = load()["jobs"]
    assert list(jobs) == ["image"]
    out = jobs["image"]["steps"]
    assert isinstance(out, list)
    return out


def logical_lines(script: str) -> list[str]:
    return [line.strip() for line in script.replace("\\\n", " ").splitlines() if line.strip()]


def giropops_commands(script: str) -> list[list[str]]:
    """Each ``giropops ...`` invocation of a ``run:`` script (also inside ``$(...)``), as argv."""
    out = []
    for line in logical_lines(script):
        for m in _COMMAND.finditer(line):
            out.append(shlex.split(m.group(1), comments=True))
    return out


def parse(argv: list[str]) -> argparse.Namespace:
    """Our real parser; a usage error becomes an assertion naming the line."""
    assert argv[0] == "giropops"
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            ns = build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        raise AssertionError(f"{shlex.join(argv)}: does not parse: {err.getvalue().strip()}") from exc
    assert getattr(ns, "func", None) is not None, f"{shlex.join(argv)}: names no command"
    return ns


def all_commands() -> list[tuple[int, list[str], argparse.Namespace]]:
    out = []
    for i, step in enumerate(steps()):
        for argv in giropops_commands(step.get("run", "")):
            out.append((i, argv, parse(argv)))
    return out


def index_of(predicate: Any) -> int:
    found = [i for i, argv, ns in all_commands() if predicate(argv, ns)]
    assert found, "no such command in the workflow"
    return found[0]


def test_triggers_and_permissions() -> None:
    doc = load()
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on:` key as the boolean true
    assert {"push", "pull_request"} <= set(on)
    assert doc["permissions"]["security-events"] == "write"
    assert doc["permissions"]["contents"] == "read"


def test_every_giropops_line_parses_with_the_real_parser() -> None:
    commands = all_commands()
    names = [argv[1] for _, argv, _ in commands]
    for wanted in ("db", "build", "sbom", "cves", "push", "sign", "attest", "verify", "verify-attestation"):
        assert wanted in names, wanted


def test_the_checker_rejects_a_renamed_flag_or_command() -> None:
    with pytest.raises(AssertionError, match="does not parse"):
        parse(["giropops", "cves", "archive://x.tar", "--exit-codes"])
    with pytest.raises(AssertionError, match="does not parse"):
        parse(["giropops", "scann", "archive://x.tar"])
    assert giropops_commands('digest=$(giropops push "archive://$A" "$IMAGE")\necho "x" && giropops verify --key k i') \
        == [["giropops", "push", "archive://$A", "$IMAGE"], ["giropops", "verify", "--key", "k", "i"]]


def test_build_scan_sarif_then_gate() -> None:
    all_steps = steps()
    build = index_of(lambda a, ns: a[1] == "build")
    sarif = index_of(lambda a, ns: a[1] == "cves" and ns.format == "sarif")
    gate = index_of(lambda a, ns: a[1] == "cves" and ns.exit_code)
    sarif_out = next(ns.output for i, a, ns in all_commands() if i == sarif and a[1] == "cves")
    upload = [i for i, s in enumerate(all_steps)
              if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif@")]
    assert len(upload) == 1
    assert Path(all_steps[upload[0]]["with"]["sarif_file"]) == sarif_out
    assert all_steps[upload[0]].get("if") == "always()"  # the findings are uploaded even when the gate fails
    assert build < sarif < upload[0] < gate
    # the gate scans what was built
    build_ns = next(ns for i, a, ns in all_commands() if i == build)
    gate_ns = next(ns for i, a, ns in all_commands() if i == gate and a[1] == "cves")
    assert build_ns.output == gate_ns.image


def test_push_sign_verify_with_credentials_from_the_environment() -> None:
    all_steps = steps()
    push = index_of(lambda a, ns: a[1] == "push")
    sign = index_of(lambda a, ns: a[1] == "sign")
    verify = index_of(lambda a, ns: a[1] == "verify")
    assert push < sign < verify
    for i in (push, sign, verify):
        step = all_steps[i]
        assert step["if"] == "github.event_name != 'pull_request'"
        env = step["env"]
        assert env["GIROPOPS_REGISTRY_USERNAME"] == "${{ secrets.REGISTRY_USERNAME }}"
        assert env["GIROPOPS_REGISTRY_PASSWORD"] == "${{ secrets.REGISTRY_PASSWORD }}"
    assert all_steps[sign]["env"]["COSIGN_PASSWORD"] == "${{ secrets.COSIGN_PASSWORD }}"
    for step in all_steps:
        # secrets reach commands through env only: never on a command line, where logs would show them
        assert "secrets." not in step.get("run", "")
    for _, _argv, ns in all_commands():
        assert not getattr(ns, "password_stdin", False)
    signed = next(ns for i, a, ns in all_commands() if i == sign and a[1] == "sign")
    verified = next(ns for i, a, ns in all_commands() if i == verify and a[1] == "verify")
    assert signed.image == verified.image and "@$DIGEST" in signed.image  # the pushed digest, not a tag
    assert signed.annotations == verified.annotations


def test_the_readme_set_up_and_step_by_step_commands_parse() -> None:
    """The README leads with these; they must stay runnable as the CLI changes."""
    text = (REPO_ROOT / "README.md").read_text()
    lead = text[text.index("## Set up"):text.index("## Moving and inspecting images")]
    blocks = re.findall(r"```sh\n(.*?)```", lead, re.S)
    commands = [argv for block in blocks for argv in giropops_commands(block)]
    assert len(commands) >= 15
    for argv in commands:
        parse(argv)
    assert "./scripts/run" in blocks[0] and any("./scripts/test" in b for b in blocks)
    assert sum(b.count("./scripts/") for b in blocks) == 2  # exactly two set-up commands


def test_the_image_is_named_before_it_is_built_and_lower_case() -> None:
    all_steps = steps()
    build = index_of(lambda a, ns: a[1] == "build")
    build_ns = next(ns for i, a, ns in all_commands() if i == build)
    assert build_ns.tag == ["$IMAGE"]
    naming = [i for i, s in enumerate(all_steps) if 'IMAGE=' in s.get("run", "") and "GITHUB_ENV" in s.get("run", "")]
    assert naming and naming[0] < build
    assert "${GITHUB_REPOSITORY,,}" in all_steps[naming[0]]["run"]  # bash lower-casing: references must be
