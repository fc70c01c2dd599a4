"""``db push`` / ``db update --from`` through a real registry: round trip, signatures, tampering refused."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path

import pytest

from giropops.cli.main import main
from giropops.sign.keys import write_key_pair
from giropops.vuln.db.importer import import_paths
from tests.fleet.fleetdata import BASE_ADVISORIES, EXTRA_ADVISORIES, write_advisories
from tests.support.services import Registry

MEDIA_TYPE = "application/vnd.giropops.vulndb.v1+sqlite"


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_db(root: Path, name: str, records: list[dict[str, object]]) -> Path:
    path = root / f"{name}.sqlite3"
    import_paths(path, [write_advisories(root / f"{name}.osv.jsonl.gz", records)])  # type: ignore[arg-type]
    return path


def manifest(registry: Registry, repo: str, ref: str) -> dict[str, object]:
    req = urllib.request.Request(f"http://{registry.host}/v2/{repo}/manifests/{ref}",
                                 headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        doc: dict[str, object] = json.loads(resp.read())
    return doc


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("COSIGN_PASSWORD", "fleet")
    paths, _ = write_key_pair(tmp_path / "vulndb", b"fleet")
    return paths.private, paths.public


def test_round_trip(registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_db(tmp_path, "published", BASE_ADVISORIES)
    ref = f"{registry.host}/security/vulndb-roundtrip:latest"
    code, out, err = cli(capsys, "db", "push", ref, "--db", str(src))
    assert code == 0, err
    doc = manifest(registry, "security/vulndb-roundtrip", "latest")
    assert doc["artifactType"] == MEDIA_TYPE
    layers = doc["layers"]
    assert isinstance(layers, list) and len(layers) == 1
    assert layers[0]["mediaType"] == MEDIA_TYPE and layers[0]["digest"] == f"sha256:{sha256_file(src)}"
    ann = doc["annotations"]
    assert isinstance(ann, dict)
    assert ann["dev.giropops.vulndb.sources"] == "file:published.osv.jsonl.gz"  # the file name, not its path
    assert ann["dev.giropops.vulndb.advisories"] == str(len(BASE_ADVISORIES))
    assert ann["dev.giropops.vulndb.built"] == ann["org.opencontainers.image.created"]

    dest = tmp_path / "runner" / "vulndb.sqlite3"
    code, out, err = cli(capsys, "db", "update", "--from", ref, "--db", str(dest))
    assert code == 0, err
    assert sha256_file(dest) == sha256_file(src)
    assert f"{len(BASE_ADVISORIES)} advisories" in out
    assert sorted(p.name for p in dest.parent.iterdir()) == ["vulndb.sqlite3"]  # no temporary or lock left
    code, out, err = cli(capsys, "db", "status", "--db", str(dest))
    assert code == 0 and f"advisories: {len(BASE_ADVISORIES)}" in out


def test_signed_round_trip_and_refusals(registry: Registry, tmp_path: Path, keys: tuple[Path, Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    private, public = keys
    signed = make_db(tmp_path, "signed", BASE_ADVISORIES)
    ref = f"{registry.host}/security/vulndb-signed:latest"
    assert cli(capsys, "db", "push", ref, "--db", str(signed), "--key", str(private))[0] == 0
    dest = tmp_path / "runner.sqlite3"
    code, out, err = cli(capsys, "db", "update", "--from", ref, "--key", str(public), "--db", str(dest))
    assert code == 0, err
    assert "signature verified" in out and sha256_file(dest) == sha256_file(signed)
    before = sha256_file(dest)

    # another key: refused, the database in place is untouched
    other, other_pub = write_key_pair(tmp_path / "other", b"fleet")[0].private, tmp_path / "other.pub"
    assert other.exists()
    code, _, err = cli(capsys, "db", "update", "--from", ref, "--key", str(other_pub), "--db", str(dest))
    assert code != 0 and err.startswith("giropops: error:") and "Traceback" not in err
    assert sha256_file(dest) == before

    # the tag moved to an unsigned database: the signature was over the old digest, so it is refused
    unsigned = make_db(tmp_path, "unsigned", BASE_ADVISORIES + EXTRA_ADVISORIES)
    assert cli(capsys, "db", "push", ref, "--db", str(unsigned))[0] == 0
    code, out, err = cli(capsys, "db", "update", "--from", ref, "--key", str(public), "--db", str(dest))
    assert code != 0 and "no signatures" in err
    assert sha256_file(dest) == before
    assert sorted(p.name for p in tmp_path.glob(".runner.sqlite3.*")) == []


def test_tampered_blob_is_refused(registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    published = make_db(tmp_path, "tampered", EXTRA_ADVISORIES)
    ref = f"{registry.host}/security/vulndb-tampered:1"
    assert cli(capsys, "db", "push", ref, "--db", str(published))[0] == 0
    digest = sha256_file(published)
    blobs = registry.workdir / "storage" / "docker" / "registry" / "v2" / "blobs" / "sha256"
    blob = blobs / digest[:2] / digest / "data"
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the stored database
    blob.write_bytes(bytes(data))
    dest = make_db(tmp_path / "runner", "current", BASE_ADVISORIES)
    before = sha256_file(dest)
    code, _out, err = cli(capsys, "db", "update", "--from", ref, "--db", str(dest))
    assert code != 0
    assert err.count("\n") == 1 and "sha256" in err and "Traceback" not in err
    assert sha256_file(dest) == before
    assert sorted(p.name for p in dest.parent.iterdir()) == ["current.osv.jsonl.gz", "current.sqlite3"]


def test_an_image_is_not_a_database(registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from giropops.oci.reference import Reference
    from giropops.oci.registry import write_registry
    from tests.support.images import MemImage, MemLayer

    write_registry(MemImage([MemLayer({"a": b"b"})]), Reference.parse(f"{registry.host}/security/not-a-db:1"))
    dest = tmp_path / "db.sqlite3"
    code, _out, err = cli(capsys, "db", "update", "--from", f"{registry.host}/security/not-a-db:1", "--db", str(dest))
    assert code != 0 and "not a giropops vulnerability database" in err
    assert not dest.exists()


def test_push_and_pull_with_the_registry_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``db push`` and ``db update --from`` take the same --username / --password-stdin as every registry
    command; without them a registry that wants a password refuses the push."""
    import io

    from giropops.oci.registry import ENV_PASSWORD, ENV_USERNAME
    from tests.support.services import write_htpasswd

    user, password = "dora", "db-s3cret:pw"
    for name in (ENV_USERNAME, ENV_PASSWORD):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "docker-empty").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-empty"))
    work = tmp_path / "locked"
    work.mkdir()
    locked = Registry(work, htpasswd=write_htpasswd(work / "htpasswd", {user: password}))
    locked.start()
    try:
        src = make_db(tmp_path, "published", BASE_ADVISORIES)
        ref = f"{locked.host}/security/vulndb-locked:latest"
        code, _, err = cli(capsys, "db", "push", ref, "--db", str(src))
        assert code != 0 and err.startswith("giropops: error: "), err

        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        code, _, err = cli(capsys, "db", "push", ref, "--db", str(src), "--username", user, "--password-stdin")
        assert code == 0, err

        dest = tmp_path / "runner" / "vulndb.sqlite3"
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        code, out, err = cli(capsys, "db", "update", "--from", ref, "--db", str(dest), "--username", user,
                             "--password-stdin")
        assert code == 0, err
        assert f"{len(BASE_ADVISORIES)} advisories" in out
        assert sha256_file(dest) == sha256_file(src)
    finally:
        locked.stop()
