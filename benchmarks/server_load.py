"""Reward-server load test: many single-sample OpenRLHF clients vs in-process batched scoring.

    python benchmarks/server_load.py --quick                        # cost-model double, seconds
    python benchmarks/server_load.py --verifier generative --json out.json  # the headline

Same items, same run: (1) the verifier scores them in-process in batches of
``--max-batch-size``, (2) a ``rewardbridge`` server in a subprocess on loopback serves them to
``--clients`` concurrent clients, each sending one sample per POST /get_reward (OpenRLHF's
shape: chat-templated query, prompt, JSON label). Reported: throughput of both and their ratio,
p50/p99 request latency, lost / duplicated / mismatched answers (every item must get exactly
one reward, equal to the in-process one; the server's item counter must equal the requests),
and the server's RSS sampled through the run (start, end, max).

``--verifier cost-model`` is a test double whose batch costs ``--batch-overhead-ms`` plus
``--item-ms`` per item (sleeping, like a GPU forward); any registry name (``generative``,
``contains``...) builds the real verifier in both the benchmark and the server process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "src/rewardbridge/data/corpora/hardverify_math/HardVerify-Math_pairs.jsonl"
CHATML = "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"


class CostModelVerifier:
    """Scores like ``contains`` (reference in response) at a fixed cost per batch and per item."""

    name = "cost-model"

    def __init__(self, batch_overhead_ms: float = 40.0, item_ms: float = 1.0) -> None:
        self.batch_overhead_s = batch_overhead_ms / 1000.0
        self.item_s = item_ms / 1000.0

    def verify(self, items: Sequence[Any]) -> list[Any]:
        from rewardbridge.verifiers.base import Status, VerifierResult

        time.sleep(self.batch_overhead_s + self.item_s * len(items))
        return [
            VerifierResult.ok(1.0 if it.reference.strip() in it.response else 0.0)
            if it.response.strip()
            else VerifierResult.failed(Status.EMPTY_RESPONSE, "empty response")
            for it in items
        ]

    def close(self) -> None:
        pass


def build(args: argparse.Namespace) -> Any:
    if args.verifier == "cost-model":
        return CostModelVerifier(args.batch_overhead_ms, args.item_ms)
    from rewardbridge.verifiers.registry import build_verifier

    options: dict[str, Any] = {}
    if args.model:
        options["model"] = args.model
    if args.verifier == "generative":
        options["batch_size"] = args.max_batch_size
    return build_verifier(args.verifier, **options)


def serve(args: argparse.Namespace) -> int:
    """Child process: the reward server on loopback."""
    import uvicorn

    from rewardbridge.serving.app import ServerConfig, create_app

    config = ServerConfig(
        max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms, max_queue=100_000
    )
    uvicorn.run(
        create_app(build(args), config),
        host="127.0.0.1",
        port=args.serve,
        log_level="warning",
        access_log=False,
    )
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def load_items(args: argparse.Namespace) -> list[Any]:
    from rewardbridge.data.loaders import load_judge_items

    items = load_judge_items(args.data)
    while len(items) < args.items:
        items = items + items
    return [it for it in items[: args.items]]


def openrlhf_body(item: Any) -> dict[str, list[str]]:
    prompt = CHATML.format(q=item.question)
    label = json.dumps({"question": item.question, "reference": item.reference})
    return {
        "query": [prompt + item.response + "<|im_end|>"],
        "prompts": [prompt],
        "labels": [label],
    }


async def post_json(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, payload: Any
) -> tuple[int, bytes]:
    """One HTTP/1.1 keep-alive POST. A minimal client on purpose: at 64 connections httpx's
    connection pool costs this CPU more than the server does (60 vs 365 req/s measured), and
    the benchmark must measure the server."""
    body = json.dumps(payload).encode()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(v)
        for k, _, v in (ln.partition(":") for ln in lines[1:])
        if k.lower() == "content-length"
    )
    return status, await reader.readexactly(length)


async def run_clients(
    port: int, items: list[Any], indices: Sequence[int], clients: int
) -> dict[str, Any]:
    """``clients`` connections, each posting one item at a time until ``indices`` run out."""
    answers: dict[int, list[float]] = {}
    latencies: list[float] = []
    errors: list[str] = []
    next_index = iter(indices)

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in next_index:
                start = time.perf_counter()
                status, body = await post_json(
                    reader, writer, "/get_reward", openrlhf_body(items[i])
                )
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors.append(f"{status} {body[:200]!r}")
                    continue
                answers.setdefault(i, []).extend(json.loads(body)["rewards"])
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - start
    import httpx

    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return {
        "answers": answers,
        "latencies": latencies,
        "errors": errors,
        "seconds": seconds,
        "metrics": metrics,
    }


def wait_for_server(url: str, server: subprocess.Popen[bytes], timeout_s: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError("reward server did not start")
        time.sleep(0.2)


def metric_sum(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--verifier", default="cost-model", help="cost-model or a registry name")
    p.add_argument("--model", help="generative: model folder")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="judge items (JSONL)")
    p.add_argument("--items", type=int, default=1024, help="requests in the load phase")
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--batch-overhead-ms", type=float, default=40.0, help="cost-model only")
    p.add_argument("--item-ms", type=float, default=1.0, help="cost-model only")
    p.add_argument("--rounds", type=int, default=4, help="alternating in-process/server rounds")
    p.add_argument("--warmup", type=int, default=64, help="untimed items through both first")
    p.add_argument("--quick", action="store_true", help="256 items, for a fast check")
    p.add_argument("--json", dest="json_out", help="write the results here")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # child process mode
    args = p.parse_args(argv)
    if args.serve:
        return serve(args)
    if args.quick:
        args.items = min(args.items, 256)

    items = load_items(args)
    print(f"{len(items)} items from {args.data}; verifier {args.verifier}", flush=True)
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", str(port), *(argv or sys.argv[1:])]
    server = subprocess.Popen(cmd, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    verifier = build(args)  # loads while the server loads
    # The baseline calls verify from one worker thread, as the server does: on this loaded VM
    # torch measured 2.4x slower from the main thread than from a worker thread (OpenMP), and
    # the same thread setup keeps the float reductions, hence near-tie verdicts, identical.
    worker = ThreadPoolExecutor(max_workers=1)
    rss: list[float] = []
    stop = threading.Event()
    baseline: dict[int, float | None] = {}
    answers: dict[int, list[float]] = {}
    latencies: list[float] = []
    errors: list[str] = []
    inproc_s = server_s = 0.0
    metrics_text = ""
    try:
        wait_for_server(f"http://127.0.0.1:{port}", server)
        # Untimed warm-up of both on the same items (first shapes are slow for a model).
        warm = list(range(min(len(items), args.warmup)))
        worker.submit(verifier.verify, [items[i] for i in warm]).result()
        asyncio.run(run_clients(port, items, warm, args.clients))
        warm_rss = rss_mb(server.pid)

        def sample() -> None:
            while not stop.wait(0.25):
                rss.append(rss_mb(server.pid))

        threading.Thread(target=sample, daemon=True).start()
        # Rounds alternate the order (ABBA) so drifting machine load hits both sides alike.
        bounds = [round(len(items) * r / args.rounds) for r in range(args.rounds + 1)]
        for r in range(args.rounds):
            chunk = range(bounds[r], bounds[r + 1])
            for side in ("inproc", "server") if r % 2 == 0 else ("server", "inproc"):
                start = time.perf_counter()
                if side == "inproc":
                    for i in range(chunk.start, chunk.stop, args.max_batch_size):
                        batch = range(i, min(i + args.max_batch_size, chunk.stop))
                        results = worker.submit(verifier.verify, [items[j] for j in batch]).result()
                        baseline.update(
                            (j, res.score) for j, res in zip(batch, results, strict=True)
                        )
                    inproc_s += time.perf_counter() - start
                else:
                    load = asyncio.run(run_clients(port, items, chunk, args.clients))
                    server_s += time.perf_counter() - start
                    for i, a in load["answers"].items():
                        answers.setdefault(i, []).extend(a)
                    latencies += load["latencies"]
                    errors += load["errors"]
                    metrics_text = load["metrics"]  # counters are cumulative
            print(
                f"round {r + 1}/{args.rounds}: in-process {inproc_s:.1f} s, "
                f"server {server_s:.1f} s so far",
                flush=True,
            )
        stop.set()
        end_rss = rss_mb(server.pid)
    finally:
        stop.set()
        server.terminate()
        server.wait(30)
        verifier.close()
        worker.shutdown()

    lost = [i for i in range(len(items)) if i not in answers]
    duplicated = [i for i, a in answers.items() if len(a) != 1]
    # an unjudged item answers reward NaN (no fallback chosen): it matches an unjudged baseline
    mismatched = [
        i
        for i, a in answers.items()
        if len(a) == 1 and not (a[0] == baseline[i] or (baseline[i] is None and math.isnan(a[0])))
    ]
    inproc_rate = len(items) / inproc_s
    server_items = metric_sum(metrics_text, "rewardbridge_items_total")
    server_rate = len(items) / server_s
    lat_ms = [x * 1000 for x in latencies]
    batches = metric_sum(metrics_text, "rewardbridge_batch_size_count")
    batch_items = metric_sum(metrics_text, "rewardbridge_batch_size_sum")
    rss_values = rss or [end_rss]
    result = {
        "verifier": args.verifier,
        "items": len(items),
        "clients": args.clients,
        "max_batch_size": args.max_batch_size,
        "max_wait_ms": args.max_wait_ms,
        "inprocess_items_per_s": round(inproc_rate, 2),
        "server_items_per_s": round(server_rate, 2),
        "ratio": round(server_rate / inproc_rate, 3),
        "latency_p50_ms": round(statistics.median(lat_ms), 1),
        "latency_p99_ms": round(percentile(lat_ms, 99), 1),
        "mean_server_batch": round(batch_items / batches, 1) if batches else None,
        "http_errors": len(errors),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "mismatched_vs_inprocess": len(mismatched),
        "server_items_counted": int(server_items),  # includes the warm-up requests
        "expected_server_items": len(items) + min(len(items), args.warmup),
        "rounds": args.rounds,
        "rss_mb_after_warmup": round(warm_rss, 1),
        "rss_mb_end": round(end_rss, 1),
        "rss_mb_max": round(max(rss_values), 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus (shared)",
    }
    print(json.dumps(result, indent=2))
    if errors:
        print("first errors:", errors[:3], file=sys.stderr)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")
    ok = not (lost or duplicated or errors) and server_items == result["expected_server_items"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
