"""A loopback stand-in for ``vllm serve`` (OpenAI-compatible chat completions with logprobs).

Answers ``GET /v1/models`` and ``POST /v1/chat/completions`` in vLLM's response format
(``choices[0].logprobs.content[0] = {token, logprob, bytes, top_logprobs: [...]}``) on
127.0.0.1 at a free port, from a uvicorn server in a daemon thread. The verdict is YES when the
rendered judge prompt's response slot equals its reference answer (after stripping), else NO;
pass ``judge=`` to decide otherwise. Behaviour is set with keyword arguments and can be changed
between calls with ``reset(...)``:

- ``latency_s``: delay of every chat completion;
- ``fail_first`` / ``fail_status`` / ``retry_after``: the first k chat calls answer that status;
- ``hang_first`` / ``hang_s``: the first k chat calls hang (client timeouts);
- ``down``: every request answers 503;
- ``no_logprobs``: answer without logprobs (a server that ignores the option);
- ``splits``: how the fake tokenizer splits a text (``{"YES": ["Y", "ES"]}``, as SmolLM2 does;
  any other text is one token), served by vLLM's ``POST /tokenize`` and ``/detokenize``;
  ``verdict_tokens``: the token texts emitted for YES and NO (default ``("YES", "NO")``);
- ``no_tokenize``: ``/tokenize`` and ``/detokenize`` answer 404 (a server without them).

The server records ``calls``, ``requests`` (payloads), ``headers``, ``max_in_flight`` and
``tokenize_calls``.
"""

from __future__ import annotations

import asyncio
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

# SmolLM2-135M-Instruct's first pieces (test_transformers_backend checks the real tokenizer's)
SMOLLM2_SPLITS = {"YES": ["Y", "ES"], " YES": [" Y", "ES"]}
SMOLLM2_SIDES = {
    "Y": "YES",
    "Yes": "YES",
    "yes": "YES",
    " Y": "YES",
    " Yes": "YES",
    " yes": "YES",
    "NO": "NO",
    "No": "NO",
    "no": "NO",
    " NO": "NO",
    " No": "NO",
    " no": "NO",
}

Messages = Sequence[dict[str, Any]]

# The paper's template: "**Solution Process (Final Step Only):**  \n{response}  \n\n
# **Reference Answer:**  \n{reference}  \n\n**Output:**"
_SLOTS = re.compile(
    r"\*\*Solution Process[^\n]*\n(?P<response>.*?)\n[ \t]*\n"
    r"\*\*Reference Answer:\*\*[^\n]*\n(?P<reference>.*?)\n[ \t]*\n",
    re.S,
)

_FILLER = [
    "The",
    "**",
    "\n",
    "Yes",
    "No",
    " YES",
    " NO",
    "yes",
    "no",
    "I",
    "Based",
    "1",
    "0",
    "A",
    "Answer",
    "```",
    '"',
    "Y",
    "N",
    "Correct",
    "False",
    "True",
    "OK",
    "-",
]


def slots_equal(messages: Messages) -> bool:
    """YES when the response slot equals the reference slot of the last user message."""
    user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    if user is None:
        return False
    match = _SLOTS.search(str(user.get("content", "")))
    if match is None:
        return False
    return match["response"].strip() == match["reference"].strip()


@dataclass
class Behaviour:
    model: str = "fake-judge"
    latency_s: float = 0.0
    fail_first: int = 0
    fail_status: int = 500
    retry_after: str | None = None
    hang_first: int = 0
    hang_s: float = 3.0
    down: bool = False
    no_logprobs: bool = False
    confidence: float = 0.9
    max_logprobs: int = 20
    judge: Callable[[Messages], bool] = slots_equal
    splits: dict[str, list[str]] = field(default_factory=dict)
    verdict_tokens: tuple[str, str] = ("YES", "NO")
    no_tokenize: bool = False


def top_logprobs(
    verdict: str, confidence: float, n: int, other: str | None = None
) -> list[tuple[str, float]]:
    """The verdict with ``confidence``, the other verdict with most of the rest, filler after."""
    if other is None:
        other = "NO" if verdict == "YES" else "YES"
    rest = 1.0 - confidence
    probs = [(verdict, confidence), (other, rest * 0.6)]
    share = rest * 0.4 / len(_FILLER)
    filler = [tok for tok in _FILLER if tok not in (verdict, other)]
    probs += [(tok, share * (0.9**i)) for i, tok in enumerate(filler)]
    return [(tok, math.log(p)) for tok, p in probs[:n]]


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def _error(status: int, message: str) -> JSONResponse:
    kind = {400: "BadRequestError", 404: "NotFoundError", 429: "RateLimitError"}.get(
        status, "InternalServerError"
    )
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": status}},
        status_code=status,
    )


