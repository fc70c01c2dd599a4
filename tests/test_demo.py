"""``giropops demo`` end to end: run in a fresh directory, then check every artefact it claims against real tools.

The image must load into podman and serve the app with a real redis-server, the SBOMs must pass the
CycloneDX schema and the SPDX tools, the signature must verify with ``giropops verify`` and the generated
public key, and the summary's numbers must match what is measured here independently (file sizes on disk,
the layout's blobs, Trivy's inventory, the written reports).  A second run on a machine that never filled
its database fetches what the image needs (from a local stand-in for the OSV exports) and shows the same
counts; offline, it says the scan could not run and how to fill the database, and still succeeds.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from giropops.demo import steps as demo_steps
from giropops.sign.keys import SigningKey, write_key_pair
from giropops.vuln.db.importer import import_paths
from giropops.vuln.report.view import counts_text
from tests.sbom.conftest import inventory_of_cyclonedx, trivy_cyclonedx
from tests.support.osv_export import OSVExportServer, build_export
from tests.support.paths import REPO_ROOT, VULNDATA
from tests.support.podman import Podman
from tests.support.services import require_binary

TAG = "localhost/giropops-senhas:e2e"
PASSWORD = "correct horse battery staple"


@dataclass
class DemoRun:
    cwd: Path
    workdir: Path
    proc: subprocess.CompletedProcess[str]
    env: dict[str, str]

    @property
    def summary(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.workdir / "summary.json").read_text())
        return data


def giropops(*args: str, cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "giropops", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One builder/SBOM cache for every demo run of the session: the conventional image is built once."""
    return tmp_path_factory.mktemp("demo-cache")


DEMO_ADVISORIES = [VULNDATA / "debian12.osv.jsonl.gz", VULNDATA / "debian12-dsa-dla.osv.jsonl.gz",
                   VULNDATA / "pypi.osv.jsonl.gz"]


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian 12 and PyPI advisories only (what the image holds), imported from the cut-down snapshots in tests/data."""
    for f in DEMO_ADVISORIES:
        assert f.is_file(), f
    path = tmp_path_factory.mktemp("demo-db") / "vulndb.sqlite3"
    import_paths(path, DEMO_ADVISORIES)
    return path


@pytest.fixture(scope="session")
def osv_exports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OSVExportServer]:
    """The same advisories as ``demo_db``, served as the OSV exports lay them out (plus Alpine's folder,
    which a Debian image must not fetch)."""
    root = tmp_path_factory.mktemp("demo-osv-export")
    build_export(DEMO_ADVISORIES, root, ["Debian", "PyPI", "Alpine"])
    server = OSVExportServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def demo_podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    pm = Podman(tmp_path_factory.mktemp("demo-podman"))
    try:
        yield pm
    finally:
        pm.cleanup()


def _env(cache: Path, base: dict[str, str]) -> dict[str, str]:
    env = {**base, "GIROPOPS_CACHE_DIR": str(cache)}
    env.pop("COSIGN_PASSWORD", None)
    env.pop("GIROPOPS_DB", None)
    return env


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory, demo_cache: Path, demo_db: Path,
         demo_podman: Podman) -> Iterator[DemoRun]:
    """``giropops demo`` in a fresh directory, with podman (private storage) and redis-server available."""
    require_binary("redis-server")
    cwd = tmp_path_factory.mktemp("demo-fresh")
    env = {**_env(demo_cache, demo_podman.env), "COSIGN_PASSWORD": PASSWORD}
    proc = giropops("demo", "--spec", str(REPO_ROOT / "giropops.yaml"), "--db", str(demo_db), "--tag", TAG,
                    "--port", "0", cwd=cwd, env=env)
    run = DemoRun(cwd, cwd / "giropops-demo", proc, env)
    try:
        yield run
    finally:
        state = run.workdir / "run.json"
        redis_pid = json.loads(state.read_text()).get("redis_pid") if state.exists() else None
        stopped = stop_as_printed(run)
        assert stopped.returncode == 0, stopped.stderr
        if redis_pid:
            deadline = time.monotonic() + 10
            while Path(f"/proc/{redis_pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not Path(f"/proc/{redis_pid}").exists(), "demo --stop left its redis-server running"
        assert demo_podman.run("ps", "-a", "-q").stdout.strip() == ""


@pytest.fixture(scope="session")
def demo_without_db(tmp_path_factory: pytest.TempPathFactory, demo_cache: Path, demo: DemoRun,
                    osv_exports: OSVExportServer) -> DemoRun:
    """A second user on a machine with "internet" (the local exports): fresh directory, database never
    filled, no COSIGN_PASSWORD, no terminal, --no-run."""
    cwd = tmp_path_factory.mktemp("demo-nodb")
    env = {**_env(demo_cache, dict(os.environ)), "GIROPOPS_OSV_URL": osv_exports.url}
    env.pop("GIROPOPS_OFFLINE", None)
    osv_exports.requests.clear()
    proc = giropops("demo", "--spec", str(REPO_ROOT / "giropops.yaml"), "--db", str(cwd / "never-updated.sqlite3"),
                    "--no-run", cwd=cwd, env=env)
    return DemoRun(cwd, cwd / "giropops-demo", proc, env)


def without_venv(env: dict[str, str]) -> dict[str, str]:
    """A shell where the virtualenv was never activated: no VIRTUAL_ENV, no venv bin on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep) if d and d != venv_bin)
    out = {k: v for k, v in env.items() if k != "VIRTUAL_ENV"}
    out["PATH"] = path or "/usr/bin:/bin"
    return out


