"""Generative verifier throughput on the embedded SmolLM2-135M judge: judgments per second.

Workloads (``judge_workloads.py``): ``sample64`` (16 questions x 4 one-line responses, the
64-item benchmark), ``rl`` (8 questions x 8 samples of the embedded policy, final step) and
``long`` (VerifyBench-shaped: whole reference solutions, full and repeated chains of thought,
some past the judge's context). Methods, each at each ``--dtypes`` entry, named
``"<method>@<dtype>"``, all through ``TransformersBackend.first_tokens`` on the same items:

- ``one_at_a_time``: one conversation per call (no batching);
- ``batched``: token-budget batches, last-position logits only (``prefix_sharing=False``);
- ``prefix_shared``: the same, with the KV cache of shared prompt prefixes computed once;
- ``vllm_server`` (when the integration tier's vLLM environment exists, or ``--vllm-python``):
  vLLM's CPU server (bf16, its prefix caching on) started by this run, asked through our
  ``OpenAIBackend`` (one max_tokens=1 completion with logprobs per item, bounded concurrency).

GFLOP/s = FLOPs / time with FLOPs = 2 x (non-embedding parameters) per prompt token computed
(padding and tokens reused from a shared prefix not counted; for vLLM every prompt token, its
cache hits unknown) + 2 x (vocab x hidden) per read-out; ``matmul_peak_gflops`` is a 2048 x
2048 ``torch.matmul`` per dtype in the same run. ``tokens_per_s`` counts the prompt tokens of
the judged items per second. Prompts over the context come back TOO_LONG and are counted.
On a shared CPU, compare ``judgments_per_cpu_s`` (CPU seconds of this process; with
``--threads 1`` that is the compute itself, without OpenMP spin-waiting); vLLM's work happens
in its own processes, so it has wall-clock rates only.

    python benchmarks/verifier_throughput.py [--quick] [--workloads sample64,rl,long] [--json OUT]
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import judge_workloads
from rewardbridge.verifiers.backends.transformers_backend import TransformersBackend
from rewardbridge.verifiers.base import Status, VerifierResult

REPO = Path(__file__).resolve().parents[1]


def matmul_peak_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def find_vllm_python(given: str | None) -> Path | None:
    """--vllm-python, else the integration tier's side environment (tests/integration)."""
    if given == "none":
        return None
    if given:
        return Path(given)
    from rewardbridge.models import cache_dir

    ready = sorted(glob.glob(str(cache_dir() / "side-envs" / "vllm-*" / ".ready")))
    return Path(ready[-1]).parent / "bin" / "python" if ready else None


