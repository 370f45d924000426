"""The RL run configuration: frozen, validated dataclasses per component, composed into
``RunConfig``, parsed from a YAML recipe plus dotted overrides (``--algorithm.beta 0.0``).

Every field's comment is its documentation; an invalid value fails at start with the field's
dotted name and what to change (the YAML/CLI value coercion is ``training/config_parse.py``).
``training.rl.grpo_arguments`` maps the run onto TRL's ``GRPOConfig``.
Paper defaults (PAPER.md §6): REINFORCE/RLOO/REINFORCE++, beta 0.01, temperature 1.0, clip 0.2,
4 samples per prompt, the paper's policy system prompt.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from rewardbridge.rewards.advantages import ESTIMATORS
from rewardbridge.rewards.normalize import SCOPES
from rewardbridge.training.config_parse import ConfigError, apply_overrides, fail, parse_section

if TYPE_CHECKING:
    from rewardbridge.verifiers.base import Verifier
    from rewardbridge.verifiers.config import VerifierOptions


@dataclass(frozen=True)
class ModelConfig:
    policy: str = "default"  # model folder, hub id, or "default" (embedded SmolLM2-135M-Instruct)
    lora: bool = True  # train a LoRA adapter (peft) instead of every weight
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: str | list[str] = "all-linear"
    dtype: str = "auto"  # auto (bf16 where the CPU/GPU has it natively) | float32 | bfloat16
    gradient_checkpointing: bool = False

    def validate(self) -> None:
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise fail("model.dtype", self.dtype, "use auto, float32, bfloat16 or float16")
        if self.lora and self.lora_r < 1:
            raise fail("model.lora_r", self.lora_r, "the LoRA rank must be >= 1")


@dataclass(frozen=True)
class DataConfig:
    path: str | None = None  # training prompts (.jsonl/.json/.parquet/HF folder); None = bundled
    fields: str | None = None  # field map, e.g. "question=prompt,reference=answer"
    limit: int | None = None  # use the first N prompts
    holdout: int = 0  # the last N prompts are held out (not trained on), e.g. for the demo
    exclude_ids: str | None = None  # file of prompt ids (one a line) not to train on (distillation)
    system_prompt: str | None = None  # policy system prompt; None = the paper's (§6)
    shuffle: bool = True

    def validate(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise fail("data.limit", self.limit, "must be >= 1 (or null for all)")
        if self.holdout < 0:
            raise fail("data.holdout", self.holdout, "must be >= 0")


@dataclass(frozen=True)
class VerifierConfig:
    name: str = "contains"  # any name of `rewardbridge verifiers` (generative, cascade, remote...)
    options: dict[str, Any] = field(default_factory=dict)  # fields of its config (verifiers/config)

    def validate(self) -> None:
        self.typed()

    def typed(self) -> VerifierOptions:
        """``options`` as the verifier's typed config; a wrong one names ``verifier.options.X``."""
        from rewardbridge.verifiers.config import OptionError
        from rewardbridge.verifiers.registry import available_verifiers, verifier_config

        if self.name not in available_verifiers():
            raise fail(
                "verifier.name", self.name, f"choose one of {', '.join(available_verifiers())}"
            )
        try:
            return verifier_config(self.name).from_options(self.options)
        except OptionError as exc:
            raise fail(f"verifier.options.{exc.option}", exc.value, exc.what) from None

    def build(self) -> Verifier:
        """The verifier this section describes."""
        from rewardbridge.verifiers.registry import build_from_config

        return build_from_config(self.typed())


