from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from giropops.oci.image import Image
from giropops.oci.transport import write_image
from giropops.reco.base import BASE_DIGEST, BASE_NAME
from tests.reco.world import BASES, PYTHON_TAGS, Deb, build_app, build_base, select_advisories
from tests.support.services import Registry


def import_advisories(db_path: Path, files: list[Path]) -> None:
    """The one call into ``giropops.vuln``'s importer (a fixture, not the code under test)."""
    from giropops.vuln.db.importer import import_paths

    import_paths(db_path, files)


@dataclass
class World:
    registry: Registry
    advisory_files: list[Path]
    db: Path
    python: str  # host/reco/python
    distroless: str  # host/reco/distroless/python3-debian12
    apps: str  # host/reco/app
    images: dict[str, Image] = field(default_factory=dict)  # BASES key -> image pushed
    app_images: dict[str, Image] = field(default_factory=dict)
    catalog: Path | None = None


@pytest.fixture(scope="session")
def advisory_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return select_advisories(tmp_path_factory.mktemp("advisories"))


@pytest.fixture(scope="session")
def reco_db(tmp_path_factory: pytest.TempPathFactory, advisory_files: list[Path]) -> Path:
    path = tmp_path_factory.mktemp("recodb") / "vulndb.sqlite3"
    import_advisories(path, advisory_files)
    return path


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scan and layer caches in a directory of this session, never the user's."""
    monkeypatch.setenv("GIROPOPS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "giropops-cache"))


@pytest.fixture(scope="session")
def world(registry: Registry, reco_db: Path, advisory_files: list[Path],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    host = registry.host
    w = World(registry, advisory_files, reco_db, f"{host}/reco/python", f"{host}/reco/distroless/python3-debian12",
              f"{host}/reco/app")
    for key, spec in BASES.items():
        w.images[key] = build_base(spec)
    # the app is built on python:3.11-slim as it was; then the tag moves on
    old = w.images["3.11-slim@old"]
    write_image(old, f"registry://{w.python}:3.11-slim")
    annotated = {BASE_NAME: f"{w.python}:3.11-slim", BASE_DIGEST: str(old.digest)}
    w.app_images["annotated"] = build_app(old, annotations=annotated)
    w.app_images["labelled"] = build_app(old, labels=annotated, created_days=301)
    w.app_images["provenance"] = build_app(old, created_days=302)
    w.app_images["bare"] = build_app(old, created_days=303)
    w.app_images["gpl"] = build_app(old, annotations=annotated, created_days=304,
                                    extra_debs=(Deb("libreadline8", "readline", "8.2-1.3", "GPL-3+"),))
    new = w.images["3.11-slim"]
    w.app_images["current"] = build_app(
        new, annotations={BASE_NAME: f"{w.python}:3.11-slim", BASE_DIGEST: str(new.digest)}, user="65532",
    )
    for name, img in w.app_images.items():
        write_image(img, f"registry://{w.apps}:{name}")
    write_image(new, f"registry://{w.python}:3.11-slim")
    for tag, key in PYTHON_TAGS.items():
        write_image(w.images[key], f"registry://{w.python}:{tag}")
    write_image(w.images["distroless"], f"registry://{w.distroless}:latest")
    catalog = tmp_path_factory.mktemp("catalog") / "catalog.yaml"
    catalog.write_text(
        "replace: true\nruntimes:\n  python:\n"
        f"    - image: {w.distroless}:latest\n      flavour: distroless\n      description: test distroless\n"
        f"  node:\n    - image: {host}/reco/node:missing\n      flavour: slim\n"
    )
    w.catalog = catalog
    yield w
