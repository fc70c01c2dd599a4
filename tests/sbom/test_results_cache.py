"""``giropops sbom archive://FILE`` run again on the unchanged file writes the document it wrote before,
without opening the archive (``giropops.sbom.results``); any change to the file, the request or the
environment that can change the document is a miss."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from giropops.sbom import results
from tests.support.imports import MODULES_WRAPPER
from tests.support.sbom_images import Entry, layer_from_entries, write_docker_archive

STATUS = (
    b"Package: alpha\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"
    b"Package: bravo\nStatus: install ok installed\nVersion: 2.0\nArchitecture: amd64\n\n"
)


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[bytes], modules: set[str]) -> None:
        self.proc = proc
        self.modules = modules

    @property
    def from_result(self) -> bool:
        """The document came from a stored result: the catalogers and the transport were never imported."""
        return "giropops.sbom.generate" not in self.modules and "giropops.oci.transport" not in self.modules


@pytest.fixture(scope="module")
def settled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory of archives whose change time is older than the settle time (created, then waited for)."""
    work = tmp_path_factory.mktemp("results")
    layer = layer_from_entries([Entry("var/lib/dpkg/status", STATUS)])
    for name in ("a", "b", "c", "d"):
        write_docker_archive(work / f"{name}.tar", [layer])
    time.sleep(results.SETTLE_SECONDS + 0.2)
    yield work