def stop_as_printed(run: DemoRun) -> subprocess.CompletedProcess[str]:
    """The stop command the demo printed, run as printed in a shell without the venv (or --stop if none was)."""
    printed = [line.split("stop it with:", 1)[1].strip() for line in run.proc.stdout.splitlines()
               if "stop it with:" in line]
    if not printed:
        return giropops("demo", "--stop", cwd=run.cwd, env=run.env)
    return subprocess.run(shlex.split(printed[-1]), cwd=run.cwd, env=without_venv(run.env), capture_output=True,
                          text=True, timeout=300, check=False, stdin=subprocess.DEVNULL)


def _ok(run: DemoRun) -> None:
    assert run.proc.returncode == 0, f"demo failed:\n{run.proc.stdout}\n{run.proc.stderr[-3000:]}"
    assert "Traceback" not in run.proc.stderr


# --------------------------------------------------------------------------- the run itself


def test_every_step_prints_and_the_run_ends_with_a_summary(demo: DemoRun) -> None:
    _ok(demo)
    out = demo.proc.stdout
    for n, word in enumerate(("build", "sbom", "scan", "compare", "sign + verify", "run"), start=1):
        assert f"[{n}/6] {word}" in out
    summary_lines = out[out.index("\n\n"):].splitlines()
    for label in ("image size ", "packages ", "vulnerabilities ", "shell/apt/dpkg ", "signature: verified",
                  "running:   http://127.0.0.1:"):
        assert any(line.startswith(label) for line in summary_lines), label
    # a stale database (tests/data's advisory snapshots are from early 2025) is said, with the command,
    # and still scanned
    assert "warning: the vulnerability database" in out and "refresh it with 'giropops db update'" in out
    assert demo.summary["database"]["stale"] is True and demo.summary["database"]["scanned"] is True
    # the run ends with a URL that a real request reached
    url = demo.summary["running"]["url"]
    assert f"checked: GET {url}/ -> HTTP 200" in out
    assert summary_lines[-2] == f"running:   {url}"


