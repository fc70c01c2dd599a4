"""Every package says what it exports (``__all__``), and every name it lists is there."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import giropops
import giropops_senhas

PACKAGES = sorted(
    {m.name for m in pkgutil.walk_packages(giropops.__path__, "giropops.") if m.ispkg} | {"giropops", "giropops_senhas"}
)


def test_every_package_is_listed() -> None:
    wanted = {"giropops.oci", "giropops.sbom", "giropops.vuln", "giropops.sign", "giropops.demo", "giropops.builder"}
    assert wanted <= set(PACKAGES)
    assert giropops_senhas.__name__ == "giropops_senhas"


@pytest.mark.parametrize("name", PACKAGES)
def test_the_package_lists_what_it_exports(name: str) -> None:
    package = importlib.import_module(name)
    exported = getattr(package, "__all__", None)
    assert isinstance(exported, list) and exported, f"{name} has no __all__"
    for item in exported:
        if not hasattr(package, item):
            importlib.import_module(f"{name}.{item}")  # a public submodule
        assert hasattr(package, item), f"{name}.__all__ names {item!r}, which is not there"
