"""``giropops recommendations`` against a real registry holding several tags of a base image the test built.

The app image was built on ``python:3.11-slim`` as it was (old packages, 3.11.4); the tag has
since moved to a patched image (refresh).  Other tags: ``3.12-slim`` (also ``3.12.7-slim`` and
``latest``), ``3.11`` (the full flavour: more packages and vulnerabilities, bigger),
``3.10-slim`` (an older runtime line); the catalog adds a distroless image.  Every number in
the recommendations is compared with a separate scan of that candidate made by the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from giropops.cli.main import main
from tests.reco.conftest import World
from tests.reco.scans import SEVERITIES, Scan, separate_scan
from tests.reco.world import BASES

MB = 1_000_000


@pytest.fixture(scope="module")
def scans(world: World) -> dict[str, Scan]:
    return {key: separate_scan(world.images[key], BASES[key], world.db, world.advisory_files) for key in BASES}


def run_json(world: World, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = main(["recommendations", *args, "--db", str(world.db), "--catalog", str(world.catalog), "--format", "json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    doc: dict[str, Any] = json.loads(out.out)
    return doc


def check_numbers(entry: dict[str, Any], scan: Scan, current: Scan) -> None:
    """Every number of one recommended image against the separate scans of it and of the current base."""
    image = entry["image"]
    assert image["digest"] == scan.digest
    assert {s: image["vulnerabilities"][s] for s in SEVERITIES} == scan.counts
    assert image["vulnerabilities"]["total"] == scan.total
    assert {s: entry["vulnerabilities"][s] for s in SEVERITIES} == scan.counts
    assert {s: entry["vulnerabilityDeltas"][s] for s in SEVERITIES} == {
        s: scan.counts[s] - current.counts[s] for s in SEVERITIES
    }
    assert entry["vulnerabilityDeltas"]["total"] == scan.total - current.total
    assert entry["removed"] == len(current.keys - scan.keys)
    assert entry["introduced"] == len(scan.keys - current.keys)
    assert image["size"] == scan.size
    assert entry["sizeDelta"] == scan.size - current.size
    assert image["packages"] == scan.packages
    assert entry["packagesDelta"] == scan.packages - current.packages
    assert image["created"] == scan.created
    assert isinstance(image["ageDays"], int) and image["ageDays"] > 0


def test_current_base_image_as_found_by_annotations(world: World, scans: dict[str, Scan], capsys) -> None:
    doc = run_json(world, capsys, f"{world.apps}:annotated")
    old = scans["3.11-slim@old"]
    assert doc["baseImage"]["how"] == "annotations"
    assert doc["baseImage"]["name"] == f"{world.python}:3.11-slim"
    assert doc["baseImage"]["digest"] == old.digest
    cur = doc["current"]
    assert cur["digest"] == old.digest
    assert {s: cur["vulnerabilities"][s] for s in SEVERITIES} == old.counts
    assert cur["vulnerabilities"]["total"] == old.total == len(old.keys)
    assert cur["size"] == old.size
    assert cur["packages"] == old.packages
    assert cur["os"] == "Debian GNU/Linux 12 (bookworm)"
    assert cur["runtime"] == {"name": "python", "version": "3.11.4", "source": "ENV PYTHON_VERSION"}
    assert cur["created"] == old.created


def test_refresh_is_the_new_digest_of_the_same_tag(world: World, scans: dict[str, Scan], capsys) -> None:
    doc = run_json(world, capsys, f"{world.apps}:annotated", "--only-refresh")
    assert doc["updates"] is None
    refresh = doc["refresh"]
    assert refresh["status"] == "available"
    new, old = scans["3.11-slim"], scans["3.11-slim@old"]
    assert new.digest in refresh["detail"] and old.digest in refresh["detail"]
    cand = refresh["candidate"]
    assert cand["kind"] == "refresh" and cand["tag"] == "3.11-slim"
    check_numbers(cand, new, old)
    # the refreshed tag fixes what the old packages had and adds nothing
    assert new.keys < old.keys
    removed = len(old.keys - new.keys)
    assert cand["reasons"][0] == f"removes {removed} vulnerabilities and introduces none"
    assert "same OS" in cand["reasons"]
    assert "patch runtime version update (3.11.4 → 3.11.10)" in cand["reasons"]


def test_updates_ranked_with_numbers_and_reasons(world: World, scans: dict[str, Scan], capsys) -> None:
    doc = run_json(world, capsys, f"{world.apps}:annotated", "--only-update")
    assert doc["refresh"] is None
    updates = doc["updates"]
    old = scans["3.11-slim@old"]
    by_digest = {scans[k].digest: k for k in ("3.12-slim", "distroless", "3.11", "3.10-slim")}
    listed = [by_digest[u["image"]["digest"]] for u in updates]
    # 3.10-slim is an older runtime line; the full 3.11 flavour is bigger with more vulnerabilities
    assert set(listed) == {"3.12-slim", "distroless"}
    assert scans["3.11"].total > old.total and scans["3.11"].size > old.size
    # the documented order: fewest critical, then high, medium, low, unspecified, then the smaller image
    expected = sorted(set(listed), key=lambda k: (*(scans[k].counts[s] for s in SEVERITIES), scans[k].size))
    assert listed == expected
    assert [u["rank"] for u in updates] == list(range(1, len(updates) + 1))
    for u in updates:
        check_numbers(u, scans[by_digest[u["image"]["digest"]]], old)

    slim = next(u for u in updates if by_digest[u["image"]["digest"]] == "3.12-slim")
    # one entry for the three tags of that digest, named by the tag that follows patch releases
    assert slim["tag"] == "3.12-slim"
    assert sorted(slim["alsoTagged"]) == ["3.12.7-slim", "latest"]
    assert slim["kind"] == "tag"
    assert slim["image"]["runtime"]["version"] == "3.12.7"
    size_mb = round((old.size - scans["3.12-slim"].size) / MB)
    assert f"image is smaller by {size_mb} MB" in slim["reasons"]
    assert "minor runtime version update (3.11.4 → 3.12.7)" in slim["reasons"]
    assert "same OS" in slim["reasons"]
    removed = len(old.keys - scans["3.12-slim"].keys)
    assert scans["3.12-slim"].keys <= old.keys
    assert f"removes {removed} vulnerabilities and introduces none" in slim["reasons"]
    assert not any("flavour" in r for r in slim["reasons"])  # slim -> slim is no news

    dl = next(u for u in updates if u["kind"] == "catalog")
    d = scans["distroless"]
    assert dl["flavour"] == "distroless"
    assert dl["image"]["runtime"] == {"name": "python", "version": "3.11.2", "source": "package python3.11"}
    assert "distroless: no shell or package manager" in dl["reasons"]
    assert (f"removes {len(old.keys - d.keys)} vulnerabilities and introduces {len(d.keys - old.keys)} "
            "vulnerabilities") in dl["reasons"]
    assert any("not better than the current base image" in n for n in doc["notes"])


def test_only_one_tag(world: World, scans: dict[str, Scan], capsys) -> None:
    doc = run_json(world, capsys, f"{world.apps}:annotated", "--only-update", "--tag", "3.12.7-slim")
    assert [u["tag"] for u in doc["updates"]] == ["3.12.7-slim"]
    check_numbers(doc["updates"][0], scans["3.12-slim"], scans["3.11-slim@old"])


def test_up_to_date_base(world: World, scans: dict[str, Scan], capsys) -> None:
    doc = run_json(world, capsys, f"{world.apps}:current")
    assert doc["current"]["digest"] == scans["3.11-slim"].digest
    assert doc["refresh"] == {"status": "up-to-date", "detail": "This image version is up to date.",
                              "candidate": None}
    # from the patched 3.11-slim, the 3.12-slim tag is still better (smaller, newer runtime)
    assert [u["tag"] for u in doc["updates"]][:1] == ["3.12-slim"]
    check_numbers(doc["updates"][0], scans["3.12-slim"], scans["3.11-slim"])
    code = main(["recommendations", f"{world.apps}:current", "--db", str(world.db), "--catalog", str(world.catalog),
                 "--only-refresh"])
    out = capsys.readouterr().out
    assert code == 0
    assert "✓ This image version is up to date." in out


def test_text_layout(world: World, scans: dict[str, Scan], capsys) -> None:
    code = main(["recommendations", f"{world.apps}:annotated", "--db", str(world.db), "--catalog",
                 str(world.catalog)])
    out = capsys.readouterr().out
    assert code == 0
    old, new = scans["3.11-slim@old"], scans["3.11-slim"]
    lines = out.splitlines()
    assert f"  Base image is  {world.python}:3.11-slim" in lines
    vuln_rows = [line for line in lines if line.startswith("  Vulnerabilities │")]
    expect_old = "  ".join(f"{old.counts[s]:>3}{s[0].upper() if s != 'unspecified' else '?'}" for s in SEVERITIES)
    assert vuln_rows[0] == f"  Vulnerabilities │  {expect_old}   ({old.total} total)"
    expect_new = "  ".join(f"{new.counts[s]:>3}{s[0].upper() if s != 'unspecified' else '?'}" for s in SEVERITIES)
    assert vuln_rows[1] == f"  Vulnerabilities │  {expect_new}   ({new.total} total)"
    assert out.index("Refresh base image") < out.index("Change base image")
    assert f"  1. {world.python}:3.12-slim (also " in out
    assert "  Runtime         │  python 3.11.4" in lines


def test_markdown(world: World, scans: dict[str, Scan], capsys) -> None:
    code = main(["recommendations", f"{world.apps}:annotated", "--db", str(world.db), "--catalog",
                 str(world.catalog), "--format", "markdown"])
    out = capsys.readouterr().out
    assert code == 0
    assert "### Refresh" in out and "### Update" in out
    rows = [line for line in out.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 1 and f"`{world.python}:3.12-slim`" in rows[0]
    c = scans["3.12-slim"].counts
    assert " ".join(f"{c[s]}{s[0].upper() if s != 'unspecified' else '?'}" for s in SEVERITIES) in rows[0]


def test_candidates_are_scanned_once_per_digest(world: World, tmp_path: Path) -> None:
    from giropops.reco import deps
    from giropops.reco.catalog import load_catalog
    from giropops.reco.profile import Profiler
    from giropops.reco.recommend import recommend

    db = deps.open_db(world.db)
    try:
        profiler = Profiler(db, tmp_path / "cache")
        catalog = load_catalog([world.catalog], environ={})
        recommend(f"{world.apps}:annotated", profiler, catalog)
        # 3.12-slim, 3.12.7-slim and latest are one digest: scanned once
        distinct = {str(world.images[k].digest) for k in ("3.11-slim@old", "3.11-slim", "3.11", "3.12-slim",
                                                         "distroless")}
        assert sorted(profiler.scanned) == sorted(distinct)
        # a second run (a new process, same database) reads every profile from the disk cache
        again = Profiler(db, tmp_path / "cache")
        recommend(f"{world.apps}:annotated", again, catalog)
        assert again.scanned == []
    finally:
        db.close()


def test_image_from_an_archive_and_an_unreachable_candidate(
    world: World, scans: dict[str, Scan], capsys, tmp_path: Path
) -> None:
    """The image may come from any source; the base and the candidates are still read from the registry."""
    from giropops.oci.transport import write_image

    write_image(world.app_images["annotated"], f"archive://{tmp_path / 'app.tar'}")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(f"replace: true\nruntimes:\n  python:\n    - image: {world.python}-gone:1\n")
    code = main(["recommendations", f"archive://{tmp_path / 'app.tar'}", "--db", str(world.db),
                 "--catalog", str(catalog), "--format", "json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = json.loads(out.out)
    assert doc["baseImage"]["how"] == "annotations"
    assert doc["refresh"]["status"] == "available"
    check_numbers(doc["refresh"]["candidate"], scans["3.11-slim"], scans["3.11-slim@old"])
    assert [u["tag"] for u in doc["updates"]] == ["3.12-slim"]
    assert any(n.startswith(f"candidate {world.python}-gone:1 not read:") for n in doc["notes"])


def test_refresh_through_a_multi_platform_index(world: World, scans: dict[str, Scan], capsys) -> None:
    """Base tags are usually indexes: the annotation may name the index or the platform's image."""
    from giropops.oci.empty import empty_image
    from giropops.oci.memory import build_index
    from giropops.oci.model import Platform
    from giropops.oci.transport import write_image
    from giropops.reco.base import BASE_DIGEST, BASE_NAME
    from tests.reco.world import build_app

    old, new = world.images["3.11-slim@old"], world.images["3.11-slim"]
    other = empty_image(Platform("linux", "s390x"))
    repo = f"{world.registry.host}/reco/multi"
    old_index = build_index([(old, None), (other, None)])
    write_image(old_index, f"registry://{repo}:3.11-slim")
    apps = {}
    for name, digest in (("by-index", old_index.digest), ("by-image", old.digest)):
        app = build_app(old, annotations={BASE_NAME: f"{repo}:3.11-slim", BASE_DIGEST: str(digest)},
                        created_days=320 + len(apps))
        write_image(app, f"registry://{world.apps}:multi-{name}")
        apps[name] = app
    for name in apps:
        doc = run_json(world, capsys, f"{world.apps}:multi-{name}", "--only-refresh")
        assert doc["current"]["digest"] == scans["3.11-slim@old"].digest
        assert doc["refresh"]["status"] == "up-to-date", name
    write_image(build_index([(new, None), (other, None)]), f"registry://{repo}:3.11-slim")
    for name in apps:
        doc = run_json(world, capsys, f"{world.apps}:multi-{name}", "--only-refresh")
        assert doc["refresh"]["status"] == "available", name
        check_numbers(doc["refresh"]["candidate"], scans["3.11-slim"], scans["3.11-slim@old"])
