"""docs/examples: the Kubernetes Indexed Job and the GitHub Actions matrix stay correct.

Every ``giropops`` line of their scripts goes through the real argument parser (as
``tests/test_workflow.py`` does for the project's own workflow), with each shard's value
substituted; the shards must cover 0..N-1 exactly once and agree with the job's size.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from giropops.fleet.sources import Shard
from tests.support.paths import REPO_ROOT
from tests.test_workflow import giropops_commands, parse

EXAMPLES = REPO_ROOT / "docs" / "examples"
JOB = EXAMPLES / "fleet-indexed-job.yaml"
MATRIX = EXAMPLES / "fleet-matrix.yml"


def _load(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def _parsed(script: str, substitutions: dict[str, str]) -> list[tuple[list[str], argparse.Namespace]]:
    for old, new in substitutions.items():
        script = script.replace(old, new)
    out = []
    for argv in giropops_commands(script):
        if ">" in argv:  # a shell redirection ends the command's own arguments
            argv = argv[:argv.index(">")]
        out.append((argv, parse(argv)))
    return out


def test_the_docs_link_both_examples() -> None:
    text = (REPO_ROOT / "docs" / "fleet.md").read_text()
    assert "examples/fleet-indexed-job.yaml" in text and "examples/fleet-matrix.yml" in text


def test_indexed_job() -> None:
    doc = _load(JOB)
    assert doc["apiVersion"] == "batch/v1" and doc["kind"] == "Job"
    spec = doc["spec"]
    assert spec["completionMode"] == "Indexed"
    count = spec["completions"]
    (container,) = spec["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:2] == ["/bin/sh", "-ec"]
    shards = []
    for index in range(count):
        commands = _parsed(command[2], {"$JOB_COMPLETION_INDEX": str(index)})
        assert [a[1] for a, _ in commands] == ["db", "scan"]
        db_ns, scan_ns = commands[0][1], commands[1][1]
        assert db_ns.from_ref and db_ns.key  # a signed database from our own registry
        assert scan_ns.index == "$INDEX_URL" and scan_ns.workers >= 1
        shards.append(scan_ns.shard)
    assert shards == [Shard(k, count) for k in range(count)]
    env = {e["name"] for e in container["env"]}
    assert {"INDEX_URL", "REGISTRY"} <= env


def test_actions_matrix() -> None:
    doc = _load(MATRIX)
    jobs = doc["jobs"]
    values = jobs["scan"]["strategy"]["matrix"]["shard"]
    shards = []
    for value in values:
        commands = [c for step in jobs["scan"]["steps"] if "run" in step
                    for c in _parsed(step["run"], {"${{ matrix.shard }}": str(value)})]
        names = [argv[1] for argv, _ in commands]
        assert names == ["db", "scan"]
        scan_ns = commands[1][1]
        assert scan_ns.exit_code and scan_ns.index == "$INDEX_URL"
        shards.append(scan_ns.shard)
    assert sorted(shards, key=lambda s: s.index) == [Shard(k, len(values)) for k in range(len(values))]
    report = [argv[1] for step in jobs["report"]["steps"] if "run" in step
              for argv, _ in _parsed(step["run"], {})]
    assert report == ["db", "index", "where", "affected"]
    assert jobs["report"]["needs"] == "scan"


def test_the_checker_fails_on_a_wrong_shard_or_flag() -> None:
    with pytest.raises(AssertionError, match="does not parse"):
        parse(["giropops", "scan", "r.example", "--shard", "4/4"])
    with pytest.raises(AssertionError, match="does not parse"):
        parse(["giropops", "scan", "r.example", "--shards", "0/4"])
