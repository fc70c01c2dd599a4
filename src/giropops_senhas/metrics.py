"""Prometheus metrics: the original's ``senha_gerada_total`` plus request counts and latencies.

Under gunicorn each worker is a separate process, so a plain in-memory registry would show one worker's numbers
per scrape.  ``giropops-senhas`` therefore runs prometheus_client's multiprocess mode: it points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory *before* any worker imports prometheus_client, every worker
writes its values to memory-mapped files there, and ``/metrics`` sums the files.  Without that variable (tests,
``flask run``) each app gets its own in-memory registry, so two apps in one process never share counts.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Few buckets, aimed at where this app lives (sub-millisecond to tens of ms), keep observe() and scrapes cheap.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.senha_gerada = Counter(
            "senha_gerada", "Contador de senhas geradas", registry=self.registry
        )
        self.requests = Counter(
            "http_requests",
            "HTTP requests handled, by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to handle an HTTP request, by method, route template and status code",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        # (method, route, status) -> the two labelled children; the label set is small and bounded (routes are
        # templates, unmatched paths share one label), so caching skips labels()' lock and validation.
        self._filhos: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        filhos = self._filhos.get((method, route, status))
        if filhos is None:
            labels = (method, route, str(status))
            filhos = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._filhos[(method, route, status)] = filhos
        filhos[0].inc()
        filhos[1].observe(seconds)

    def exposition(self) -> bytes:
        if multiprocess_mode():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
