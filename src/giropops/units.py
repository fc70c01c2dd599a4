"""Sizes for people: decimal units (1 kB = 1000 B), as registries, Docker and Docker Scout print them."""

from __future__ import annotations


def human_size(n: float) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"
