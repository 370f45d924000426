"""The reward server: a FastAPI app around one verifier and a ``DynamicBatcher``.

Endpoints: ``POST /v1/judge`` (native batch), ``POST /get_reward`` (OpenRLHF remote reward),
``GET /health``, ``GET /metrics`` (Prometheus). Limits: request body size (413), queue bound
(503 + Retry-After), per-request timeout (items answered with status ``timeout``), optional
bearer token (401). Invalid bodies get FastAPI's 422 whose ``loc`` names the field.

Hooks where results come back (``hooked_verify``, in the batcher's worker thread, off the event
loop): ``record_path`` appends every judgment as a distillation record (``judging.recorder``);
``canary_share`` adds that share of master-key probes to the batches (``judging.canaries``),
whose false-positive rate ``/health`` reports; clients never see them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rewardbridge.data.example import JudgeItem
from rewardbridge.judging.canaries import CanaryMonitor
from rewardbridge.judging.recorder import JudgmentRecorder
from rewardbridge.serving.batching import (
    DynamicBatcher,
    QueueFullError,
    RequestTooLargeError,
    VerifyFn,
)
from rewardbridge.serving.config import ServerConfig
from rewardbridge.serving.metrics import ServerMetrics
from rewardbridge.serving.schema import (
    JudgeRequest,
    JudgeResponse,
    OpenRLHFRequest,
    OpenRLHFResponse,
    items_from_judge_request,
    items_from_openrlhf,
    judge_response,
    openrlhf_response,
)
from rewardbridge.verifiers.base import Verifier, VerifierResult

ENDPOINTS = ("/get_reward", "/v1/judge", "/health", "/metrics")

BearerCredentials = Annotated[
    HTTPAuthorizationCredentials | None,
    Depends(HTTPBearer(auto_error=False, description="the token of --auth-token")),
]


def hooked_verify(
    verifier: Verifier,
    recorder: JudgmentRecorder | None = None,
    canaries: CanaryMonitor | None = None,
) -> VerifyFn:
    """``verifier.verify`` with canaries appended to each batch (their results split off and
    observed) and every judgment of the batch recorded."""
    if recorder is None and canaries is None:
        return verifier.verify
    name = getattr(verifier, "name", type(verifier).__name__)

    def verify(items: Sequence[JudgeItem]) -> list[VerifierResult]:
        probes = canaries.probes(items) if canaries is not None else []
        results = verifier.verify([*items, *probes])
        own = list(results[: len(items)])
        if canaries is not None:
            canaries.observe(results[len(items) :])
        if recorder is not None:
            recorder.record(items, own, verifier=name)
        return own

    return verify


class _RequestMetrics:
    """Pure ASGI middleware recording each HTTP request's endpoint, status code and latency."""

    def __init__(self, app: ASGIApp, *, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        code = 500

        async def send_and_record(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            path = scope["path"] if scope["path"] in ENDPOINTS else "other"  # bounded labels
            self.metrics.observe_request(path, code, time.perf_counter() - start)


def create_app(verifier: Verifier, config: ServerConfig | None = None) -> FastAPI:
    """The reward server app. The caller owns ``verifier`` (and closes it)."""
    config = config or ServerConfig()
    metrics = ServerMetrics(queue_depth=lambda: batcher.queue_depth)
    recorder = JudgmentRecorder(config.record_path) if config.record_path else None
    canaries = None
    if config.canary_share > 0:
        canaries = CanaryMonitor(
            share=config.canary_share, max_fpr=config.canary_max_fpr, min_per_call=0
        )
    batcher = DynamicBatcher(
        hooked_verify(verifier, recorder, canaries),
        max_batch_size=config.max_batch_size,
        max_wait_s=config.max_wait_ms / 1000.0,
        max_queue=config.max_queue,
        on_batch=metrics.observe_batch,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            async with batcher:
                yield
        finally:
            if recorder is not None:
                recorder.close()

    app = FastAPI(
        title="rewardbridge reward server",
        summary="Generative-verifier rewards over HTTP (native batch API and OpenRLHF protocol)",
        lifespan=lifespan,
        max_body_size=config.max_body_bytes,  # 413 beyond it (FastAPI's own limit)
    )
    app.state.batcher = batcher
    app.state.metrics = metrics
    app.state.config = config

    async def require_token(credentials: BearerCredentials) -> None:
        if config.auth_token is None:
            return
        if credentials is None or not secrets.compare_digest(
            credentials.credentials.encode(), config.auth_token.encode()
        ):
            raise HTTPException(
                401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
            )

    async def judge(items: list[JudgeItem]) -> list[VerifierResult]:
        try:
            results = await batcher.judge(items, timeout_s=config.request_timeout_s)
        except QueueFullError as exc:
            raise HTTPException(
                503, str(exc), headers={"Retry-After": str(exc.retry_after_s)}
            ) from None
        except RequestTooLargeError as exc:
            raise HTTPException(413, str(exc)) from None
        metrics.observe_results(results)
        return results

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "verifier": getattr(verifier, "name", type(verifier).__name__),
            "queue_depth": batcher.queue_depth,
            "max_queue": config.max_queue,
            "max_batch_size": config.max_batch_size,
            **({"canaries": canaries.summary()} if canaries is not None else {}),
            **({"recorded": recorder.stats.written} if recorder is not None else {}),
        }

    @app.get("/metrics", dependencies=[Depends(require_token)])
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/judge", dependencies=[Depends(require_token)])
    async def judge_batch(body: JudgeRequest) -> JudgeResponse:
        items = items_from_judge_request(body)
        return judge_response(items, await judge(items))

    @app.post("/get_reward", dependencies=[Depends(require_token)])
    async def get_reward(body: OpenRLHFRequest) -> OpenRLHFResponse:
        try:
            items = items_from_openrlhf(body)
        except ValueError as exc:
            raise HTTPException(
                422, [{"loc": ["body", "labels"], "msg": str(exc), "type": "value_error"}]
            ) from None
        return openrlhf_response(await judge(items), fallback_reward=config.fallback_reward)

    app.add_middleware(_RequestMetrics, metrics=metrics)
    return app