@dataclass
class FakeVLLM:
    behaviour: Behaviour = field(default_factory=Behaviour)
    calls: int = 0
    model_calls: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    port: int = 0
    tokenize_calls: int = 0
    vocab: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self, **changes: Any) -> FakeVLLM:
        """New behaviour (``Behaviour`` fields) and zeroed counters."""
        unknown = set(changes) - {f.name for f in fields(Behaviour)}
        if unknown:
            raise TypeError(f"unknown behaviour: {sorted(unknown)}")
        self.behaviour = replace(Behaviour(), **changes)
        self.calls = self.model_calls = self.max_in_flight = self.tokenize_calls = 0
        self.requests.clear()
        self.headers.clear()
        return self

    # -- the app -----------------------------------------------------------------------------

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> Any:
            self.model_calls += 1
            if self.behaviour.down:
                return _error(503, "server is down")
            return {
                "object": "list",
                "data": [
                    {
                        "id": self.behaviour.model,
                        "object": "model",
                        "created": 0,
                        "owned_by": "vllm",
                        "root": self.behaviour.model,
                        "max_model_len": 4096,
                    }
                ],
            }

        @app.post("/tokenize")
        async def tokenize(request: Request) -> Any:
            payload = await request.json()
            self.tokenize_calls += 1
            if self.behaviour.no_tokenize:
                return _error(404, "Not Found")
            if self.behaviour.down:
                return _error(503, "server is down")
            text = str(payload["prompt"])
            pieces = self.behaviour.splits.get(text, [text] if text else [])
            ids = [self.vocab.setdefault(p, len(self.vocab) + 1000) for p in pieces]
            out: dict[str, Any] = {"count": len(ids), "max_model_len": 4096, "tokens": ids}
            out["token_strs"] = pieces if payload.get("return_token_strs") else None
            return out

        @app.post("/detokenize")
        async def detokenize(request: Request) -> Any:
            payload = await request.json()
            if self.behaviour.no_tokenize:
                return _error(404, "Not Found")
            texts = {i: t for t, i in self.vocab.items()}
            return {"prompt": "".join(texts[int(i)] for i in payload["tokens"])}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            payload = await request.json()
            self.calls += 1
            call = self.calls
            self.requests.append(payload)
            self.headers.append(dict(request.headers))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                return await self._complete(payload, call)
            finally:
                self.in_flight -= 1

        return app

    async def _complete(self, payload: dict[str, Any], call: int) -> Any:
        b = self.behaviour
        if b.down:
            return _error(503, "server is down")
        if b.latency_s:
            await asyncio.sleep(b.latency_s)
        if call <= b.hang_first:
            deadline = time.monotonic() + b.hang_s
            while time.monotonic() < deadline and not self._stopping:
                await asyncio.sleep(0.01)
            return _error(504, "hung")
        if call <= b.fail_first:
            response = _error(b.fail_status, f"injected failure {call}")
            if b.retry_after is not None:
                response.headers["Retry-After"] = b.retry_after
            return response
        if payload.get("model") != b.model:
            return _error(404, f"The model `{payload.get('model')}` does not exist.")
        n = int(payload.get("top_logprobs") or 0)
        if n > b.max_logprobs:
            return _error(400, f"Requested top logprobs of {n} exceeds max of {b.max_logprobs}")
        yes, no = b.verdict_tokens
        verdict, other = (yes, no) if b.judge(payload["messages"]) else (no, yes)
        top = top_logprobs(verdict, b.confidence, max(n, 1), other)
        logprobs = None
        if payload.get("logprobs") and not b.no_logprobs:
            first = _entry(*top[0]) | {"top_logprobs": [_entry(t, lp) for t, lp in top[:n]]}
            logprobs = {"content": [first]}
        return JSONResponse(
            {
                "id": f"chatcmpl-{call}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": b.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": verdict, "tool_calls": []},
                        "logprobs": logprobs,
                        "finish_reason": "length",
                        "stop_reason": None,
                    }
                ],
                "usage": {"prompt_tokens": 100, "total_tokens": 101, "completion_tokens": 1},
            }
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeVLLM:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"fake-vllm-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake vLLM server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeVLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def unused_port_url() -> str:
    """A loopback URL nobody listens on (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