def start_vllm(python: Path, model_dir: str, log: Path) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "integration_servers", REPO / "tests" / "integration" / "servers.py"
    )
    assert spec is not None and spec.loader is not None
    servers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(servers)
    server = servers.vllm_server(python, Path(model_dir), log)
    context = server.command.index("--max-model-len") + 1
    server.command[context] = "8192"
    return server.start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 x 4 sample items, 8 rl, 6 long")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--workloads", default="sample64,rl,long")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--methods", default="batched,prefix_shared", help="+ one_at_a_time")
    parser.add_argument("--batch-size", type=int, default=16, help="rows per forward, at most")
    parser.add_argument("--max-batch-tokens", type=int, default=8192)
    parser.add_argument("--long-items", type=int, default=48)
    parser.add_argument("--rl-tokens", type=int, default=32, help="which policy-sample file")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--vllm-python", help="python of a vLLM env (default: detect; 'none')")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtypes = args.dtypes.split(",")
    methods = args.methods.split(",")

    backends = {
        d: TransformersBackend(
            device="cpu",
            batch_size=args.batch_size,
            dtype=d,
            max_batch_tokens=args.max_batch_tokens,
        )
        for d in dtypes
    }
    first = backends[dtypes[0]]
    config = first.model.config
    head_flops = 2 * config.vocab_size * config.hidden_size
    body_params = sum(p.numel() for p in first.model.parameters()) - head_flops // 2
    quick = args.quick
    builders = {
        "sample64": lambda: judge_workloads.sample64(first.tokenizer, 4 if quick else 16),
        "rl": lambda: judge_workloads.rl(args.rl_tokens)[: 8 if quick else None],
        "long": lambda: judge_workloads.long(6 if quick else args.long_items),
    }
    workloads = {name: builders[name]() for name in args.workloads.split(",")}
    report: dict[str, Any] = {"workloads": {}, "torch_threads": torch.get_num_threads()}
    report["matmul_peak_gflops"] = {d: matmul_peak_gflops(getattr(torch, d)) for d in dtypes}
    print(f"matmul peak GFLOP/s: {report['matmul_peak_gflops']}", flush=True)
    for backend in backends.values():  # warm-up
        backend.first_tokens(workloads[next(iter(workloads))][:2])

    vllm_python = find_vllm_python(args.vllm_python)
    server = None
    if vllm_python is not None and vllm_python.exists():
        from rewardbridge.models import resolve_model
        from rewardbridge.verifiers.backends.openai_backend import OpenAIBackend

        log = Path("/tmp") / f"vllm_throughput_{int(time.time())}.log"
        print(f"starting vLLM ({vllm_python}), log {log}", flush=True)
        server = start_vllm(vllm_python, resolve_model(None), log)
        remote = OpenAIBackend([server.url], served_model="judge", max_concurrency=64)
        remote.first_tokens(judge_workloads.sample64(first.tokenizer, 2))  # warm-up, other items

    try:
        for name, conversations in workloads.items():
            lengths = [len(first.encode(c)) for c in conversations]
            fits = [n for n in lengths if first.context_length is None or n <= first.context_length]
            info: dict[str, Any] = {
                "items": len(conversations),
                "prompt_tokens": {"mean": sum(lengths) / len(lengths), "max": max(lengths)},
                "too_long": len(lengths) - len(fits),
                "methods": {},
            }
            print(
                f"\n{name}: {len(conversations)} items, mean {info['prompt_tokens']['mean']:.0f}"
                f" tokens, max {max(lengths)}, {info['too_long']} over the context",
                flush=True,
            )
            probs: dict[str, Any] = {}

            def flops(tokens: int, n: int = len(conversations)) -> float:
                return 2 * body_params * tokens + head_flops * n

            for dtype, backend in backends.items():
                for method in methods:
                    backend.prefix_sharing = method == "prefix_shared"
                    backend.tokens_computed = backend.tokens_padded = 0
                    start, cpu = time.perf_counter(), time.process_time()
                    if method == "one_at_a_time":
                        answers = [backend.first_tokens([c])[0] for c in conversations]
                    else:
                        answers = backend.first_tokens(conversations)
                    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
                    info["methods"][f"{method}@{dtype}"] = measured(
                        f"{method}@{dtype}", seconds, backend.tokens_computed, answers, fits, flops
                    ) | {
                        "cpu_s": cpu,
                        "judgments_per_cpu_s": len(answers) / cpu,
                        "tokens_per_cpu_s": sum(fits) / cpu,
                        "padding_share": 1
                        - backend.tokens_computed / max(backend.tokens_padded, 1),
                    }
                    probs[f"{method}@{dtype}"] = answers
            if server is not None:
                start = time.perf_counter()
                answers = remote.first_tokens(conversations)
                seconds = time.perf_counter() - start
                info["methods"]["vllm_server"] = measured(
                    "vllm_server", seconds, sum(fits), answers, fits, flops
                )
                probs["vllm_server"] = answers
            info["agreement_with_" + f"batched@{dtypes[0]}"] = agreement(
                probs, f"batched@{dtypes[0]}"
            )
            report["workloads"][name] = info
    finally:
        if server is not None:
            server.stop()
    if "sample64" in report["workloads"]:
        report["methods"] = report["workloads"]["sample64"]["methods"]  # the 64-item headline
        base_rate = report["methods"][f"batched@{dtypes[0]}"]["judgments_per_s"]
        for method, row in report["methods"].items():
            ratio = row["judgments_per_s"] / base_rate
            print(f"{method} / batched@{dtypes[0]} = {ratio:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def measured(
    method: str, seconds: float, tokens: int, answers: list[Any], fits: list[int], flops: Any
) -> dict[str, float]:
    too_long = sum(isinstance(a, VerifierResult) and a.status is Status.TOO_LONG for a in answers)
    row = {
        "judgments_per_s": len(answers) / seconds,
        "gflops": flops(tokens) / seconds / 1e9,
        "tokens_per_s": sum(fits) / seconds,
        "seconds": seconds,
        "too_long": too_long,
    }
    print(
        f"  {method:24s} {row['judgments_per_s']:7.2f} judgments/s {row['gflops']:7.1f} GFLOP/s "
        f"{row['tokens_per_s']:8.0f} tok/s ({seconds:.1f} s, {too_long} too long)",
        flush=True,
    )
    return row


def agreement(answers: dict[str, list[Any]], base: str) -> dict[str, dict[str, float]]:
    """Per method: share of items with the base's first token, and the max |p(YES-side)| gap."""
    from rewardbridge.verifiers.judgment import PAPER_WORDS, judgment_probabilities

    def p_yes(a: Any) -> float | None:
        if isinstance(a, VerifierResult):
            return None
        return judgment_probabilities(a, PAPER_WORDS)[0]

    out = {}
    for method, rows in answers.items():
        pairs = [
            (a, b)
            for a, b in zip(answers[base], rows, strict=True)
            if not isinstance(a, VerifierResult) and not isinstance(b, VerifierResult)
        ]
        gaps = [abs((p_yes(a) or 0.0) - (p_yes(b) or 0.0)) for a, b in pairs]
        out[method] = {
            "same_first_token": sum(a.chosen == b.chosen for a, b in pairs) / max(len(pairs), 1),
            "max_p_yes_diff": max(gaps, default=0.0),
        }
    return out


if __name__ == "__main__":
    raise SystemExit(main())
