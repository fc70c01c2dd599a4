from __future__ import annotations

import re

import pytest

from giropops.oci.reference import Reference
from giropops.oci.registry import RegistryClient, RegistryOptions
from tests.support.services import Registry


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name of its own for each test, so tests sharing one registry do not interfere."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    return f"test/{name}"


@pytest.fixture
def client(registry: Registry) -> RegistryClient:
    return RegistryClient(registry.host, RegistryOptions())


def ref_for(host: str, repo: str, tag: str = "latest") -> Reference:
    return Reference.parse(f"{host}/{repo}:{tag}")
