"""Hostile build specs (issue 14, items 7 and 14): endless or odd files, deep YAML, files outside the context.

Each attack ends in one error line naming what was wrong, exit 64, no traceback, no output written and no
quote of what the file read contains.  None of these needs a package download: the spec fails before.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from giropops.builder.errors import SpecError
from giropops.builder.spec import load_spec
from giropops.cli.build import build_context
from giropops.cli.exitcodes import USAGE
from tests.support.paths import REPO_ROOT

SECRET = "TOPSECRET-7f3a9c"  # what a host file holds; no error may quote it


def _limit_memory() -> None:
    # Without the fix `include: /dev/zero` reads until memory runs out: cap the child so it fails fast instead.
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def _build(spec: Path, *extra: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIROPOPS_CACHE_DIR": str(cwd / ".cache")}
    return subprocess.run(
        [sys.executable, "-m", "giropops", "build", "-f", str(spec), "-t", "localhost/x:1",
         "--output", f"archive://{cwd / 'out.tar'}", *extra],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False, env=env, preexec_fn=_limit_memory,
    )


def _assert_one_error(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == USAGE, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("giropops: error: ")
    for word in words:
        assert word in lines[0]
    assert SECRET not in proc.stderr + proc.stdout
    return lines[0]


def _nothing_written(where: Path, before: set[str]) -> None:
    assert not (where / "out.tar").exists()
    assert {p.name for p in where.iterdir()} - {".cache"} == before


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """``tmp_path/project`` (the spec's directory, the build runs there) beside ``tmp_path/secret.yaml``."""
    (tmp_path / "secret.yaml").write_text(f"password: : {SECRET}\n")  # invalid YAML: PyYAML quotes the line
    (tmp_path / "secret.txt").write_text(f"-{SECRET}\n")
    d = tmp_path / "project"
    d.mkdir()
    return d


# --------------------------------------------------------------------------- item 7: files that are not specs


def test_include_dev_zero_is_refused_without_reading_it(project: Path) -> None:
    (project / "giropops.yaml").write_text("include: /dev/zero\n")
    before = {p.name for p in project.iterdir()}
    proc = _build(project / "giropops.yaml", "--context", "/", cwd=project)
    _assert_one_error(proc, "/dev/zero", "not a regular file")
    _nothing_written(project, before)


def test_include_of_a_fifo_does_not_wait_for_a_writer(project: Path) -> None:
    os.mkfifo(project / "pipe.yaml")
    (project / "giropops.yaml").write_text("include: pipe.yaml\n")
    before = {p.name for p in project.iterdir()}
    _assert_one_error(_build(project / "giropops.yaml", cwd=project), "pipe.yaml", "not a regular file")
    _nothing_written(project, before)


def test_include_of_a_directory(project: Path) -> None:
    (project / "specs").mkdir()
    (project / "giropops.yaml").write_text("include: specs\n")
    before = {p.name for p in project.iterdir()}
    _assert_one_error(_build(project / "giropops.yaml", cwd=project), "specs", "is a directory")
    _nothing_written(project, before)


def test_non_utf8_spec(project: Path) -> None:
    (project / "giropops.yaml").write_bytes(b"base: scratch\nlabels:\n  a: \xff\xfe\x00caf\xe9\n")
    before = {p.name for p in project.iterdir()}
    _assert_one_error(_build(project / "giropops.yaml", cwd=project), "giropops.yaml", "not UTF-8")
    _nothing_written(project, before)


@pytest.mark.parametrize("nest", ["[" * 50_000 + "]" * 50_000, "{a: " * 50_000 + "}" * 50_000, "[" * 100 + "]" * 100])
def test_deeply_nested_yaml(project: Path, nest: str) -> None:
    (project / "giropops.yaml").write_text(f"labels: {nest}\n")
    before = {p.name for p in project.iterdir()}
    _assert_one_error(_build(project / "giropops.yaml", cwd=project), "giropops.yaml", "nested too deeply")
    _nothing_written(project, before)


def test_oversized_spec(project: Path) -> None:
    (project / "giropops.yaml").write_text("labels:\n" + "".join(f"  k{i}: {'v' * 100}\n" for i in range(20_000)))
    before = {p.name for p in project.iterdir()}
    _assert_one_error(_build(project / "giropops.yaml", cwd=project), "larger than")
    _nothing_written(project, before)


def test_yaml_errors_say_where_not_what(project: Path) -> None:
    (project / "giropops.yaml").write_text(f"labels:\n  a: b\n  key: : {SECRET}\n")
    line = _assert_one_error(_build(project / "giropops.yaml", cwd=project), "not valid YAML", "line 3")
    assert "key" not in line.split("not valid YAML", 1)[1]


# --------------------------------------------------------------------------- item 14: the build context


def test_include_outside_the_spec_directory_is_refused(project: Path) -> None:
    (project / "giropops.yaml").write_text("include: ../secret.yaml\n")
    before = {p.name for p in project.iterdir()}
    _assert_one_error(_build(project / "giropops.yaml", cwd=project), "outside the build context", "--context")
    _nothing_written(project, before)


def test_absolute_include_is_refused(project: Path) -> None:
    (project / "giropops.yaml").write_text(f"include: {project.parent / 'secret.yaml'}\n")
    _assert_one_error(_build(project / "giropops.yaml", cwd=project), "outside the build context")


def test_include_through_a_symlink_leading_out_is_refused(project: Path) -> None:
    (project / "specs").symlink_to(project.parent)
    (project / "giropops.yaml").write_text("include: specs/secret.yaml\n")
    _assert_one_error(_build(project / "giropops.yaml", cwd=project), "outside the build context")


def test_requirements_file_outside_is_refused(project: Path) -> None:
    (project / "giropops.yaml").write_text("python:\n  requirements-file: ../secret.txt\n")
    _assert_one_error(_build(project / "giropops.yaml", cwd=project), "python.requirements-file",
                      "outside the build context")


def test_spec_run_from_a_parent_directory_is_confined_to_its_own(project: Path) -> None:
    # The spec lies below the current directory: the current directory is the context (docker build -f X .).
    # From elsewhere (here: a sibling directory) it is the spec's own directory.
    (project / "giropops.yaml").write_text("include: ../secret.yaml\n")
    elsewhere = project.parent / "elsewhere"
    elsewhere.mkdir()
    _assert_one_error(_build(project / "giropops.yaml", cwd=elsewhere), "outside the build context")


def test_context_flag_widens_the_context(project: Path) -> None:
    (project.parent / "base.yaml").write_text('labels: {from-base: "1"}\n')
    (project / "giropops.yaml").write_text("include: ../base.yaml\n")
    with pytest.raises(SpecError, match="outside the build context"):
        load_spec(project / "giropops.yaml")
    spec = load_spec(project / "giropops.yaml", build_context(project / "giropops.yaml", str(project.parent),
                                                              project))
    assert ("from-base", "1") in spec.labels


def test_project_outside_is_refused(project: Path) -> None:
    (project.parent / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (project / "giropops.yaml").write_text("python:\n  project: ..\n")
    with pytest.raises(SpecError, match=r"'python.project' .* outside the build context"):
        load_spec(project / "giropops.yaml")


def test_project_through_a_symlink_leading_out_is_refused(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (project / "app").symlink_to(outside)
    (project / "giropops.yaml").write_text("python:\n  project: app\n")
    with pytest.raises(SpecError, match="outside the build context"):
        load_spec(project / "giropops.yaml")


def test_package_directory_under_a_symlink_leading_out_is_refused(project: Path, tmp_path: Path) -> None:
    loot = tmp_path / "loot"
    loot.mkdir()
    (loot / "__init__.py").write_text(f"# {SECRET}\n")
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (project / "src").mkdir()
    (project / "src" / "pkg").symlink_to(loot)
    (project / "giropops.yaml").write_text("python:\n  project: .\n  packages: [pkg]\n")
    with pytest.raises(SpecError, match=r"'python\.packages' 'pkg'.*outside the build context"):
        load_spec(project / "giropops.yaml")


def test_wheels_outside_are_refused(project: Path) -> None:
    (project / "giropops.yaml").write_text("python:\n  wheels: [../secret.txt]\n")
    with pytest.raises(SpecError, match=r"'python.wheels\[0\]'.*outside the build context"):
        load_spec(project / "giropops.yaml")


def test_requirements_file_errors_name_the_line_not_its_text(project: Path) -> None:
    from giropops.builder.python import pip_layer_key  # the requirements are read for the layer's cache key

    (project / "reqs.txt").write_text(f"flask>=3\n\n-{SECRET}\n")
    (project / "giropops.yaml").write_text("python:\n  requirements-file: reqs.txt\n")
    spec = load_spec(project / "giropops.yaml")
    assert spec.python is not None
    with pytest.raises(SpecError) as err:
        pip_layer_key(spec.python, "3.11", ["manylinux_2_36_x86_64"], {})
    assert "line 3" in str(err.value) and SECRET not in str(err.value)


REPOSITORY_SPECS = ["giropops.yaml", *(f"specs/{p.name}" for p in sorted((REPO_ROOT / "specs").glob("*.yaml")))]


@pytest.mark.parametrize("spec", REPOSITORY_SPECS)
def test_repository_specs_load_from_the_repository_root(spec: str) -> None:
    # As the README runs them: `giropops build [-f specs/...]` in the repository root.
    path = REPO_ROOT / spec
    loaded = load_spec(path, build_context(path, None, REPO_ROOT))
    if loaded.python is not None and loaded.python.project is not None:
        assert loaded.python.project == REPO_ROOT


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("a = " + "[" * 50_000 + "]" * 50_000 + "\n", "nested too deeply"),
        (b"[project]\nname = \"caf\xe9\"\n", "not UTF-8"),
        (f"[project]\nname = {SECRET}\n", "cannot read pyproject.toml"),
    ],
)
def test_hostile_pyproject_is_one_clear_error(project: Path, content: str | bytes, words: str) -> None:
    from giropops.builder.python import app_tree  # reads pyproject.toml when the app layer is made

    pyproject = project / "pyproject.toml"
    pyproject.write_bytes(content if isinstance(content, bytes) else content.encode())
    (project / "giropops.yaml").write_text("python:\n  project: .\n")
    spec = load_spec(project / "giropops.yaml")
    assert spec.python is not None
    with pytest.raises(SpecError, match=words) as err:
        app_tree(spec.python, "/usr/bin/python3")
    assert SECRET not in str(err.value)
