"""``@record``: the value classes of the start-up path, without the import-time cost of ``dataclasses``.

A ``@dataclass`` costs its module import (``inspect``, ``ast``, ``dis``, ``tokenize``...: about 7 ms)
and an ``exec`` per generated method of every class (about 0.3 ms a class): on a small image that
was a fifth of a cold ``giropops sbom``.  ``record`` gives a class what the dataclasses of this code
base use, with the same behaviour:

* fields are the class's annotations, in order (``ClassVar`` ones are not fields); a class attribute
  is the field's default and ``field(default_factory=...)`` makes a fresh default per instance;
* ``__init__`` takes them positionally or by keyword and then calls ``__post_init__`` if defined;
* ``__repr__`` (``Name(a=1, b='x')``), ``__eq__`` (same class, field by field) and, for ``order=True``,
  ``__lt__`` / ``__le__`` / ``__gt__`` / ``__ge__`` on the field tuple; a method the class defines
  itself is kept;
* ``frozen=True`` (the default): assigning or deleting an attribute raises ``FrozenInstanceError``
  (an ``AttributeError``) and instances hash by their fields; a mutable record is unhashable;
* ``replace(obj, **changes)``, as ``dataclasses.replace``;
* code that still uses ``dataclasses`` on them keeps working: ``__dataclass_fields__`` is made on first
  access (importing ``dataclasses`` then), so ``dataclasses.replace`` / ``fields`` / ``asdict`` /
  ``is_dataclass`` see a dataclass.

``__init__`` is generic until a class has made ``_COMPILE_AFTER`` instances, then a specialised one
is compiled for it (as dataclasses does up front): a class used a few times costs no ``compile``,
one used thousands of times runs at dataclass speed.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    _T = TypeVar("_T")
else:

    def dataclass_transform(**_: object) -> object:
        return lambda f: f


_COMPILE_AFTER = 32


class FrozenInstanceError(AttributeError):
    """An attribute of a frozen record was assigned or deleted."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class _Factory:
    __slots__ = ("factory",)

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory


def field(*, default_factory: Callable[[], Any]) -> Any:
    """A field whose default is ``default_factory()``, called for each instance."""
    return _Factory(default_factory)


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _is_classvar(annotation: object) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return isinstance(text, str) and (text.startswith("ClassVar") or text.startswith("typing.ClassVar"))


class _DataclassFields:
    """``cls.__dataclass_fields__`` for the ``dataclasses`` functions, built when first asked for."""

    def __get__(self, obj: object, owner: Any) -> dict[str, Any]:
        import dataclasses

        out: dict[str, Any] = {}
        for name in owner.__record_fields__:
            if name in owner.__record_factories__:
                f = dataclasses.field(default_factory=owner.__record_factories__[name])
            elif name in owner.__record_defaults__:
                f = dataclasses.field(default=owner.__record_defaults__[name])
            else:
                f = dataclasses.field()
            f.name = name
            f._field_type = dataclasses._FIELD  # type: ignore[attr-defined]  # what dataclasses.fields() lists
            out[name] = f
        return out


_DATACLASS_FIELDS = _DataclassFields()