def sbom(tar: Path, cache: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    out = cache.parent / "modules.json"
    proc = subprocess.run([sys.executable, "-c", MODULES_WRAPPER, str(out), "sbom", f"archive://{tar}", *args],
                          env={**os.environ, "GIROPOPS_CACHE_DIR": str(cache), **(env or {})},
                          capture_output=True, timeout=120)
    doc = json.loads(out.read_text())
    assert (doc["code"] or 0) == proc.returncode
    return Run(proc, set(doc["modules"]))


def test_the_same_request_on_the_unchanged_archive_is_served_from_the_result(settled: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cold = sbom(settled / "a.tar", cache, "-f", "cyclonedx-json")
    assert cold.proc.returncode == 0 and not cold.from_result
    assert [c["name"] for c in json.loads(cold.proc.stdout)["components"]] == ["alpha", "bravo"]
    warm = sbom(settled / "a.tar", cache, "-f", "cyclonedx-json")
    assert warm.from_result and warm.proc.returncode == 0
    assert warm.proc.stdout == cold.proc.stdout and warm.proc.stderr == b""
    assert "pathlib" not in warm.modules and "dataclasses" not in warm.modules  # a hit needs neither
    out = tmp_path / "out.json"
    to_file = sbom(settled / "a.tar", cache, "-f", "cyclonedx-json", "-o", str(out))
    assert to_file.from_result and out.read_bytes() == cold.proc.stdout


def test_another_request_is_a_miss(settled: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    sbom(settled / "b.tar", cache, "-f", "json")
    for args, env in ((("-f", "spdx-json"), None), (("-f", "json", "--only-package-type", "apk"), None),
                      (("-f", "json"), {"GIROPOPS_MAX_EXPANSION": "50"})):
        run = sbom(settled / "b.tar", cache, *args, env=env)
        assert run.proc.returncode == 0 and not run.from_result, (args, env)
    assert json.loads(sbom(settled / "b.tar", cache, "-f", "json", "--only-package-type", "apk").proc.stdout)[
        "packages"] == []
    # a timestamp, or --no-cache, is never served from (nor stored as) a result
    assert sbom(settled / "b.tar", cache, "-f", "spdx-json").from_result  # stored by the loop above
    stamped = sbom(settled / "b.tar", cache, "-f", "spdx-json", env={"SOURCE_DATE_EPOCH": "86400"})
    assert not stamped.from_result and b"1970-01-02T00:00:00Z" in stamped.proc.stdout
    assert not sbom(settled / "b.tar", cache, "-f", "json", "--no-cache").from_result
    assert sbom(settled / "b.tar", cache, "-f", "json").from_result  # the first one is still there


def test_an_archive_edited_in_place_is_read_again(settled: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    tar = settled / "c.tar"
    sbom(tar, cache)
    assert sbom(tar, cache).from_result
    st = tar.stat()
    data = tar.read_bytes()
    with open(tar, "r+b") as f:
        f.seek(data.index(b"Package: alpha\n"))
        f.write(b"Package: omega\n")
    os.utime(tar, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert tar.stat().st_size == st.st_size and tar.stat().st_mtime_ns == st.st_mtime_ns
    run = sbom(tar, cache)
    assert not run.from_result
    assert run.proc.returncode != 0 and run.proc.stdout == b""
    assert b"does not match its digest" in run.proc.stderr and run.proc.stderr.count(b"\n") == 1


def test_a_file_written_just_now_gets_no_result(tmp_path: Path) -> None:
    tar = write_docker_archive(tmp_path / "fresh.tar", [layer_from_entries([Entry("var/lib/dpkg/status", STATUS)])])
    cache = tmp_path / "cache"
    sbom(tar, cache)
    assert not (cache / results.AREA).exists()
    assert not sbom(tar, cache).from_result


def test_an_entry_that_is_not_the_requests_is_a_miss(settled: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cold = sbom(settled / "d.tar", cache)
    [entry] = list((cache / results.AREA).iterdir())
    raw = entry.read_bytes()
    entry.write_bytes(raw.replace(b"d.tar", b"e.tar", 1))  # another key under this name
    run = sbom(settled / "d.tar", cache)
    assert not run.from_result and run.proc.stdout == cold.proc.stdout
    entry.write_bytes(b"GIROPOPS-SBOM-RESULT-1\n\xff")  # truncated
    assert sbom(settled / "d.tar", cache).proc.stdout == cold.proc.stdout


# --------------------------------------------------------------------------- served before argparse (cli._stored)


def test_a_stored_result_is_served_before_argparse_with_the_same_bytes_and_exit(settled: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    tar = settled / "a.tar"
    cold_out, warm_out, full_out = tmp_path / "cold.json", tmp_path / "warm.json", tmp_path / "full.json"
    cold = sbom(tar, cache, "--format", "spdx-json", "-o", str(cold_out))
    # the full command ran (a plain command line: parsed without argparse, cli.sbom.parse_plain)
    assert cold.proc.returncode == 0 and "giropops.cli.sbom" in cold.modules and not cold.from_result
    warm = sbom(tar, cache, "-o", str(warm_out), "--format=spdx-json")
    assert warm.from_result and "argparse" not in warm.modules and "giropops.cli.sbom" not in warm.modules
    assert (warm.proc.returncode, warm.proc.stdout, warm.proc.stderr) == (0, b"", b"")
    assert warm_out.read_bytes() == cold_out.read_bytes()
    assert warm_out.stat().st_mode == cold_out.stat().st_mode
    # a shape the fast path leaves alone (an abbreviated option): the full path serves the same result
    full = sbom(tar, cache, "--form", "spdx-json", "-o", str(full_out))
    assert full.from_result and "argparse" in full.modules and full_out.read_bytes() == cold_out.read_bytes()
    # to stdout, the default format
    listed_cold = sbom(tar, cache)
    listed_warm = sbom(tar, cache)
    assert "giropops.cli.sbom" in listed_cold.modules and "giropops.cli.sbom" not in listed_warm.modules
    assert listed_warm.proc.stdout == listed_cold.proc.stdout and b"alpha" in listed_warm.proc.stdout
    assert listed_warm.proc.stderr == b"" and listed_warm.proc.returncode == 0


def test_the_fast_path_gives_the_full_paths_error_for_a_missing_output_directory(settled: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    tar = settled / "b.tar"
    sbom(tar, cache, "-f", "json")
    missing = tmp_path / "nowhere" / "out.json"
    run = sbom(tar, cache, "-f", "json", "-o", str(missing))
    assert run.proc.returncode == 64 and run.proc.stdout == b""
    assert run.proc.stderr == f"giropops: error: {missing}: directory {missing.parent} does not exist\n".encode()
    assert not missing.parent.exists()


def test_the_fast_path_reads_a_changed_archive_again(settled: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    tar = write_docker_archive(tmp_path / "image.tar", [layer_from_entries([Entry("var/lib/dpkg/status", STATUS)])])
    time.sleep(results.SETTLE_SECONDS + 0.2)
    cold = sbom(tar, cache, "-f", "json")
    assert sbom(tar, cache, "-f", "json").from_result
    other = layer_from_entries([Entry("var/lib/dpkg/status", STATUS.replace(b"bravo", b"zulu"))])
    write_docker_archive(tmp_path / "new.tar", [other])
    os.replace(tmp_path / "new.tar", tar)  # replaced by a rename: another inode
    run = sbom(tar, cache, "-f", "json")
    assert not run.from_result and "giropops.cli.sbom" in run.modules
    names = [p["name"] for p in json.loads(run.proc.stdout)["packages"]]
    assert names == ["alpha", "zulu"] and run.proc.stdout != cold.proc.stdout


@pytest.mark.parametrize(("argv", "expected"), [
    (["archive://x.tar"], {"image": "archive://x.tar"}),
    (["-f", "json", "archive://x.tar", "--output=o", "--platform", "linux/amd64"],
     {"image": "archive://x.tar", "format": "json", "output": "o", "platform": "linux/amd64"}),
    (["archive://x.tar", "--format=list", "-o", "o.txt"], {"image": "archive://x.tar", "format": "list",
                                                          "output": "o.txt"}),
])
def test_the_shapes_the_fast_path_takes(argv: list[str], expected: dict[str, str]) -> None:
    from giropops.cli._stored import parse

    assert parse(argv) == expected


@pytest.mark.parametrize("argv", [
    [], ["-f", "json"], ["a", "b"], ["a", "--form", "json"], ["a", "-fjson"], ["a", "-o=x"], ["a", "-f"],
    ["a", "-f", "json", "-f", "list"], ["a", "-o", "-"], ["a", "--output="], ["a", "--no-cache"], ["a", "--timestamp"],
    ["a", "--only-package-type", "deb"], ["a", "--timeout", "3"], ["a", "--insecure"], ["a", "-h"], ["--", "a"],
    ["a", "--password-stdin"],
])
def test_every_other_shape_goes_to_the_full_parser(argv: list[str]) -> None:
    from giropops.cli._stored import parse

    assert parse(argv) is None


def test_the_code_left_out_of_the_fingerprint_is_never_imported_to_make_an_sbom() -> None:
    """Every giropops module that making (or serving) an SBOM can import, followed through every import
    statement (at module level or in a function) from the sbom and oci packages and the sbom command's
    modules, lies outside ``results.NOT_SBOM_CODE``: a change there cannot change a stored document."""
    import ast

    src = Path(results.__file__).resolve().parents[1]

    def path_of(module: str) -> Path | None:
        base = src.parent.joinpath(*module.split("."))
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                return candidate
        return None

    def imports(module: str, path: Path) -> set[str]:
        found: set[str] = set()
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
        return {m for m in found if m.startswith("giropops.") and path_of(m) is not None}

    start = [f"giropops.{p.relative_to(src).with_suffix('').as_posix().replace('/', '.')}".removesuffix(".__init__")
             for top in ("sbom", "oci") for p in (src / top).rglob("*.py")]
    start += ["giropops.cli.sbom", "giropops.cli._stored", "giropops.cli._registry", "giropops.cli.exitcodes"]
    seen: set[str] = set()
    todo = list(start)
    while todo:
        module = todo.pop()
        if module in seen or module == "giropops.cli.main":  # main dispatches: only the sbom command runs
            continue
        seen.add(module)
        path = path_of(module)
        assert path is not None, module
        todo.extend(imports(module, path) - seen)
    assert len(seen) > 60 and "giropops.sbom.catalogers.dpkg" in seen and "giropops.oci.archive" in seen
    assert sorted(m for m in seen if m.split(".")[1] in results.NOT_SBOM_CODE) == []


# --------------------------------------------------------------------------- OCI layout directories


def layout_of(tar: Path, directory: Path) -> Path:
    from giropops.oci.transport import TransportOptions, open_image, write_image

    write_image(open_image(f"archive://{tar}", None, TransportOptions()), f"oci-dir://{directory}")
    return directory


def sbom_of(spec: str, cache: Path, *args: str) -> Run:
    out = cache.parent / "modules.json"
    proc = subprocess.run([sys.executable, "-c", MODULES_WRAPPER, str(out), "sbom", spec, *args],
                          env={**os.environ, "GIROPOPS_CACHE_DIR": str(cache)}, capture_output=True, timeout=120)
    doc = json.loads(out.read_text())
    assert (doc["code"] or 0) == proc.returncode
    return Run(proc, set(doc["modules"]))


def test_an_unchanged_layout_directory_is_served_from_its_result(settled: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    layout = layout_of(settled / "a.tar", tmp_path / "layout")
    time.sleep(results.SETTLE_SECONDS + 0.2)
    spec = f"oci-dir://{layout}"
    cold = sbom_of(spec, cache, "-f", "cyclonedx-json")
    assert cold.proc.returncode == 0 and not cold.from_result
    warm = sbom_of(spec, cache, "-f", "cyclonedx-json")
    assert warm.from_result and "argparse" not in warm.modules
    assert (warm.proc.returncode, warm.proc.stdout, warm.proc.stderr) == (0, cold.proc.stdout, cold.proc.stderr)
    assert [c["name"] for c in json.loads(warm.proc.stdout)["components"]] == ["alpha", "bravo"]
    # a blob rewritten in place (same size, same mtime): read again, and its digest no longer matches
    [layer] = [p for p in (layout / "blobs" / "sha256").iterdir() if b"Package: alpha" in p.read_bytes()]
    st = layer.stat()
    data = layer.read_bytes()
    layer.write_bytes(data.replace(b"Package: alpha\n", b"Package: omega\n"))
    os.utime(layer, ns=(st.st_atime_ns, st.st_mtime_ns))
    edited = sbom_of(spec, cache, "-f", "cyclonedx-json")
    assert not edited.from_result and edited.proc.returncode != 0 and edited.proc.stdout == b""
    assert b"does not match its digest" in edited.proc.stderr and edited.proc.stderr.count(b"\n") == 1
    layer.write_bytes(data)  # restored: a new change time, so read again (and proven) once more
    again = sbom_of(spec, cache, "-f", "cyclonedx-json")
    assert not again.from_result and again.proc.stdout == cold.proc.stdout


def test_a_layout_that_gains_an_image_is_read_again(settled: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    layout = layout_of(settled / "b.tar", tmp_path / "layout")
    time.sleep(results.SETTLE_SECONDS + 0.2)
    spec = f"oci-dir://{layout}"
    first = sbom_of(spec, cache, "-f", "json")
    assert sbom_of(spec, cache, "-f", "json").from_result
    other = write_docker_archive(tmp_path / "other.tar", [layer_from_entries([Entry(
        "var/lib/dpkg/status", STATUS.replace(b"bravo", b"zulu"))])])
    layout_of(other, layout)  # a second image: index.json now lists two, which the full path refuses to guess
    run = sbom_of(spec, cache, "-f", "json")
    assert not run.from_result and run.proc.returncode != 0 and run.proc.stdout == b""
    assert run.proc.stderr.count(b"\n") == 1 and first.proc.returncode == 0
