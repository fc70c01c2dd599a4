"""Terminal progress: one line per task, redrawn in place on a TTY; silent otherwise.

Redrawing is throttled so a fast copy does not spend its time writing to the terminal.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from giropops.units import human_size as _human


class TerminalProgress:
    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._tasks: dict[str, tuple[str, int | None, int]] = {}
        self._units: dict[str, str] = {}
        self._last_draw = 0.0
        # Layers are copied by several threads at once (giropops.oci.copypool): one line at a time.
        self._lock = threading.RLock()

    def start(self, key: str, label: str, total: int | None = None, unit: str = "B") -> None:
        with self._lock:
            self._tasks[key] = (label, total, 0)
            self._units[key] = unit
            self._draw(key, force=True)

    def advance(self, key: str, amount: int) -> None:
        with self._lock:
            if key in self._tasks:
                label, total, done = self._tasks[key]
                self._tasks[key] = (label, total, done + amount)
                self._draw(key)

    def finish(self, key: str, message: str | None = None) -> None:
        with self._lock:
            task = self._tasks.pop(key, None)
            self._units.pop(key, None)
            if not self.enabled or task is None:
                return
            label = task[0]
            self.stream.write(f"\r\x1b[2K{label}: {message or 'done'}\n")
            self.stream.flush()

    def note(self, message: str) -> None:
        with self._lock:
            if self.enabled:
                self.stream.write(f"\r\x1b[2K{message}\n")
                self.stream.flush()

    def _draw(self, key: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        label, total, done = self._tasks[key]
        unit = self._units.get(key, "B")
        if unit == "B":
            amount = f"{_human(done)}/{_human(total)}" if total else _human(done)
        else:
            amount = f"{done}/{total} {unit}" if total else f"{done} {unit}"
        if total:
            pct = min(100, done * 100 // max(total, 1))
            bar = "#" * (pct // 5) + "-" * (20 - pct // 5)
            text = f"{label}: [{bar}] {pct:3d}% {amount}"
        else:
            text = f"{label}: {amount}"
        self.stream.write(f"\r\x1b[2K{text}")
        self.stream.flush()
