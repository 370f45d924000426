"""Prometheus metrics of the reward server, in a registry of their own (one per app, so tests
and several apps in one process do not collide)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from rewardbridge.verifiers.base import VerifierResult

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ServerMetrics:
    """Requests by endpoint and HTTP code, items by verifier status, batch sizes and times,
    request latency and queue depth (read from the batcher when scraped)."""

    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rewardbridge_requests", "HTTP requests", ["endpoint", "code"], registry=self.registry
        )
        self.items = Counter(
            "rewardbridge_items",
            "judged or unjudged items by status",
            ["status"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "rewardbridge_request_latency_seconds",
            "request latency",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "rewardbridge_batch_size",
            "items per verifier batch",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_latency = Histogram(
            "rewardbridge_batch_latency_seconds",
            "verifier time per batch",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "rewardbridge_queue_depth", "items waiting for a batch", registry=self.registry
        )
        self.queue_depth.set_function(queue_depth)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_latency.observe(seconds)

    def observe_results(self, results: Sequence[VerifierResult]) -> None:
        for result in results:
            self.items.labels(status=result.status.value).inc()

    def observe_request(self, endpoint: str, code: int, seconds: float) -> None:
        self.requests.labels(endpoint=endpoint, code=str(code)).inc()
        self.request_latency.labels(endpoint=endpoint).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
