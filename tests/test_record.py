"""``giropops.record``: the records that replaced dataclasses on the start-up path behave as those did."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from giropops.oci.model import Digest, Platform
from giropops.record import FrozenInstanceError, field, record, replace
from giropops.sbom.model import SBOM, Location, Package, Subject


@record
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)


@record(frozen=False, order=True)
class Box:
    w: int
    h: int = 1

    def __post_init__(self) -> None:
        if self.w < 0:
            raise ValueError("negative")


def test_constructor_takes_positions_keywords_and_defaults() -> None:
    assert (Point(1).x, Point(1).y, Point(1).tags) == (1, 0, [])
    assert Point(1, 2) == Point(x=1, y=2) == Point(1, y=2)
    assert Point(1).tags is not Point(1).tags  # a fresh default per instance
    with pytest.raises(TypeError, match="missing required argument: 'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        Point(1, z=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values"):
        Point(1, x=2)  # type: ignore[misc]
    with pytest.raises(TypeError, match="positional arguments"):
        Point(1, 2, [], 4)  # type: ignore[call-arg]


def test_repr_eq_hash_as_a_dataclass_writes_them() -> None:
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags=[])"
    assert Point(1) != Point(2)
    assert Point(1) != (1, 0, [])  # another class is never equal
    assert repr(Location("a")) == "Location(path='a', layer=None)"
    assert len({Location("a"), Location("a"), Location("b")}) == 2
    with pytest.raises(TypeError):
        hash(Box(1))  # mutable: unhashable


def test_frozen_refuses_assignment_and_deletion() -> None:
    p = Point(1)
    with pytest.raises(FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.y  # type: ignore[misc]
    b = Box(1)
    b.w = 5
    assert b.w == 5


def test_order_and_post_init() -> None:
    assert sorted([Box(3), Box(1, 5), Box(1, 2)]) == [Box(1, 2), Box(1, 5), Box(3)]
    assert Digest("sha256", "a" * 64) < Digest("sha256", "b" * 64)
    with pytest.raises(ValueError, match="negative"):
        Box(-1)
    with pytest.raises(Exception, match="invalid sha256 digest"):
        Digest("sha256", "zz")


def test_the_compiled_constructor_behaves_as_the_generic_one() -> None:
    made = [Box(i, h=i + 1) for i in range(100)]  # past the point where __init__ is compiled
    assert Box.__init__.__code__.co_filename.startswith("<record")
    assert made[99] == Box(99, 100) and Box(7).h == 1
    with pytest.raises(ValueError, match="negative"):
        Box(-1)
    locations = [Location(str(i)) for i in range(100)] + [Location("p", layer="l")]
    assert locations[-1] == Location("p", "l") and locations[0].layer is None


def test_replace_and_the_dataclasses_functions_still_work() -> None:
    pkg = Package("a", "1", "deb", locations=(Location("x"),))
    assert replace(pkg, files=("f",)).files == ("f",) and pkg.files == ()
    assert dataclasses.replace(pkg, version="2") == Package("a", "2", "deb", locations=(Location("x"),))
    assert dataclasses.is_dataclass(pkg)
    assert [f.name for f in dataclasses.fields(Platform)] == ["os", "architecture", "variant", "os_version"]
    assert dataclasses.asdict(Location("p", "l")) == {"path": "p", "layer": "l"}
    with pytest.raises(TypeError, match="no field 'nope'"):
        replace(pkg, nope=1)
    sbom = SBOM(Subject("s"), None, (pkg,))
    assert replace(sbom, packages=()).packages == () and sbom.packages == (pkg,)


def test_copies_and_pickles() -> None:
    pkg = Package("a", "1", "deb", metadata={"k": "v"})
    assert pickle.loads(pickle.dumps(pkg)) == pkg  # noqa: S301 - our own bytes
    assert copy.deepcopy(pkg) == pkg and copy.copy(pkg) == pkg