def _build(cls: Any, frozen: bool, order: bool) -> Any:
    names: list[str] = []
    for base in reversed(cls.__mro__[1:]):
        for name in getattr(base, "__record_fields__", ()):
            if name not in names:
                names.append(name)
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063 - no inspect
        if not _is_classvar(annotation) and name not in names:
            names.append(name)
    defaults: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    for base in reversed(cls.__mro__[1:]):
        defaults.update(getattr(base, "__record_defaults__", {}))
        factories.update(getattr(base, "__record_factories__", {}))
    for name in names:
        if name in cls.__dict__:
            value = cls.__dict__[name]
            if isinstance(value, _Factory):
                factories[name] = value.factory
                defaults.pop(name, None)
                delattr(cls, name)
            else:
                defaults[name] = value
                factories.pop(name, None)
    seen_default = False
    for name in names:
        if name in defaults or name in factories:
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {name!r} follows default argument")
    fields = tuple(names)
    cls.__record_fields__ = fields
    cls.__record_defaults__ = defaults
    cls.__record_factories__ = factories
    cls.__match_args__ = fields  # type: ignore[misc]  # set once, when the class is made
    cls.__dataclass_fields__ = _DATACLASS_FIELDS
    post_init = getattr(cls, "__post_init__", None) is not None
    qualname = cls.__qualname__
    set_field = object.__setattr__
    count = [0]

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        count[0] += 1
        if count[0] == _COMPILE_AFTER and cls.__init__ is __init__:
            cls.__init__ = _compiled_init(cls, fields, defaults, factories, post_init)
        if len(args) > len(fields):
            raise TypeError(f"{qualname}.__init__() takes {len(fields) + 1} positional arguments "
                            f"but {len(args) + 1} were given")
        for i, name in enumerate(fields):
            if i < len(args):
                if name in kwargs:
                    raise TypeError(f"{qualname}.__init__() got multiple values for argument {name!r}")
                value = args[i]
            elif name in kwargs:
                value = kwargs.pop(name)
            elif name in defaults:
                value = defaults[name]
            elif name in factories:
                value = factories[name]()
            else:
                raise TypeError(f"{qualname}.__init__() missing required argument: {name!r}")
            set_field(self, name, value)
        if kwargs:
            raise TypeError(f"{qualname}.__init__() got an unexpected keyword argument {next(iter(kwargs))!r}")
        if post_init:
            self.__post_init__()

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in fields)
        return f"{type(self).__qualname__}({inner})"

    def values(self: Any) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in fields])

    def __eq__(self: Any, other: object) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    methods: dict[str, Any] = {"__init__": __init__, "__repr__": __repr__, "__eq__": __eq__}
    if frozen:
        methods["__setattr__"] = _frozen_setattr
        methods["__delattr__"] = _frozen_delattr
    if order:
        def ordered(compare: Callable[[tuple[Any, ...], tuple[Any, ...]], bool]) -> Callable[[Any, object], Any]:
            def method(self: Any, other: object) -> Any:
                if other.__class__ is self.__class__:
                    return compare(values(self), values(other))
                return NotImplemented
            return method

        methods["__lt__"] = ordered(lambda a, b: a < b)
        methods["__le__"] = ordered(lambda a, b: a <= b)
        methods["__gt__"] = ordered(lambda a, b: a > b)
        methods["__ge__"] = ordered(lambda a, b: a >= b)
    for name, method in methods.items():
        if name not in cls.__dict__:
            method.__qualname__ = f"{qualname}.{name}"
            setattr(cls, name, method)
    if "__hash__" not in cls.__dict__ or cls.__dict__["__hash__"] is None:
        if frozen:
            cls.__hash__ = lambda self: hash(values(self))
        else:
            cls.__hash__ = None
    return cls


def _compiled_init(cls: type, fields: tuple[str, ...], defaults: dict[str, Any],
                   factories: dict[str, Callable[[], Any]], post_init: bool) -> Callable[..., None]:
    """The ``__init__`` a class makes many instances with: its fields as parameters, no loop."""
    params: list[str] = []
    body: list[str] = []
    env: dict[str, Any] = {"_set": object.__setattr__, "_MISSING": MISSING}
    for i, name in enumerate(fields):
        if name in defaults:
            env[f"_d{i}"] = defaults[name]
            params.append(f"{name}=_d{i}")
            body.append(f"    _set(self, {name!r}, {name})")
        elif name in factories:
            env[f"_f{i}"] = factories[name]
            params.append(f"{name}=_MISSING")
            body.append(f"    _set(self, {name!r}, _f{i}() if {name} is _MISSING else {name})")
        else:
            params.append(name)
            body.append(f"    _set(self, {name!r}, {name})")
    if post_init:
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(compile(source, f"<record {cls.__qualname__}>", "exec"), env)  # noqa: S102 - our own generated code
    init: Callable[..., None] = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[_T] | None = None, /, *, frozen: bool = True, order: bool = False) -> Any:
    """Make ``cls`` a record (see the module docstring); ``@record`` or ``@record(frozen=False, order=True)``."""
    if cls is None:
        return lambda c: _build(c, frozen, order)
    return _build(cls, frozen, order)


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of the record ``obj`` with ``changes`` (field name -> value), validated by its ``__init__``."""
    kind: Any = type(obj)
    fields: tuple[str, ...] = kind.__record_fields__
    unknown = [k for k in changes if k not in fields]
    if unknown:
        raise TypeError(f"{type(obj).__qualname__} has no field {unknown[0]!r}")
    values = {name: changes[name] if name in changes else getattr(obj, name) for name in fields}
    out: _T = kind(**values)
    return out


def fields_of(obj_or_cls: object) -> tuple[str, ...]:
    """The field names of a record (class or instance), in order."""
    cls: Any = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    return tuple(cls.__record_fields__)
