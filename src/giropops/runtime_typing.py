"""``Protocol``, ``runtime_checkable`` and ``cast`` for the modules of a cold ``giropops sbom``, without ``typing``.

Importing ``typing`` (and the ``contextlib`` it imports) is a visible part of a cold run on a small
image, and those modules need only three of its names at run time: protocol classes (interfaces that
other modules import by name), ``runtime_checkable`` ones (``isinstance(obj, Image)``) and ``cast``.
mypy reads the ``typing`` names (the ``TYPE_CHECKING`` branch); the interpreter gets these stand-ins:

* ``Protocol``: a plain base class.  Nothing subclasses a protocol of this code base (implementations
  are structural), and ``isinstance`` on one that is not ``runtime_checkable`` is a ``TypeError`` in
  ``typing``, so no code does it;
* ``runtime_checkable``: ``isinstance(obj, P)`` as ``typing`` answers it for a protocol of properties
  and methods: a subclass of ``P``, or an object that has every public member of ``P`` (a method
  member not ``None``);
* ``cast``: returns its value, as ``typing.cast`` does.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a start-up cost); mypy knows it

if TYPE_CHECKING:
    from typing import Protocol as Protocol
    from typing import cast as cast
    from typing import runtime_checkable as runtime_checkable
else:

    class _Structural(type):
        # the public members a runtime_checkable protocol's isinstance looks for; None: a plain class
        _members: tuple[str, ...] | None = None

        def __instancecheck__(cls, obj: object) -> bool:
            if type.__instancecheck__(cls, obj) or cls._members is None:
                return type.__instancecheck__(cls, obj)
            for name in cls._members:
                if not hasattr(obj, name):
                    return False
                if callable(getattr(cls, name, None)) and getattr(obj, name) is None:
                    return False
            return True

    class Protocol(metaclass=_Structural):
        """Base of the protocol classes at run time (see the module docstring)."""

        __slots__ = ()

    def runtime_checkable(cls: type) -> type:
        """``cls``, whose ``isinstance`` now checks its public members (see the module docstring)."""
        cls._members = tuple(sorted(name for name in vars(cls) if not name.startswith("_")))
        return cls

    def cast(_type: object, value: object) -> object:
        """``value``: ``typing.cast`` at run time."""
        return value


__all__ = ["Protocol", "cast", "runtime_checkable"]
