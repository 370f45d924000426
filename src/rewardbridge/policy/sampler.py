"""A faster categorical draw for ``transformers.generate`` on a CPU: one uniform number per row
instead of one exponential per vocabulary entry.

``generate`` samples each token with ``torch.multinomial(probs, num_samples=1)``, which on a
CPU draws an exponential for every entry of the distribution: 21 ms per token for 24 rows over
SmolLM2's 49,152 tokens on the project's 2-core Xeon, ~6% of a quickstart RL step. Inverting the
cumulative distribution (a float64 ``cumsum``, one uniform per row, ``searchsorted``) draws from
the same distribution in 0.4 ms. ``inverse_cdf_sampling()`` routes ``torch.multinomial`` to it
while it is open, for one-sample draws from 2-D CPU probabilities without a generator; every
other call, and invalid probabilities (torch's own error), go to torch unchanged. The draws come
from torch's global generator, so a seeded run stays reproducible, but they are not the tokens
``torch.multinomial`` would have drawn with the same seed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

_torch_multinomial = torch.multinomial


def inverse_cdf_draw(probs: torch.Tensor) -> torch.Tensor | None:
    """One index per row of ``probs`` (rows of non-negative weights, not necessarily summing to
    1), drawn in proportion to the weights; None when a row has a negative, infinite or NaN
    entry or sums to 0 (``torch.multinomial`` raises for those). A zero-weight entry is never
    drawn: ``searchsorted`` returns the first index whose cumulative weight exceeds the draw."""
    cdf = probs.cumsum(-1, dtype=torch.float64)
    total = cdf[:, -1:]
    if not (torch.isfinite(total).all() and (total > 0).all()) or bool((probs < 0).any()):
        return None
    draw = torch.rand(total.shape, dtype=torch.float64, device=probs.device) * total
    return torch.searchsorted(cdf, draw, right=True)


def _multinomial(
    input: torch.Tensor,
    num_samples: int,
    replacement: bool = False,
    *,
    generator: torch.Generator | None = None,
    out: torch.Tensor | None = None,
) -> Any:
    if (
        num_samples == 1
        and generator is None
        and out is None
        and input.dim() == 2
        and input.device.type == "cpu"
        and input.is_floating_point()
    ):
        drawn = inverse_cdf_draw(input)
        if drawn is not None:
            return drawn
    return _torch_multinomial(input, num_samples, replacement, generator=generator, out=out)


@contextlib.contextmanager
def inverse_cdf_sampling(enabled: bool = True) -> Iterator[None]:
    """While open, ``torch.multinomial`` draws one sample per row by ``inverse_cdf_draw`` (see
    the module docstring); ``enabled=False`` leaves torch alone. Restores what it replaced."""
    if not enabled:
        yield
        return
    previous = torch.multinomial
    torch.multinomial = _multinomial  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.multinomial = previous
