"""A Progress that remembers what it was told, for assertions."""

from __future__ import annotations


class RecordingProgress:
    def __init__(self) -> None:
        self.started: dict[str, int | None] = {}
        self.units: dict[str, str] = {}
        self.advanced: dict[str, int] = {}
        self.finished: dict[str, str | None] = {}
        self.notes: list[str] = []

    def start(self, key: str, label: str, total: int | None = None, unit: str = "B") -> None:
        self.started[key] = total
        self.units[key] = unit

    def advance(self, key: str, amount: int) -> None:
        self.advanced[key] = self.advanced.get(key, 0) + amount

    def finish(self, key: str, message: str | None = None) -> None:
        self.finished[key] = message

    def note(self, message: str) -> None:
        self.notes.append(message)