@dataclass(frozen=True)
class AlgorithmConfig:
    estimator: str = (
        "rloo"  # reinforce | rloo | reinforce_pp | reinforce_pp_baseline | grpo | dr_grpo
    )
    normalize: str | None = None  # group | batch | none (Eq. 5); None = the estimator's default
    beta: float = 0.01  # KL coefficient (Eq. 6)
    kl_in: str = "loss"  # loss (TRL, k3 per token) | reward (paper Eq. 6, sequence KL)
    kl_estimator: str = "k1"  # k1 | k3, for kl_in=reward
    token_weighted_whitening: bool = False  # reinforce_pp*: whiten per token (verl) not per sample
    loss_type: str = "dr_grpo"  # TRL loss aggregation: grpo | dr_grpo | dapo | bnpo
    clip_epsilon: float = 0.2  # PPO clip (paper: 0.2)
    num_iterations: int = 1  # updates per generation batch (TRL's mu)

    def validate(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise fail(
                "algorithm.estimator", self.estimator, f"choose one of {', '.join(ESTIMATORS)}"
            )
        if self.normalize is not None and self.normalize not in SCOPES:
            raise fail("algorithm.normalize", self.normalize, f"choose one of {', '.join(SCOPES)}")
        if self.beta < 0:
            raise fail("algorithm.beta", self.beta, "must be >= 0 (0 disables the KL term)")
        if self.kl_in not in ("loss", "reward"):
            raise fail("algorithm.kl_in", self.kl_in, "choose loss or reward")
        if self.kl_estimator not in ("k1", "k3"):
            raise fail("algorithm.kl_estimator", self.kl_estimator, "choose k1 or k3")
        if self.loss_type not in ("grpo", "dr_grpo", "dapo", "bnpo"):
            raise fail("algorithm.loss_type", self.loss_type, "choose grpo, dr_grpo, dapo or bnpo")
        if not 0 < self.clip_epsilon < 1:
            raise fail("algorithm.clip_epsilon", self.clip_epsilon, "must be in (0, 1)")


@dataclass(frozen=True)
class GenerationConfig:
    num_generations: int = 4  # samples per prompt (the group; paper: 4)
    max_completion_length: int = 256  # paper: 1024
    # end-of-sequence held back until this many tokens (0: none); = max_completion_length gives
    # every completion the same length, as benchmarks/train_step.py --fixed-length does
    min_completion_length: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    use_vllm: bool = False  # GPU: generate with vLLM (TRL's integration)
    vllm_mode: str = "colocate"  # colocate | server
    # transformers.generate: each group's prompt computed once, not once per sample
    # (training/shared_prompts.py); vLLM shares prefixes by itself
    shared_prefill: bool = True
    # transformers.generate with LoRA: the adapter merged into copies of the base weights
    # while sampling (training/merged_adapter.py); put back, unchanged, for the update
    merge_adapter: bool = True
    # transformers.generate on a CPU: each token drawn by inverting the cumulative distribution,
    # not one exponential per vocabulary entry (policy/sampler.py); same distribution
    inverse_cdf_sampling: bool = True

    def validate(self) -> None:
        if self.num_generations < 2:
            raise fail(
                "generation.num_generations",
                self.num_generations,
                "needs >= 2 samples per prompt for a group baseline",
            )
        if self.max_completion_length < 1:
            raise fail(
                "generation.max_completion_length", self.max_completion_length, "must be >= 1"
            )
        if not 0 <= self.min_completion_length <= self.max_completion_length:
            raise fail(
                "generation.min_completion_length",
                self.min_completion_length,
                f"must be in [0, max_completion_length = {self.max_completion_length}]",
            )
        if self.temperature <= 0:
            raise fail("generation.temperature", self.temperature, "must be > 0 (RL samples)")
        if self.vllm_mode not in ("colocate", "server"):
            raise fail("generation.vllm_mode", self.vllm_mode, "choose colocate or server")


@dataclass(frozen=True)
class TrainingConfig:
    output_dir: str = "runs/train"
    prompts_per_step: int = 4  # prompts per generation batch (paper: 128)
    per_device_batch_size: int | None = None  # completions per micro step; None = all of them
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-5  # paper: 5e-7 (full fine-tuning of 7B)
    lr_scheduler_type: str = "constant"
    warmup_steps: int = 0
    max_steps: int = 30
    max_grad_norm: float = 1.0
    seed: int = 0
    save_steps: int = 10
    save_total_limit: int | None = 2
    use_cpu: bool | None = None  # None = CPU when no GPU is visible
    # bfloat16 autocast with float32 trainable weights (the LoRA adapter, or every weight in full
    # fine-tuning); None = on when model.dtype resolves to bfloat16 (rl.policy_precision)
    bf16: bool | None = None
    torch_threads: int | None = None  # CPU threads for torch; 1 is fastest on a busy shared CPU
    # the loss's forward runs each distinct prompt of a micro-batch once, its rows continuing
    # from that prompt's cache (training/shared_prompts.py; same log-probs and gradients)
    shared_prompt_forward: bool = True
    # a half-precision CPU forward under a backward computes its SDPA attention in float32,
    # whose CPU backward is faster than bfloat16's (models.float32_grad_attention)
    float32_grad_attention: bool = True

    def validate(self) -> None:
        if self.torch_threads is not None and self.torch_threads < 1:
            raise fail("training.torch_threads", self.torch_threads, "must be >= 1 (or null)")
        for name in ("prompts_per_step", "gradient_accumulation_steps", "max_steps", "save_steps"):
            if getattr(self, name) < 1:
                raise fail(f"training.{name}", getattr(self, name), "must be >= 1")
        if self.learning_rate <= 0:
            raise fail("training.learning_rate", self.learning_rate, "must be > 0")


@dataclass(frozen=True)
class LoggingConfig:
    logging_steps: int = 1
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    log_completions: bool = False  # print a table of sampled completions at each log
    record_judgments: str | None = None  # append every judgment to this JSONL (distillation)

    def validate(self) -> None:
        if self.logging_steps < 1:
            raise fail("logging.logging_steps", self.logging_steps, "must be >= 1")


@dataclass(frozen=True)
class CanaryConfig:
    """Live master-key probes mixed into each judge call, never into the policy's rewards."""

    enabled: bool | None = None  # None = on with a model-based verifier (generative, cascade...)
    share: float = 0.05  # probes per judged completion (at least 1 per judge call when > 0)
    max_fpr: float = 0.2  # warn (or stop) when a step's canary false-positive rate is above it
    on_exceed: str = "warn"  # warn | stop (save the model and end the run after that step)
    min_probes: int = 8  # the threshold is checked on the latest steps with >= this many judged
    seed: int = 0  # which keys and questions are probed

    def validate(self) -> None:
        if not 0 <= self.share <= 1:
            raise fail("canaries.share", self.share, "must be in [0, 1] (0 disables canaries)")
        if not 0 <= self.max_fpr <= 1:
            raise fail("canaries.max_fpr", self.max_fpr, "must be in [0, 1]")
        if self.on_exceed not in ("warn", "stop"):
            raise fail("canaries.on_exceed", self.on_exceed, "choose warn or stop")
        if self.min_probes < 1:
            raise fail("canaries.min_probes", self.min_probes, "must be >= 1")


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    canaries: CanaryConfig = field(default_factory=CanaryConfig)

    def validate(self) -> RunConfig:
        for f in fields(self):
            getattr(self, f.name).validate()
        completions = self.training.prompts_per_step * self.generation.num_generations
        micro = self.training.per_device_batch_size or completions
        if completions % micro:
            raise fail(
                "training.per_device_batch_size",
                micro,
                f"must divide prompts_per_step x num_generations = {completions}",
            )
        if (
            self.algorithm.kl_in == "reward"
            and self.algorithm.beta > 0
            and self.generation.use_vllm
        ):
            raise fail("algorithm.kl_in", "reward", "use kl_in: loss with vLLM generation")
        return self

    def check_paths(self) -> RunConfig:
        """Files the run reads must exist (checked at the start of a run, not when parsing)."""
        if self.data.path is not None and not Path(self.data.path).exists():
            raise fail("data.path", self.data.path, "no such file or folder")
        if self.data.exclude_ids is not None and not Path(self.data.exclude_ids).exists():
            raise fail("data.exclude_ids", self.data.exclude_ids, "no such file")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def completions_per_step(self) -> int:
        return self.training.prompts_per_step * self.generation.num_generations


def config_from_dict(raw: Mapping[str, Any] | None) -> RunConfig:
    """Build and validate a run config from a nested mapping (a parsed recipe)."""
    raw = dict(raw or {})
    sections = {f.name: f for f in fields(RunConfig)}
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section; sections: {', '.join(sections)}")
    hints = get_type_hints(RunConfig)
    built = {name: parse_section(hints[name], name, raw.get(name) or {}) for name in sections}
    return RunConfig(**built).validate()


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> RunConfig:
    """Read a YAML recipe (None = all defaults), apply dotted overrides, validate."""
    import yaml

    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"config {p}: no such file")
        loaded = yaml.safe_load(p.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config {p}: must be a YAML mapping of sections")
        raw = loaded
    return config_from_dict(apply_overrides(raw, overrides))