def test_the_printed_stop_command_works_without_an_activated_venv(demo: DemoRun) -> None:
    _ok(demo)
    (line,) = [x for x in demo.proc.stdout.splitlines() if "stop it with:" in x]
    argv = shlex.split(line.split("stop it with:", 1)[1])
    assert Path(argv[0]).is_absolute() and Path(argv[0]).is_file()  # not a bare `giropops` from an activated venv
    assert argv[1:] == ["demo", "--stop", "--workdir", "giropops-demo"]
    # that it really stops the container and redis-server is checked by the fixture, which stops with it


def test_the_image_loads_into_podman_and_serves_the_app_with_redis(demo: DemoRun, demo_podman: Podman) -> None:
    _ok(demo)
    running = demo.summary["running"]
    assert running is not None, demo.proc.stdout
    assert running["url"] in demo.proc.stdout
    # the engine holds the image the demo built: podman's image id is the config digest of our layout
    layout = demo.workdir / "giropops-senhas.oci"
    manifest = _manifest(layout, demo.summary["images"]["giropops"]["digest"])
    image_id = demo_podman.run("image", "inspect", "--format", "{{.Id}}", TAG).stdout.strip()
    assert "sha256:" + image_id.removeprefix("sha256:") == manifest["config"]["digest"]
    ps = demo_podman.run("ps", "--format", "{{.Names}} {{.Image}}").stdout
    assert f"{running['container']} {TAG}" in ps

    url = running["url"]
    with urllib.request.urlopen(url + "/readyz", timeout=10) as resp:
        ready = json.loads(resp.read())
    assert ready["armazenamento"] == "redis"
    req = urllib.request.Request(url + "/api/gerar-senha", data=json.dumps({"tamanho": 20}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        senha = json.loads(resp.read())["senha"]
    assert len(senha) == 20
    with urllib.request.urlopen(url + "/api/senhas", timeout=10) as resp:
        assert senha in [s["senha"] for s in json.loads(resp.read())]
    # ...and the password is in the redis-server the demo started, not in an embedded store
    # (whatever key the app uses: every list in the database is read)
    client = redis.Redis.from_url(running["store"])
    stored = [item for key in client.scan_iter() if client.type(key) == b"list"
              for item in client.lrange(key, 0, -1)]
    assert any(senha.encode() in item for item in stored)


def _manifest(layout: Path, digest: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes())
    return data


def test_sboms_are_valid_and_count_what_the_summary_says(demo: DemoRun) -> None:
    _ok(demo)
    cdx_path = demo.workdir / "giropops-senhas.cdx.json"
    spdx_path = demo.workdir / "giropops-senhas.spdx.json"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(cdx_path.read_text()) is None
    messages = validate_full_spdx_document(parse_file(str(spdx_path)), spdx_version="SPDX-2.3")
    assert messages == [], [m.validation_message for m in messages[:5]]

    ours = demo.summary["images"]["giropops"]
    inventory = inventory_of_cyclonedx(json.loads(cdx_path.read_text()))
    assert ours["packages"] == len(inventory)
    assert ours["deb_packages"] == sum(1 for t, _, _ in inventory if t == "deb")
    assert ours["python_packages"] == sum(1 for t, _, _ in inventory if t == "python")
    spdx = json.loads(spdx_path.read_text())
    described = [p for p in spdx["packages"]
                 if any(r["referenceType"] == "purl" for r in p.get("externalRefs", []))
                 and p["SPDXID"] != "SPDXRef-Image" and p.get("primaryPackagePurpose") != "OPERATING-SYSTEM"]
    assert len(described) == ours["packages"]
    digest = ours["digest"]
    root = next(p for p in spdx["packages"] if p["SPDXID"] == "SPDXRef-Image")
    assert root["checksums"] == [{"algorithm": "SHA256", "checksumValue": digest.split(":")[1]}]


def test_the_signature_verifies_with_the_generated_key_and_not_with_another(demo: DemoRun, tmp_path: Path) -> None:
    _ok(demo)
    signature = demo.summary["signature"]
    pub = demo.workdir / "cosign.pub"
    key = demo.workdir / "cosign.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    SigningKey.load(key, PASSWORD.encode())  # encrypted with COSIGN_PASSWORD
    target = f"oci-dir://giropops-demo/giropops-senhas.oci:{TAG}"  # relative to where the demo ran, as printed
    assert signature["target"] == target
    assert f"giropops verify --key giropops-demo/cosign.pub '{target}'" in demo.proc.stdout
    ok = giropops("verify", "--key", str(pub), target, cwd=demo.cwd, env=demo.env)
    assert ok.returncode == 0, ok.stderr
    payload = json.loads(ok.stdout)
    assert [p["critical"]["image"]["docker-manifest-digest"] for p in payload] == [signature["digest"]]
    assert signature["digest"] == demo.summary["images"]["giropops"]["digest"]

    other = giropops("generate-key-pair", "--output-key-prefix", str(tmp_path / "other"), cwd=tmp_path,
                     env={**demo.env, "COSIGN_PASSWORD": "x"})
    assert other.returncode == 0, other.stderr
    bad = giropops("verify", "--key", str(tmp_path / "other.pub"), target, cwd=demo.cwd, env=demo.env)
    assert bad.returncode == 12, bad.stderr  # no signature valid for this key


def _layer_paths(layout: Path, digest: str) -> set[str]:
    names: set[str] = set()
    for layer in _manifest(layout, digest)["layers"]:
        with tarfile.open(layout / "blobs" / "sha256" / layer["digest"].split(":")[1], "r:*") as tf:
            names |= {m.name.removeprefix("./") for m in tf.getmembers()}
    return names


def test_summary_numbers_match_independent_measurements(demo: DemoRun, tmp_path: Path) -> None:
    _ok(demo)
    images = demo.summary["images"]
    ours, conv = images["giropops"], images["conventional"]
    archive = demo.workdir / "giropops-senhas.tar"
    conv_archive = demo.workdir / "conventional.tar"
    assert ours["archive_size"] == archive.stat().st_size
    assert conv["archive_size"] == conv_archive.stat().st_size
    assert f"{archive.stat().st_size / 1e6:.1f} MB" in demo.proc.stdout
    assert f"{conv_archive.stat().st_size / 1e6:.1f} MB" in demo.proc.stdout

    # compressed size: config + layers as the layout stores them
    layout = demo.workdir / "giropops-senhas.oci"
    manifest = _manifest(layout, ours["digest"])
    blobs = [manifest["config"], *manifest["layers"]]
    assert ours["compressed_size"] == sum((layout / "blobs" / "sha256" / b["digest"][7:]).stat().st_size for b in blobs)

    # Debian packages, counted by Trivy in each archive
    for side, tar in ((ours, archive), (conv, conv_archive)):
        inventory = inventory_of_cyclonedx(trivy_cyclonedx(tar, tmp_path / f"{tar.stem}.json", tmp_path / "trivy"))
        assert side["deb_packages"] == sum(1 for t, _, _ in inventory if t == "deb"), tar.name
    assert ours["packages"] < conv["packages"] and ours["archive_size"] < conv["archive_size"]
    assert f"{ours['packages']}" in demo.proc.stdout and f"{conv['packages']}" in demo.proc.stdout

    # what distroless leaves out, read straight from the layers
    files = _layer_paths(layout, ours["digest"])
    assert not {"usr/bin/bash", "bin/bash", "usr/bin/dpkg", "usr/bin/apt"} & files
    assert "usr/bin/python3.11" in files
    assert ours["tools"] == []
    assert {"bash", "dash", "apt", "dpkg"} <= set(conv["tools"])

    # vulnerabilities: the JSON report written beside the image, counted here
    report = json.loads((demo.workdir / "giropops-senhas.cves.json").read_text())
    findings = _findings(report)
    assert ours["vulnerabilities_total"] == len(findings) > 0
    by_severity: dict[str, int] = {}
    for f in findings:
        by_severity[f["severity"]] = by_severity.get(f["severity"], 0) + 1
    assert {k: v for k, v in ours["vulnerabilities"].items() if v} == by_severity
    assert conv["vulnerabilities_total"] > ours["vulnerabilities_total"]
    assert f"{ours['vulnerabilities_total']} ({counts_text(ours['vulnerabilities'])})" in demo.proc.stdout


def _findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    """(id, severity) of each finding of a ``giropops/cves/v1`` report (docs/cves-json.md)."""
    assert report["schema"] == "giropops/cves/v1"
    return [{"id": f["vulnerability"]["id"], "severity": f["vulnerability"]["severity"]} for f in report["findings"]]


# --------------------------------------------------------------------------- a database never updated


def test_a_never_filled_database_is_fetched_and_the_first_run_shows_the_counts(
        demo_without_db: DemoRun, demo: DemoRun, osv_exports: OSVExportServer) -> None:
    """The first run on a fresh machine fetches the ecosystems the images hold (Debian, PyPI: not Alpine),
    once, and shows the same counts as a run on a database imported from the same advisories."""
    run = demo_without_db
    _ok(run)
    out = run.proc.stdout
    db = run.cwd / "never-updated.sqlite3"
    assert sorted(p for p, _ in osv_exports.requests) == ["/Debian/all.zip", "/PyPI/all.zip"]
    (note,) = [line.strip() for line in out.splitlines() if "fetched vulnerability data" in line]
    assert note.startswith("fetched vulnerability data for Debian (") and "PyPI (" in note
    assert f"from {osv_exports.url}: " in note
    assert "SCAN NOT RUN" not in out and db.is_file()
    summary = run.summary
    assert summary["database"]["present"] is True and summary["database"]["scanned"] is True
    for image in ("giropops", "conventional"):
        counts = summary["images"][image]["vulnerabilities"]
        assert counts is not None and counts == demo.summary["images"][image]["vulnerabilities"], image
    assert sum(summary["images"]["conventional"]["vulnerabilities"].values()) > 0
    (row,) = [line for line in out.splitlines() if line.startswith("vulnerabilities ")]
    assert "NOT SCANNED" not in row
    assert summary["running"] is None and "skipped (--no-run)" in out
    # no COSIGN_PASSWORD and no terminal: an empty password, said clearly, and the key really uses it
    assert "EMPTY password" in out
    SigningKey.load(run.workdir / "cosign.key", b"")
    ok = giropops("verify", "--key", str(run.workdir / "cosign.pub"), summary["signature"]["target"],
                  cwd=run.cwd, env=run.env)
    assert ok.returncode == 0, ok.stderr


# --------------------------------------------------------------------------- cheap checks


def test_the_conventional_spec_carries_the_same_app_layers_as_giropops_yaml() -> None:
    ours = yaml.safe_load((REPO_ROOT / "giropops.yaml").read_text())
    conv_path = REPO_ROOT / demo_steps.CONVENTIONAL_SPEC
    conv = yaml.safe_load(conv_path.read_text())
    assert (conv_path.parent / conv["python"].pop("project")).resolve() == \
        (REPO_ROOT / ours["python"].pop("project")).resolve()
    assert conv["python"] == ours["python"]
    assert conv["entrypoint"] == ours["entrypoint"]
    # and it keeps what the distroless spec leaves out
    assert conv["debian"]["default-excludes"] is False
    assert {"bash", "dpkg", "apt", "python3-pip"} <= set(conv["debian"]["packages"])


def test_the_spec_is_found_from_a_subdirectory_and_a_missing_one_is_a_clear_error(tmp_path: Path) -> None:
    assert demo_steps.find_spec(None, REPO_ROOT / "src" / "giropops") == (REPO_ROOT / "giropops.yaml").resolve()
    with pytest.raises(demo_steps.DemoError, match="not found"):
        demo_steps.find_spec(tmp_path / "nope.yaml", tmp_path)
    proc = giropops("demo", "--spec", str(tmp_path / "nope.yaml"), cwd=tmp_path, env=dict(os.environ))
    assert proc.returncode == 1 and proc.stderr.startswith("giropops: error: spec ")
    assert not (tmp_path / "giropops-demo").exists()


def test_a_podman_that_cannot_start_containers_is_retried_with_the_demos_own_config(
    tmp_path_factory: pytest.TempPathFactory, demo_cache: Path, demo: DemoRun
) -> None:
    """On hosts like this one, podman without ``default_ulimits = []`` fails to start any container
    ("error setting rlimits"): the demo says so, retries once with its own containers.conf in the work
    directory, and the app serves."""
    pm = Podman(tmp_path_factory.mktemp("demo-podman-unconfigured"))
    try:
        conf = pm.workdir / "plain-containers.conf"
        conf.write_text('[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\nevents_logger = "file"\n')
        env = {**_env(demo_cache, pm.env), "CONTAINERS_CONF": str(conf), "COSIGN_PASSWORD": "x"}
        cwd = tmp_path_factory.mktemp("demo-unconfigured")
        proc = giropops("demo", "--spec", str(REPO_ROOT / "giropops.yaml"), "--db", str(demo.cwd / "none.sqlite3"),
                        "--no-compare", "--port", "0", cwd=cwd, env=env)
        run = DemoRun(cwd, cwd / "giropops-demo", proc, env)
        try:
            assert proc.returncode == 0, proc.stdout + proc.stderr
            out = proc.stdout
            assert "podman failed for a host reason" in out and "rlimit" in out
            own = cwd / "giropops-demo" / "containers.conf"
            assert f"retrying once with the demo's own {own.relative_to(cwd)}" in out
            text = own.read_text()
            assert "default_ulimits = []" in text and 'cgroup_manager = "cgroupfs"' in text
            assert 'runtime = "runc"' in text
            running = run.summary["running"]
            assert running is not None and running["engine_env"]["CONTAINERS_CONF"] == str(own)
            with urllib.request.urlopen(running["url"] + "/readyz", timeout=10) as resp:
                assert resp.status == 200
            assert f"checked: GET {running['url']}/ -> HTTP 200" in out
        finally:
            stopped = stop_as_printed(run)
            assert stopped.returncode == 0, stopped.stderr
        # nothing left behind: no container, no redis-server of this run
        assert pm.run("ps", "-a", "-q").stdout.strip() == ""
        assert not (cwd / "giropops-demo" / "run.json").exists()
        pid_file = cwd / "giropops-demo" / "redis.pid"
        if pid_file.exists():
            assert not Path(f"/proc/{pid_file.read_text().strip()}").exists()
    finally:
        pm.cleanup()


def test_a_kept_key_that_the_password_does_not_open_is_explained(
    tmp_path_factory: pytest.TempPathFactory, demo_cache: Path, demo: DemoRun
) -> None:
    """A second run in the same directory with another COSIGN_PASSWORD: which file, why, what to do."""
    cwd = tmp_path_factory.mktemp("demo-wrong-password")
    workdir = cwd / "giropops-demo"
    workdir.mkdir()
    write_key_pair(workdir / "cosign", b"the first password")
    env = {**_env(demo_cache, dict(os.environ)), "COSIGN_PASSWORD": "another password"}
    proc = giropops("demo", "--spec", str(REPO_ROOT / "giropops.yaml"), "--db", str(cwd / "none.sqlite3"),
                    "--no-compare", "--no-run", cwd=cwd, env=env)
    assert proc.returncode == 31, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    key = Path("giropops-demo") / "cosign.key"
    assert line.startswith(f"giropops: error: {key} is the key an earlier demo made in giropops-demo, "
                           "and COSIGN_PASSWORD does not open it: set COSIGN_PASSWORD to the password it was "
                           f"made with, or delete {key} and {key.with_suffix('.pub')}")
    assert "decryption failed" not in line.split(":")[1]
    # doing what it says works: the right password signs
    ok = giropops("demo", "--spec", str(REPO_ROOT / "giropops.yaml"), "--db", str(cwd / "none.sqlite3"),
                  "--no-compare", "--no-run", cwd=cwd, env={**env, "COSIGN_PASSWORD": "the first password"})
    assert ok.returncode == 0, ok.stderr
    assert "verified with" in ok.stdout


def test_without_any_container_engine_the_demo_says_what_to_install(
    tmp_path_factory: pytest.TempPathFactory, demo_cache: Path
) -> None:
    """A machine with neither podman nor docker on PATH (not root, not Debian): everything else is made and
    step 6 names what to install."""
    cwd = tmp_path_factory.mktemp("demo-no-engine")
    bare = cwd / "bin"  # every program of this PATH but the engines
    bare.mkdir()
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d or not Path(d).is_dir():
            continue
        for entry in Path(d).iterdir():
            if entry.name not in ("podman", "docker") and not (bare / entry.name).exists():
                (bare / entry.name).symlink_to(entry)
    env = {**_env(demo_cache, dict(os.environ)), "COSIGN_PASSWORD": "x", "PATH": str(bare)}
    proc = giropops("demo", "--spec", str(REPO_ROOT / "giropops.yaml"), "--db", str(cwd / "none.sqlite3"),
                    "--no-compare", "--port", "0", cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "skipped: no working container engine (neither podman nor docker is installed)" in out
    assert "install podman, runc and redis-server" in out and "apt-get install podman runc redis-server" in out
    assert "running:   no (see step 6)" in out
    summary = json.loads((cwd / "giropops-demo" / "summary.json").read_text())
    assert summary["running"] is None
    # offline ($GIROPOPS_OFFLINE, as every test runs) with a database never filled: the demo goes on
    # (build, SBOM, signature), but never shows a "0 vulnerabilities" it did not scan
    db = cwd / "none.sqlite3"
    assert f"SCAN NOT RUN: no vulnerability database at {db}" in out
    assert "the vulnerability counts below are unknown, not zero" in out
    assert f"giropops db update --db {db}" in out and f"giropops db import --db {db} FILES" in out
    assert "(offline: --offline or $GIROPOPS_OFFLINE forbids downloading it)" in out
    assert "0 vulnerabilities" not in out
    (row,) = [line for line in out.splitlines() if line.startswith("vulnerabilities ")]
    assert row.split()[1:] == ["-", "NOT", "SCANNED"]
    assert not db.exists()  # nothing half-made in its place
    assert summary["database"]["present"] is False and summary["database"]["scanned"] is False
    assert summary["database"]["error"].startswith("no vulnerability database")
    assert summary["images"]["giropops"]["vulnerabilities"] is None


def test_stop_without_a_running_demo_says_so(tmp_path: Path) -> None:
    proc = giropops("demo", "--stop", "--workdir", str(tmp_path / "nothing"), cwd=tmp_path, env=dict(os.environ))
    assert proc.returncode == 0
    assert "nothing of a demo is running" in proc.stdout


def test_a_broken_spec_is_a_clear_error_with_nothing_half_made(tmp_path: Path) -> None:
    spec = tmp_path / "giropops.yaml"
    spec.write_text("debian: [this is: not a mapping\n")
    proc = giropops("demo", "--spec", str(spec), "--no-run", cwd=tmp_path, env=dict(os.environ))
    assert proc.returncode != 0
    assert proc.stderr.startswith("giropops: error: ") and "Traceback" not in proc.stderr
    assert not (tmp_path / "giropops-demo" / "giropops-senhas.tar").exists()
