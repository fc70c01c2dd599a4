"""Progress reporting without printing: the library reports, the CLI decides how to show it.

Long operations (layer copies, database downloads, builds) accept a ``Progress``
and call it; ``NO_PROGRESS`` ignores everything.  ``giropops.cli.progress`` has
the terminal renderer.
"""

from __future__ import annotations

from giropops.runtime_typing import Protocol


class Progress(Protocol):
    def start(self, key: str, label: str, total: int | None = None, unit: str = "B") -> None:
        """A task begins; ``total`` is in ``unit`` (``"B"`` bytes, or items such as ``"packages"``), None
        when unknown."""

    def advance(self, key: str, amount: int) -> None: ...

    def finish(self, key: str, message: str | None = None) -> None: ...

    def note(self, message: str) -> None:
        """A one-line status message (e.g. 'blob sha256:ab.. already exists')."""


class _NoProgress:
    def start(self, key: str, label: str, total: int | None = None, unit: str = "B") -> None:
        pass

    def advance(self, key: str, amount: int) -> None:
        pass

    def finish(self, key: str, message: str | None = None) -> None:
        pass

    def note(self, message: str) -> None:
        pass


NO_PROGRESS: Progress = _NoProgress()
